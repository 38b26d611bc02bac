package main

import (
	"context"
	"fmt"
	"io"
	"runtime/trace"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server"
)

// bulkLoad times single-caller Checks while one Write after another of n
// create_folder mutations under a new parent goes on, committed and
// refused (its last mutation names a parent that does not exist) in turn,
// until two of each are written, and reports the checks' median, p99 and
// longest, and the writes' times. With tracePath set it writes an
// execution trace of it, each check a region named "check", and says
// when the longest began.
func bulkLoad(ctx context.Context, out io.Writer, conn *grpc.ClientConn, root string, checks []graph.CheckRequest, n int, tracePath string) error {
	dir, acc := pb.NewDirectoryServiceClient(conn), pb.NewAccessServiceClient(conn)
	batch := func(k int) *pb.WriteRequest {
		parent := fmt.Sprint("bulk", k)
		muts := []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: parent, Parent: root}}}}
		for i := 1; i < n; i++ {
			muts = append(muts, &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: fmt.Sprint(parent, "-", i), Parent: parent}}})
		}
		if k%2 == 1 {
			muts[n-1].GetCreateFolder().Parent = "nowhere"
		}
		return &pb.WriteRequest{Mutations: muts}
	}
	reqs := make([]*pb.WriteRequest, 4)
	for k := range reqs {
		reqs[k] = batch(k)
	}
	stopTrace, err := recording(tracePath, trace.Start, trace.Stop)
	if err != nil {
		return err
	}
	defer stopTrace()
	began := time.Now()
	var writing atomic.Bool
	writing.Store(true)
	took := make([]time.Duration, len(reqs))
	errc := make(chan error, 1)
	go func() {
		defer writing.Store(false)
		for k, r := range reqs {
			t0 := time.Now()
			_, err := dir.Write(ctx, r)
			took[k] = time.Since(t0)
			if (err != nil) != (k%2 == 1) {
				errc <- fmt.Errorf("bulk write %d: %w", k, err)
				return
			}
		}
		errc <- nil
	}()
	var lat []time.Duration
	var longest, longestAt time.Duration
	for i := 0; writing.Load(); i++ {
		c := checks[i%len(checks)]
		t0 := time.Now()
		reg := trace.StartRegion(ctx, "check")
		_, err := acc.Check(ctx, &pb.CheckRequest{User: c.User, Right: c.Right, Resource: server.RefToPB(c.Resource)})
		reg.End()
		if err != nil {
			return err
		}
		d := time.Since(t0)
		if d > longest {
			longest, longestAt = d, t0.Sub(began)
		}
		lat = append(lat, d)
	}
	if err := <-errc; err != nil {
		return err
	}
	slices.Sort(lat)
	fmt.Fprintf(out, "Check, one caller, during writes of %d mutations (committed %s and %s, refused %s and %s): %d calls, median %s, p99 %s, longest %s\n",
		n, took[0].Round(time.Millisecond), took[2].Round(time.Millisecond), took[1].Round(time.Millisecond), took[3].Round(time.Millisecond),
		len(lat), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	if tracePath != "" {
		fmt.Fprintf(out, "the longest check began %s after the trace did\n", longestAt)
	}
	return nil
}
