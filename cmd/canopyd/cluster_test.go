package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/scenario"
	"github.com/canopy-authz/canopy/server"
	"github.com/canopy-authz/canopy/store/etcdstore/etcdtest"
)

// TestThreeNodesOverEtcd runs three real canopyd binaries over one etcd:
// a write on one node is read at its revision on another, every node
// gives the seed's answers, a Watch moved from one node to another
// resumes at the next revision with the same store id, and a node killed
// with SIGKILL catches up once started again.
func TestThreeNodesOverEtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCanopyd(t)
	cluster := etcdtest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var nodes []*daemon
	for range 3 {
		nodes = append(nodes, startDaemon(t, bin, t.TempDir(), "--store", "etcd", "--etcd-endpoints", cluster.Endpoints()[0], "--etcd-prefix", "/e2e/"))
	}
	f, err := scenario.Example("atlas")
	if err != nil {
		t.Fatal(err)
	}
	var muts []*pb.Mutation
	for _, m := range f.Steps[0].Write {
		muts = append(muts, server.MutationToPB(m))
	}
	w, err := pb.NewDirectoryServiceClient(nodes[0].conn).Write(ctx, &pb.WriteRequest{Mutations: muts})
	if err != nil {
		t.Fatal(err)
	}
	// At the write's revision on another node, without asking for the
	// newest: the node waits for its feed.
	c, _ := scenario.ParseCheck(f.Steps[0].Checks[0])
	r, err := pb.NewAccessServiceClient(nodes[1].conn).Check(ctx, &pb.CheckRequest{User: c.User, Right: c.Right, Resource: server.RefToPB(c.Resource),
		Consistency: &pb.Consistency{Requirement: &pb.Consistency_AtLeastRevision{AtLeastRevision: w.GetRevision()}}})
	if err != nil || r.GetRevision() < w.GetRevision() || r.GetAllowed() != (c.Want == graph.ReasonAllowed) {
		t.Fatalf("%s on node 1 at revision %d: %v, %v", f.Steps[0].Checks[0], w.GetRevision(), r, err)
	}
	want := answers(t, ctx, pb.NewAccessServiceClient(nodes[0].conn), f)
	for i, n := range nodes[1:] {
		if got := answers(t, ctx, pb.NewAccessServiceClient(n.conn), f); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("node %d answers\n%v\nnode 0\n%v", i+1, got, want)
		}
	}

	// A Watch on node 1 sees a write made on node 2.
	wctx, wcancel := context.WithCancel(ctx)
	stream, err := pb.NewWatchServiceClient(nodes[1].conn).Watch(wctx, &pb.WatchRequest{FromRevision: w.GetRevision() + 1})
	if err != nil {
		t.Fatal(err)
	}
	var root string
	for _, m := range f.Steps[0].Write {
		if m.CreateFolder != nil && root == "" {
			root = m.CreateFolder.ID
		}
	}
	folder := func(id string) *pb.WriteRequest {
		return &pb.WriteRequest{Mutations: []*pb.Mutation{server.MutationToPB(graph.Mutation{CreateFolder: &graph.Folder{ID: id, Parent: root}})}}
	}
	w2, err := pb.NewDirectoryServiceClient(nodes[2].conn).Write(ctx, folder("moved-watch-1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := stream.Recv()
	if err != nil || got.GetRevision() != w2.GetRevision() {
		t.Fatalf("watch on node 1: %v, %v; want revision %d", got, err, w2.GetRevision())
	}
	storeID := got.GetStoreId()
	wcancel()

	// Moved to node 2, it resumes after the last revision it had.
	w3, err := pb.NewDirectoryServiceClient(nodes[0].conn).Write(ctx, folder("moved-watch-2"))
	if err != nil {
		t.Fatal(err)
	}
	stream, err = pb.NewWatchServiceClient(nodes[2].conn).Watch(ctx, &pb.WatchRequest{FromRevision: got.GetRevision() + 1, StoreId: storeID})
	if err != nil {
		t.Fatal(err)
	}
	got, err = stream.Recv()
	if err != nil || got.GetRevision() != w3.GetRevision() || got.GetStoreId() != storeID {
		t.Fatalf("watch resumed on node 2: %v, %v; want revision %d of store %s", got, err, w3.GetRevision(), storeID)
	}

	// Node 1 killed with SIGKILL misses writes, and once started again
	// catches up and answers as the others do.
	nodes[1].Kill()
	w4, err := pb.NewDirectoryServiceClient(nodes[2].conn).Write(ctx, folder("while-down"))
	if err != nil {
		t.Fatal(err)
	}
	nodes[1] = startDaemon(t, bin, t.TempDir(), "--store", "etcd", "--etcd-endpoints", cluster.Endpoints()[0], "--etcd-prefix", "/e2e/")
	f2, err := pb.NewDirectoryServiceClient(nodes[1].conn).GetFolder(ctx, &pb.GetFolderRequest{Id: "while-down",
		Consistency: &pb.Consistency{Requirement: &pb.Consistency_AtLeastRevision{AtLeastRevision: w4.GetRevision()}}})
	if err != nil || f2.GetFolder().GetId() != "while-down" {
		t.Fatalf("node 1 after its restart: %v, %v", f2, err)
	}
	want = answers(t, ctx, pb.NewAccessServiceClient(nodes[0].conn), f)
	if got := answers(t, ctx, pb.NewAccessServiceClient(nodes[1].conn), f); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("node 1 after its restart answers\n%v\nnode 0\n%v", got, want)
	}

	// Every node tells the root's history alike, newest first, with the
	// folders created in it on three nodes, whether or not the trail has
	// been built up to them yet.
	var histories []string
	for i, n := range nodes {
		h, err := pb.NewWatchServiceClient(n.conn).History(ctx, &pb.HistoryRequest{Object: "folder/" + root, PageSize: 3})
		if err != nil {
			t.Fatalf("history on node %d: %v", i, err)
		}
		var ids []string
		for _, e := range h.GetEntries() {
			ids = append(ids, e.GetMutation().GetCreateFolder().GetId())
		}
		histories = append(histories, fmt.Sprint(ids))
	}
	if want := "[while-down moved-watch-2 moved-watch-1]"; histories[0] != want || histories[1] != want || histories[2] != want {
		t.Fatalf("the root's history on the three nodes: %v, want %s each", histories, want)
	}
}
