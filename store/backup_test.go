package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
	"github.com/canopy-authz/canopy/store"
)

// checkFileEnv, when set, makes the test binary a checker (TestMain): it
// runs store.CheckFile on the file it names and exits.
const checkFileEnv = "CANOPY_TEST_CHECK_FILE"

// checkChild is the checker: exit 0 for a good file, 3 (saying why) for a
// bad one; a fault in bbolt ends it otherwise.
func checkChild(path string) {
	if err := store.CheckFile(path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(0)
}

// checkInChild checks the file at path in a child process, this test
// binary run as a checker, as canopyd checks a backup before a restore.
func checkInChild(path string) error {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), checkFileEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		return errors.New(strings.TrimSpace(string(out)))
	}
	crashes.Add(1)
	return fmt.Errorf("damaged: checking it crashed the checker (%v)", err)
}

// crashes counts the checks that crashed their process.
var crashes atomic.Int32

// TestRestoreRefusesDamage: a backup cut short within every page, or with
// a run of its bytes overwritten anywhere, is refused with the store left
// as it was, never a crash. A sealed backup (canopy backup's) is refused
// for any damage at all; a bare bbolt copy, which has no checksum, for
// any that breaks its structure (damage to a value's bytes or to space
// nothing uses passes, which is why canopy backup seals).
func TestRestoreRefusesDamage(t *testing.T) {
	src := t.TempDir()
	db, err := store.Open(src, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := graph.Open(context.Background(), graph.Options{Clock: graphtest.NewClock(graphtest.Start), Journal: db})
	if err != nil {
		t.Fatal(err)
	}
	muts := []graph.Mutation{{CreateFolder: &graph.Folder{ID: "root"}}}
	for i := range 400 {
		muts = append(muts, graph.Mutation{CreateFolder: &graph.Folder{ID: "f" + strings.Repeat("x", i%50) + string(rune('a'+i%26)) + string(rune('a'+i/26)), Parent: "root", Name: strings.Repeat("n", i)}})
	}
	for len(muts) > 0 { // several commits, so the log has entries
		n := min(50, len(muts))
		if _, err := ix.Write(context.Background(), "test", muts[:n], graph.Preconditions{}); err != nil {
			t.Fatal(err)
		}
		muts = muts[n:]
	}
	var backup bytes.Buffer
	if err := db.Backup(&backup, func(uint64, int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	db.Close()
	bare := bytes.Clone(backup.Bytes())
	sum := sha256.Sum256(bare)
	if err := store.Seal(&backup, int64(len(bare)), sum[:]); err != nil {
		t.Fatal(err)
	}
	sealed := backup.Bytes()
	const page = 4096
	r := rand.New(rand.NewPCG(1, 2))
	type variant struct {
		b      []byte
		sealed bool // damage to a sealed backup, which must be refused
		good   bool // no damage: it must restore
	}
	var variants []variant
	for _, good := range [][]byte{bare, sealed} {
		for cut := 0; cut < len(bare); cut += page - 100 { // across every page boundary
			variants = append(variants, variant{b: good[:cut]}) // a cut loses the trailer
		}
		for range 150 {
			b := bytes.Clone(good)
			at, n := r.IntN(len(b)), 1+r.IntN(256)
			for i := at; i < min(len(b), at+n); i++ {
				b[i] = byte(r.Uint32())
			}
			variants = append(variants, variant{b: b, sealed: len(good) == len(sealed) && !bytes.Equal(b, good)})
		}
	}
	if raceEnabled { // a tenth of them, spread over the kinds
		var sample []variant
		for i := 0; i < len(variants); i += 10 {
			sample = append(sample, variants[i])
		}
		variants = sample
	}
	variants = append(variants, variant{b: sealed, good: true}, variant{b: bare, good: true})
	dir := t.TempDir()
	current := []byte("the current store, which a refused restore must leave alone")
	cur := filepath.Join(dir, store.FileName)
	refused, restored := 0, 0
	for i, vv := range variants {
		v := vv.b
		if err := os.WriteFile(cur, current, 0o600); err != nil {
			t.Fatal(err)
		}
		from := filepath.Join(t.TempDir(), "backup.db")
		if err := os.WriteFile(from, v, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := store.Restore(dir, from, func(db *store.DB) (uint64, error) {
			ix, err := graph.Open(context.Background(), graph.Options{Clock: graph.ClockFunc(time.Now), Journal: db})
			if err != nil {
				return 0, err
			}
			defer ix.Close()
			return ix.Revision(), nil
		}, store.RestoreOptions{Check: checkInChild})
		if err != nil && vv.good {
			t.Fatalf("variant %d, undamaged: %v", i, err)
		}
		if err != nil {
			if !strings.Contains(err.Error(), "nothing was replaced") {
				t.Fatalf("variant %d (%d bytes): %v", i, len(v), err)
			}
			if got, _ := os.ReadFile(cur); !bytes.Equal(got, current) {
				t.Fatalf("variant %d: a refused restore changed the current store", i)
			}
			refused++
			continue
		}
		if vv.sealed {
			t.Fatalf("variant %d: a damaged sealed backup was restored", i)
		}
		restored++
		old, _ := filepath.Glob(filepath.Join(dir, store.FileName+".before-restore-*"))
		for _, o := range old {
			os.Remove(o)
		}
	}
	t.Logf("%d backups: %d damaged ones refused (%d of them crashed their checker), %d restored (the 2 undamaged, and bare copies with damage bbolt cannot see)",
		len(variants), refused, crashes.Load(), restored)
}
