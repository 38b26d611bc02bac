package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSmallRun runs the whole load generator on a tiny organisation.
func TestSmallRun(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-scale", "0.002", "-checks", "200", "-duration", "200ms", "-callers", "2", "-batch", "50"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"organisation: 200 folders, 2000 users", "Check, one caller, 200 calls: median", "BatchCheck, 2 callers x 50 checks"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
