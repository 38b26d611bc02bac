package graph

import (
	"math"
	"reflect"
	"testing"
	"time"
)

// TestNodesHoldNoPointer: the nodes there are a million of hold no
// pointer, so that the collector never reads their pages (state.go).
func TestNodesHoldNoPointer(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[userNode](), reflect.TypeFor[grantNode](), reflect.TypeFor[heldGrant]()} {
		if p := pointerIn(typ); p != "" {
			t.Errorf("%s holds a pointer: %s", typ.Name(), p)
		}
	}
}

// pointerIn names a field of typ that is or holds a pointer, or returns "".
func pointerIn(typ reflect.Type) string {
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.String, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return typ.String()
	case reflect.Array:
		return pointerIn(typ.Elem())
	case reflect.Struct:
		for i := range typ.NumField() {
			if p := pointerIn(typ.Field(i).Type); p != "" {
				return typ.Field(i).Name + ": " + p
			}
		}
	}
	return ""
}

// TestInstant: an instant gives back the time it was made of, in UTC, and
// the zero time is the zero instant.
func TestInstant(t *testing.T) {
	if instantOf(time.Time{}) != (instant{}) || (instant{}).time() != (time.Time{}) {
		t.Fatalf("the zero time is instant %v, and the zero instant %v", instantOf(time.Time{}), (instant{}).time())
	}
	for _, at := range []time.Time{
		time.Unix(0, 0), time.Unix(-1, 999_999_999), time.Date(2026, 12, 1, 16, 17, 27, 123_456_789, time.FixedZone("x", 3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
	} {
		if got := instantOf(at).time(); got != at.UTC() {
			t.Errorf("%v came back as %v", at, got)
		}
	}
}

// TestUnixNano: expiries keep their order past the years int64
// nanoseconds hold, and only the zero time is "never".
func TestUnixNano(t *testing.T) {
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(-1, 0), time.Unix(0, 0),
		time.Unix(0, 1), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
	}
	if unixNano(time.Time{}) != 0 {
		t.Fatalf("the zero time is %d", unixNano(time.Time{}))
	}
	for k, at := range times {
		n := unixNano(at)
		if n == 0 {
			t.Errorf("%v is 0, never", at)
		}
		if k > 0 && n < unixNano(times[k-1]) {
			t.Errorf("%v is %d, before %v's %d", at, n, times[k-1], unixNano(times[k-1]))
		}
	}
	if unixNano(times[len(times)-1]) != math.MaxInt64 || unixNano(times[0]) != math.MinInt64 {
		t.Errorf("the far ends are %d and %d", unixNano(times[0]), unixNano(times[len(times)-1]))
	}
}

// TestTimedCount: the state's count of users with an ActiveUntil follows
// creates, state changes, deletes and their undoing, so the due-queue's
// rebuild threshold counts what can be live.
func TestTimedCount(t *testing.T) {
	s := newState()
	tx := &txn{s: s}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	recount := func() int {
		n := 0
		for u, live := range s.users.live {
			if live && s.user(int32(u)).timed {
				n++
			}
		}
		return n
	}
	steps := []Mutation{
		{CreateFolder: &Folder{ID: "o"}},
		{CreateUser: &User{ID: "a", Class: "staff", Home: "o", ActiveUntil: at}},
		{CreateUser: &User{ID: "b", Class: "staff", Home: "o"}},
		{SetUserState: &StateChange{ID: "b", State: StateActive, ActiveUntil: at}},
		{SetUserState: &StateChange{ID: "b", State: StateActive, ActiveUntil: at.Add(time.Hour)}},
		{SetUserState: &StateChange{ID: "a", State: StateDisabled}},
		{DeleteUser: &Delete{ID: "b"}},
	}
	for i := range steps {
		if err := tx.apply(&steps[i]); err != nil {
			t.Fatal(err)
		}
		if s.timed != recount() {
			t.Fatalf("after %v: counted %d, there are %d", steps[i], s.timed, recount())
		}
	}
	for mark := len(tx.done) - 1; mark >= 0; mark-- {
		tx.rollbackTo(mark)
		if s.timed != recount() {
			t.Fatalf("undone to %d: counted %d, there are %d", mark, s.timed, recount())
		}
	}
}
