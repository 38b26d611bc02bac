package graph_test

import (
	"runtime"
	"strconv"
	"testing"
	"unsafe"
)

// BenchmarkCollectLayouts times a full collection over a million nodes
// shaped like a user, laid out three ways, with nothing else live: how the
// collector's work depends on the layout of the index, whatever the index
// holds. today: the lists as slices and the strings as strings; arena:
// the same with the strings' bytes in a few large blocks, so that their
// pointers reach a few objects; plain: no pointer at all (lists inline,
// strings as offsets into blocks the node does not point to). The
// collector visits every pointer, wherever it points: only plain removes
// its work.
func BenchmarkCollectLayouts(b *testing.B) {
	const n = 1_000_000
	type today struct {
		home, homeAt          int32
		active                bool
		extras, on, locks     []int32
		held                  []struct{ a, b int64 }
		extraAt               []int32
		id, name, class, stat string
	}
	type arena struct {
		home, homeAt          int32
		active                bool
		nx                    uint8
		extras, extraAt       [3]int32
		more                  *int
		id, name, class, stat string
	}
	type plain struct {
		home, homeAt    int32
		active          bool
		nx              uint8
		extras, extraAt [3]int32
		id, name        [2]uint32 // offset and length in a block of bytes
		class, stat     uint8
	}
	classes := []string{"student", "teacher", "admin"}
	collect := func(b *testing.B, live any) {
		runtime.GC()
		for b.Loop() {
			runtime.GC()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1e3, "ms/collection")
		runtime.KeepAlive(live)
	}
	b.Run("today", func(b *testing.B) {
		nodes := make([][1024]today, n/1024+1)
		for i := range n {
			x := &nodes[i/1024][i%1024]
			x.id, x.name, x.class, x.stat = "user-"+strconv.Itoa(i), "Name "+strconv.Itoa(i), classes[i%3], "active"
			x.extras, x.extraAt = []int32{1, 2}, []int32{0, 0}
		}
		collect(b, nodes)
	})
	b.Run("arena", func(b *testing.B) {
		var block []byte
		intern := func(s string) string {
			if cap(block)-len(block) < len(s) {
				block = make([]byte, 0, 1<<20)
			}
			at := len(block)
			block = append(block, s...)
			return unsafe.String(&block[at], len(s))
		}
		nodes := make([][1024]arena, n/1024+1)
		for i := range n {
			x := &nodes[i/1024][i%1024]
			x.id, x.name, x.class, x.stat = intern("user-"+strconv.Itoa(i)), intern("Name "+strconv.Itoa(i)), classes[i%3], "active"
			x.nx, x.extras = 2, [3]int32{1, 2}
		}
		collect(b, nodes)
	})
	b.Run("plain", func(b *testing.B) {
		nodes := make([][1024]plain, n/1024+1)
		for i := range n {
			x := &nodes[i/1024][i%1024]
			x.nx, x.extras, x.id = 2, [3]int32{1, 2}, [2]uint32{uint32(i * 12), 12}
		}
		collect(b, nodes)
	})
}
