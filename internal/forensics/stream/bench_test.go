package stream

import (
	"math/rand/v2"
	"sync"
	"testing"

	"noops/internal/forensics/flow"
)

var benchStream = sync.OnceValue(func() []byte { return randBytes(200<<20, 42) })

// benchPackets splits the 200 MB stream into 1448-byte segments; with
// shuffle, 10% of them are swapped with one up to 32 segments later, as
// reordering on a real path would.
func benchPackets(shuffle bool) []*Packet {
	data := benchStream()
	var ps []*Packet
	for off := 0; off < len(data); off += 1448 {
		ps = append(ps, &Packet{Src: srv, Dst: cli, Proto: ProtoTCP, Seq: 1 + uint32(off), Ack: 1, ACK: true, Payload: data[off:min(off+1448, len(data))]})
	}
	if shuffle {
		r := rand.New(rand.NewPCG(1, 2))
		for i := range ps {
			if j := i + 1 + r.IntN(32); r.IntN(10) == 0 && j < len(ps) {
				ps[i], ps[j] = ps[j], ps[i]
			}
		}
	}
	for i, p := range ps {
		p.Frame, p.Time = i+1, t0
	}
	return ps
}

// BenchmarkReassemble measures throughput for a 200 MB one-direction
// stream in 1448-byte segments, held in memory, and spilled to disk past
// a 16 MiB budget.
func BenchmarkReassemble(b *testing.B) {
	for _, bc := range []struct {
		name    string
		shuffle bool
		memory  int64
	}{
		{"in-order", false, 1 << 30},
		{"shuffled-10pct", true, 1 << 30},
		{"in-order-spilled", false, 16 << 20},
		{"shuffled-10pct-spilled", true, 16 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ps := benchPackets(bc.shuffle)
			b.SetBytes(int64(len(benchStream())))
			b.ReportAllocs()
			for b.Loop() {
				var got *flow.Conn
				a := New(Options{MemoryBytes: bc.memory, TempDir: b.TempDir()}, func(c *flow.Conn) { got = c }, nil)
				for _, p := range ps {
					a.Add(p)
				}
				a.Flush()
				if got == nil || got.ToClient.Size != int64(len(benchStream())) || len(got.ToClient.Gaps) != 0 {
					b.Fatal("stream not reassembled")
				}
				got.Close()
			}
		})
	}
}
