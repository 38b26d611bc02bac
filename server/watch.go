package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// Hub fans committed batches out to Watch streams, and access changes out
// to WatchAccess streams. The index calls Publish after each group of
// commits is applied and PublishAccess once their access changes are
// worked out; neither ever blocks: a subscriber whose buffer is full is
// cut off and told how to resume.
type Hub struct {
	buffer int

	mu     sync.Mutex // guards subs, access, last and closed
	subs   map[*subscriber]struct{}
	access map[string]map[*subscriber]struct{} // WatchAccess streams by user
	last   uint64                              // the last revision published

	dropped atomic.Uint64 // subscribers cut off for falling behind
	closed  bool          // Close was called
}

// subscriber is one stream's buffer. Its stream blocks on ch alone (a
// plain receive, cheaper than a select over every reason to stop, which a
// thousand streams woken by every commit pay for): whatever ends the
// subscriber records why and closes ch.
type subscriber struct {
	ch  chan *published
	set map[*subscriber]struct{} // the set it is in; guarded by the hub's mu
	why atomic.Int32             // why it ended (an ending), set before ch is closed
}

// ending is why a subscriber ended; 0 while it goes on.
type ending int32

const (
	endLeft    ending = iota + 1 // its stream ended it
	endBehind                    // its buffer overflowed
	endClosing                   // the server is shutting down
	endGone                      // the caller went away (its context ended)
	endSource                    // what it follows ended (an access watch)
)

// end ends s, if it goes on, for why. h.mu must be held.
func (h *Hub) end(s *subscriber, why ending) {
	if s.why.Load() != 0 {
		return
	}
	s.why.Store(int32(why))
	delete(s.set, s)
	close(s.ch)
}

// published is a commit as the hub hands it out: shared by every
// subscriber, with its wire form for unfiltered streams made once.
type published struct {
	graph.Commit
	once sync.Once
	all  []*encoded // the responses to an unfiltered stream, marshalled
	err  error
}

// send sends the commit on a stream with filter sel, if sel selects any
// of it. Unfiltered streams share one encoding of the whole commit.
func (p *published) send(stream grpc.ServerStreamingServer[pb.WatchResponse], sel changeFilter, storeID string, maxBytes int) error {
	if !sel.all() {
		return send(stream, commitToPB(p.Commit, sel, storeID, maxBytes))
	}
	p.once.Do(func() {
		for _, r := range commitToPB(p.Commit, sel, storeID, maxBytes) {
			b, err := proto.Marshal(r)
			if err != nil {
				p.err = err
				return
			}
			p.all = append(p.all, newEncoded(b))
		}
	})
	if p.err != nil {
		return fmt.Errorf("encode revision %d: %w", p.Revision, p.err)
	}
	for _, e := range p.all {
		if err := stream.SendMsg(e); err != nil {
			return err
		}
	}
	return nil
}

// NewHub returns a hub whose subscribers each buffer up to buffer commits
// (0: 1,024).
func NewHub(buffer int) *Hub {
	if buffer <= 0 {
		buffer = 1024
	}
	return &Hub{buffer: buffer, subs: map[*subscriber]struct{}{}, access: map[string]map[*subscriber]struct{}{}}
}

// Close ends every stream, now and to come, with Unavailable and how to
// resume: for a graceful shutdown, whose wait for running calls would
// otherwise never end.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.each(func(s *subscriber) { h.end(s, endClosing) })
}

// Reset ends every stream as if it had fallen behind: for an index that
// loaded its feed afresh (graph.Options.OnReload), whose skipped commits
// no stream was given. Watch clients resume from the log, or resync when
// it no longer holds their revision; access streams start again with the
// whole access.
func (h *Hub) Reset(uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.each(func(s *subscriber) { h.end(s, endBehind) })
}

// Publish hands commits, in revision order, to every Watch subscriber. It
// is graph.Options.OnCommit.
func (h *Hub) Publish(commits []graph.Commit) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range commits {
		c.Records = nil // subscribers need the mutations only
		p := &published{Commit: c}
		for s := range h.subs {
			h.deliver(s, p)
		}
		h.last = c.Revision
	}
}

// PublishAccess hands each commit that changed a watched user's access to
// that user's WatchAccess subscribers. It is graph.Options.OnAccess.
func (h *Hub) PublishAccess(commits []graph.Commit) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range commits {
		if len(c.Access) == 0 {
			continue
		}
		p := &published{Commit: c}
		for i, ch := range c.Access {
			// One commit, delivered once to each user's streams.
			if slices.ContainsFunc(c.Access[:i], func(a graph.AccessChange) bool { return a.User == ch.User }) {
				continue
			}
			for s := range h.access[ch.User] {
				h.deliver(s, p)
			}
		}
	}
}

// deliver hands p to s or, when s's buffer is full, cuts s off. h.mu must
// be held.
func (h *Hub) deliver(s *subscriber, p *published) {
	select {
	case s.ch <- p:
	default:
		h.end(s, endBehind)
		h.dropped.Add(1)
	}
}

// subscribe registers a Watch subscriber for a stream with context ctx
// and returns it with the last revision published before it joined, and
// the function that ends it.
func (h *Hub) subscribe(ctx context.Context) (*subscriber, uint64, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, leave := h.join(ctx, h.subs, func() {})
	return s, h.last, leave
}

// subscribeAccess registers a WatchAccess subscriber for user.
func (h *Hub) subscribeAccess(ctx context.Context, user string) (*subscriber, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.access[user]
	if set == nil {
		set = map[*subscriber]struct{}{}
		h.access[user] = set
	}
	return h.join(ctx, set, func() {
		if len(h.access[user]) == 0 {
			delete(h.access, user)
		}
	})
}

// join adds a new subscriber to set, ended when ctx is, and returns it
// with the function that ends it; tidy runs after, under h.mu. h.mu must
// be held.
func (h *Hub) join(ctx context.Context, set map[*subscriber]struct{}, tidy func()) (*subscriber, func()) {
	s := &subscriber{ch: make(chan *published, h.buffer), set: set}
	set[s] = struct{}{}
	if h.closed {
		h.end(s, endClosing)
	}
	endFor := func(why ending) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.end(s, why)
		tidy()
	}
	stop := context.AfterFunc(ctx, func() { endFor(endGone) })
	return s, func() { stop(); endFor(endLeft) }
}

// endWhen ends s when done is closed, until the stream leaves.
func (h *Hub) endWhen(s *subscriber, done <-chan struct{}) (stop func()) {
	quit := make(chan struct{})
	go func() {
		select {
		case <-done:
			h.mu.Lock()
			defer h.mu.Unlock()
			h.end(s, endSource)
		case <-quit:
		}
	}()
	return func() { close(quit) }
}

// Dropped returns how many subscribers were cut off for falling behind.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }

// each calls fn for every subscriber, Watch and WatchAccess. h.mu must be
// held.
func (h *Hub) each(fn func(*subscriber)) {
	for s := range h.subs {
		fn(s)
	}
	for _, set := range h.access {
		for s := range set {
			fn(s)
		}
	}
}

// MaxDepth returns the fullest subscriber buffer, in commits.
func (h *Hub) MaxDepth() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	depth := 0
	h.each(func(s *subscriber) { depth = max(depth, len(s.ch)) })
	return depth
}

// Subscribers returns how many streams are following live commits or
// access changes.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	h.each(func(*subscriber) { n++ })
	return n
}

// watch implements pb.WatchServiceServer.
type watch struct {
	pb.UnimplementedWatchServiceServer
	*Server
}

var _ pb.WatchServiceServer = (*watch)(nil)

// outOfRange says that revision from is older than the log keeps.
func (w *watch) outOfRange(ctx context.Context, from uint64) error {
	oldest, err := w.log.OldestRevision()
	if err != nil {
		return w.status(ctx, err)
	}
	return status.Errorf(codes.OutOfRange,
		"revision %d is older than the change log keeps; the oldest is %d: resync from Export and watch from its revision + 1", from, oldest)
}

// replayChunk is how many log entries one replay read takes.
const replayChunk = 256

// changeKind says what kind of change a mutation is.
func changeKind(m *graph.Mutation) pb.ChangeKind {
	switch {
	case m.CreateFolder != nil, m.RenameFolder != nil, m.RelabelFolder != nil, m.MoveFolder != nil, m.DeleteFolder != nil:
		return pb.ChangeKind_CHANGE_KIND_FOLDERS
	case m.CreateUser != nil, m.UpdateUser != nil, m.MoveUser != nil, m.SetUserState != nil, m.DeleteUser != nil:
		return pb.ChangeKind_CHANGE_KIND_USERS
	case m.AddExtraGroup != nil, m.DelExtraGroup != nil:
		return pb.ChangeKind_CHANGE_KIND_MEMBERSHIPS
	case m.AddGrant != nil, m.RemoveGrant != nil, m.ExpireGrant != nil, m.StartGrant != nil:
		return pb.ChangeKind_CHANGE_KIND_GRANTS
	case m.AddLock != nil, m.RemoveLock != nil:
		return pb.ChangeKind_CHANGE_KIND_LOCKS
	}
	return pb.ChangeKind_CHANGE_KIND_RULES
}

// maxFilterFolders is the most organisations and subtrees one filter names.
const maxFilterFolders = 1000

// changeFilter decides which mutations a Watch sends.
type changeFilter struct {
	kinds  map[pb.ChangeKind]bool // empty: every kind
	places map[string]bool        // organisation roots and subtrees; empty: everywhere
	// confine, when not nil, is the organisations of a confined caller:
	// nothing outside them is sent, whatever the request asks.
	confine graph.Orgs
}

// newChangeFilter checks a request's filter, for a caller confined to
// confine (nil: not confined). A folder named as an organisation that
// exists and is not a root is refused, and so is an organisation the
// caller is not confined to; folders that do not exist are not, since a
// replay may name deleted ones.
func newChangeFilter(f *pb.WatchFilter, ix *graph.Index, confine graph.Orgs) (changeFilter, error) {
	s := changeFilter{kinds: map[pb.ChangeKind]bool{}, places: map[string]bool{}, confine: confine}
	for _, k := range f.GetKinds() {
		if _, ok := pb.ChangeKind_name[int32(k)]; !ok || k == pb.ChangeKind_CHANGE_KIND_UNSPECIFIED {
			return s, invalidf("watch filter: unknown change kind %d", k)
		}
		s.kinds[k] = true
	}
	if n := len(f.GetOrganisations()) + len(f.GetSubtrees()); n > maxFilterFolders {
		return s, invalidf("watch filter: %d folders; at most %d", n, maxFilterFolders)
	}
	for _, id := range f.GetOrganisations() {
		if id == "" {
			return s, invalidf("watch filter: an empty organisation id")
		}
		if confine != nil && !confine[id] {
			return s, status.Errorf(codes.PermissionDenied, "watch filter: organisation %q is not one the caller is confined to", graph.Clip(id))
		}
		if folder, _, _, err := ix.GetFolder(id); err == nil && folder.Parent != "" {
			return s, invalidf("watch filter: folder %q is not the root of an organisation (it lies under %q)", id, folder.Parent)
		}
		s.places[id] = true
	}
	for _, id := range f.GetSubtrees() {
		if id == "" {
			return s, invalidf("watch filter: an empty subtree folder id")
		}
		s.places[id] = true
	}
	return s, nil
}

// all reports whether the filter selects everything.
func (s changeFilter) all() bool {
	return len(s.kinds) == 0 && len(s.places) == 0 && s.confine == nil
}

// selects reports whether the filter selects mutation i of c: its kind,
// and its place (graph.Commit.InScope: a change to the whole service, or
// any change of an old log that kept no scopes, passes every place
// filter rather than be lost).
func (s changeFilter) selects(c *graph.Commit, i int) bool {
	if len(s.kinds) > 0 && !s.kinds[changeKind(&c.Mutations[i])] {
		return false
	}
	if s.confine != nil && !c.InOrgs(i, s.confine) {
		return false
	}
	return len(s.places) == 0 || c.InScope(i, func(f string) bool { return s.places[f] })
}

// defaultResponseBytes is the most a Watch message, a list page or an
// export chunk carries unless Options.MaxResponseBytes says otherwise: well
// under the 4 MiB a default gRPC client accepts.
const defaultResponseBytes = 1 << 20

// minResponseBytes is the least MaxResponseBytes may be: room for the
// largest single mutation.
const minResponseBytes = 64 << 10

// commitToPB returns the responses for a commit, holding the mutations
// the filter selects, none when it selects none: one response, or, for a
// commit larger than maxBytes, several parts of the same revision,
// all but the last marked more.
func commitToPB(c graph.Commit, sel changeFilter, storeID string, maxBytes int) []*pb.WatchResponse {
	var out []*pb.WatchResponse
	var cur *pb.WatchResponse
	size := 0
	for i := range c.Mutations {
		if !sel.selects(&c, i) {
			continue
		}
		m := MutationToPB(c.Mutations[i])
		n := proto.Size(m) + 8 // with its tag and length
		if cur == nil || size+n > maxBytes && len(cur.Mutations) > 0 {
			if cur != nil {
				cur.More = true
			}
			cur = &pb.WatchResponse{Revision: c.Revision, CommitTime: timestamppb.New(c.Time), Actor: c.Actor, ActedFor: c.ActedFor, StoreId: storeID}
			out = append(out, cur)
			size = 0
		}
		cur.Mutations = append(cur.Mutations, m)
		size += n
	}
	return out
}

// send sends a commit's responses (none when the filter selected nothing).
func send(stream grpc.ServerStreamingServer[pb.WatchResponse], parts []*pb.WatchResponse) error {
	for _, r := range parts {
		if err := stream.Send(r); err != nil {
			return err
		}
	}
	return nil
}

// Watch subscribes before reading the log, so every commit is either in
// the log it replays or in its live buffer (some in both: those are sent
// once, by revision).
func (w *watch) Watch(req *pb.WatchRequest, stream grpc.ServerStreamingServer[pb.WatchResponse]) error {
	ctx := stream.Context()
	sel, err := newChangeFilter(req.GetFilter(), w.ix, confinedTo(ctx))
	if err != nil {
		return w.status(ctx, err)
	}
	if err := w.reachable(req.GetFromRevision(), "watch from revision"); err != nil {
		return w.status(ctx, err)
	}
	id, err := w.storeID()
	if err != nil {
		return w.status(ctx, err)
	}
	if want := req.GetStoreId(); want != "" && id != "" && want != id {
		return status.Errorf(codes.OutOfRange, "this server's store is %s, not %s, whose revisions the watch resumes (restored from a backup, or replaced): resync from Export and watch from its revision + 1", id, want)
	}
	sub, last, leave := w.hub.subscribe(ctx)
	defer leave()
	next := req.GetFromRevision()
	if next == 0 {
		next = last + 1
	}
	_, sp := w.span(ctx, "canopy.watch.replay", attribute.Int64("canopy.revision.from", int64(next)))
	err = func() error {
		for {
			commits, err := w.log.ReadLog(next, replayChunk)
			if err != nil {
				return w.status(ctx, fmt.Errorf("watch from revision %d: %w", next, err))
			}
			if len(commits) == 0 {
				return nil
			}
			if commits[0].Revision != next {
				// Compacted away, before this call or while it replayed.
				return w.outOfRange(ctx, next)
			}
			for _, c := range commits {
				if err := send(stream, commitToPB(c, sel, id, w.opts.MaxResponseBytes)); err != nil {
					return err
				}
				next = c.Revision + 1
			}
		}
	}()
	sp.SetAttributes(attribute.Int64("canopy.revision.next", int64(next)))
	endSpan(sp, err)
	if err != nil {
		return err
	}
	resume := func() string { return fmt.Sprintf("resume from revision %d", next) }
	return w.follow(ctx, sub, nil, "watch", resume, func(c *published) error {
		if c.Revision < next {
			return nil // replayed already
		}
		if err := c.send(stream, sel, id, w.opts.MaxResponseBytes); err != nil {
			return err
		}
		next = c.Revision + 1
		return nil
	})
}

// follow hands each live commit to fn until the subscriber ends: by the
// stream's context, by shutdown, by falling behind, or by end ending
// (nil: it never does); resume says how the subscriber goes on, in the
// status it ends with.
func (w *watch) follow(ctx context.Context, sub *subscriber, end interface{ Err() error }, what string, resume func() string, fn func(*published) error) error {
	for c := range sub.ch {
		if sub.why.Load() != 0 {
			break // ended: what is still buffered is not sent
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	switch ending(sub.why.Load()) {
	case endClosing:
		return status.Errorf(codes.Unavailable, "server shutting down; %s", resume())
	case endBehind:
		return status.Errorf(codes.ResourceExhausted, "%s fell behind the live stream; %s", what, resume())
	case endSource:
		err := end.Err()
		if errors.Is(err, graph.ErrBehind) {
			return status.Errorf(codes.ResourceExhausted, "%s: %v; %s", what, err, resume())
		}
		return status.Errorf(codes.Unavailable, "%s: %v; %s", what, err, resume())
	}
	return w.status(ctx, ctx.Err())
}

// accessToPB converts the regions of an access change.
func accessToPB(list []graph.AccessRegion) []*pb.AccessRegion {
	out := make([]*pb.AccessRegion, len(list))
	for i, a := range list {
		r := &pb.AccessRegion{Rights: a.Rights}
		if !a.On.IsZero() {
			r.On = RefToPB(a.On)
		}
		for _, e := range a.Except {
			r.Except = append(r.Except, RefToPB(e))
		}
		out[i] = r
	}
	return out
}

// previewToPB converts a dry run's preview.
func previewToPB(p graph.Preview) *pb.Preview {
	out := &pb.Preview{Revision: p.Revision, UsersAffected: uint64(p.Users), UsersListed: uint64(p.Listed)}
	for _, ch := range p.Changes {
		out.Changes = append(out.Changes, &pb.PreviewChange{
			User: ch.User, Mutation: uint32(ch.Mutation), Part: uint32(ch.Part), Cause: MutationToPB(ch.Cause),
			Gained: accessToPB(ch.Gained), Lost: accessToPB(ch.Lost),
		})
	}
	for _, t := range p.Totals {
		out.Totals = append(out.Totals, &pb.AccessTotal{Right: t.Right, Gained: uint64(t.Gained), Lost: uint64(t.Lost)})
	}
	return out
}

// WatchAccess subscribes to the hub before it asks the index to follow
// the user, so every commit after the starting revision that changes the
// user's access reaches it.
func (w *watch) WatchAccess(req *pb.WatchAccessRequest, stream grpc.ServerStreamingServer[pb.WatchAccessResponse]) error {
	ctx := stream.Context()
	user := req.GetUser()
	sub, leave := w.hub.subscribeAccess(ctx, user)
	defer leave()
	aw, err := w.view(ctx).WatchAccess(ctx, user)
	if err != nil {
		return w.status(ctx, err)
	}
	defer aw.Stop()
	defer w.hub.endWhen(sub, aw.Ended())()
	if err := stream.Send(&pb.WatchAccessResponse{Revision: aw.Revision, Gained: accessToPB(aw.Start.Gained)}); err != nil {
		return err
	}
	resume := func() string { return fmt.Sprintf("watch the access of %q again", user) }
	return w.follow(ctx, sub, aw, "access watch", resume, func(c *published) error {
		if c.Revision <= aw.Revision {
			return nil // in the starting access already
		}
		for _, ch := range c.Access {
			if ch.User != user {
				continue
			}
			err := stream.Send(&pb.WatchAccessResponse{
				Revision: c.Revision, CommitTime: timestamppb.New(c.Time), Actor: c.Actor,
				Cause:  MutationToPB(c.Mutations[ch.Mutation]),
				Gained: accessToPB(ch.Gained), Lost: accessToPB(ch.Lost),
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}
