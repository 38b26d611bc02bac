package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestDemo runs canopyd twice on one data folder: the first run loads the
// ATLAS example, the second finds it in the file at the same revision.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	var first, second bytes.Buffer
	if err := run([]string{"--data", dir}, &first); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"--data", dir}, &second); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"loaded the ATLAS example, now at revision 2",
		"alice edit user:carl",
		"allowed: grant access-admin-main, as a member of admin-main, over acme > candidates > it1",
		"carl read user:carl                      allowed: a self right",
	} {
		if !strings.Contains(first.String(), want) {
			t.Errorf("first run lacks %q:\n%s", want, first.String())
		}
	}
	if !strings.Contains(second.String(), "at revision 2: 10 folders, 5 users, 8 grants") {
		t.Errorf("second run did not find the example in the file:\n%s", second.String())
	}
	if strings.Contains(second.String(), "loaded the ATLAS example") {
		t.Error("second run loaded the example again")
	}
}
