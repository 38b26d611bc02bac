package server

import (
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamLimit caps the streams (Watch, WatchAccess, lookups, Import,
// Export) one caller may have open at once, so that one caller cannot pin
// the server's memory with idle streams.
type streamLimit struct {
	max    int
	tokens *Tokens // names the caller; may be nil
	mu     sync.Mutex
	open   map[string]int // guarded by mu: streams open, by caller
}

func newStreamLimit(max int, tokens *Tokens) *streamLimit {
	return &streamLimit{max: max, tokens: tokens, open: map[string]int{}}
}

// intercept refuses a stream past the caller's limit with
// ResourceExhausted, and counts the stream until it ends.
func (l *streamLimit) intercept(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	who := l.tokens.callerName(ss.Context())
	l.mu.Lock()
	if l.open[who] >= l.max {
		l.mu.Unlock()
		return status.Errorf(codes.ResourceExhausted, "caller %q has %d streams open, the most one caller may (--max-streams-per-caller)", who, l.max)
	}
	l.open[who]++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if l.open[who]--; l.open[who] == 0 {
			delete(l.open, who)
		}
		l.mu.Unlock()
	}()
	return h(srv, ss)
}
