package graph

// The rights catalogue: its slots, sets of rights and the writes that
// change it (txn, apply.go).

import (
	"math/bits"
	"sort"
)

// MaxRights is how many rights the catalogue can hold. A set of rights is
// one machine word, so testing a grant against a right is one AND.
const MaxRights = 64

// rightSet is a set of catalogue slots.
type rightSet uint64

func (s *rightSet) add(i int)            { *s |= 1 << uint(i) }
func (s rightSet) has(i int) bool        { return s&(1<<uint(i)) != 0 }
func (s *rightSet) union(o rightSet)     { *s |= o }
func (s rightSet) meets(o rightSet) bool { return s&o != 0 }

// each calls fn for every slot in s, in ascending order.
func (s rightSet) each(fn func(int)) {
	for s != 0 {
		b := bits.TrailingZeros64(uint64(s))
		fn(b)
		s &^= 1 << uint(b)
	}
}

// catalogue is the rights catalogue and the self rights, with the transitive
// closures precomputed so a check tests a grant with one AND.
type catalogue struct {
	slot    map[string]int // name -> slot
	names   []string       // slot -> name; "" for a free slot
	implies []rightSet     // slot -> the rights it directly implies
	// closure[r] is r and every right r implies: a lock on any of them denies r.
	closure []rightSet
	// grantedBy[r] is every right whose closure holds r: a grant of any of them grants r.
	grantedBy []rightSet
	self      rightSet // the self rights as given
}

func newCatalogue() catalogue {
	return catalogue{slot: map[string]int{}}
}

// lookup returns the slot of right name.
func (c *catalogue) lookup(name string) (int, bool) {
	i, ok := c.slot[name]
	return i, ok
}

// set converts names to a rightSet; it fails on the first unknown name.
func (c *catalogue) set(names []string) (rightSet, string, bool) {
	var s rightSet
	for _, n := range names {
		i, ok := c.slot[n]
		if !ok {
			return s, n, false
		}
		s.add(i)
	}
	return s, "", true
}

// list returns the names in s, sorted.
func (c *catalogue) list(s rightSet) []string {
	var out []string
	s.each(func(i int) { out = append(out, c.names[i]) })
	sort.Strings(out)
	return out
}

// expand returns s and everything its rights imply.
func (c *catalogue) expand(s rightSet) rightSet {
	var out rightSet
	s.each(func(i int) { out.union(c.closure[i]) })
	return out
}

// recompute rebuilds closure and grantedBy from implies. The catalogue is
// small (at most MaxRights) and changes rarely, so it starts from scratch.
func (c *catalogue) recompute() {
	n := len(c.names)
	c.closure = make([]rightSet, n)
	c.grantedBy = make([]rightSet, n)
	for r := 0; r < n; r++ {
		if c.names[r] == "" {
			continue
		}
		var cl rightSet
		stack := []int{r}
		for len(stack) > 0 {
			x := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if cl.has(x) {
				continue
			}
			cl.add(x)
			c.implies[x].each(func(i int) { stack = append(stack, i) })
		}
		c.closure[r] = cl
	}
	for r := 0; r < n; r++ {
		c.closure[r].each(func(i int) { c.grantedBy[i].add(r) })
	}
}

func (t *txn) putRight(op string, r Right) error {
	c := &t.s.cat
	if !validWord(r.Name) {
		return newErr(op, r.Name, ErrInvalid, "a right's name is a short lower-case word")
	}
	r.Implies = sortedSet(r.Implies)
	if len(r.Implies) == 0 {
		r.Implies = nil
	}
	implies, bad, ok := c.set(r.Implies)
	if !ok {
		return newErr(op, r.Name, ErrUnknownRight, "implied right %q is not in the catalogue", bad)
	}
	slot, exists := c.lookup(r.Name)
	if exists {
		var cycle string
		implies.each(func(j int) {
			if cycle == "" && c.closure[j].has(slot) { // j implies the right already
				cycle = c.names[j]
			}
		})
		if cycle != "" {
			return newErr(op, r.Name, ErrCycle, "%q implies %q already", cycle, r.Name)
		}
	}
	inv := Mutation{DeleteRight: &Delete{ID: r.Name}}
	if exists {
		inv = Mutation{PutRight: &Right{Name: r.Name, Implies: c.list(c.implies[slot])}}
	} else {
		slot = -1
		for k, n := range c.names {
			if n == "" {
				slot = k
				break
			}
		}
		if slot < 0 {
			if len(c.names) == MaxRights {
				return newErr(op, r.Name, ErrInvalid, "the catalogue holds at most %d rights", MaxRights)
			}
			slot = len(c.names)
			c.names = append(c.names, "")
			c.implies = append(c.implies, rightSet(0))
		}
		c.names[slot] = r.Name
		c.slot[r.Name] = slot
	}
	c.implies[slot] = implies
	c.recompute()
	t.record(Mutation{PutRight: &r}, inv)
	return nil
}

func (t *txn) deleteRight(op string, d Delete) error {
	s := t.s
	c := &s.cat
	slot, ok := c.lookup(d.ID)
	if !ok {
		return newErr(op, d.ID, ErrUnknownRight, "right %q is not in the catalogue", d.ID)
	}
	for k, n := range c.names {
		if n != "" && c.implies[k].has(slot) {
			return newErr(op, d.ID, ErrNotEmpty, "right %q implies it", n)
		}
	}
	if c.self.has(slot) {
		return newErr(op, d.ID, ErrNotEmpty, "it is a self right")
	}
	for i, live := range s.grants.live {
		if g := s.grant(int32(i)); live && g.rights.has(slot) {
			return newErr(op, d.ID, ErrNotEmpty, "grant %q uses it", s.grantID(int32(i)))
		}
	}
	for i, live := range s.locks.live {
		if l := s.lock(int32(i)); live && l.rights.has(slot) {
			return newErr(op, d.ID, ErrNotEmpty, "lock %q uses it", l.l.ID)
		}
	}
	inv := Mutation{PutRight: &Right{Name: d.ID, Implies: c.list(c.implies[slot])}}
	delete(c.slot, d.ID)
	c.names[slot] = ""
	c.implies[slot] = rightSet(0)
	c.recompute()
	t.record(Mutation{DeleteRight: &Delete{ID: d.ID}}, inv)
	return nil
}

func (t *txn) setSelfRights(op string, r SelfRights) error {
	c := &t.s.cat
	names := sortedSet(r.Rights)
	set, bad, ok := c.set(names)
	if !ok {
		return newErr(op, "", ErrUnknownRight, "right %q is not in the catalogue", bad)
	}
	inv := Mutation{SetSelfRights: &SelfRights{Rights: c.list(c.self)}}
	c.self = set
	r.Rights = names
	t.record(Mutation{SetSelfRights: &r}, inv)
	return nil
}
