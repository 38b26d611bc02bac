// Package client is the Go client of Canopy. It imports only the API
// (proto/canopy/v1) and grpc. Add it to a service with
//
//	go get github.com/canopy-authz/canopy/client
//
// # Five lines
//
//	c, err := client.Dial("127.0.0.1:7070")
//	if err != nil { ... }
//	defer c.Close()
//	d, err := c.Check(ctx, "alice", "edit", client.User("carl"))
//	if d.Allowed { ... }
//
// Pass a nil resource to check a capability ("user_administrator"). A
// denied decision says why in d.Reason (no grant, locked, expired, user
// not active, unknown user).
//
// # Connecting
//
// On loopback nothing more is needed. A server with a tokens file wants a
// bearer token, and a token travels only over TLS unless the server is on
// loopback:
//
//	creds := credentials.NewTLS(&tls.Config{RootCAs: pool})
//	c, err := client.Dial("canopy.internal:7070", client.WithTLS(creds), client.WithToken(token))
//
// # Retries
//
// Calls that are safe to repeat are retried, with exponential backoff,
// when the server is unavailable or rate-limits the caller (DefaultRetry;
// change it with WithRetry). Reads, checks and lookups are safe. A Write
// is retried only when it carries a revision precondition (IfRevision),
// since a repeat of a write that did commit then fails with
// FailedPrecondition instead of applying twice; Import is never retried.
//
// # Writing
//
// Everything changes through one atomic batch at a time, built fluently:
//
//	rev, err := c.Batch().
//	    CreateFolder("acme", "Acme Training", "").
//	    CreateFolder("it1", "IT1", "acme").
//	    CreateUser("carl", "Carl Candidate", "candidate", "it1").
//	    AddGrant("teach-it1", client.Folder("teachers"), client.Folder("it1"), "read", "edit").
//	    Commit(ctx)
//
// A refused batch changes nothing, and its error has the gRPC code to act
// on (InvalidArgument, NotFound, AlreadyExists, FailedPrecondition) and a
// message naming the offending id. IfRevision(rev) makes a batch apply
// only if nothing else was committed since rev; IfFoldersExist and its
// siblings add existence preconditions.
//
// Import streams a large set of mutations, committed in chunks, with a
// progress callback after each; Export yields the whole state at one
// revision as mutations Import accepts.
//
// # Asking
//
// Check, BatchCheck (many questions at one revision; an item that cannot
// be decided, an unknown right say, has its own Decision.Err and the
// others are decided all the same), Explain (the grant
// and folder paths behind a decision, or the lock that denied) and
// EffectiveAccess (every grant that reaches a user) answer at once.
// Lookups and listings are iterators that follow page tokens to the end:
//
//	for id, err := range c.LookupResources(ctx, "inspector", "read", pb.ObjectKind_OBJECT_KIND_USER) {
//	    if err != nil { ... }
//	    fmt.Println(id)
//	}
//
// LookupSubjects (who has a right on a record), Folders, Users, Grants and
// Locks work the same way. A lookup stream cut by a dropped connection is
// opened again and goes on after the last id it yielded.
//
// # Reading your own writes
//
// Every answer carries the revision it was computed at, and a Write
// returns the revision it committed. The client remembers the newest
// revision it has written or seen (Revision). Pass a ReadOption to any
// read: Fresh() for an answer at least that new, AtLeast(rev) for a
// revision you got elsewhere, FullyConsistent() for the newest committed
// revision. The server waits, within the call's deadline, until its index
// has caught up:
//
//	rev, _ := c.Batch().MoveUser("ian", "admin-main").Commit(ctx)
//	d, _ := c.Check(ctx, "ian", "edit", client.User("carl"), client.Fresh())
//
// # Following changes
//
// Watch yields every committed change from a revision on, and WatchAccess
// one user's effective access and each change of it. Both reconnect by
// themselves, with backoff, when the connection drops or the server
// restarts: Watch resumes after the last revision it yielded, so nothing
// is missed or repeated; WatchAccess starts again from the whole access
// (a response with no Cause), which replaces the caller's copy. When the
// revision to resume from is older than the server's change log keeps,
// Watch yields an error wrapping ErrResync: rebuild from Export and watch
// from its revision + 1.
//
//	for m, err := range c.Watch(ctx, 0, nil) { // 0: from now on
//	    if errors.Is(err, client.ErrResync) { ... }
//	    if err != nil { ... }
//	    fmt.Println(m.GetRevision(), m.GetActor(), len(m.GetMutations()))
//	}
//
// Canceling ctx ends either iteration without an error.
package client
