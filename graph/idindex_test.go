package graph

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestIDIndex: random adds and drops, in a small table that wraps around
// and grows, agree with a map at every step, including ids whose hashes
// collide in the low bits.
func TestIDIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := newIDIndex(0)
	ids := map[int32]string{} // slot -> id
	want := map[string]int32{}
	var free []int32
	next := int32(0)
	is := func(id string) func(int32) bool { return func(i int32) bool { return ids[i] == id } }
	for step := range 20000 {
		if len(want) > 0 && r.IntN(5) < 2 {
			for id, slot := range want { // one at random (map order)
				x.drop(id, slot)
				delete(want, id)
				delete(ids, slot)
				free = append(free, slot)
				break
			}
		} else {
			id := fmt.Sprint("id-", r.IntN(5000))
			if _, ok := want[id]; ok {
				continue
			}
			slot := next
			if k := len(free); k > 0 {
				slot, free = free[k-1], free[:k-1]
			} else {
				next++
			}
			x.add(id, slot)
			want[id], ids[slot] = slot, id
		}
		if x.n != len(want) {
			t.Fatalf("step %d: %d ids, want %d", step, x.n, len(want))
		}
		if step%97 == 0 {
			for id, slot := range want {
				if got, ok := x.find(id, is(id)); !ok || got != slot {
					t.Fatalf("step %d: %s at %d, %v; want %d", step, id, got, ok, slot)
				}
			}
			for range 20 {
				id := fmt.Sprint("id-", 5000+r.IntN(5000))
				if _, ok := x.find(id, is(id)); ok {
					t.Fatalf("step %d: found %s, never added", step, id)
				}
			}
			for id, slot := range want { // a copy's drop leaves x as it was
				c := x.clone()
				c.drop(id, slot)
				if _, ok := c.find(id, is(id)); ok {
					t.Fatalf("step %d: the copy still has %s", step, id)
				}
				if got, ok := x.find(id, is(id)); !ok || got != slot {
					t.Fatalf("step %d: dropping %s from a copy changed the original", step, id)
				}
				break
			}
		}
	}
}
