package stream

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"noops/internal/forensics/flow"
)

// TestRSTBeforeLastSegment: a client's RST captured before the server's
// last data segment (its ACK proves the segment was sent) does not end
// the connection early: the late segment joins it, with no gap.
func TestRSTBeforeLastSegment(t *testing.T) {
	srv := flow.Endpoint{Addr: netip.MustParseAddr("10.0.0.1"), Port: 2000}
	cli := flow.Endpoint{Addr: netip.MustParseAddr("10.0.0.2"), Port: 40000}
	var conns []*flow.Conn
	a := New(Options{}, func(c *flow.Conn) { conns = append(conns, c) }, nil)
	frame := 0
	add := func(src, dst flow.Endpoint, seq, ack uint32, syn, ackf, rst bool, payload []byte) {
		frame++
		a.Add(&Packet{Frame: frame, Time: time.Unix(1700000000, int64(frame)), Src: src, Dst: dst, Proto: ProtoTCP,
			Seq: seq, Ack: ack, SYN: syn, ACK: ackf, RST: rst, Payload: payload})
	}
	data := bytes.Repeat([]byte("abcdefghij"), 30) // 300 bytes
	add(cli, srv, 100, 0, true, false, false, nil)
	add(srv, cli, 500, 101, true, true, false, nil)
	add(cli, srv, 101, 501, false, true, false, nil)
	add(srv, cli, 501, 101, false, true, false, data[:100])
	add(srv, cli, 601, 101, false, true, false, data[100:200])
	add(cli, srv, 101, 801, false, true, true, nil) // RST, acknowledging all 300 bytes
	add(srv, cli, 701, 101, false, true, false, data[200:])
	a.Flush()
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	h := conns[0].ToClient
	got, err := h.Bytes(0, h.Size)
	if err != nil || !bytes.Equal(got, data) || len(h.Gaps) != 0 {
		t.Errorf("server's stream: %d bytes (equal %v), gaps %v, err %v; want the 300 bytes, no gap", len(got), bytes.Equal(got, data), h.Gaps, err)
	}
}
