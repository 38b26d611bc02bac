package graph

import (
	"fmt"
	"slices"
)

// Reason says why a check was decided as it was.
type Reason uint8

// The reasons, in the order the decision rule tests them.
const (
	ReasonAllowed Reason = iota + 1
	ReasonUnknownUser
	ReasonNotActive
	ReasonNoGrant
	ReasonExpired
	ReasonLocked
)

// String returns the reason's snake-case name.
func (r Reason) String() string {
	switch r {
	case ReasonAllowed:
		return "allowed"
	case ReasonUnknownUser:
		return "unknown_user"
	case ReasonNotActive:
		return "user_not_active"
	case ReasonNoGrant:
		return "no_grant"
	case ReasonExpired:
		return "expired"
	case ReasonLocked:
		return "locked"
	}
	return "unspecified"
}

// Decision is the answer to a check.
type Decision struct {
	Allowed  bool
	Reason   Reason
	Revision uint64
}

// Explanation is a decision with the path that led to it.
//
// When allowed by a grant: Grant is the applicable unexpired grant with the
// smallest id; HolderPath runs from the user's home or extra group up to
// the holder folder (empty when the grant is held by the user); TargetPath
// runs from the target folder down to the resource, or down to the folder
// through which a user resource is a member (empty for a user or
// capability target). When allowed by a self right, Self is true and Grant
// nil. When denied as expired, Grant is the expired grant that would have
// applied (smallest id) with its paths. When denied for want of a grant,
// Grant is the one that will apply from its start (smallest id; its
// Started is false) with its paths, or nil when none will. When locked,
// Lock is the denying lock with the smallest id and LockPath runs from its
// target folder down to the resource (empty for a lock on the user).
type Explanation struct {
	Decision
	Grant      *Grant
	Self       bool
	HolderPath []string
	TargetPath []string
	Lock       *Lock
	LockPath   []string
}

// checker holds one check's resolved arguments. It lives on the stack.
type checker struct {
	s       *state
	user    int32
	right   int
	xf, xu  int32   // the resource: a folder, a user, or neither
	cover   slotSet // folders whose grants or locks reach the resource
	sig     uint64  // the targetBit of every folder in cover, and of the resource
	holders slotSet // folders the user is a member of
	now     int64
}

// addMember adds to set every folder user u is a member of.
func (s *state) addMember(set *slotSet, u *userNode) {
	set.addUp(s.up, u.home)
	for _, e := range s.extras(u) {
		set.addUp(s.up, e)
	}
}

// coverResource fills c.cover with the folders covering the resource.
func (c *checker) coverResource() {
	c.cover.reset()
	switch {
	case c.xf != none:
		c.cover.addUp(c.s.up, c.xf)
		c.sig = 0
	case c.xu != none:
		c.s.addMember(&c.cover, c.s.user(c.xu))
		c.sig = targetBit(KindUser, c.xu)
	default:
		c.sig = targetBit(KindNone, none)
	}
	for i := 0; i < c.cover.len(); i++ {
		c.sig |= targetBit(KindFolder, c.cover.at(i))
	}
}

// resolveCheck validates a check's arguments. It returns a decision when
// the user alone decides it (unknown, not active).
func (s *state) resolveCheck(o Orgs, op, user, right string, x Ref, c *checker) (Reason, error) {
	if err := o.see(s, op, UserRef(user)); err != nil {
		return 0, err
	}
	if err := o.see(s, op, x); err != nil {
		return 0, err
	}
	if err := s.resolveResource(op, right, x, c); err != nil {
		return 0, err
	}
	u, ok := s.users.get(user)
	if !ok {
		return ReasonUnknownUser, nil
	}
	c.user = u
	if !s.activeAt(s.user(u), c.now) {
		return ReasonNotActive, nil
	}
	return 0, nil
}

// resolveResource resolves the right and the resource of a check.
func (s *state) resolveResource(op, right string, x Ref, c *checker) error {
	c.s, c.xf, c.xu = s, none, none
	slot, ok := s.cat.lookup(right)
	if !ok {
		return newErr(op, right, ErrUnknownRight, "right is not in the catalogue")
	}
	c.right = slot
	switch x.Kind {
	case KindFolder:
		f, ok := s.folders.get(x.ID)
		if !ok {
			return newErr(op, x.ID, ErrNotFound, "no such folder")
		}
		c.xf = f
	case KindUser:
		u, ok := s.users.get(x.ID)
		if !ok {
			return newErr(op, x.ID, ErrNotFound, "no such user")
		}
		c.xu = u
	case KindNone:
	default:
		return newErr(op, x.ID, ErrInvalid, "resource has an unknown kind %d", x.Kind)
	}
	return nil
}

// covers reports whether grant or lock target t (of kind k) reaches the resource.
func (c *checker) covers(k Kind, t int32) bool {
	switch k {
	case KindFolder:
		return c.cover.has(t)
	case KindUser:
		return c.xu == t
	}
	return c.xf == none && c.xu == none
}

// decide applies the decision rule. With ex nil it stops at the first
// applicable grant; with ex set it looks at every one to explain with the
// smallest id, so Check and Explain share one path and cannot disagree.
func (c *checker) decide(ex *Explanation) Reason {
	s := c.s
	u := s.user(c.user)
	c.holders.reset()
	s.addMember(&c.holders, u)
	c.coverResource()
	want := s.cat.grantedBy[c.right]
	self := c.xu == c.user && s.cat.self.meets(want)
	found, expired, pending := none, none, none
	better := func(cur, g int32) bool { return cur == none || s.grantID(g) < s.grantID(cur) }
	scan := func(list []heldGrant) bool {
		for i := range list {
			g := &list[i]
			if !g.rights.meets(want) || !c.covers(g.tkind, g.target) {
				continue
			}
			gi := g.grant
			if !g.started(c.now) {
				if ex != nil && better(pending, gi) {
					pending = gi
				}
				continue // not yet: it applies from its start on
			}
			if g.expired(c.now) {
				if better(expired, gi) {
					expired = gi
				}
				continue
			}
			if better(found, gi) {
				found = gi
			}
			if ex == nil {
				return true
			}
		}
		return false
	}
	if !self || ex != nil {
		if !scan(s.heldBy(u)) {
			for i := 0; i < c.holders.len(); i++ {
				f := c.holders.at(i)
				if m := &s.heldSum[f]; m.rights.meets(want) && m.targets&c.sig != 0 && scan(*s.held.at(f)) {
					break
				}
			}
		}
	}
	if found == none && !self {
		if expired != none {
			if ex != nil {
				c.explainGrant(ex, expired)
			}
			return ReasonExpired
		}
		if pending != none { // only looked for when explaining
			c.explainGrant(ex, pending)
		}
		return ReasonNoGrant
	}
	if l := c.lockedBy(ex != nil); l != none {
		if ex != nil {
			lv := s.lockView(l)
			ex.Lock = &lv
			if t := s.lock(l); t.l.Target.Kind == KindFolder {
				ex.LockPath = c.pathDown(t.target)
			}
		}
		return ReasonLocked
	}
	if ex != nil {
		if found != none {
			c.explainGrant(ex, found)
		} else {
			ex.Self = true
		}
	}
	return ReasonAllowed
}

// lockedBy returns a lock that covers the resource and denies the right or
// one it implies (the smallest id when all is set), or none.
func (c *checker) lockedBy(all bool) int32 {
	s := c.s
	deny := s.cat.closure[c.right]
	found := none
	scan := func(list []int32) bool {
		for _, li := range list {
			if s.lock(li).rights.meets(deny) {
				if found == none || s.lock(li).l.ID < s.lock(found).l.ID {
					found = li
				}
				if !all {
					return true
				}
			}
		}
		return false
	}
	if c.xu != none && scan(s.locksOn(s.user(c.xu))) {
		return found
	}
	for i := 0; i < c.cover.len(); i++ {
		if scan(s.folder(c.cover.at(i)).locks) {
			return found
		}
	}
	return found
}

func (c *checker) explainGrant(ex *Explanation, gi int32) {
	s := c.s
	g := s.grant(gi)
	gv := s.grantView(gi)
	ex.Grant = &gv
	if g.hkind == KindFolder {
		ex.HolderPath = pathUp(s, s.user(c.user), g.holder)
	}
	if g.tkind == KindFolder {
		ex.TargetPath = c.pathDown(g.target)
	}
}

// pathUp returns the folder ids from the first of u's folders (home, then
// extras in id order) that lies below top, up to top.
func pathUp(s *state, u *userNode, top int32) []string {
	for _, f := range append([]int32{u.home}, s.extras(u)...) {
		if s.isAncestor(top, f) {
			var out []string
			for ; f != s.up[top]; f = s.up[f] {
				out = append(out, s.folderID(f))
			}
			return out
		}
	}
	return nil
}

// pathDown returns the folder ids from top down to the resource, or down to
// the folder through which a user resource is a member of top.
func (c *checker) pathDown(top int32) []string {
	var up []string
	if c.xf != none {
		for f := c.xf; f != c.s.up[top]; f = c.s.up[f] {
			up = append(up, c.s.folderID(f))
		}
	} else {
		up = pathUp(c.s, c.s.user(c.xu), top)
	}
	slices.Reverse(up)
	return up
}

// Check decides whether user may exercise right on resource x (the zero Ref
// for a capability) now. An unknown or inactive user is a denial, not an
// error; an unknown right or resource is an error.
func (ix *Index) Check(user, right string, x Ref) (Decision, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	return v.decide(nil, user, right, x, ix.opts.Clock.Now().UnixNano())
}

// decide decides one check on side v, held for reading, for a caller
// confined to o.
func (v *side) decide(o Orgs, user, right string, x Ref, now int64) (Decision, error) {
	c := checker{now: now}
	r, err := v.s.resolveCheck(o, "check", user, right, x, &c)
	if err != nil {
		return Decision{Revision: v.rev}, err
	}
	if r == 0 {
		r = c.decide(nil)
	}
	return Decision{Allowed: r == ReasonAllowed, Reason: r, Revision: v.rev}, nil
}

// CheckRequest is one check of a batch.
type CheckRequest struct {
	User     string
	Right    string
	Resource Ref
}

// CheckMany decides every request at one revision and one decision time,
// which it returns. A request that cannot be decided (an unknown right or
// resource) gets a zero Decision and its own error, at its index in errs,
// naming the request's index; the others are decided all the same. errs
// is nil when every request was decided.
func (ix *Index) CheckMany(reqs []CheckRequest) (ds []Decision, errs []error, rev uint64) {
	return ix.checkMany(nil, reqs)
}

func (ix *Index) checkMany(o Orgs, reqs []CheckRequest) ([]Decision, []error, uint64) {
	v := ix.read()
	defer v.mu.RUnlock()
	now := ix.opts.Clock.Now().UnixNano()
	out := make([]Decision, len(reqs))
	var errs []error
	for i, r := range reqs {
		d, err := v.decide(o, r.User, r.Right, r.Resource, now)
		if err != nil {
			if errs == nil {
				errs = make([]error, len(reqs))
			}
			errs[i] = fmt.Errorf("item %d: %w", i, err)
			d = Decision{Revision: v.rev}
		}
		out[i] = d
	}
	return out, errs, v.rev
}

// Explain decides like Check and returns the path that led to the decision.
func (ix *Index) Explain(user, right string, x Ref) (Explanation, error) {
	return ix.explain(nil, user, right, x)
}

func (ix *Index) explain(o Orgs, user, right string, x Ref) (Explanation, error) {
	v := ix.read()
	defer v.mu.RUnlock()
	c := checker{now: ix.opts.Clock.Now().UnixNano()}
	var ex Explanation
	ex.Revision = v.rev
	r, err := v.s.resolveCheck(o, "explain", user, right, x, &c)
	if err != nil {
		return ex, err
	}
	if r == 0 {
		r = c.decide(&ex)
	}
	ex.Allowed, ex.Reason = r == ReasonAllowed, r
	return ex, nil
}
