package stream

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"noops/internal/forensics/flow"
)

var (
	cli = flow.Endpoint{Addr: netip.MustParseAddr("10.0.0.2"), Port: 40000}
	srv = flow.Endpoint{Addr: netip.MustParseAddr("10.0.0.1"), Port: 21}
	t0  = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
)

// transfer describes one TCP connection: the client sends req, the
// server answers resp, both close with FINs.
type transfer struct {
	cli, srv   flow.Endpoint
	cISN, sISN uint32
	req, resp  []byte
	mss        int
}

func newTransfer(cISN, sISN uint32, req, resp []byte) transfer {
	return transfer{cli: cli, srv: srv, cISN: cISN, sISN: sISN, req: req, resp: resp, mss: 1448}
}

// packets returns the connection's packets in the order they were sent.
func (tr transfer) packets() []*Packet {
	c, s := tr.cISN, tr.sISN
	rq, rs := uint32(len(tr.req)), uint32(len(tr.resp))
	var out []*Packet
	add := func(p Packet) { out = append(out, &p) }
	toS := func(p Packet) Packet { p.Src, p.Dst, p.Proto = tr.cli, tr.srv, ProtoTCP; return p }
	toC := func(p Packet) Packet { p.Src, p.Dst, p.Proto = tr.srv, tr.cli, ProtoTCP; return p }
	add(toS(Packet{Seq: c, SYN: true}))
	add(toC(Packet{Seq: s, Ack: c + 1, SYN: true, ACK: true}))
	add(toS(Packet{Seq: c + 1, Ack: s + 1, ACK: true}))
	for off := 0; off < len(tr.req); off += tr.mss {
		seg := tr.req[off:min(off+tr.mss, len(tr.req))]
		add(toS(Packet{Seq: c + 1 + uint32(off), Ack: s + 1, ACK: true, PSH: true, Payload: seg}))
	}
	if rq > 0 {
		add(toC(Packet{Seq: s + 1, Ack: c + 1 + rq, ACK: true}))
	}
	for i, off := 0, 0; off < len(tr.resp); i, off = i+1, off+tr.mss {
		seg := tr.resp[off:min(off+tr.mss, len(tr.resp))]
		add(toC(Packet{Seq: s + 1 + uint32(off), Ack: c + 1 + rq, ACK: true, Payload: seg}))
		if i%2 == 1 {
			add(toS(Packet{Seq: c + 1 + rq, Ack: s + 1 + uint32(off+len(seg)), ACK: true}))
		}
	}
	add(toC(Packet{Seq: s + 1 + rs, Ack: c + 1 + rq, FIN: true, ACK: true}))
	add(toS(Packet{Seq: c + 1 + rq, Ack: s + 2 + rs, ACK: true}))
	add(toS(Packet{Seq: c + 1 + rq, Ack: s + 2 + rs, FIN: true, ACK: true}))
	add(toC(Packet{Seq: s + 2 + rs, Ack: c + 2 + rq, ACK: true}))
	return out
}

// fromServer keeps the packets the server sent, without its SYN-ACK
// when noSYN is set.
func fromServer(ps []*Packet, noSYN bool) []*Packet {
	var out []*Packet
	for _, p := range ps {
		if p.Src == srv && !(noSYN && p.SYN) {
			out = append(out, p)
		}
	}
	return out
}

func fromClient(ps []*Packet) []*Packet {
	var out []*Packet
	for _, p := range ps {
		if p.Src == cli {
			out = append(out, p)
		}
	}
	return out
}

// shuffled returns a random permutation of ps in which a fraction dup of
// the packets appears twice.
func shuffled(ps []*Packet, seed uint64, dup float64) []*Packet {
	r := rand.New(rand.NewPCG(seed, 1))
	out := append([]*Packet(nil), ps...)
	for _, p := range ps {
		if r.Float64() < dup {
			q := *p
			out = append(out, &q)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func reversed(ps []*Packet) []*Packet {
	out := make([]*Packet, len(ps))
	for i, p := range ps {
		out[len(ps)-1-i] = p
	}
	return out
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n:n]
}

// result is what an Assembler handed out.
type result struct {
	conns    []*flow.Conn
	early    int // conns handed out before Flush
	grams    []flow.Datagram
	warnings []flow.Warning
}

// run feeds ps in order (frame i+1, one millisecond apart) and flushes.
func run(t testing.TB, opt Options, ps []*Packet) result {
	t.Helper()
	var res result
	a := New(opt, func(c *flow.Conn) { res.conns = append(res.conns, c) }, func(d flow.Datagram) { res.grams = append(res.grams, d) })
	for i, p := range ps {
		q := *p
		q.Frame, q.Time = i+1, t0.Add(time.Duration(i)*time.Millisecond)
		a.Add(&q)
	}
	res.early = len(res.conns)
	a.Flush()
	res.warnings = a.Warnings()
	t.Cleanup(func() {
		for _, c := range res.conns {
			c.Close()
		}
	})
	return res
}

func readAll(t testing.TB, h *flow.Half) []byte {
	t.Helper()
	if h == nil {
		return nil
	}
	b, err := h.Bytes(0, h.Size)
	if err != nil {
		t.Fatalf("reading half %s → %s: %v", h.Src, h.Dst, err)
	}
	return b
}

// only returns the single connection of res.
func only(t testing.TB, res result) *flow.Conn {
	t.Helper()
	if len(res.conns) != 1 {
		t.Fatalf("got %d connections, want 1; warnings: %v", len(res.conns), res.warnings)
	}
	return res.conns[0]
}

func wantBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: got %d bytes, want %d; first difference at %d", what, len(got), len(want), i)
	}
}
