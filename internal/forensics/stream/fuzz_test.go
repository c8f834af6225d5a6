package stream

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"time"

	"noops/internal/forensics/flow"
)

// ops reads fuzz input as a sequence of numbers, zeros when exhausted.
type ops struct{ b []byte }

func (o *ops) u8() byte {
	if len(o.b) == 0 {
		return 0
	}
	v := o.b[0]
	o.b = o.b[1:]
	return v
}

func (o *ops) u32() uint32 {
	var x [4]byte
	for i := range x {
		x[i] = o.u8()
	}
	return binary.LittleEndian.Uint32(x[:])
}

// FuzzAssembler feeds a known stream in an order, segmentation and
// duplication the input chooses, interleaved with arbitrary packets of
// other connections. It must never panic, every Half must be consistent,
// and the known stream must come out exactly.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01\xff\xff\xff\xf0\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0"))
	f.Add([]byte("\x00\x00\x00\x00\x00\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\xff\x07\x13\x02\x09\x01\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"))
	f.Add(append([]byte("\x03\x10\x00\x00\x80"), make([]byte, 200)...))
	f.Fuzz(fuzzBody)
}

func fuzzBody(t *testing.T, in []byte) {
	o := &ops{in}
	rule := OverlapRule(o.u8() & 1)
	isn := o.u32()
	withSYN := o.u8()&1 == 1
	known := randBytes(1500, 99)
	ksrv := flow.Endpoint{Addr: netip.MustParseAddr("192.0.2.1"), Port: 20}
	kcli := flow.Endpoint{Addr: netip.MustParseAddr("192.0.2.2"), Port: 50000}
	var ps []*Packet
	if withSYN {
		ps = append(ps, &Packet{Src: ksrv, Dst: kcli, Proto: ProtoTCP, Seq: isn, Ack: 1, SYN: true, ACK: true})
	}
	// Segments in boundaries the input chooses; some sent twice with
	// other boundaries (retransmissions carry the same bytes).
	for off := 0; off < len(known); {
		n := min(int(o.u8()^0x5a)+1, len(known)-off) // 91 once the input is used up
		ps = append(ps, &Packet{Src: ksrv, Dst: kcli, Proto: ProtoTCP, Seq: isn + 1 + uint32(off), Payload: known[off : off+n]})
		if d := o.u8(); d < 40 {
			s := max(0, off-int(d))
			e := min(len(known), off+n+int(o.u8()))
			ps = append(ps, &Packet{Src: ksrv, Dst: kcli, Proto: ProtoTCP, Seq: isn + 1 + uint32(s), Payload: known[s:e]})
		}
		off += n
	}
	for i := len(ps) - 1; i > 0; i-- {
		j := int(o.u32() % uint32(i+1))
		ps[i], ps[j] = ps[j], ps[i]
	}
	// Arbitrary packets of other connections, interleaved.
	var mixed []*Packet
	var at time.Duration
	for _, p := range ps {
		mixed = append(mixed, p)
		for o.u8()&3 == 1 && len(mixed) < 4000 {
			f := o.u8()
			q := &Packet{
				Src:   flow.Endpoint{Addr: netip.AddrFrom4([4]byte{10, 0, 0, f & 1}), Port: uint16(f>>1&3) + 1},
				Dst:   flow.Endpoint{Addr: netip.AddrFrom4([4]byte{10, 0, 0, 2 + f>>3&1}), Port: uint16(f>>4&3) + 1},
				Proto: []uint8{ProtoTCP, ProtoTCP, ProtoUDP, 1}[f>>6],
				Seq:   o.u32(), Ack: o.u32(),
			}
			fl := o.u8()
			q.SYN, q.ACK, q.FIN, q.RST, q.PSH = fl&1 != 0, fl&2 != 0, fl&4 != 0, fl&8 != 0, fl&16 != 0
			q.Payload = make([]byte, o.u8()%64)
			for i := range q.Payload {
				q.Payload[i] = o.u8()
			}
			if fl&32 != 0 {
				q.Truncated, q.WireLen = true, int(o.u8())*8
			}
			at += time.Duration(o.u8()) * time.Millisecond * 100
			q.Time = t0.Add(at)
			mixed = append(mixed, q)
		}
	}
	var conns []*flow.Conn
	a := New(Options{Overlap: rule}, func(c *flow.Conn) { conns = append(conns, c) }, func(flow.Datagram) {})
	for i, p := range mixed {
		p.Frame = i + 1
		if p.Time.IsZero() {
			p.Time = t0.Add(at)
		}
		a.Add(p)
	}
	a.Flush()
	a.Warnings()
	var found int
	for _, c := range conns {
		for _, h := range []*flow.Half{c.ToServer, c.ToClient} {
			checkHalf(t, h)
		}
		if c.Server == ksrv && c.Client == kcli {
			found++
			wantBytes(t, "known stream", readAll(t, c.ToClient), known)
			if len(c.ToClient.Gaps) != 0 || len(c.ToClient.Overlaps) != 0 {
				t.Fatalf("known stream: gaps %v overlaps %v", c.ToClient.Gaps, c.ToClient.Overlaps)
			}
		}
		c.Close()
	}
	if found != 1 {
		t.Fatalf("known connection handed out %d times", found)
	}
}

// checkHalf verifies what every Half must satisfy. Gaps may be huge (a
// stray ACK up to 1 GiB ahead proves bytes were sent), so it reads the
// captured ranges in full and only the edges of each gap.
func checkHalf(t *testing.T, h *flow.Half) {
	t.Helper()
	if h == nil {
		return
	}
	if h.Size < 0 {
		t.Fatalf("size %d", h.Size)
	}
	for _, rs := range [][]flow.Range{h.Gaps, h.Overlaps} {
		for i, r := range rs {
			if r.Start < 0 || r.End > h.Size || r.Start >= r.End || i > 0 && rs[i-1].End > r.Start {
				t.Fatalf("bad ranges %v for size %d", rs, h.Size)
			}
		}
	}
	var kept int64
	cur := int64(0)
	for _, g := range append(slices.Clone(h.Gaps), flow.Range{Start: h.Size, End: h.Size}) {
		if b, err := h.Bytes(cur, g.Start); err != nil || int64(len(b)) != g.Start-cur {
			t.Fatalf("reading %d-%d: %d bytes, %v", cur, g.Start, len(b), err)
		}
		kept += g.Start - cur
		for _, r := range []flow.Range{{Start: g.Start, End: min(g.End, g.Start+4096)}, {Start: max(g.Start, g.End-4096), End: g.End}} {
			b, err := h.Bytes(r.Start, r.End)
			if err != nil || int64(len(b)) != r.End-r.Start || slices.ContainsFunc(b, func(x byte) bool { return x != 0 }) {
				t.Fatalf("gap %v: %d bytes, %v, or not zero", g, len(b), err)
			}
		}
		cur = g.End
	}
	if kept > 1<<20 {
		t.Fatalf("%d bytes kept from a small input", kept)
	}
}
