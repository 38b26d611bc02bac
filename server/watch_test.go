package server

import (
	"testing"

	"github.com/canopy-authz/canopy/graph"
)

// TestStalledSubscriberIsCutOff: a subscriber that never reads fills its
// buffer; the next Publish does not block but cuts it off and counts it,
// and a subscriber that keeps up is untouched.
func TestStalledSubscriberIsCutOff(t *testing.T) {
	h := NewHub(2)
	stalled, _, leave1 := h.subscribe()
	defer leave1()
	reader, _, leave2 := h.subscribe()
	defer leave2()
	for rev := uint64(1); rev <= 5; rev++ {
		h.Publish([]graph.Commit{{Revision: rev}}) // returns at once, whatever stalled does
		if got := (<-reader.ch).Revision; got != rev {
			t.Fatalf("reader got revision %d, want %d", got, rev)
		}
		if rev == 2 && h.MaxDepth() != 2 {
			t.Fatalf("depth %d with a full buffer", h.MaxDepth())
		}
	}
	select {
	case <-stalled.overflow:
	default:
		t.Fatal("the stalled subscriber was not cut off")
	}
	if h.Dropped() != 1 || h.Subscribers() != 1 {
		t.Fatalf("dropped %d, subscribers %d", h.Dropped(), h.Subscribers())
	}
}
