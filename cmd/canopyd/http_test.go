package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/canopy-authz/canopy/server/servertest"
)

// TestHTTPListen: canopyd --http-listen serves the API as HTTP/JSON on a
// listener of its own, behind the same tokens and scopes as gRPC: no
// token is 401, a token without the scope 403, and a token with it gets
// its answer; the writer is recorded by the token's name. The OpenAPI
// document is there too.
func TestHTTPListen(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCanopyd(t)
	tokens := writeTokens(t, tokenEntry("checker", "check-token", "check"), tokenEntry("console", "admin-token", "admin"))
	d := servertest.StartDaemon(t, bin, t.TempDir(), "--tokens", tokens, "--http-listen", "127.0.0.1:0", "--example", "atlas")
	if d.HTTP == "" {
		t.Fatal("canopyd did not say where it serves HTTP/JSON")
	}
	call := func(method, path, token, body string) (int, string) {
		t.Helper()
		return callHTTP(t, d.HTTP, method, path, token, body)
	}
	check := `{"user":"tom","right":"edit","resource":{"kind":"OBJECT_KIND_USER","id":"carl"}}`
	if code, body := call("POST", "/v1/check", "", check); code != 401 {
		t.Errorf("no token: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/check", "nonsense", check); code != 401 {
		t.Errorf("a wrong token: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/check", "check-token", check); code != 200 || !strings.Contains(body, `"allowed":true`) {
		t.Errorf("check: %d %s", code, body)
	}
	write := `{"mutations":[{"create_folder":{"id":"it4","parent":"candidates"}}]}`
	if code, body := call("POST", "/v1/write", "check-token", write); code != 403 || !strings.Contains(body, "write") {
		t.Errorf("a write with the check scope: %d %s", code, body)
	}
	if code, body := call("POST", "/v1/write", "admin-token", write); code != 200 {
		t.Errorf("a write with the admin scope: %d %s", code, body)
	}
	code, body := call("GET", "/v1/history?object=folder/it4", "admin-token", "")
	var h struct {
		Entries []struct {
			Actor string `json:"actor"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != 200 || len(h.Entries) != 1 || h.Entries[0].Actor != "console" {
		t.Errorf("the write's history: %d %s", code, body)
	}
	if code, body := call("GET", "/openapi.json", "", ""); code != 200 || !strings.Contains(body, `"swagger": "2.0"`) {
		t.Errorf("/openapi.json: %d %.100s", code, body)
	}
}
