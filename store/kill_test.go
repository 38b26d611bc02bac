package store_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/store"
	"github.com/canopy-authz/canopy/store/storetest"
)

// killChildEnv, when set, makes the test binary TestKill9's writer
// (TestMain), writing in the folder it names.
const killChildEnv = "CANOPY_KILL_CHILD_DIR"

// TestKill9 runs a writer in a child process, kills it with SIGKILL while
// it writes from several goroutines (so commits are grouped), and checks
// that every write it acknowledged is in the file.
func TestKill9(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	acked := map[string]uint64{}
	var maxRev uint64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			continue
		}
		rev, _ := strconv.ParseUint(f[1], 10, 64)
		acked[f[2]] = rev
		maxRev = max(maxRev, rev)
		if len(acked) == 400 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(acked) < 400 {
		t.Fatalf("child acknowledged only %d writes before it ended", len(acked))
	}

	db, _ := storetest.Open(t, dir)
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), db)
	if ix.Revision() < maxRev {
		t.Fatalf("after kill -9 the store is at revision %d, but %d was acknowledged", ix.Revision(), maxRev)
	}
	for id, rev := range acked {
		if d, err := ix.Check(id, "read", graph.UserRef(id)); err != nil || !d.Allowed {
			t.Fatalf("user %s, acknowledged at revision %d, is lost: %+v %v", id, rev, d, err)
		}
	}
	t.Logf("%d acknowledged writes up to revision %d all survived; the file reached revision %d", len(acked), maxRev, ix.Revision())
}

// killChild writes users from four goroutines until killed (or for at most
// 30 seconds), printing "ack REVISION USER" after each acknowledged write.
func killChild(dir string) {
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ix, err := graph.Open(context.Background(), graph.Options{Clock: graph.ClockFunc(time.Now), Journal: db})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	root := []graph.Mutation{{CreateFolder: &graph.Folder{ID: "k"}}}
	if _, err := ix.Write(context.Background(), "child", root, graph.Preconditions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex // serialises stdout lines
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; time.Now().Before(deadline); n++ {
				id := fmt.Sprintf("w%d-%d", w, n)
				rev, err := ix.Write(context.Background(), "child", []graph.Mutation{{CreateUser: &graph.User{ID: id, Class: "staff", Home: "k"}}}, graph.Preconditions{})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Printf("ack %d %s\n", rev, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}
