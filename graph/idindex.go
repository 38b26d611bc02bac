package graph

import (
	"hash/maphash"
	"runtime"
)

// idIndex finds the slot of an id: an open-addressing table with linear
// probing, whose cells hold the slot and 32 bits of the id's hash and no
// pointer. The ids themselves are the nodes' (table.key): a probe compares
// the hash first and reads a node only when it matches. Removal shifts
// the cells after it back, so there are no tombstones, and the table is
// kept at most half full.
type idIndex struct {
	cells []uint64 // hash<<32 | slot+1; 0 is empty
	seed  maphash.Seed
	n     int
}

// newIDIndex returns an index with room for n ids.
func newIDIndex(n int) idIndex {
	x := idIndex{seed: maphash.MakeSeed()}
	x.cells = make([]uint64, cellsFor(n))
	return x
}

// cellsFor is the number of cells that keeps n ids at most half full: a
// power of two, at least 8.
func cellsFor(n int) int {
	c := 8
	for c < 2*n {
		c *= 2
	}
	return c
}

func (x *idIndex) hash(id string) uint32 { return uint32(maphash.String(x.seed, id)) }

// find returns the slot of id: is reports whether a slot whose hash
// matches holds id.
func (x *idIndex) find(id string, is func(int32) bool) (int32, bool) {
	h := x.hash(id)
	mask := uint32(len(x.cells) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		c := x.cells[i]
		if c == 0 {
			return 0, false
		}
		if uint32(c>>32) == h && is(int32(uint32(c))-1) {
			return int32(uint32(c)) - 1, true
		}
	}
}

// add records that id, not yet in the index, is at slot.
func (x *idIndex) add(id string, slot int32) {
	x.reserve(x.n + 1)
	x.put(uint64(x.hash(id))<<32 | uint64(slot+1))
	x.n++
}

// put writes cell c into the first empty cell from its hash on.
func (x *idIndex) put(c uint64) {
	mask := uint32(len(x.cells) - 1)
	i := uint32(c>>32) & mask
	for x.cells[i] != 0 {
		i = (i + 1) & mask
	}
	x.cells[i] = c
}

// drop removes id, which is at slot.
func (x *idIndex) drop(id string, slot int32) {
	mask := uint32(len(x.cells) - 1)
	want := uint64(x.hash(id))<<32 | uint64(slot+1)
	i := uint32(want>>32) & mask
	for x.cells[i] != want {
		i = (i + 1) & mask
	}
	// Shift back every cell after it that would otherwise no longer be
	// found from its hash (linear probing's deletion, no tombstone).
	for j := (i + 1) & mask; x.cells[j] != 0; j = (j + 1) & mask {
		home := uint32(x.cells[j]>>32) & mask
		if (j-home)&mask >= (j-i)&mask {
			x.cells[i] = x.cells[j]
			i = j
		}
	}
	x.cells[i] = 0
	x.n--
}

// rehashYield is how many cells a rehash moves between yields of the
// core: a million ids take 10 ms or more to move (a cache miss each), and
// on two cores, with the collector's worker on the other, a check waited
// for all of it (an execution trace of BenchmarkCheckDuringWrite).
const rehashYield = 4096

// reserve grows the index, if need be, to hold n ids. Only the owner of
// the state calls it (the writer, on the spare), so yielding the core
// half way through is safe: nobody else reads the cells.
func (x *idIndex) reserve(n int) {
	if 2*n <= len(x.cells) {
		return
	}
	old := x.cells
	x.cells = make([]uint64, cellsFor(n))
	for i, c := range old {
		if i%rehashYield == rehashYield-1 {
			runtime.Gosched()
		}
		if c != 0 {
			x.put(c)
		}
	}
}

// clone returns a copy that shares nothing with x.
func (x *idIndex) clone() idIndex {
	c := *x
	c.cells = append([]uint64(nil), x.cells...)
	return c
}
