package graph

import (
	"reflect"
	"testing"
	"time"
)

// TestPaged: elements keep their index across pages, reserve adds pages
// without elements, and a copy shares nothing with the original.
func TestPaged(t *testing.T) {
	var p paged[[]int32]
	p.reserve(10)
	if p.len() != 0 || len(p.pages) != 1 {
		t.Fatalf("after reserve: %d elements, %d pages", p.len(), len(p.pages))
	}
	const n = 3*pageLen + 5
	for i := range n {
		if got := p.push([]int32{int32(i)}); got != int32(i) {
			t.Fatalf("push %d returned index %d", i, got)
		}
	}
	p.reserve(2 * pageLen)                    // pages past the last element
	heldPool := make([][]int32, 0, 2*pageLen) // room for two pages; the rest are allocated
	c := p.cloneInto(&heldPool)
	*p.at(7) = []int32{-1}
	*p.at(n - 1) = nil
	if c.len() != n {
		t.Fatalf("copy has %d elements, want %d", c.len(), n)
	}
	for i, v := range c.all() {
		if len(*v) != 1 || (*v)[0] != i {
			t.Fatalf("copy's element %d is %v", i, *v)
		}
	}
	if c.push([]int32{99}) != n || p.at(n) == c.at(n) {
		t.Fatal("a push to the copy reached the original")
	}
}

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
