package unpack

import (
	"bytes"
	"context"
	"testing"
)

// FuzzWalk feeds arbitrary bytes to Walk: it must not panic, must keep
// its budgets and must describe every node consistently.
func FuzzWalk(f *testing.F) {
	f.Add([]byte("plain text"))
	f.Add([]byte(b64(plain)))
	f.Add([]byte(realQP))
	f.Add([]byte(realUU))
	f.Add(bzip2Flag)
	f.Add(gz(f, []byte(plain)))
	f.Add(makeTar(f, file{name: "a/b.txt", data: []byte(b64("flag{fuzz}"))}, file{name: "l", typ: '2', link: "/x"}))
	f.Add(makeZip(f, 8, file{name: "z.txt", data: []byte(hx("flag{zip}"))}))
	f.Add(makeZip(f, 0, file{name: "s.txt", data: []byte("stored")}))
	f.Add(gz(f, makeTar(f, file{name: "in.zip", data: makeZip(f, 8, file{name: "x", data: []byte("deep")})})))
	opt := Options{MaxTotal: 4 << 20, MaxMemory: 1 << 20, MaxNodes: 2000, Flag: flagRE}
	f.Fuzz(func(t *testing.T, data []byte) {
		root, err := Walk(context.Background(), "fuzz", bytes.NewReader(data), int64(len(data)), opt)
		if err != nil {
			t.Fatalf("Walk: %v", err)
		}
		defer root.Close()
		var produced int64
		nodes := 0
		root.Visit(func(n *Node) bool {
			nodes++
			if n.Depth > 0 {
				produced += n.Size
			}
			if n.Depth > DefaultMaxDepth {
				t.Errorf("%v below the depth limit", n.Chain)
			}
			for _, w := range n.Warnings {
				if bytes.Contains([]byte(w), []byte("internal error")) {
					t.Errorf("%v: %s", n.Chain, w)
				}
			}
			return true
		})
		if produced > opt.MaxTotal || nodes > opt.MaxNodes {
			t.Errorf("budgets exceeded: %d bytes, %d nodes", produced, nodes)
		}
		checkTree(t, root)
	})
}
