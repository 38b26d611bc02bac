package orggen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/canopy-authz/canopy/graph"
)

// Churn is a steady write load on a generated organisation: users moved
// within their tenant, grants given and taken, locks set and lifted. A
// quarter of the changes concern the users in focus (those a benchmark
// watches), when there are any. It is safe for concurrent use.
type Churn struct {
	org   *Org
	focus []string
	mu    sync.Mutex // guards r, n and live
	r     *rand.Rand
	n     int
	live  []graph.Mutation // the removals of what was added and committed
	seed  uint64
}

// NewChurn returns a churn over org, seeded. The ids it adds carry the
// seed: churns with different seeds never collide.
func NewChurn(org *Org, focus []string, seed uint64) *Churn {
	return &Churn{org: org, focus: focus, r: rand.New(rand.NewPCG(seed, seed)), seed: seed}
}

// Next returns the next batch and, when it adds a grant or lock, the
// mutation that removes it, to pass to Committed once the batch is.
func (c *Churn) Next() (batch []graph.Mutation, undo *graph.Mutation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.r
	c.n++
	user := c.org.Users[r.IntN(len(c.org.Users))]
	if len(c.focus) > 0 && r.IntN(4) == 0 {
		user = c.focus[r.IntN(len(c.focus))]
	}
	folder := c.org.FolderFor(r, user)
	switch k := r.IntN(10); {
	case k < 4:
		return []graph.Mutation{{MoveUser: &graph.Move{ID: user, To: folder}}}, nil
	case k < 6 && len(c.live) > 0:
		i := r.IntN(len(c.live))
		m := c.live[i]
		c.live = slices.Delete(c.live, i, i+1)
		return []graph.Mutation{m}, nil
	case k < 9:
		id := fmt.Sprintf("churn%d-g%d", c.seed, c.n)
		return []graph.Mutation{{AddGrant: &graph.Grant{ID: id, Holder: graph.UserRef(user), Target: graph.FolderRef(folder), Rights: []string{"read"}}}},
			&graph.Mutation{RemoveGrant: &graph.Delete{ID: id}}
	default:
		id := fmt.Sprintf("churn%d-l%d", c.seed, c.n)
		return []graph.Mutation{{AddLock: &graph.Lock{ID: id, Target: graph.FolderRef(folder), Rights: []string{"edit"}}}},
			&graph.Mutation{RemoveLock: &graph.Delete{ID: id}}
	}
}

// Committed records that a batch with this undo was committed, so that a
// later batch may remove what it added.
func (c *Churn) Committed(undo *graph.Mutation) {
	if undo == nil {
		return
	}
	c.mu.Lock()
	c.live = append(c.live, *undo)
	c.mu.Unlock()
}
