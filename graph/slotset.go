package graph

// setInline is how many slots a slotSet holds before it spills to a map.
const setInline = 64

// slotSet is a set of folder slots for one check: its members in insertion
// order, and an open-addressing table so that a membership test is a probe
// or two. It lives on the checker's stack and is never shared (it holds no
// pointer into itself, so it does not escape); past setInline members (a
// user in very many groups) it moves to a map.
type slotSet struct {
	n     int
	buf   [setInline]int32
	table [2 * setInline]int32 // slot+1; 0 marks an empty cell
	more  []int32              // members past setInline
	spill map[int32]struct{}   // every member, once there are more than setInline
}

func (s *slotSet) reset() {
	s.n = 0
	s.table = [2 * setInline]int32{}
	s.more, s.spill = nil, nil
}

// len returns the number of members.
func (s *slotSet) len() int { return s.n }

// at returns the i-th member added.
func (s *slotSet) at(i int) int32 {
	if i < setInline {
		return s.buf[i]
	}
	return s.more[i-setInline]
}

func cell(f int32) uint32 { return (uint32(f) * 2654435761) >> (32 - 7) } // 7 bits: 2*setInline cells

// has reports whether f is in the set.
func (s *slotSet) has(f int32) bool {
	if s.spill != nil {
		_, ok := s.spill[f]
		return ok
	}
	for i := cell(f); ; i = (i + 1) & (2*setInline - 1) {
		switch s.table[i] {
		case f + 1:
			return true
		case 0:
			return false
		}
	}
}

// add puts f in the set and reports whether it was new.
func (s *slotSet) add(f int32) bool {
	if s.has(f) {
		return false
	}
	if s.n < setInline {
		s.buf[s.n] = f
		s.n++
		i := cell(f)
		for s.table[i] != 0 {
			i = (i + 1) & (2*setInline - 1)
		}
		s.table[i] = f + 1
		return true
	}
	if s.spill == nil {
		s.spill = make(map[int32]struct{}, 4*setInline)
		for _, x := range s.buf {
			s.spill[x] = struct{}{}
		}
	}
	s.more = append(s.more, f)
	s.spill[f] = struct{}{}
	s.n++
	return true
}

// addUp adds f and every folder above it, stopping at the first already
// present (everything above that one is present too).
func (s *slotSet) addUp(up []int32, f int32) {
	for ; f != none; f = up[f] {
		if !s.add(f) {
			return
		}
	}
}
