package graph

import "iter"

// pageShift sets how many elements a page of a paged array holds.
const pageShift = 10

// pageLen is how many elements a page of a paged array holds.
const pageLen = 1 << pageShift

// paged is a growable array kept in pages of pageLen elements, so that
// growing it never copies what it holds. A slice of nodes grows by
// copying the whole array, and copying memory that holds pointers while
// the collector marks runs a write barrier over every pointer, in one
// stretch the goroutine cannot be preempted in; the collector's worker on
// the other core waits for it meanwhile, and a check had no core for as
// long (136 ms once the folders of a tenth of the organisation passed
// 300,000). A page is a small allocation, and an element is reached in
// one more load, from an index of pages that stays in cache.
type paged[T any] struct {
	pages []*[pageLen]T
	n     int
}

// len returns the number of elements.
func (p *paged[T]) len() int { return p.n }

// at returns element i.
func (p *paged[T]) at(i int32) *T { return &p.pages[i>>pageShift][i&(pageLen-1)] }

// push appends v and returns its index.
func (p *paged[T]) push(v T) int32 {
	if p.n == len(p.pages)*pageLen {
		p.pages = append(p.pages, new([pageLen]T))
	}
	i := int32(p.n)
	p.n++
	*p.at(i) = v
	return i
}

// reserve allocates the pages n more elements need.
func (p *paged[T]) reserve(n int) {
	for len(p.pages)*pageLen < p.n+n {
		p.pages = append(p.pages, new([pageLen]T))
	}
}

// all yields every element, with its index.
func (p *paged[T]) all() iter.Seq2[int32, *T] {
	return func(yield func(int32, *T) bool) {
		for i := range int32(p.n) {
			if !yield(i, p.at(i)) {
				return
			}
		}
	}
}

// pagesFor is how many elements the pages of n elements hold.
func pagesFor(n int) int { return (n + pageLen - 1) / pageLen * pageLen }

// cloneInto returns a copy of p whose pages are cut from pool (see take).
func (p *paged[T]) cloneInto(pool *[]T) paged[T] {
	c := paged[T]{pages: make([]*[pageLen]T, len(p.pages)), n: p.n}
	for k, pg := range p.pages {
		if k*pageLen >= p.n {
			c.pages[k] = new([pageLen]T) // reserved, still empty
			continue
		}
		np := (*[pageLen]T)(take(pool, pageLen)[:pageLen])
		*np = *pg
		c.pages[k] = np
	}
	return c
}
