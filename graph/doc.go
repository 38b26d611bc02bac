// Package graph is Canopy's in-memory access index: the folder trees, the
// users placed in them, the grants, locks, placement rules and rights
// catalogue, and the decisions, explanations and lookups computed from them.
//
// # Model
//
// See DESIGN.md section 1. A user is a member of a folder F when the home
// folder or an extra group is F or lies below it. A grant reaches a user
// through its holder (the user, or a folder the user is a member of) and
// covers its target (a folder, everything below it and every member of it;
// or one user; or nothing, for capabilities). A lock covering a resource
// denies its rights, and every right that implies one of them, whatever any
// grant says.
//
// # Writes
//
// Index.Write queues a batch for the one writer goroutine. The writer takes
// the queued batches as a group and applies each to the spare side (see
// below), checking every mutation against the state the earlier ones
// left; a batch that fails is rolled back alone. It then appends the
// accepted batches to the Journal in one call (one fsync: group commit)
// and publishes the spare; when the journal fails, it rolls the spare back
// instead. The same function (txn.apply) does the writer's apply, the
// catch-up of the other side, the replay of a batch committed elsewhere
// and the load at start, and it never reads the clock, so every replay
// gives the same state. At start both cores decode the journal's records
// in chunks while the loader applies each chunk as soon as it is decoded
// (txn.restore), in the records' order, structure before users, grants
// and locks.
//
// # Following a feed
//
// A journal that other writers append to as well is a Feed: etcd, shared
// by many canopyd nodes (store/etcdstore), or a canopyd followed by a
// replica inside a service (client/replica). One follower mechanism
// serves all three of the index's sources (its own journal at start, a
// shared store, a remote server): the index loads the feed's records at
// some revision, reads its log from there (replayFeed), and then follows
// it, each commit applied on the writer goroutine through Apply, which is
// the same txn.apply. When an append conflicts (another node committed
// first), the writer reads what was committed, applies it, and validates
// the group again on top of it; a refusal is checked again the same way,
// since a node behind the store may refuse what the newest state allows.
//
// # Readers and the writer
//
// Readers never wait for the writer: the index keeps two copies of the
// state (sides, left-right). Readers read the live side, each holding its
// read lock for the length of one read. The writer holds the other, the
// spare, for writing and applies the group to it while no reader sees it,
// however large the batches and whether they are refused or committed.
// To publish, it releases the spare and makes it the live side with one
// atomic store; then it takes the old live side's write lock, which
// waits only for the readers already in it (new ones go to the new live
// side), and keeps it as the spare. Once the writes' callers have their
// answers, it applies the same committed primitives to the spare
// (catchUp), which is then at the live side's revision again; a write
// waits for the catch-up of the one before it, never its caller. A reader that takes a side as it stops being live notices (its
// TryRLock fails, or the live pointer has moved) and takes the other.
// Each read sees one side at one revision, so whole batches only, and the
// revision it reports is the one it was decided at; revisions never go
// back, since a side is live only once it holds everything before.
//
// The state lives in pages that are never copied as they grow (paged):
// copying a large array of pointers while the collector marks held the
// writer, the collector and so the readers for up to 136 ms. And the
// most numerous nodes hold no pointer at all, so that the collector
// passes over their pages without reading them (it reads every node that
// holds a pointer, of both sides, each cycle): ids are found through
// arrays of cells (idindex.go), users' and grants' strings are kept in
// blocks of bytes (texts.go), a user keeps up to three extra groups in its
// node and its other lists, which few users have, in links apart, and a
// grant only what its slots do not say. A long write yields its core
// every 128 mutations, so that a check waiting to run is not kept waiting
// for a scheduler slice (apply.go).
//
// Chosen over the alternatives because it measured best and keeps what
// exists: a reader costs one uncontended RWMutex read lock, as before; the
// writer's trial is no longer rolled back and applied again but applied
// once to each side; and nothing in the state needs to become persistent
// or copy-on-write. Its costs: twice the memory of one state (the compact
// layout is what pays for it), and a writer that waits for the longest
// read in the side it catches up (a large Export holds a side as long as
// it reads). Both sides apply the same primitives but not the same
// refused trials, so slot numbers and the order within lists may differ
// between them; no answer depends on either.
//
// While any user's access is streamed (WatchAccess), the writer also hands
// each applied commit to a shadow: a copy of the state, made when the first
// user is watched, that replays the commits on its own goroutine and works
// out what each one changed for the watched users by undoing and redoing
// it in place. The writer never waits for it (a shadow that falls too far
// behind is dropped and its streams end), and the copy costs the writer
// only the moving of bytes into memory made ready beforehand.
//
// The shadow and the spare are not one mechanism, though both are copies
// that replay commits with txn.apply (and are made by one clone): the
// spare must be at the live side's revision before the next write, so
// the writer brings it there itself, in the time the commit's apply
// takes; the shadow may lag, because working out access changes takes
// far longer than applying them (a grant near the top of a large tenant:
// up to 100 ms at full size), and the writer must not wait for that.
// Doing that work on the spare would make every write after such a
// commit wait for it. So with access streamed there are three copies.
//
// # Files
//
// The layout in memory: state.go (nodes, tables, the parent array),
// paged.go, idindex.go, texts.go, slotset.go (a check's sets of
// folders), rights.go (the catalogue and sets of rights), clone.go. Writes: apply.go (the one
// apply function and rollback) and, by what they change, tree.go,
// members.go, grants.go, rights.go; mutation.go and validate.go (the
// batch and its ids); writer.go (queue, group commit, publish, catch-up);
// scope.go and expiry.go. Reads: index.go (the sides and the read lock),
// decide.go (the decision rule: Check, CheckMany, Explain), lookup.go,
// directory.go and record.go (lists, records). Access streams:
// accessstream.go (the method), viewer.go, accessjob.go, shadow.go.
// Confinement to organisations: confine.go.
//
// # Invariants
//
//   - Every folder's organisation (its root) never changes: roots do not
//     move, and nothing links two organisations.
//   - Every user satisfies the placement rule of every folder it is a
//     member of, after every mutation of every committed batch.
//   - Every grant, lock and rule names entities that exist.
//   - Inheritance is never copied: moving a folder or a user changes one
//     parent pointer and every answer that depends on it at once.
//
// # Costs
//
// A check resolves the user (a map lookup), collects the folders the user
// is a member of (home and extras and their ancestors: at most depth ×
// (1 + extras) steps) and the folders covering the resource (its
// ancestors, or a user resource's member folders), then scans the grants
// held by the user and by each of those folders, testing the right with one
// bitset AND and the target with a scan of the short covering list; when a
// grant applies, it scans the locks on the covering folders. With depth d,
// e extra groups and g grants per holder that is O(d·(1+e)·g) with no
// allocation: independent of the number of folders and users. What grows
// with the organisation is cache misses: a check at DESIGN.md's full size
// measured 3.1 µs median (docs/benchmarks.md), over its 1 µs target. Moving a folder or
// a user is O(1) plus the placement check of the members it moves.
// Adding or removing a child, a member, a grant or a lock is O(1): every
// node keeps its place in each list it is on (unlist), also in rollbacks
// and cascades. Lookups walk the subtrees they reach.
package graph
