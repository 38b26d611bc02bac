package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	entry := func(name, token, scopes string) string {
		sum := sha256.Sum256([]byte(token))
		return fmt.Sprintf("  - {name: %s, sha256: %s, scopes: [%s]}\n", name, hex.EncodeToString(sum[:]), scopes)
	}
	if err := os.WriteFile(tokens, []byte("tokens:\n"+entry("checker", "check-token", "check")+entry("console", "admin-token", "admin")), 0o600); err != nil {
		t.Fatal(err)
	}
	d := servertest.StartDaemon(t, bin, t.TempDir(), "--tokens", tokens, "--http-listen", "127.0.0.1:0", "--example", "atlas")
	if d.HTTP == "" {
		t.Fatal("canopyd did not say where it serves HTTP/JSON")
	}
	call := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+d.HTTP+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
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
