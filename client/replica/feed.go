package replica

import (
	"context"
	"errors"
	"fmt"

	"github.com/canopy-authz/canopy/client"
	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server"
)

// errReadOnly refuses every write to a replica's index: only the server
// writes.
var errReadOnly = errors.New("replica: a replica does not write; write to the server")

// remoteFeed is a canopyd as a graph.Feed: Load is an Export, ReadLog and
// Follow are its Watch. A replica's index opens over it like a node over
// etcd, and applies what the server commits through the same function.
type remoteFeed struct {
	c *client.Client
}

var _ graph.Feed = remoteFeed{}

// Load exports the server's whole state, at one revision, as records.
func (f remoteFeed) Load(fn func(graph.Record) error) (uint64, error) {
	var rev uint64
	for m, err := range f.c.Export(context.Background(), &rev) {
		if err != nil {
			return 0, fmt.Errorf("replica: export: %w", err)
		}
		gm, err := server.MutationFromPB(m, 0)
		if err != nil {
			return 0, fmt.Errorf("replica: export: %w", err)
		}
		rec, err := graph.CreationRecord(gm)
		if err != nil {
			return 0, fmt.Errorf("replica: export: %w", err)
		}
		if err := fn(rec); err != nil {
			return 0, err
		}
	}
	return rev, nil
}

// Append refuses: a replica does not write.
func (remoteFeed) Append(context.Context, uint64, []graph.Commit) error { return errReadOnly }

// ReadLog returns the commits from revision from up to the server's
// newest (or max of them), through a Watch.
func (f remoteFeed) ReadLog(from uint64, max int) ([]graph.Commit, error) {
	st, err := f.c.Status(context.Background())
	if err != nil {
		return nil, fmt.Errorf("replica: read the server's revision: %w", err)
	}
	head := st.GetRevision()
	if head < from || max <= 0 {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out []graph.Commit
	for m, err := range f.c.Watch(ctx, from, nil) {
		if err != nil {
			return nil, fmt.Errorf("replica: read the log from %d: %w", from, err)
		}
		c, err := commitOf(m)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		if c.Revision >= head || len(out) == max {
			break
		}
	}
	return out, nil
}

// Follow hands fn every commit from revision from on, as the server's
// Watch sends them (it resumes by itself after a dropped connection).
// When the server no longer holds from (OUT_OF_RANGE), it returns an
// error wrapping client.ErrResync: the replica then loads afresh.
func (f remoteFeed) Follow(ctx context.Context, from uint64, fn func(graph.Commit) error) error {
	for m, err := range f.c.Watch(ctx, from, nil) {
		if err != nil {
			return fmt.Errorf("replica: follow from %d: %w", from, err)
		}
		c, err := commitOf(m)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
		from = c.Revision + 1
	}
	return ctx.Err()
}

// commitOf converts a whole Watch response into the commit it reports.
func commitOf(m *pb.WatchResponse) (graph.Commit, error) {
	c := graph.Commit{Revision: m.GetRevision(), Time: m.GetCommitTime().AsTime(), Actor: m.GetActor(), ActedFor: m.GetActedFor()}
	for i, pm := range m.GetMutations() {
		gm, err := server.MutationFromPB(pm, i)
		if err != nil {
			return graph.Commit{}, fmt.Errorf("replica: revision %d: %w", c.Revision, err)
		}
		c.Mutations = append(c.Mutations, gm)
	}
	return c, nil
}
