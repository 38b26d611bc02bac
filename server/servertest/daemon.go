package servertest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// built holds the binaries Build made, for a test binary run through
// Main: each package is built once, whatever number of tests asks.
var built struct {
	mu   sync.Mutex
	dir  string            // set by Main; "" builds each time, into the test's folder
	bins map[string]string // package -> binary
}

// Main runs a package's tests (call it from TestMain) with a folder for
// Build to keep its binaries in, removed when they end, and returns the
// exit code.
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "servertest-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	built.dir, built.bins = dir, map[string]string{}
	return m.Run()
}

// Build builds the main package pkg (a path such as
// "github.com/canopy-authz/canopy/cmd/canopyd") and returns the binary's
// path: once per test binary when its TestMain calls Main, else into the
// test's temporary folder.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	built.mu.Lock()
	defer built.mu.Unlock()
	if bin, ok := built.bins[pkg]; ok {
		return bin
	}
	dir := built.dir
	if dir == "" {
		dir = t.TempDir()
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	if built.bins != nil {
		built.bins[pkg] = bin
	}
	return bin
}

// Daemon is a running canopyd binary.
type Daemon struct {
	Cmd     *exec.Cmd
	Addr    string // the gRPC listener, host:port
	Metrics string // the metrics listener, host:port
	HTTP    string // the HTTP/JSON listener (--http-listen), host:port, if any
	Console string // the console's listener (--console-listen), host:port, if any
	logs    chan logLine
}

// logLine is one line of canopyd's JSON log.
type logLine struct {
	Msg  string `json:"msg"`
	Addr string `json:"addr"`
	raw  string
}

// StartDaemon starts the canopyd binary bin over the data folder on free
// loopback ports, with extra flags, and waits (up to a minute) for the
// log lines that say where it serves. It is killed when the test ends,
// unless stopped first.
func StartDaemon(t testing.TB, bin, data string, extra ...string) *Daemon {
	t.Helper()
	args := append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data", data, "--log-format", "json"}, extra...)
	d, err := Launch(bin, true, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Kill)
	return d
}

// Launch starts bin, a canopyd binary, with exactly args (which must ask
// for the JSON log format), and waits up to a minute for the log lines
// that say where it serves gRPC and, with metrics, its metrics. Its log
// goes on being read, the oldest lines dropped while nobody waits for one
// (WaitLog). It is for callers that are not tests (a load generator);
// Kill ends it.
func Launch(bin string, metrics bool, args ...string) (*Daemon, error) {
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	addrc, metricsc, httpc, consolec, ended := make(chan string, 1), make(chan string, 1), make(chan string, 1), make(chan string, 1), make(chan struct{})
	d := &Daemon{Cmd: cmd, logs: make(chan logLine, 1000)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line logLine
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			line.raw = sc.Text()
			switch line.Msg {
			case "serving gRPC":
				addrc <- line.Addr
			case "serving metrics":
				metricsc <- line.Addr
			case "serving HTTP/JSON":
				httpc <- line.Addr
			case "serving the console":
				consolec <- line.Addr
			}
			for sent := false; !sent; {
				select {
				case d.logs <- line:
					sent = true
				default: // full: nobody reads the lines, so drop the oldest
					select {
					case <-d.logs:
					default:
					}
				}
			}
		}
		close(d.logs)
		close(ended)
	}()
	deadline := time.After(time.Minute)
	for d.Addr == "" || metrics && d.Metrics == "" {
		select {
		case d.Addr = <-addrc:
		case d.Metrics = <-metricsc:
		case <-ended:
			d.Kill()
			return nil, fmt.Errorf("%s exited before serving", bin)
		case <-deadline:
			d.Kill()
			return nil, fmt.Errorf("%s did not start serving within a minute", bin)
		}
	}
	select { // logged before gRPC is served, if at all
	case d.HTTP = <-httpc:
	default:
	}
	select {
	case d.Console = <-consolec:
	default:
	}
	return d, nil
}

// Kill ends canopyd at once and waits for it.
func (d *Daemon) Kill() {
	d.Cmd.Process.Kill()
	d.Cmd.Wait()
}

// WaitLog returns the next log line whose message is msg, as JSON, after
// any lines already read; it fails the test when none comes within 30 s
// or canopyd exits first.
func (d *Daemon) WaitLog(t testing.TB, msg string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-d.logs:
			if !ok {
				t.Fatalf("canopyd exited before logging %q", msg)
			}
			if l.Msg == msg {
				return l.raw
			}
		case <-deadline:
			t.Fatalf("canopyd did not log %q within 30 s", msg)
		}
	}
}

// Stop sends SIGTERM and waits (up to 30 s) for a clean exit.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("canopyd exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("canopyd did not stop within 30 s of SIGTERM")
	}
}

// BuildWithFailpoints builds the main package pkg as Build does, against
// a copy of bbolt with its failpoints compiled in (gofail, a tool of this
// module): the copy is made from the module cache and rewritten by
// `go tool gofail enable`, and a go.mod of the test's replaces bbolt with
// it. The binary takes failpoints from GOFAIL_FAILPOINTS, and serves
// their switches over HTTP at GOFAIL_HTTP (PUT /name with the terms,
// DELETE /name).
func BuildWithFailpoints(t testing.TB, pkg string) string {
	t.Helper()
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	gomod := run("go", "env", "GOMOD")
	src := run("go", "list", "-m", "-f", "{{.Dir}}", "go.etcd.io/bbolt")
	bbolt := filepath.Join(dir, "bbolt")
	if err := os.CopyFS(bbolt, os.DirFS(src)); err != nil {
		t.Fatalf("copy bbolt: %v", err)
	}
	// The module cache is read-only; its copy must be rewritten.
	if err := filepath.WalkDir(bbolt, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if e.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "tool", "gofail", "enable", bbolt)
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gofail enable: %v\n%s", err, out)
	}
	mod, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(strings.TrimSuffix(gomod, ".mod") + ".sum")
	if err != nil {
		t.Fatal(err)
	}
	modfile := filepath.Join(dir, "go.mod")
	mod = append(mod, "\nreplace go.etcd.io/bbolt => "+bbolt+"\n"...)
	if err := errors.Join(os.WriteFile(modfile, mod, 0o644), os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644)); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	build := exec.Command("go", "build", "-modfile", modfile, "-o", bin, pkg)
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s with failpoints: %v\n%s", pkg, err, out)
	}
	return bin
}
