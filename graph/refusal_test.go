package graph_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/canopy-authz/canopy/graph"
	"github.com/canopy-authz/canopy/graph/graphtest"
)

// refusalWorld: organisation a (a > a1 > a11, and adm admitting staff only)
// and organisation b (b > b1).
func refusalWorld(t *testing.T) *graph.Index {
	t.Helper()
	ix := graphtest.Open(t, graphtest.NewClock(graphtest.Start), nil)
	_, err := ix.Write(context.Background(), "test", []graph.Mutation{
		{CreateFolder: &graph.Folder{ID: "a"}},
		{CreateFolder: &graph.Folder{ID: "a1", Parent: "a"}},
		{CreateFolder: &graph.Folder{ID: "a11", Parent: "a1"}},
		{CreateFolder: &graph.Folder{ID: "adm", Parent: "a"}},
		{SetRule: &graph.PlacementRule{Folder: "adm", Classes: []string{"staff"}}},
		{CreateFolder: &graph.Folder{ID: "b"}},
		{CreateFolder: &graph.Folder{ID: "b1", Parent: "b"}},
		{CreateUser: &graph.User{ID: "s", Class: "staff", Home: "adm"}},
		{CreateUser: &graph.User{ID: "c", Class: "candidate", Home: "a11", Extras: []string{"a1"}}},
		{AddGrant: &graph.Grant{ID: "g1", Holder: graph.UserRef("s"), Target: graph.FolderRef("a11"), Rights: []string{"read"}}},
		{AddLock: &graph.Lock{ID: "l1", Target: graph.FolderRef("a1")}},
	}, graph.Preconditions{})
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestRefusalsChangeNothing(t *testing.T) {
	past := graphtest.Start.Add(-time.Minute)
	type M = graph.Mutation
	tests := []struct {
		name  string
		batch []M
		want  error
		id    string // the offending id the message must name
	}{
		{"no operation", []M{{}}, graph.ErrInvalid, ""},
		{"two operations", []M{{CreateFolder: &graph.Folder{ID: "x", Parent: "a"}, RemoveLock: &graph.Delete{ID: "l1"}}}, graph.ErrInvalid, ""},
		{"empty folder id", []M{{CreateFolder: &graph.Folder{Parent: "a"}}}, graph.ErrInvalid, ""},
		{"control character in id", []M{{CreateFolder: &graph.Folder{ID: "x\n", Parent: "a"}}}, graph.ErrInvalid, "x"},
		{"format character in a folder id", []M{{CreateFolder: &graph.Folder{ID: "admin\u200b", Parent: "a"}}}, graph.ErrInvalid, "U+200B"},
		{"right-to-left override in a user id", []M{{CreateUser: &graph.User{ID: "\u202eevil", Class: "staff", Home: "a1"}}}, graph.ErrInvalid, "U+202E"},
		{"byte order mark in a grant id", []M{{AddGrant: &graph.Grant{ID: "\ufeffg", Holder: graph.UserRef("s"), Rights: []string{"read"}}}}, graph.ErrInvalid, "U+FEFF"},
		{"a lone space as a lock id", []M{{AddLock: &graph.Lock{ID: " ", Target: graph.FolderRef("a")}}}, graph.ErrInvalid, "white space"},
		{"trailing space in an id", []M{{CreateFolder: &graph.Folder{ID: "x ", Parent: "a"}}}, graph.ErrInvalid, "white space"},
		{"an id not in normal form C", []M{{CreateFolder: &graph.Folder{ID: "cafe\u0301", Parent: "a"}}}, graph.ErrInvalid, "caf\u00e9"},
		{"private use in an id", []M{{CreateFolder: &graph.Folder{ID: "x\ue000", Parent: "a"}}}, graph.ErrInvalid, "U+E000"},
		{"bad class", []M{{CreateUser: &graph.User{ID: "u", Class: "Staff!", Home: "a1"}}}, graph.ErrInvalid, "Staff!"},
		{"bad state", []M{{SetUserState: &graph.StateChange{ID: "c", State: "gone"}}}, graph.ErrInvalid, "gone"},
		{"grant without holder", []M{{AddGrant: &graph.Grant{ID: "g", Rights: []string{"read"}}}}, graph.ErrInvalid, "g"},
		{"grant without rights", []M{{AddGrant: &graph.Grant{ID: "g", Holder: graph.UserRef("s")}}}, graph.ErrInvalid, "g"},
		{"lock without target", []M{{AddLock: &graph.Lock{ID: "l"}}}, graph.ErrInvalid, "l"},
		{"expiry in the past", []M{{AddGrant: &graph.Grant{ID: "g", Holder: graph.UserRef("s"), Rights: []string{"read"}, ExpiresAt: past}}}, graph.ErrInvalid, "g"},
		{"expiry recorded by a caller", []M{{ExpireGrant: &graph.Delete{ID: "g1"}}}, graph.ErrInvalid, "g1"},
		{"grant marked expired by a caller", []M{{AddGrant: &graph.Grant{ID: "g", Holder: graph.UserRef("s"), Rights: []string{"read"}, Expired: true}}}, graph.ErrInvalid, "g"},
		{"bad right name", []M{{PutRight: &graph.Right{Name: "Bad Right"}}}, graph.ErrInvalid, "Bad Right"},
		{"bad label", []M{{RelabelFolder: &graph.Relabel{ID: "a1", Labels: map[string]string{"Not A Key": "v"}}}}, graph.ErrInvalid, "Not A Key"},
		{"folder made a root", []M{{MoveFolder: &graph.Move{ID: "a1"}}}, graph.ErrInvalid, "a1"},

		{"parent missing", []M{{CreateFolder: &graph.Folder{ID: "x", Parent: "nope"}}}, graph.ErrNotFound, "nope"},
		{"home missing", []M{{CreateUser: &graph.User{ID: "u", Class: "staff", Home: "nope"}}}, graph.ErrNotFound, "nope"},
		{"extra group missing", []M{{CreateUser: &graph.User{ID: "u", Class: "staff", Home: "a1", Extras: []string{"nope"}}}}, graph.ErrNotFound, "nope"},
		{"move to missing folder", []M{{MoveFolder: &graph.Move{ID: "a11", To: "nope"}}}, graph.ErrNotFound, "nope"},
		{"move missing user", []M{{MoveUser: &graph.Move{ID: "nobody", To: "a1"}}}, graph.ErrNotFound, "nobody"},
		{"grant holder missing", []M{{AddGrant: &graph.Grant{ID: "g", Holder: graph.UserRef("nobody"), Rights: []string{"read"}}}}, graph.ErrNotFound, "nobody"},
		{"grant target missing", []M{{AddGrant: &graph.Grant{ID: "g", Holder: graph.UserRef("s"), Target: graph.FolderRef("nope"), Rights: []string{"read"}}}}, graph.ErrNotFound, "nope"},
		{"remove missing grant", []M{{RemoveGrant: &graph.Delete{ID: "nope"}}}, graph.ErrNotFound, "nope"},
		{"remove missing lock", []M{{RemoveLock: &graph.Delete{ID: "nope"}}}, graph.ErrNotFound, "nope"},
		{"remove missing rule", []M{{RemoveRule: &graph.Delete{ID: "a1"}}}, graph.ErrNotFound, "a1"},
		{"remove extra group not held", []M{{DelExtraGroup: &graph.Membership{User: "c", Folder: "a"}}}, graph.ErrNotFound, "c"},

		{"duplicate folder", []M{{CreateFolder: &graph.Folder{ID: "a1", Parent: "a"}}}, graph.ErrAlreadyExists, "a1"},
		{"duplicate user", []M{{CreateUser: &graph.User{ID: "c", Class: "staff", Home: "a1"}}}, graph.ErrAlreadyExists, "c"},
		{"duplicate grant", []M{{AddGrant: &graph.Grant{ID: "g1", Holder: graph.UserRef("s"), Rights: []string{"read"}}}}, graph.ErrAlreadyExists, "g1"},
		{"duplicate lock", []M{{AddLock: &graph.Lock{ID: "l1", Target: graph.UserRef("c")}}}, graph.ErrAlreadyExists, "l1"},
		{"duplicate in one batch", []M{{CreateFolder: &graph.Folder{ID: "x", Parent: "a"}}, {CreateFolder: &graph.Folder{ID: "x", Parent: "a"}}}, graph.ErrAlreadyExists, "x"},
		{"extra group twice", []M{{AddExtraGroup: &graph.Membership{User: "c", Folder: "a1"}}}, graph.ErrAlreadyExists, "a1"},

		{"folder under its descendant", []M{{MoveFolder: &graph.Move{ID: "a1", To: "a11"}}}, graph.ErrCycle, "a1"},
		{"folder under itself", []M{{MoveFolder: &graph.Move{ID: "a1", To: "a1"}}}, graph.ErrCycle, "a1"},
		{"right implying itself", []M{{PutRight: &graph.Right{Name: "read", Implies: []string{"edit"}}}}, graph.ErrCycle, "read"},

		{"folder into another organisation", []M{{MoveFolder: &graph.Move{ID: "b1", To: "a1"}}}, graph.ErrCrossOrg, "b1"},
		{"root under another organisation", []M{{MoveFolder: &graph.Move{ID: "b", To: "a1"}}}, graph.ErrCrossOrg, "b"},
		{"extra group in another organisation", []M{{CreateUser: &graph.User{ID: "u", Class: "staff", Home: "a1", Extras: []string{"b1"}}}}, graph.ErrCrossOrg, "b1"},
		{"grant across organisations", []M{{AddGrant: &graph.Grant{ID: "g", Holder: graph.FolderRef("a1"), Target: graph.FolderRef("b1"), Rights: []string{"read"}}}}, graph.ErrCrossOrg, "g"},
		{"user into another organisation", []M{{MoveUser: &graph.Move{ID: "c", To: "b1"}}}, graph.ErrCrossOrg, "b1"},

		{"delete folder with children", []M{{DeleteFolder: &graph.Delete{ID: "a1"}}}, graph.ErrNotEmpty, "a1"},
		{"delete folder with users", []M{{DeleteFolder: &graph.Delete{ID: "adm"}}}, graph.ErrNotEmpty, "adm"},
		{"delete user named by a grant", []M{{DeleteUser: &graph.Delete{ID: "s"}}}, graph.ErrNotEmpty, "s"},
		{"delete implied right", []M{{DeleteRight: &graph.Delete{ID: "read"}}}, graph.ErrNotEmpty, "read"},
		{"delete right in use", []M{{DeleteRight: &graph.Delete{ID: "edit"}}}, graph.ErrNotEmpty, "l1"},

		{"candidate created in admin folder", []M{{CreateUser: &graph.User{ID: "eve", Class: "candidate", Home: "adm"}}}, graph.ErrPlacement, "eve"},
		{"candidate moved to admin folder", []M{{MoveUser: &graph.Move{ID: "c", To: "adm"}}}, graph.ErrPlacement, "c"},
		{"admin folder as extra group", []M{{AddExtraGroup: &graph.Membership{User: "c", Folder: "adm"}}}, graph.ErrPlacement, "adm"},
		{"class changed against the rule", []M{{UpdateUser: &graph.UserUpdate{ID: "s", Class: "candidate"}}}, graph.ErrPlacement, "s"},
		{"rule excluding a member", []M{{SetRule: &graph.PlacementRule{Folder: "a", Classes: []string{"staff"}}}}, graph.ErrPlacement, "c"},
		{"folder with a candidate moved under admin", []M{{MoveFolder: &graph.Move{ID: "a11", To: "adm"}}}, graph.ErrPlacement, "c"},

		{"unknown right in grant", []M{{AddGrant: &graph.Grant{ID: "g", Holder: graph.UserRef("s"), Rights: []string{"nope"}}}}, graph.ErrUnknownRight, "nope"},
		{"unknown right in lock", []M{{AddLock: &graph.Lock{ID: "l", Target: graph.UserRef("c"), Rights: []string{"nope"}}}}, graph.ErrUnknownRight, "nope"},
		{"unknown self right", []M{{SetSelfRights: &graph.SelfRights{Rights: []string{"nope"}}}}, graph.ErrUnknownRight, "nope"},
		{"unknown implied right", []M{{PutRight: &graph.Right{Name: "x", Implies: []string{"nope"}}}}, graph.ErrUnknownRight, "nope"},

		{"a good mutation then a bad one", []M{{CreateFolder: &graph.Folder{ID: "x", Parent: "a"}}, {MoveUser: &graph.Move{ID: "c", To: "x"}}, {DeleteFolder: &graph.Delete{ID: "x"}}}, graph.ErrNotEmpty, "x"},
		{"cascade then a bad one", []M{{DeleteFolder: &graph.Delete{ID: "a1", Cascade: true}}, {RemoveLock: &graph.Delete{ID: "l1"}}}, graph.ErrNotFound, "l1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix := refusalWorld(t)
			before, rev, _ := ix.Records()
			_, err := ix.Write(context.Background(), "test", tc.batch, graph.Preconditions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.id) {
				t.Errorf("message %q does not name %q", err, tc.id)
			}
			var e *graph.Error
			if !errors.As(err, &e) {
				t.Errorf("error %T is not a *graph.Error", err)
			}
			after, rev2, _ := ix.Records()
			if rev2 != rev || !reflect.DeepEqual(before, after) {
				t.Fatalf("refused write changed the index (revision %d -> %d)", rev, rev2)
			}
		})
	}
}

func TestPreconditions(t *testing.T) {
	ix := refusalWorld(t)
	rev := ix.Revision()
	batch := []graph.Mutation{{CreateFolder: &graph.Folder{ID: "x", Parent: "a"}}}
	for _, pre := range []graph.Preconditions{
		{Revision: rev + 1},
		{FoldersExist: []string{"nope"}},
		{UsersExist: []string{"nobody"}},
		{FoldersAbsent: []string{"a1"}},
		{UsersAbsent: []string{"c"}},
	} {
		if _, err := ix.Write(context.Background(), "test", batch, pre); !errors.Is(err, graph.ErrPrecondition) {
			t.Fatalf("%+v: %v, want a failed precondition", pre, err)
		}
	}
	got, err := ix.Write(context.Background(), "test", batch, graph.Preconditions{Revision: rev, FoldersExist: []string{"a"}, UsersAbsent: []string{"x"}})
	if err != nil || got != rev+1 {
		t.Fatalf("write with holding preconditions: %d, %v", got, err)
	}
}

func TestCheckErrors(t *testing.T) {
	ix := refusalWorld(t)
	for _, tc := range []struct {
		right string
		x     graph.Ref
		want  error
	}{
		{"nope", graph.Ref{}, graph.ErrUnknownRight},
		{"read", graph.FolderRef("nope"), graph.ErrNotFound},
		{"read", graph.UserRef("nobody"), graph.ErrNotFound},
		{"read", graph.Ref{Kind: 9, ID: "x"}, graph.ErrInvalid},
	} {
		if _, err := ix.Check("s", tc.right, tc.x); !errors.Is(err, tc.want) {
			t.Errorf("check s %s %v: %v, want %v", tc.right, tc.x, err, tc.want)
		}
		if _, err := ix.Explain("s", tc.right, tc.x); !errors.Is(err, tc.want) {
			t.Errorf("explain s %s %v: %v, want %v", tc.right, tc.x, err, tc.want)
		}
	}
}

// TestASCIIIDs: with the ASCII grammar, an id outside printable ASCII is
// refused, naming the character; one inside it is taken.
func TestASCIIIDs(t *testing.T) {
	ix, err := graph.Open(context.Background(), graph.Options{Clock: graphtest.NewClock(graphtest.Start), IDs: graph.IDASCII})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	if _, err := ix.Write(ctx, "test", []graph.Mutation{{CreateFolder: &graph.Folder{ID: "acme-2026_a.b@c/d:e"}}}, graph.Preconditions{}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"café", "a b", "x\u00a0"} {
		_, err := ix.Write(ctx, "test", []graph.Mutation{{CreateFolder: &graph.Folder{ID: id}}}, graph.Preconditions{})
		if !errors.Is(err, graph.ErrInvalid) || !strings.Contains(err.Error(), "only printable ASCII") {
			t.Errorf("%q: %v", id, err)
		}
	}
	if g, err := graph.ParseIDGrammar("ascii"); err != nil || g != graph.IDASCII {
		t.Errorf("parse ascii: %v, %v", g, err)
	}
	if _, err := graph.ParseIDGrammar("emoji"); err == nil {
		t.Error("parse emoji: no error")
	}
}

// TestDepthLimit: a folder past the depth limit is refused naming the
// limit, whether created there or moved there with its subtree, and
// nothing changes.
func TestDepthLimit(t *testing.T) {
	ix := openWith(t, graph.Options{Clock: graphtest.NewClock(graphtest.Start), MaxDepth: 3})
	ctx := context.Background()
	write := func(muts ...graph.Mutation) error {
		_, err := ix.Write(ctx, "test", muts, graph.Preconditions{})
		return err
	}
	if err := write(
		graph.Mutation{CreateFolder: &graph.Folder{ID: "a"}},
		graph.Mutation{CreateFolder: &graph.Folder{ID: "b", Parent: "a"}},
		graph.Mutation{CreateFolder: &graph.Folder{ID: "c", Parent: "b"}},
		graph.Mutation{CreateFolder: &graph.Folder{ID: "x", Parent: "a"}},
		graph.Mutation{CreateFolder: &graph.Folder{ID: "y", Parent: "x"}},
	); err != nil {
		t.Fatal(err)
	}
	rev := ix.Revision()
	for name, m := range map[string]graph.Mutation{
		"create at level 4":              {CreateFolder: &graph.Folder{ID: "d", Parent: "c"}},
		"move a subtree of 2 to level 3": {MoveFolder: &graph.Move{ID: "x", To: "b"}},
	} {
		err := write(m)
		if !errors.Is(err, graph.ErrInvalid) || !strings.Contains(err.Error(), "the tree would be 4 levels deep; the most allowed is 3") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if ix.Revision() != rev {
		t.Fatal("a refused write committed")
	}
	if err := write(graph.Mutation{MoveFolder: &graph.Move{ID: "y", To: "b"}}); err != nil {
		t.Fatalf("a move within the limit: %v", err)
	}
}

// TestLimitsHaveCeilings: the limits of mutations per write and of id
// length may be lowered, not raised past what the index is built for.
func TestLimitsHaveCeilings(t *testing.T) {
	for _, o := range []graph.Options{{MaxBatch: graph.MaxBatchSize + 1}, {MaxIDBytes: graph.MaxIDLen + 1}, {MaxBatch: -1}} {
		o.Clock = graphtest.NewClock(graphtest.Start)
		if ix, err := graph.Open(context.Background(), o); err == nil {
			ix.Close()
			t.Errorf("Open with %+v: want an error", o)
		}
	}
}
