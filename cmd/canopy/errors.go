package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The exit codes.
const (
	exitOK    = 0
	exitNo    = 1 // a check denied, an assertion failed
	exitError = 2
)

// errNo is returned by a command whose answer is "no" (a denied check):
// nothing is printed for it, and canopy exits 1.
var errNo = errors.New("no")

// exitCode prints err as one line and returns the code to exit with.
func exitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errNo):
		return exitNo
	}
	fmt.Fprintln(stderr, "canopy:", describe(err))
	return exitError
}

// describe turns an error into one line: a gRPC status as its code in
// words and the server's message (which names the offending id).
func describe(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		if errors.Is(err, context.DeadlineExceeded) {
			return "deadline exceeded: " + oneLine(err.Error())
		}
		return oneLine(err.Error())
	}
	s := se.GRPCStatus()
	msg := s.Message()
	if s.Code() == codes.Unavailable && strings.Contains(msg, "connection refused") {
		msg = "no server answers there (is canopyd running? --addr, CANOPY_ADDR or the context say where)"
	}
	words := codeWords(s.Code())
	// The index's messages name their sentinel after the id; when it says
	// what the code says, once is enough.
	msg = strings.Replace(msg, `": `+words+": ", `": `, 1)
	return words + ": " + oneLine(msg)
}

// codeWords writes a gRPC code as words: NotFound is "not found".
func codeWords(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte(' ')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// oneLine keeps a message on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
