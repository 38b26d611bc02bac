package graph

import (
	"errors"
	"fmt"
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
	// ErrClosed: the index has been closed.
	ErrClosed = errors.New("index closed")
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

func newErr(op, id string, sentinel error, format string, args ...any) *Error {
	return &Error{Op: op, ID: id, Err: sentinel, Msg: fmt.Sprintf(format, args...)}
}
