package graph

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Sentinel errors. Every error the index returns wraps exactly one of them
// in an *Error that names the operation and the offending id; test with
// errors.Is. The server maps each to one gRPC code.
var (
	// ErrInvalid: the request is malformed (an empty or overlong id, a
	// mutation with no field set, an unknown state, an expiry in the past).
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound: a referenced folder, user, grant, lock, rule or right does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an entity with that id exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrCycle: a folder would become its own ancestor, or a right would imply itself.
	ErrCycle = errors.New("cycle")
	// ErrCrossOrg: the write would join two organisations' trees.
	ErrCrossOrg = errors.New("crosses organisations")
	// ErrNotEmpty: the folder, user or right is still in use and the delete did not cascade.
	ErrNotEmpty = errors.New("still in use")
	// ErrPlacement: a user would be a member of a folder whose placement rules exclude the user's class.
	ErrPlacement = errors.New("placement rule breached")
	// ErrUnknownRight: a right that is not in the catalogue.
	ErrUnknownRight = errors.New("unknown right")
	// ErrPrecondition: a precondition of the write does not hold.
	ErrPrecondition = errors.New("precondition failed")
	// ErrConflict: the journal has moved past the revision a batch was validated against.
	ErrConflict = errors.New("revision conflict")
	// ErrOutside: the call names a record outside the organisations its
	// caller is confined to, or one that does not exist (the caller is not
	// told which), or a write reaches outside them.
	ErrOutside = errors.New("outside the caller's organisations")
	// ErrNotAllowed: a batch written on behalf of a user needs a right
	// that user does not hold (actas.go); the error names the mutation,
	// the right and the object.
	ErrNotAllowed = errors.New("not allowed")
	// ErrClosed: the index has been closed.
	ErrClosed = errors.New("index closed")
	// ErrStorage: the journal could not make a batch durable (a full disk,
	// a failed sync, a shared store out of reach); reads go on. Nothing
	// was committed, unless the error also wraps ErrUnknownOutcome. The
	// error wraps the journal's, with its cause.
	ErrStorage = errors.New("storage failed")
	// ErrUnknownOutcome: a shared store did not answer whether it
	// committed a batch (it lost its quorum while the batch was on its
	// way). It may still commit it when it recovers; every node then
	// applies it from the store's log, so the nodes never disagree, but
	// the caller must read before it writes again.
	ErrUnknownOutcome = errors.New("the outcome is unknown")
	// ErrLogCompacted: a feed's log no longer holds a revision the index
	// needs to follow it; the index loads the feed afresh.
	ErrLogCompacted = errors.New("the log no longer holds the revision")
)

// Error is an index error: what was being done, to which id, and why.
type Error struct {
	Op  string // the operation, such as "move_folder" or "check"
	ID  string // the offending id
	Err error  // one of the sentinel errors, possibly wrapped with detail
	Msg string // detail, may be empty
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s %q: %v", e.Op, e.ID, e.Err)
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// newErr makes an Error. The id and every string among args are clipped
// (Clip), so that no message echoes a huge input.
func newErr(op, id string, sentinel error, format string, args ...any) *Error {
	return &Error{Op: op, ID: Clip(id), Err: sentinel, Msg: fmt.Sprintf(format, ClipArgs(args)...)}
}

// clipBytes is how much of a long string a message keeps.
const clipBytes = 64

// Clip returns s when it is at most 64 bytes long; otherwise its first
// bytes (cut at a character boundary), an ellipsis and its length in
// bytes, so that an error or a log line never echoes a huge input. Quote
// the result with %q, which also escapes what is not printable.
func Clip(s string) string {
	if len(s) <= clipBytes {
		return s
	}
	cut := clipBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…[%d bytes]", s[:cut], len(s))
}

// ClipArgs returns a copy of args with every string clipped, for
// formatting.
func ClipArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		if s, ok := a.(string); ok {
			a = Clip(s)
		}
		out[i] = a
	}
	return out
}
