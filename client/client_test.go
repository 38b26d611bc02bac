package client

import (
	"strings"
	"testing"
)

func TestTokenNeedsTLSBeyondLoopback(t *testing.T) {
	if _, err := Dial("canopy.example:7070", WithToken("t")); err == nil || !strings.Contains(err.Error(), "plaintext") {
		t.Fatalf("token over plaintext to a remote server: %v", err)
	}
	for _, addr := range []string{"127.0.0.1:7070", "localhost:7070", "[::1]:7070"} {
		c, err := Dial(addr, WithToken("t"))
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		c.Close()
	}
	c, err := Dial("canopy.example:7070", WithToken("t"), AllowInsecureToken())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
