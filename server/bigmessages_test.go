package server

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
)

// TestLargeCommitsFitDefaultClients: a commit larger than a default
// client's 4 MiB message limit reaches it as several Watch messages of the
// same revision, marked, in order and whole; a list page and an export
// chunk of it are cut by bytes too. The test's client keeps gRPC's
// default limits.
func TestLargeCommitsFitDefaultClients(t *testing.T) {
	ts := startServerOpts(t, Options{MaxPageSize: 100_000}) // pages cut by bytes, not by count

	ctx := ctxT(t)
	const n = 6000 // of about 1 KB each: one 6 MB commit
	im, err := ts.dir.Import(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "big"}}}}
	for i := range n {
		send = append(send, &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: fmt.Sprintf("f%05d", i), Parent: "big", Name: strings.Repeat("n", 1000)}}})
		if len(send) == 1000 {
			if err := im.Send(&pb.ImportRequest{Mutations: send}); err != nil {
				t.Fatal(err)
			}
			send = nil
		}
	}
	if err := im.Send(&pb.ImportRequest{Mutations: send}); err != nil {
		t.Fatal(err)
	}
	im.CloseSend()
	var rev uint64
	for {
		r, err := im.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rev = r.GetRevision()
	}
	if rev != 2 {
		t.Fatalf("the import committed up to revision %d, want one commit at 2", rev)
	}

	w, err := ts.watch.Watch(ctx, &pb.WatchRequest{FromRevision: 2})
	if err != nil {
		t.Fatal(err)
	}
	got, parts := 0, 0
	for {
		m, err := w.Recv()
		if err != nil {
			t.Fatalf("after %d parts: %v", parts, err)
		}
		parts++
		if m.GetRevision() != 2 || proto.Size(m) > 2<<20 {
			t.Fatalf("part %d: revision %d, %d bytes", parts, m.GetRevision(), proto.Size(m))
		}
		for _, mu := range m.GetMutations() {
			want := "big"
			if got > 0 {
				want = fmt.Sprintf("f%05d", got-1)
			}
			if id := mu.GetCreateFolder().GetId(); id != want {
				t.Fatalf("mutation %d is %q, want %q", got, id, want)
			}
			got++
		}
		if !m.GetMore() {
			break
		}
	}
	if got != n+1 || parts < 4 {
		t.Fatalf("%d mutations in %d parts", got, parts)
	}

	listed, pages := 0, 0
	for token := ""; ; pages++ {
		r, err := ts.dir.ListFolders(ctx, &pb.ListFoldersRequest{Parent: "big", PageSize: 100_000, PageToken: token})
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		listed += len(r.GetFolders())
		if token = r.GetNextPageToken(); token == "" {
			break
		}
	}
	if listed != n || pages < 4 {
		t.Fatalf("listed %d folders in %d pages", listed, pages+1)
	}

	ex, err := ts.dir.Export(ctx, &pb.ExportRequest{})
	if err != nil {
		t.Fatal(err)
	}
	exported := 0
	for {
		r, err := ex.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		exported += len(r.GetMutations())
	}
	if exported < n+1 {
		t.Fatalf("exported %d mutations", exported)
	}
}

// TestResponseBytesLimit: with a lower limit of bytes a response, every
// Watch part, list page and export chunk keeps within it (give or take
// the few bytes of a message's own fields), and a limit too small to hold
// a mutation is refused.
func TestResponseBytesLimit(t *testing.T) {
	const limit = 64 << 10
	ts := startServerOpts(t, Options{MaxResponseBytes: limit})
	ctx := ctxT(t)
	w, err := ts.watch.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	muts := []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "big"}}}}
	for i := range 300 {
		muts = append(muts, &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: fmt.Sprint("c", i), Parent: "big", Name: strings.Repeat("n", 1000)}}})
	}
	if _, err := ts.dir.Write(ctx, &pb.WriteRequest{Mutations: muts}); err != nil {
		t.Fatal(err)
	}
	const slack = 256 // a response's revision, time, actor and store id
	within := func(what string, m proto.Message) {
		t.Helper()
		if n := proto.Size(m); n > limit+slack {
			t.Fatalf("%s of %d bytes, over the limit of %d", what, n, limit)
		}
	}
	parts := 0
	for more := true; more; parts++ {
		m, err := w.Recv()
		if err != nil {
			t.Fatal(err)
		}
		within("a Watch part", m)
		more = m.GetMore()
	}
	page, err := ts.dir.ListFolders(ctx, &pb.ListFoldersRequest{Parent: "big", PageSize: 300})
	if err != nil {
		t.Fatal(err)
	}
	within("a list page", page)
	s, err := ts.dir.Export(ctx, &pb.ExportRequest{})
	if err != nil {
		t.Fatal(err)
	}
	chunks := recvAll(t, s)
	for _, c := range chunks {
		within("an export chunk", c)
	}
	if parts < 5 || len(page.GetFolders()) >= 300 || len(chunks) < 5 {
		t.Fatalf("a 300 KB commit in %d parts, a page of %d folders, an export in %d chunks: the limit did not cut them", parts, len(page.GetFolders()), len(chunks))
	}
	if _, err := New(Options{Log: ts.db, Hub: NewHub(0), MaxResponseBytes: 1000}); err == nil {
		t.Fatal("a limit of 1,000 bytes a response was accepted")
	}
}
