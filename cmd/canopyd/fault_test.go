package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/canopy-authz/canopy/graph"
	pb "github.com/canopy-authz/canopy/proto/canopy/v1"
	"github.com/canopy-authz/canopy/server"
	"github.com/canopy-authz/canopy/server/servertest"
	"github.com/canopy-authz/canopy/store"
)

// TestKillNineLosesNothing kills the real canopyd with SIGKILL while
// several writers write, at a moment drawn at random (after some number
// of acknowledged writes), restarts it, and checks that every write it
// acknowledged is there, that the change log's revisions run without a
// gap, and, at the end, that the bbolt file passes its consistency check.
// CANOPY_FAULT_KILLS sets how many kills (3 here, 20 for a full run);
// CANOPY_SEED replays one run.
func TestKillNineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	kills := 3
	if s := os.Getenv("CANOPY_FAULT_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CANOPY_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = n
	}
	t.Logf("seed %d (replay with CANOPY_SEED)", seed)
	r := rand.New(rand.NewPCG(seed, seed>>3))
	bin := buildCanopyd(t)
	data := t.TempDir()
	acked := map[string]uint64{} // folder id -> the revision its write was acknowledged at
	var mu sync.Mutex            // guards acked
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for round := 0; round <= kills; round++ {
		d := startDaemon(t, bin, data)
		conn := d.conn
		dir := pb.NewDirectoryServiceClient(conn)
		// Everything acknowledged before is there, after a restart.
		mu.Lock()
		for id, rev := range acked {
			if _, err := dir.GetFolder(ctx, &pb.GetFolderRequest{Id: id}); err != nil {
				t.Fatalf("round %d: %s, acknowledged at revision %d, is lost: %v", round, id, rev, err)
			}
		}
		mu.Unlock()
		if round == 0 {
			if _, err := dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "root"}}}}}); err != nil {
				t.Fatal(err)
			}
		}
		gapless(t, ctx, conn)
		if round == kills {
			d.stop(t)
			break
		}
		// Writers write until the server dies; it is killed after a
		// random number of acknowledgements.
		killAt := 5 + r.IntN(60)
		acks := make(chan struct{}, 1024)
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					id := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					resp, err := dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: id, Parent: "root"}}}}})
					if err != nil {
						return // the server is gone
					}
					mu.Lock()
					acked[id] = resp.GetRevision()
					mu.Unlock()
					select {
					case acks <- struct{}{}:
					default:
					}
				}
			}()
		}
		stopped := make(chan struct{})
		go func() { wg.Wait(); close(stopped) }()
		for range killAt {
			select {
			case <-acks:
			case <-stopped:
				t.Fatalf("round %d: the writers stopped before the kill", round)
			}
		}
		if err := d.Cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		d.Cmd.Wait()
		wg.Wait()
	}
	mu.Lock()
	t.Logf("%d kills survived, %d acknowledged writes checked after each", kills, len(acked))
	mu.Unlock()
	checkBolt(t, filepath.Join(data, store.FileName))
}

// gapless checks that the change log replays from revision 1 to the head
// with no revision missing or repeated, that the index the server
// rebuilt from its file on starting equals the replay: the log's every
// commit applied, in order, to a fresh index of the test's own, compared
// record by record with the server's export; and that the audit trail
// holds exactly the log's mutations.
func gapless(t *testing.T, ctx context.Context, conn *grpc.ClientConn) {
	t.Helper()
	st, err := pb.NewDirectoryServiceClient(conn).GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	w, err := pb.NewWatchServiceClient(conn).Watch(wctx, &pb.WatchRequest{FromRevision: 1})
	if err != nil {
		t.Fatal(err)
	}
	replay, err := graph.Open(ctx, graph.Options{Clock: graph.ClockFunc(time.Now), MaxDepth: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Close()
	var commit []graph.Mutation
	var logged []*pb.HistoryEntry // the log as the trail should hold it
	for want := uint64(1); want <= st.GetRevision(); {
		m, err := w.Recv()
		if err != nil {
			t.Fatalf("replay at %d of %d: %v", want, st.GetRevision(), err)
		}
		if m.GetRevision() != want {
			t.Fatalf("the log jumps from revision %d to %d", want-1, m.GetRevision())
		}
		for i, pm := range m.GetMutations() {
			gm, err := server.MutationFromPB(pm, i)
			if err != nil {
				t.Fatal(err)
			}
			logged = append(logged, &pb.HistoryEntry{Revision: m.GetRevision(), Index: uint32(len(commit)), CommitTime: m.GetCommitTime(), Actor: m.GetActor(), Mutation: pm})
			commit = append(commit, gm)
		}
		if m.GetMore() {
			continue
		}
		// Revision 1 is the bootstrap, which the fresh index wrote itself.
		if want > 1 {
			if err := replay.Apply(graph.Commit{Revision: want, Mutations: commit}); err != nil {
				t.Fatalf("the log's revision %d does not apply to the replay: %v", want, err)
			}
		}
		commit = nil
		want++
	}
	got := exportOf(t, ctx, pb.NewDirectoryServiceClient(conn))
	var want []*pb.Mutation
	snap, err := replay.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Mutations(func(m graph.Mutation) error {
		want = append(want, server.MutationToPB(m))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, want, func(a, b *pb.Mutation) bool { return proto.Equal(a, b) }) {
		t.Fatalf("the index rebuilt from the file (%d records at revision %d) is not the replay of its log (%d records)", len(got), st.GetRevision(), len(want))
	}
	var trail []*pb.HistoryEntry
	for req := (&pb.HistoryRequest{ToRevision: st.GetRevision(), PageSize: 1000}); ; {
		r, err := pb.NewWatchServiceClient(conn).History(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		trail = append(trail, r.GetEntries()...)
		if req.PageToken = r.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	slices.Reverse(trail)
	if !slices.EqualFunc(trail, logged, func(a, b *pb.HistoryEntry) bool { return proto.Equal(a, b) }) {
		t.Fatalf("the audit trail (%d entries) is not the log (%d mutations)", len(trail), len(logged))
	}
}

// exportOf returns a server's export.
func exportOf(t *testing.T, ctx context.Context, dir pb.DirectoryServiceClient) []*pb.Mutation {
	t.Helper()
	s, err := dir.Export(ctx, &pb.ExportRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*pb.Mutation
	for {
		m, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m.GetMutations()...)
	}
}

// TestKillDuringImport: canopyd killed in the middle of a large Import
// keeps every chunk it acknowledged, and whole chunks only: after the
// restart the folders imported are the acknowledged ones, or those and
// the one chunk that committed as the kill came.
func TestKillDuringImport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCanopyd(t)
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := startDaemon(t, bin, data)
	im, err := pb.NewDirectoryServiceClient(d.conn).Import(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const total, chunk = 100_000, 10_000 // the server commits chunks of 10,000
	go func() {
		batch := []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "root"}}}}
		for i := range total - 1 {
			batch = append(batch, &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: fmt.Sprint("f", i), Parent: "root"}}})
			if len(batch) == 1000 {
				if im.Send(&pb.ImportRequest{Mutations: batch}) != nil {
					return // the server is gone
				}
				batch = nil
			}
		}
		im.Send(&pb.ImportRequest{Mutations: batch})
		im.CloseSend()
	}()
	var acked uint64
	for acked < 3*chunk {
		r, err := im.Recv()
		if err != nil {
			t.Fatalf("import before the kill: %v", err)
		}
		acked = r.GetCommittedMutations()
	}
	if err := d.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	d.Cmd.Wait()

	d = startDaemon(t, bin, data)
	st, err := pb.NewDirectoryServiceClient(d.conn).GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.GetFolders(); got != acked && got != acked+chunk {
		t.Fatalf("%d folders after the kill, with %d acknowledged in chunks of %d", got, acked, chunk)
	}
	gapless(t, ctx, d.conn)
	d.stop(t)
}

// TestBackupAndRestore: a backup taken while writers write is consistent
// at its revision: restored, the server is at that revision, with every
// write acknowledged at or before it and none after. A damaged backup is
// refused and replaces nothing.
func TestBackupAndRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCanopyd(t)
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := startDaemon(t, bin, data)
	dir := pb.NewDirectoryServiceClient(d.conn)
	if _, err := dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "root"}}}}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]uint64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				r, err := dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: id, Parent: "root"}}}}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[id] = r.GetRevision()
				mu.Unlock()
			}
		}()
	}
	// Back up once some writes are in, while the writers go on.
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 50 {
			break
		}
		if _, err := dir.GetStatus(ctx, &pb.GetStatusRequest{}); err != nil { // a round trip, not a sleep
			t.Fatal(err)
		}
	}
	backup, rev := backupTo(t, ctx, d)
	close(stop)
	wg.Wait()
	mu.Lock()
	after := 0
	for _, r := range acked {
		if r > rev {
			after++
		}
	}
	mu.Unlock()
	if rev == 0 || after == 0 {
		t.Fatalf("backup at revision %d, with %d writes acknowledged after it: the writers did not run across it", rev, after)
	}
	d.stop(t)

	// A damaged backup is refused, and the store stays as it was.
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(raw)
	flipped[len(flipped)/3] ^= 0x20 // a byte bbolt could not tell is wrong: the seal can
	for what, b := range map[string][]byte{"cut in half": raw[:len(raw)/2], "with a byte changed": flipped} {
		damaged := filepath.Join(t.TempDir(), "damaged.db")
		if err := os.WriteFile(damaged, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.CommandContext(ctx, bin, "--data", data, "--restore", damaged, "--listen", "127.0.0.1:0", "--metrics-listen", "").CombinedOutput(); err == nil || !strings.Contains(string(out), "nothing was replaced") {
			t.Fatalf("restore of a backup %s: %v\n%s", what, err, out)
		}
		if out, err := exec.Command(bin, "--check-store", damaged).CombinedOutput(); err == nil {
			t.Fatalf("--check-store of a backup %s: passed\n%s", what, out)
		}
	}
	if out, err := exec.Command(bin, "--check-store", backup).CombinedOutput(); err != nil || !strings.Contains(string(out), "consistent") {
		t.Fatalf("--check-store of the backup: %v\n%s", err, out)
	}

	d = startDaemon(t, bin, data, "--restore", backup)
	dir = pb.NewDirectoryServiceClient(d.conn)
	st, err := dir.GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil || st.GetRevision() != rev {
		t.Fatalf("restored at revision %d, want %d (%v)", st.GetRevision(), rev, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, r := range acked {
		_, err := pb.NewDirectoryServiceClient(d.conn).GetFolder(ctx, &pb.GetFolderRequest{Id: id})
		if (err == nil) != (r <= rev) {
			t.Fatalf("%s, acknowledged at %d, after restoring revision %d: %v", id, r, rev, err)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(data, store.FileName+".before-restore-*"))
	if len(matches) != 1 {
		t.Errorf("the file before the restore is not kept: %v", matches)
	}
	d.stop(t)
}

// TestRestoreIsANewHistory: after a restore the store has a new identity,
// and a Watch resuming a revision of the old one is refused with
// OutOfRange (resync), not resumed into the other history.
func TestRestoreIsANewHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildCanopyd(t)
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := startDaemon(t, bin, data)
	dir := pb.NewDirectoryServiceClient(d.conn)
	write := func(id string) {
		t.Helper()
		if _, err := dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: id}}}}}); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	backup, _ := backupTo(t, ctx, d)
	write("b") // revision 3, in the old history only
	w, err := pb.NewWatchServiceClient(d.conn).Watch(ctx, &pb.WatchRequest{FromRevision: 3})
	if err != nil {
		t.Fatal(err)
	}
	m, err := w.Recv()
	if err != nil || m.GetStoreId() == "" {
		t.Fatalf("watch before the restore: %v, %v", m, err)
	}
	old := m.GetStoreId()
	d.stop(t)

	d = startDaemon(t, bin, data, "--restore", backup)
	dir = pb.NewDirectoryServiceClient(d.conn)
	st, err := dir.GetStatus(ctx, &pb.GetStatusRequest{})
	if err != nil || st.GetStoreId() == old || st.GetStoreId() == "" {
		t.Fatalf("the restored store's id %q, the old %q (%v)", st.GetStoreId(), old, err)
	}
	write("c") // revision 3 again, in the new history
	w, err = pb.NewWatchServiceClient(d.conn).Watch(ctx, &pb.WatchRequest{FromRevision: 3, StoreId: old})
	if err == nil {
		_, err = w.Recv()
	}
	if status.Code(err) != codes.OutOfRange || !strings.Contains(err.Error(), "resync") {
		t.Fatalf("resuming the old history: %v", err)
	}
	d.stop(t)
}

// backupTo backs the daemon's store up with the real command line,
// canopy backup (which checks the server's digest and seals the file),
// and returns the file and the revision it is at.
func backupTo(t *testing.T, ctx context.Context, d *daemon) (string, uint64) {
	t.Helper()
	canopy := servertest.Build(t, "github.com/canopy-authz/canopy/cmd/canopy")
	path := filepath.Join(t.TempDir(), "backup.db")
	out, err := exec.CommandContext(ctx, canopy, "--addr", d.Addr, "backup", path).CombinedOutput()
	if err != nil {
		t.Fatalf("canopy backup: %v\n%s", err, out)
	}
	var rev uint64
	if _, err := fmt.Sscanf(string(out), "backed up revision %d,", &rev); err != nil {
		t.Fatalf("canopy backup said %q: %v", out, err)
	}
	return path, rev
}

// TestCommitFaults injects failures into the commit path of a real
// canopyd: bbolt's own failpoints (gofail), compiled into a copy of it, and
// switched on over HTTP while canopyd serves. For each of a failed write
// of the commit's meta page (what a failed sync looks like to bbolt), no
// space to grow the file, and a failed resize of the file: the write is
// refused with Unavailable and the cause, no Watch event is sent, the
// revision does not move, reads go on, and once the fault is gone the same
// write commits at the next revision. Then canopyd crashes (a panic)
// between writing a commit and syncing it, and restarts: every
// acknowledged write is there, the log has no gap, the index equals the
// replay of the log, and the file passes bbolt's consistency check.
func TestCommitFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := servertest.BuildWithFailpoints(t, "github.com/canopy-authz/canopy/cmd/canopyd")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	failpoints := lis.Addr().String()
	lis.Close()
	t.Setenv("GOFAIL_HTTP", failpoints)
	fail := func(name, terms string) {
		t.Helper()
		method := http.MethodPut
		if terms == "" {
			method = http.MethodDelete
		}
		req, err := http.NewRequest(method, "http://"+failpoints+"/"+name, strings.NewReader(terms))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %s", method, name, resp.Status)
		}
	}
	data := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := startDaemon(t, bin, data)
	dir := pb.NewDirectoryServiceClient(d.conn)
	folders := func(prefix string, n, nameBytes int) []*pb.Mutation {
		out := make([]*pb.Mutation, n)
		for i := range out {
			out[i] = &pb.Mutation{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{
				Id: fmt.Sprintf("%s-%d", prefix, i), Parent: "root", Name: strings.Repeat("n", nameBytes)}}}
		}
		return out
	}
	if _, err := dir.Write(ctx, &pb.WriteRequest{Mutations: []*pb.Mutation{{Op: &pb.Mutation_CreateFolder{CreateFolder: &pb.Folder{Id: "root"}}}}}); err != nil {
		t.Fatal(err)
	}
	watch, err := pb.NewWatchServiceClient(d.conn).Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var acked []string
	for i, f := range []struct{ what, failpoint, size string }{
		// The file is small at first: a batch of about 2 MB must grow it.
		{"a failed resize of the file", "resizeFileError", "big"},
		{"no space to grow the file", "lackOfDiskSpace", "big"},
		{"a failed write of the meta page", "beforeWriteMetaError", "small"},
	} {
		batch := folders(fmt.Sprint("f", i), 1, 10)
		if f.size == "big" {
			batch = folders(fmt.Sprint("f", i), 2000, 1000)
		}
		st, err := dir.GetStatus(ctx, &pb.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		fail(f.failpoint, `return("injected: `+f.what+`")`)
		_, err = dir.Write(ctx, &pb.WriteRequest{Mutations: batch})
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "injected: "+f.what) {
			t.Fatalf("%s: the write got %v, want Unavailable with the cause", f.what, err)
		}
		after, err := dir.GetStatus(ctx, &pb.GetStatusRequest{})
		if err != nil || after.GetRevision() != st.GetRevision() || after.GetFolders() != st.GetFolders() {
			t.Fatalf("%s: the failed write moved the revision from %d to %d (%v)", f.what, st.GetRevision(), after.GetRevision(), err)
		}
		if _, err := dir.GetFolder(ctx, &pb.GetFolderRequest{Id: "root"}); err != nil {
			t.Fatalf("%s: reads fail too: %v", f.what, err)
		}
		fail(f.failpoint, "")
		resp, err := dir.Write(ctx, &pb.WriteRequest{Mutations: batch})
		if err != nil || resp.GetRevision() != st.GetRevision()+1 {
			t.Fatalf("%s: once the fault is gone the write got %v, %v; want revision %d", f.what, resp, err, st.GetRevision()+1)
		}
		// The first event after the fault is the retried write's: none
		// was sent for the failed one.
		m, err := watch.Recv()
		if err != nil || m.GetRevision() != resp.GetRevision() {
			t.Fatalf("%s: the watch got revision %d, %v; want %d", f.what, m.GetRevision(), err, resp.GetRevision())
		}
		for m.GetMore() {
			if m, err = watch.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		acked = append(acked, batch[0].GetCreateFolder().GetId(), batch[len(batch)-1].GetCreateFolder().GetId())
	}
	metrics := scrape(t, "http://"+d.Metrics+"/metrics")
	if !strings.Contains(metrics, "canopy_storage_errors_total 3") {
		t.Fatalf("the storage errors are not counted:\n%s", grepLines(metrics, "canopy_storage_errors_total"))
	}

	// A crash between writing a commit and syncing it.
	fail("beforeSyncMetaPage", `panic("injected crash before the sync of a commit")`)
	if _, err := dir.Write(ctx, &pb.WriteRequest{Mutations: folders("crash", 1, 10)}); err == nil {
		t.Fatal("a write went through the crash")
	}
	if err := d.Cmd.Wait(); err == nil {
		t.Fatal("canopyd exited cleanly from a panic")
	}
	checkBolt(t, filepath.Join(data, store.FileName))
	t.Setenv("GOFAIL_HTTP", "")
	d = startDaemon(t, bin, data)
	dir = pb.NewDirectoryServiceClient(d.conn)
	for _, id := range acked {
		if _, err := dir.GetFolder(ctx, &pb.GetFolderRequest{Id: id}); err != nil {
			t.Fatalf("after the crash, %s, acknowledged, is lost: %v", id, err)
		}
	}
	gapless(t, ctx, d.conn)
	d.stop(t)
	checkBolt(t, filepath.Join(data, store.FileName))
	t.Logf("3 commit faults refused and recovered from, 1 crash mid-commit survived, %d acknowledged writes kept", len(acked)/2)
}

// checkBolt fails the test unless the bbolt file opens and passes its
// consistency check.
func checkBolt(t *testing.T, path string) {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("the bbolt file is not consistent: %v", err)
	}
}
