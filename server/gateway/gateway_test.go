package gateway_test

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/server"
	"github.com/canopy-authz/canopy/server/certtest"
	"github.com/canopy-authz/canopy/server/gateway"
	"github.com/canopy-authz/canopy/server/servertest"
)

// start serves the ATLAS example over HTTP/JSON.
func start(t testing.TB) (*servertest.Server, string) {
	t.Helper()
	s := servertest.StartExample(t, "atlas")
	return s, serve(t, s)
}

// serve serves s over HTTP/JSON and returns the URL.
func serve(t testing.TB, s *servertest.Server) string {
	t.Helper()
	g, err := gateway.New(context.Background(), s.API, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	hs := httptest.NewServer(g.Handler)
	t.Cleanup(hs.Close)
	return hs.URL
}

// call sends body (nil for none) and returns the status and the decoded
// JSON answer.
func call(t *testing.T, method, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d %s: not JSON: %v", method, url, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, out
}

// TestHTTPJSON: the gateway answers the API's calls in its own field
// names and enum values, maps errors to HTTP statuses with the message
// naming the id, records the HTTP client as the actor, and serves the
// OpenAPI document.
func TestHTTPJSON(t *testing.T) {
	_, url := start(t)
	code, r := call(t, "POST", url+"/v1/check", `{"user":"tom","right":"edit","resource":{"kind":"OBJECT_KIND_USER","id":"carl"}}`)
	if code != 200 || r["allowed"] != true || r["reason"] != "REASON_ALLOWED" {
		t.Fatalf("check: %d %v", code, r)
	}
	code, r = call(t, "POST", url+"/v1/check", `{"user":"tom","right":"assign","resource":{"kind":"OBJECT_KIND_USER","id":"carl"}}`)
	if code != 200 || r["allowed"] != false || r["reason"] != "REASON_NO_GRANT" {
		t.Fatalf("a denied check is a 200 with allowed false: %d %v", code, r)
	}
	code, r = call(t, "POST", url+"/v1/explain", `{"user":"tom","right":"edit","resource":{"kind":"OBJECT_KIND_USER","id":"carl"}}`)
	if b, _ := json.Marshal(r); code != 200 || !strings.Contains(string(b), "access-it1-teacher") {
		t.Fatalf("explain: %d %s", code, b)
	}
	// A write, as the HTTP client: the actor is its address, whatever
	// X-Forwarded-For it sends.
	code, r = call(t, "POST", url+"/v1/write", `{"mutations":[{"create_folder":{"id":"it4","parent":"candidates"}}]}`, "X-Forwarded-For", "6.6.6.6")
	if code != 200 || r["revision"] == nil {
		t.Fatalf("write: %d %v", code, r)
	}
	code, r = call(t, "GET", url+"/v1/folders/it4", "")
	if f, _ := r["folder"].(map[string]any); code != 200 || f["parent"] != "candidates" {
		t.Fatalf("get the folder: %d %v", code, r)
	}
	code, r = call(t, "GET", url+"/v1/history?object=folder/it4", "")
	entries, _ := r["entries"].([]any)
	if code != 200 || len(entries) != 1 || entries[0].(map[string]any)["actor"] != "anonymous@127.0.0.1" {
		t.Fatalf("its history: %d %v", code, r)
	}
	// Errors: the gRPC code as an HTTP status, the message naming the id.
	for _, c := range []struct {
		method, path, body string
		status             int
		says               string
	}{
		{"GET", "/v1/folders/nowhere", "", 404, `"nowhere"`},
		{"POST", "/v1/write", `{"mutations":[{"create_folder":{"id":"it4","parent":"candidates"}}]}`, 409, `"it4"`},
		{"POST", "/v1/check", `{"user":"tom","right":"fly","resource":{"kind":"OBJECT_KIND_USER","id":"carl"}}`, 400, `"fly"`},
		{"POST", "/v1/check", `{"user":"tom","right":"read","resource":{"kind":"OBJECT_KIND_USER","id":"nobody"}}`, 404, `"nobody"`},
		{"POST", "/v1/check", `{"user":`, 400, ""},
		{"GET", "/v1/history?object=team/x", "", 400, `"team/x"`},
		{"POST", "/v1/write", `{"mutations":[{"delete_folder":{"id":"candidates"}}]}`, 400, `"candidates"`},
	} {
		code, r := call(t, c.method, url+c.path, c.body)
		if msg, _ := r["message"].(string); code != c.status || !strings.Contains(msg, c.says) {
			t.Errorf("%s %s %s: %d %v, want %d naming %s", c.method, c.path, c.body, code, r, c.status, c.says)
		}
	}
	code, r = call(t, "GET", url+"/openapi.json", "")
	if paths, _ := r["paths"].(map[string]any); code != 200 || r["swagger"] != "2.0" || paths["/v1/check"] == nil || paths["/v1/history"] == nil {
		t.Fatalf("the OpenAPI document: %d, %d paths", code, len(paths))
	}
}

// TestHTTPStreams: a stream answers one JSON object a line as each
// message comes: Watch replays the log and then follows a write made
// while it is open.
func TestHTTPStreams(t *testing.T) {
	s, url := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/v1/watch?from_revision=2&filter.kinds=CHANGE_KIND_FOLDERS", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(nil, 4<<20)
	next := func() map[string]any {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("the stream ended: %v", lines.Err())
		}
		var m struct {
			Result map[string]any `json:"result"`
			Error  map[string]any `json:"error"`
		}
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil || m.Result == nil {
			t.Fatalf("a line of the stream: %s (%v)", lines.Bytes(), err)
		}
		return m.Result
	}
	if first := next(); first["revision"] != "2" || len(first["mutations"].([]any)) != 10 {
		t.Fatalf("the replay: %v", first)
	}
	rev, err := s.Index.Write(ctx, "test", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "live", Parent: "acme"}}}, graph.Preconditions{})
	if err != nil {
		t.Fatal(err)
	}
	live := next()
	if b, _ := json.Marshal(live); live["revision"] != strconv.FormatUint(rev, 10) || !strings.Contains(string(b), `"live"`) {
		t.Fatalf("the live change: %s", b)
	}
}

// TestHTTPImport: Import, a stream both ways, takes its requests as JSON
// lines of the body and answers its progress as JSON lines.
func TestHTTPImport(t *testing.T) {
	s := servertest.Start(t)
	url := serve(t, s)
	body := `{"mutations":[{"create_folder":{"id":"org"}},{"create_folder":{"id":"a","parent":"org"}}]}` + "\n" +
		`{"mutations":[{"create_user":{"id":"u","class":"staff","home":"a"}}]}` + "\n"
	resp, err := http.Post(url+"/v1/import", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(raw), `"committed_mutations":"3"`) {
		t.Fatalf("import: %d %s", resp.StatusCode, raw)
	}
	if st := s.Index.Stats(); st.Folders != 2 || st.Users != 1 {
		t.Fatalf("after the import: %+v", st)
	}
}

// TestHTTPClientCertificate: over mutual TLS, an HTTP client is named by
// its certificate's subject, as over gRPC; without one, no header can
// make it so.
func TestHTTPClientCertificate(t *testing.T) {
	s, plain := start(t)
	ca := certtest.New(t)
	srvCert, srvKey := ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)
	cfg, err := server.TLSConfig(srvCert, srvKey, ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(context.Background(), s.API, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	hs := httptest.NewUnstartedServer(g.Handler)
	hs.TLS = cfg
	hs.StartTLS()
	t.Cleanup(hs.Close)
	mutual := &http.Client{Transport: &http.Transport{TLSClientConfig: ca.Client(t, "billing")}}

	// actor writes folder id through client at url, with the headers
	// given, and returns the actor its history records.
	actor := func(client *http.Client, url, id string, header ...string) string {
		t.Helper()
		req, err := http.NewRequest("POST", url+"/v1/write", strings.NewReader(`{"mutations":[{"create_folder":{"id":"`+id+`","parent":"candidates"}}]}`))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("write %s: %d %s", id, resp.StatusCode, body)
		}
		code, r := call(t, "GET", plain+"/v1/history?object=folder/"+id, "")
		entries, _ := r["entries"].([]any)
		if code != 200 || len(entries) != 1 {
			t.Fatalf("the history of %s: %d %v", id, code, r)
		}
		return entries[0].(map[string]any)["actor"].(string)
	}
	if got := actor(mutual, hs.URL, "by-cert"); got != "CN=billing" {
		t.Errorf("with a client certificate: %q", got)
	}
	forged := "Grpc-Metadata-" + server.ClientSubjectKey
	if got := actor(mutual, hs.URL, "by-cert-forged", forged, "CN=root"); got != "CN=billing" {
		t.Errorf("with a client certificate and a forged subject: %q", got)
	}
	if got := actor(http.DefaultClient, plain, "forged", forged, "CN=root"); got != "anonymous@127.0.0.1" {
		t.Errorf("a forged subject, without a certificate: %q", got)
	}
}
