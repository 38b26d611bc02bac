package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/canopy-authz/canopy/server/servertest"
)

// walkthroughPath is the document whose commands TestWalkthrough runs.
const walkthroughPath = "../../docs/walkthrough.md"

// times are compared as TIME: they differ from run to run.
var times = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)

// TestWalkthrough runs every command of docs/walkthrough.md, in order,
// with the real canopy binary against a real canopyd started empty, and
// compares what each prints (standard output, then standard error) with
// the lines that follow it in the document. CANOPY_UPDATE_WALKTHROUGH=1
// rewrites those lines from what the commands print.
func TestWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	raw, err := os.ReadFile(walkthroughPath)
	if err != nil {
		t.Fatal(err)
	}
	canopyd := servertest.Build(t, "github.com/canopy-authz/canopy/cmd/canopyd")
	canopy := servertest.Build(t, "github.com/canopy-authz/canopy/cmd/canopy")
	d := servertest.StartDaemon(t, canopyd, t.TempDir())
	env := append(os.Environ(), "CANOPY_ADDR="+d.Addr, "CANOPY_CLI_CONFIG="+filepath.Join(t.TempDir(), "config.yaml"))
	update := os.Getenv("CANOPY_UPDATE_WALKTHROUGH") != ""

	var out []string // the document, rewritten
	lines := strings.Split(string(raw), "\n")
	inConsole, commands := false, 0
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case l == "```console":
			inConsole = true
		case l == "```":
			inConsole = false
		case inConsole && strings.HasPrefix(l, "$ "):
			var want []string
			for i+1 < len(lines) && !strings.HasPrefix(lines[i+1], "$ ") && lines[i+1] != "```" {
				i++
				want = append(want, lines[i])
			}
			args, err := shellWords(strings.TrimPrefix(l, "$ "))
			if err != nil || len(args) == 0 || args[0] != "canopy" {
				t.Fatalf("line %d %q: not a canopy command (%v)", i+1, l, err)
			}
			cmd := exec.Command(canopy, args[1:]...)
			cmd.Dir = "../.."
			cmd.Env = env
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run() // the exit code of a denial or a refusal is part of the story, not a failure
			got := strings.TrimSuffix(stdout.String()+stderr.String(), "\n")
			commands++
			out = append(out, l)
			if got != "" {
				out = append(out, strings.Split(got, "\n")...)
			}
			if !update && times.ReplaceAllString(got, "TIME") != times.ReplaceAllString(strings.Join(want, "\n"), "TIME") {
				t.Errorf("line %d: %s\ngot:\n%s\nwant:\n%s", i+1, l, got, strings.Join(want, "\n"))
			}
			continue
		}
		out = append(out, l)
	}
	if commands < 50 {
		t.Errorf("only %d commands ran", commands)
	}
	if update {
		if err := os.WriteFile(walkthroughPath, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// shellWords splits a command line as a shell would for the simple forms
// the walkthrough uses: words separated by spaces, and "double quotes".
func shellWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, errUnclosedQuote
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// errUnclosedQuote is a command line whose quote is not closed.
var errUnclosedQuote = errors.New("unclosed quote")
