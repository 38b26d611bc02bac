package graph

import "testing"

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
