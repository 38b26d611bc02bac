package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRefusesOpenListenWithoutTokens(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0"} {
		err := run(context.Background(), []string{"--listen", addr, "--data", t.TempDir()}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "beyond loopback") {
			t.Errorf("%s: %v", addr, err)
		}
		// The HTTP/JSON listener alike.
		err = run(context.Background(), []string{"--listen", "127.0.0.1:0", "--http-listen", addr, "--data", t.TempDir()}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "beyond loopback") || !strings.Contains(err.Error(), addr) {
			t.Errorf("--http-listen %s: %v", addr, err)
		}
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7070": true, "[::1]:1": true, "localhost:1": true, "127.5.6.7:0": true,
		"0.0.0.0:1": false, ":1": false, "10.0.0.1:1": false, "nonsense": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("%s: %v", addr, got)
		}
	}
}

func TestEnvironmentThenFlags(t *testing.T) {
	t.Setenv("CANOPY_LISTEN", "127.0.0.1:9999")
	t.Setenv("CANOPY_LOG_LEVEL", "debug")
	c, err := parseFlags([]string{"--log-level", "warn"})
	if err != nil || c.listen != "127.0.0.1:9999" || c.logLevel != "warn" {
		t.Fatalf("%+v, %v", c, err)
	}
	t.Setenv("CANOPY_SHUTDOWN_TIMEOUT", "soon")
	if _, err := parseFlags(nil); err == nil || !strings.Contains(err.Error(), "CANOPY_SHUTDOWN_TIMEOUT") {
		t.Fatalf("a bad environment value: %v", err)
	}
}

func TestConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "canopyd.yaml")
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:8000\nlog-level: debug\nrate-limit: 50\nshutdown-timeout: 3s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CANOPY_LOG_LEVEL", "warn")
	c, err := parseFlags([]string{"--config", path, "--rate-limit", "70"})
	if err != nil {
		t.Fatal(err)
	}
	if c.listen != "127.0.0.1:8000" || c.logLevel != "warn" || c.rateLimit != 70 || c.shutdownTimeout != 3*time.Second {
		t.Fatalf("file < environment < flags not honoured: %+v", c)
	}
	if err := os.WriteFile(path, []byte("lisen: 127.0.0.1:8000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parseFlags([]string{"--config=" + path}); err == nil || !strings.Contains(err.Error(), `unknown setting "lisen"`) {
		t.Fatalf("a misspelt setting: %v", err)
	}
}
