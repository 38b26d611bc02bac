package graph

import (
	"fmt"
	"runtime"
	"strings"
)

// txn applies mutations to a state, one at a time, each checked against the
// state the earlier ones left. It records the primitive mutations it applied
// (cascades expanded) and, for each, the inverse that undoes it, so a failed
// or trial batch can be rolled back exactly.
//
// Its methods are filed by what they change: the folder trees and their
// placement rules in tree.go, users and their groups in members.go,
// grants and locks in grants.go, the rights catalogue in rights.go.
//
// apply is the one function that changes the index: a batch written here, a
// batch replayed from the journal and the records loaded at start all pass
// through it. It never reads the clock, so replaying a batch gives the same
// state on every node.
type txn struct {
	s    *state
	done []Mutation // primitives applied, in order
	undo []Mutation // undo[i] reverses done[i]
	// forget skips recording, for loading at start, which is never undone.
	forget bool
	// scoped also records each primitive's scope (scopes[i] for done[i]),
	// for the change log, as places of table, which the writer replaces
	// for each batch (scope.go).
	scoped bool
	scopes [][]int32
	table  *scopeTable
	// audited also records each primitive's subjects (subjects[i] for
	// done[i]), for the audit trail (history.go).
	audited  bool
	subjects [][]Object
	// maxDepth, when positive, is the most levels a tree may have (its
	// root is level 1); set for written batches only, so that a store or a
	// feed deeper than today's limit still loads and applies.
	maxDepth int
	// orgs, when not nil, confines the batch to these organisations:
	// every primitive's scope must lie in them (confine.go). It needs
	// scoped.
	orgs Orgs
	// as, when not nil, is the user the batch is written on behalf of:
	// each mutation needs that user's rights (actas.go).
	as *actingAs
	// ends, when not nil, receives after each mutation applyBatch applies
	// how many primitives have been applied, for a preview to tell which
	// mutation each primitive is part of.
	ends *[]int
}

// applyBatch applies muts in order. On error it rolls back what it applied
// and returns an error naming the mutation's position.
func (t *txn) applyBatch(muts []Mutation) error {
	mark := len(t.done)
	for i := range muts {
		yieldAfter(i)
		from := len(t.done)
		var err error
		if t.as != nil {
			err = t.mayAct(&muts[i])
		}
		if err == nil {
			err = t.apply(&muts[i])
		}
		for k := from; err == nil && t.orgs != nil && k < len(t.done); k++ {
			err = t.confined(k)
		}
		if err != nil {
			t.rollbackTo(mark)
			if e, ok := err.(*Error); ok && len(muts) > 1 {
				e.Msg = strings.TrimPrefix(fmt.Sprintf("%s (mutation %d)", e.Msg, i), " ")
			}
			return err
		}
		if t.ends != nil {
			*t.ends = append(*t.ends, len(t.done))
		}
	}
	return nil
}

// yieldEvery is how many mutations a write applies (or undoes) between
// letting other goroutines have its core. Go gives a busy goroutine its
// core for 10 ms or more before it preempts it: on two cores, a long write
// and one other busy goroutine (a large request being decoded, the
// collector's worker) held both for 20 to 50 ms at a time while a check
// waited to be run (an execution trace of canopyload -bulk -trace).
const yieldEvery = 128

// yieldAfter yields the core after every yieldEvery mutations.
func yieldAfter(i int) {
	if i%yieldEvery == yieldEvery-1 {
		runtime.Gosched()
	}
}

// rollbackTo undoes every primitive applied after the first mark ones.
func (t *txn) rollbackTo(mark int) {
	for i := len(t.undo) - 1; i >= mark; i-- {
		yieldAfter(i)
		u := &txn{s: t.s}
		if err := u.apply(&t.undo[i]); err != nil {
			panic(fmt.Sprintf("graph: undo of %v failed: %v", t.done[i], err))
		}
	}
	t.done, t.undo = t.done[:mark], t.undo[:mark]
	if t.scoped {
		t.scopes = t.scopes[:mark]
	}
	if t.audited {
		t.subjects = t.subjects[:mark]
	}
}

func (t *txn) record(m Mutation, inverse Mutation) {
	if t.forget {
		return
	}
	t.done = append(t.done, m)
	t.undo = append(t.undo, inverse)
	if t.scoped {
		t.scopes = append(t.scopes, t.table.scopeOf(t.s, &m, &inverse))
	}
	if t.audited {
		t.subjects = append(t.subjects, t.s.subjectsOf(&m, &inverse))
	}
}

// apply checks and applies one mutation.
func (t *txn) apply(m *Mutation) error {
	if m.unexpire != nil {
		return t.setMark(m.unexpire.ID, dueExpiry, false)
	}
	if m.unstart != nil {
		return t.setMark(m.unstart.ID, dueStart, false)
	}
	w := m.which()
	if w < 0 {
		return newErr("write", "", ErrInvalid, "a mutation must set exactly one operation")
	}
	op := opNames[w]
	switch {
	case m.CreateFolder != nil:
		return t.createFolder(op, *m.CreateFolder)
	case m.RenameFolder != nil:
		return t.renameFolder(op, *m.RenameFolder)
	case m.RelabelFolder != nil:
		return t.relabelFolder(op, *m.RelabelFolder)
	case m.MoveFolder != nil:
		return t.moveFolder(op, *m.MoveFolder)
	case m.DeleteFolder != nil:
		return t.deleteFolder(op, *m.DeleteFolder)
	case m.CreateUser != nil:
		return t.createUser(op, *m.CreateUser)
	case m.UpdateUser != nil:
		return t.updateUser(op, *m.UpdateUser)
	case m.MoveUser != nil:
		return t.moveUser(op, *m.MoveUser)
	case m.SetUserState != nil:
		return t.setUserState(op, *m.SetUserState)
	case m.DeleteUser != nil:
		return t.deleteUser(op, *m.DeleteUser)
	case m.AddExtraGroup != nil:
		return t.addExtra(op, *m.AddExtraGroup)
	case m.DelExtraGroup != nil:
		return t.removeExtra(op, *m.DelExtraGroup)
	case m.AddGrant != nil:
		return t.addGrant(op, *m.AddGrant)
	case m.RemoveGrant != nil:
		return t.removeGrant(op, *m.RemoveGrant)
	case m.AddLock != nil:
		return t.addLock(op, *m.AddLock)
	case m.RemoveLock != nil:
		return t.removeLock(op, *m.RemoveLock)
	case m.SetRule != nil:
		return t.setRule(op, *m.SetRule)
	case m.RemoveRule != nil:
		return t.removeRule(op, *m.RemoveRule)
	case m.PutRight != nil:
		return t.putRight(op, *m.PutRight)
	case m.DeleteRight != nil:
		return t.deleteRight(op, *m.DeleteRight)
	case m.SetSelfRights != nil:
		return t.setSelfRights(op, *m.SetSelfRights)
	case m.ExpireGrant != nil:
		return t.markGrant(op, *m.ExpireGrant, dueExpiry)
	case m.StartGrant != nil:
		return t.markGrant(op, *m.StartGrant, dueStart)
	}
	return newErr(op, "", ErrInvalid, "unhandled mutation")
}
