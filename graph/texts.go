package graph

import "unsafe"

// textShift sets the size of a block of texts.
const textShift = 20

// textBlock is the size of a block of texts: 1 MiB, far more than the
// longest id or name.
const textBlock = 1 << textShift

// texts keeps strings of one side (folders' ids and names, users' ids,
// names and classes, grants' ids and reasons) in blocks of bytes, so that the nodes refer to them by position and hold
// no pointer for the collector to visit (BenchmarkCollectLayouts). A
// block is only ever appended to, and a string returned by get points
// into it, so what a reader holds never changes.
//
// A deleted or renamed folder's, user's or grant's bytes, and those of
// a refused write's trial, stay in their block, counted as dead (drop),
// until the side's live strings are moved to fresh blocks
// (state.compactTexts), once the dead bytes outnumber the live ones by a
// block.
type texts struct {
	blocks [][]byte
	size   int // bytes put
	dead   int // bytes of them dropped
}

// maxTextBlocks is how many blocks a text's position can name.
const maxTextBlocks = 1 << (32 - textShift)

// text is a string kept in texts: its block and place, and its length.
type text struct {
	at uint32 // block<<textShift | offset
	n  uint32
}

// put keeps s and returns where.
func (x *texts) put(s string) text {
	if s == "" {
		return text{}
	}
	b := len(x.blocks) - 1
	if b < 0 || len(x.blocks[b])+len(s) > cap(x.blocks[b]) {
		if b+1 == maxTextBlocks {
			panic("graph: the live ids and names of a side passed 4 GiB")
		}
		x.blocks = append(x.blocks, make([]byte, 0, max(textBlock, len(s))))
		b++
	}
	off := len(x.blocks[b])
	x.blocks[b] = append(x.blocks[b], s...)
	x.size += len(s)
	return text{at: uint32(b<<textShift | off), n: uint32(len(s))}
}

// drop notes that the strings at ts are no longer referred to.
func (x *texts) drop(ts ...text) {
	for _, t := range ts {
		x.dead += int(t.n)
	}
}

// wasteful reports whether the dead bytes outnumber the live ones by more
// than a block.
func (x *texts) wasteful() bool { return x.dead > x.size-x.dead+textBlock }

// get returns the string kept at t.
func (x *texts) get(t text) string {
	if t.n == 0 {
		return ""
	}
	blk := x.blocks[t.at>>textShift]
	return unsafe.String(&blk[t.at&(textBlock-1)], t.n)
}

// share returns texts for a copy of the side, sharing the blocks written
// so far, each capped at its length in the copy: what the copy puts goes
// to a block of its own, and what x puts next to its last block lies
// past every byte the copy reads. x is not changed (readers may be
// reading it).
func (x *texts) share() texts {
	c := texts{blocks: make([][]byte, len(x.blocks)), size: x.size, dead: x.dead}
	for i, b := range x.blocks {
		c.blocks[i] = b[:len(b):len(b)]
	}
	return c
}
