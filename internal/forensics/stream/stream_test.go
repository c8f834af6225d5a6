package stream

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"noops/internal/forensics/flow"
)

func TestReassembleOrders(t *testing.T) {
	t.Parallel()
	req := []byte("RETR secret.tar\r\n")
	resp := randBytes(300_000, 1)
	tr := newTransfer(1000, 5_000_000, req, resp)
	tests := []struct {
		name      string
		packets   []*Packet
		wantEarly bool // complete: handed out before Flush
		wantRetr  bool
	}{
		{name: "in order", packets: tr.packets(), wantEarly: true},
		{name: "reversed", packets: reversed(tr.packets()), wantEarly: true},
		{name: "shuffled with duplicates", packets: shuffled(tr.packets(), 7, 0.1), wantEarly: true, wantRetr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, Options{}, tc.packets)
			c := only(t, res)
			if c.Client != cli || c.Server != srv {
				t.Errorf("client, server = %v, %v; want %v, %v", c.Client, c.Server, cli, srv)
			}
			wantBytes(t, "to server", readAll(t, c.ToServer), req)
			wantBytes(t, "to client", readAll(t, c.ToClient), resp)
			for _, h := range []*flow.Half{c.ToServer, c.ToClient} {
				if len(h.Gaps) != 0 || len(h.Overlaps) != 0 || !h.SYN || !h.FIN || h.RST {
					t.Errorf("%s → %s: gaps %v overlaps %v SYN %v FIN %v RST %v", h.Src, h.Dst, h.Gaps, h.Overlaps, h.SYN, h.FIN, h.RST)
				}
			}
			if want := (len(resp) + 1447) / 1448; c.ToClient.Segments != want {
				t.Errorf("segments = %d, want %d", c.ToClient.Segments, want)
			}
			if (c.ToClient.Retransmitted > 0) != tc.wantRetr {
				t.Errorf("retransmitted = %d, want some: %v", c.ToClient.Retransmitted, tc.wantRetr)
			}
			if got := res.early == 1; got != tc.wantEarly {
				t.Errorf("handed out before Flush = %v, want %v", got, tc.wantEarly)
			}
			if len(res.warnings) != 0 {
				t.Errorf("warnings: %v", res.warnings)
			}
		})
	}
}

// TestPermutations reassembles 1000 segments in random order with 10%
// duplicates, for many seeds.
func TestPermutations(t *testing.T) {
	t.Parallel()
	resp := randBytes(1000*1448, 2)
	tr := newTransfer(77, math.MaxUint32-400_000, []byte("GET / HTTP/1.0\r\n\r\n"), resp)
	seeds := 40
	if testing.Short() {
		seeds = 5
	}
	for seed := range uint64(seeds) {
		ps := shuffled(tr.packets(), seed, 0.1)
		dups := len(ps) - len(tr.packets())
		res := run(t, Options{}, ps)
		c := only(t, res)
		wantBytes(t, fmt.Sprintf("seed %d", seed), readAll(t, c.ToClient), resp)
		if len(c.ToClient.Gaps) != 0 || c.ToClient.Segments != 1000 {
			t.Fatalf("seed %d: gaps %v segments %d", seed, c.ToClient.Gaps, c.ToClient.Segments)
		}
		if r := c.ToClient.Retransmitted + c.ToServer.Retransmitted; r > dups || r < dups/3 {
			t.Fatalf("seed %d: %d retransmissions counted for %d duplicated packets", seed, r, dups)
		}
	}
}

func TestOverlaps(t *testing.T) {
	t.Parallel()
	orig := []byte("0123456789abcdefghij")
	type seg struct {
		off  int
		data string
	}
	tests := []struct {
		name     string
		rule     OverlapRule
		segs     []seg
		want     string
		overlaps []flow.Range
		retrans  int
	}{
		{"identical copy is a retransmission", FirstWins, []seg{{0, "0123456789"}, {10, "abcdefghij"}, {0, "0123456789"}}, string(orig), nil, 1},
		{"first wins", FirstWins, []seg{{0, "0123456789"}, {10, "abcdefghij"}, {2, "23XY67"}}, string(orig), []flow.Range{rg(4, 6)}, 1},
		{"last wins", LastWins, []seg{{0, "0123456789"}, {10, "abcdefghij"}, {2, "23XY67"}}, "0123XY6789abcdefghij", []flow.Range{rg(4, 6)}, 1},
		{"first wins, the conflicting copy came first", FirstWins, []seg{{10, "ABCDEFGHIJ"}, {0, "0123456789"}, {10, "abcdefghij"}}, "0123456789ABCDEFGHIJ", []flow.Range{rg(10, 20)}, 1},
		{"last wins, the conflicting copy came first", LastWins, []seg{{10, "ABCDEFGHIJ"}, {0, "0123456789"}, {10, "abcdefghij"}}, string(orig), []flow.Range{rg(10, 20)}, 1},
		{"spanning two segments and a hole", FirstWins, []seg{{0, "01234"}, {10, "abcde"}, {3, "3X56789aZcdefghij"}}, string(orig), []flow.Range{rg(4, 5), rg(11, 12)}, 0},
		{"keep-alive byte is not an overlap", LastWins, []seg{{0, "0123456789"}, {10, "abcdefghij"}, {19, "\x00"}}, string(orig), nil, 0},
		{"spanning, last wins", LastWins, []seg{{0, "01234"}, {10, "abcde"}, {3, "3X56789aZcdefghij"}}, "0123X56789aZcdefghij", []flow.Range{rg(4, 5), rg(11, 12)}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ps []*Packet
			for _, s := range tc.segs {
				ps = append(ps, &Packet{Src: srv, Dst: cli, Proto: ProtoTCP, Seq: 9000 + uint32(s.off), Payload: []byte(s.data)})
			}
			c := only(t, run(t, Options{Overlap: tc.rule}, ps))
			wantBytes(t, "stream", readAll(t, c.ToClient), []byte(tc.want))
			if !slices.Equal(c.ToClient.Overlaps, tc.overlaps) {
				t.Errorf("overlaps = %v, want %v", c.ToClient.Overlaps, tc.overlaps)
			}
			if c.ToClient.Retransmitted != tc.retrans {
				t.Errorf("retransmitted = %d, want %d", c.ToClient.Retransmitted, tc.retrans)
			}
		})
	}
}

func TestGaps(t *testing.T) {
	t.Parallel()
	resp := randBytes(20*1448, 3)
	tr := newTransfer(10, 20, nil, resp)
	seqOf := func(k int) uint32 { return 21 + uint32(k*1448) }
	drop := func(seqs ...uint32) []*Packet {
		var out []*Packet
		for _, p := range tr.packets() {
			if p.Src == srv && len(p.Payload) > 0 && slices.Contains(seqs, p.Seq) {
				continue
			}
			out = append(out, p)
		}
		return out
	}
	tests := []struct {
		name string
		ps   []*Packet
		gaps []flow.Range
	}{
		{"middle segment lost", drop(seqOf(7)), []flow.Range{rg(7*1448, 8*1448)}},
		{"first segment lost, SYN seen", drop(seqOf(0)), []flow.Range{rg(0, 1448)}},
		{"last segment lost, FIN seen", drop(seqOf(19)), []flow.Range{rg(19*1448, 20*1448)}},
		{"two adjacent and one more", drop(seqOf(3), seqOf(4), seqOf(10)), []flow.Range{rg(3*1448, 5*1448), rg(10*1448, 11*1448)}},
		{"first segment lost, server only without SYN-ACK: nothing shows it", shuffled(fromServer(drop(seqOf(0)), true), 1, 0), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, Options{}, tc.ps)
			c := only(t, res)
			h := c.ToClient
			if tc.gaps == nil {
				// Server-only without SYN: nothing shows the lost first
				// segment, so the stream starts at the second.
				wantBytes(t, "stream", readAll(t, h), resp[1448:])
				return
			}
			if !slices.Equal(h.Gaps, tc.gaps) {
				t.Fatalf("gaps = %v, want %v", h.Gaps, tc.gaps)
			}
			want := slices.Clone(resp)
			for _, g := range tc.gaps {
				clear(want[g.Start:g.End])
			}
			wantBytes(t, "stream", readAll(t, h), want)
			if res.early != 0 {
				t.Errorf("a connection with a gap was handed out before Flush")
			}
			if !hasWarning(res.warnings, "not captured") {
				t.Errorf("no gap warning in %v", res.warnings)
			}
		})
	}
}

func hasWarning(ws []flow.Warning, sub string) bool {
	return slices.ContainsFunc(ws, func(w flow.Warning) bool { return strings.Contains(w.Message, sub) })
}

// TestServerOnly is the case noops pcap is for: only the server's packets
// were captured, shuffled, without the handshake.
func TestServerOnly(t *testing.T) {
	t.Parallel()
	req := []byte("RETR flag.tar\r\n")
	resp := randBytes(1<<20, 4)
	tr := newTransfer(math.MaxUint32-3, 1_000_000, req, resp)
	for _, tc := range []struct {
		name    string
		noSYN   bool
		reqHalf bool // the SYN-ACK's ACK shows where the client's bytes began
	}{
		{"without SYN-ACK", true, false},
		{"with SYN-ACK", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for seed := range uint64(3) {
				res := run(t, Options{}, shuffled(fromServer(tr.packets(), tc.noSYN), seed, 0.05))
				c := only(t, res)
				if c.Client != cli || c.Server != srv {
					t.Fatalf("client, server = %v, %v", c.Client, c.Server)
				}
				wantBytes(t, "server's bytes", readAll(t, c.ToClient), resp)
				if len(c.ToClient.Gaps) != 0 {
					t.Fatalf("gaps %v", c.ToClient.Gaps)
				}
				if !tc.reqHalf {
					if c.ToServer != nil {
						t.Fatalf("ToServer = %+v, want nil", c.ToServer)
					}
					continue
				}
				h := c.ToServer
				if h == nil || h.Size != int64(len(req)) || !slices.Equal(h.Gaps, []flow.Range{rg(0, int64(len(req)))}) || h.Segments != 0 {
					t.Fatalf("ToServer = %+v, want %d bytes all gap", h, len(req))
				}
			}
		})
	}
}

// TestClientOnly: the client's ACKs prove how far the server's stream
// went; what was not captured is a gap at the end.
func TestClientOnly(t *testing.T) {
	t.Parallel()
	req := []byte("GET /big HTTP/1.1\r\n\r\n")
	resp := randBytes(40*1448, 5)
	tr := newTransfer(500, 600, req, resp)
	half := 600 + 1 + uint32(20*1448)
	var partial []*Packet
	for _, p := range tr.packets() {
		if p.Src == srv && (p.Seq >= half || p.FIN) {
			continue // the capture lost the server's second half and FIN
		}
		partial = append(partial, p)
	}
	tests := []struct {
		name    string
		ps      []*Packet
		kept    int
		wantFIN bool
	}{
		{"client only", shuffled(fromClient(tr.packets()), 3, 0), 0, false},
		{"server's second half lost", partial, 20 * 1448, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, Options{}, tc.ps)
			c := only(t, res)
			wantBytes(t, "client's bytes", readAll(t, c.ToServer), req)
			h := c.ToClient
			if h == nil {
				t.Fatalf("ToClient nil; the client's ACKs show %d bytes", len(resp))
			}
			if h.Size != int64(len(resp)) {
				t.Fatalf("size = %d, want %d", h.Size, len(resp))
			}
			if want := []flow.Range{rg(int64(tc.kept), int64(len(resp)))}; !slices.Equal(h.Gaps, want) {
				t.Fatalf("gaps = %v, want %v", h.Gaps, want)
			}
			wantBytes(t, "kept part", readAll(t, h)[:tc.kept], resp[:tc.kept])
			if h.FIN != tc.wantFIN {
				t.Errorf("FIN = %v", h.FIN)
			}
			if !hasWarning(res.warnings, "not captured") {
				t.Errorf("no gap warning: %v", res.warnings)
			}
		})
	}
}

func TestWraparound(t *testing.T) {
	t.Parallel()
	resp := randBytes(200_000, 6)
	for _, isn := range []uint32{math.MaxUint32 - 100_000, math.MaxUint32, math.MaxUint32 - 1447} {
		for _, noSYN := range []bool{false, true} {
			name := fmt.Sprintf("isn %d noSYN %v", isn, noSYN)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				tr := newTransfer(isn, isn, []byte("hello"), resp)
				ps := shuffled(tr.packets(), uint64(isn), 0.1)
				if noSYN {
					ps = shuffled(fromServer(tr.packets(), true), uint64(isn), 0.1)
				}
				c := only(t, run(t, Options{}, ps))
				wantBytes(t, name, readAll(t, c.ToClient), resp)
			})
		}
	}
}

func TestPortReuse(t *testing.T) {
	t.Parallel()
	a := newTransfer(100, 200, []byte("first"), randBytes(5000, 7))
	b := newTransfer(900_000, 700_000, []byte("second"), randBytes(7000, 8))
	unfinished := a.packets()[:6] // no FINs: the first is still open when the SYN comes
	tests := []struct {
		name string
		ps   []*Packet
	}{
		{"after close", append(a.packets(), b.packets()...)},
		{"while open", append(unfinished, b.packets()...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, Options{}, tc.ps)
			if len(res.conns) != 2 {
				t.Fatalf("got %d connections, want 2: %v", len(res.conns), res.warnings)
			}
			if res.conns[0].ID >= res.conns[1].ID {
				t.Errorf("IDs %d, %d not in order", res.conns[0].ID, res.conns[1].ID)
			}
			wantBytes(t, "first request", readAll(t, res.conns[0].ToServer), a.req)
			wantBytes(t, "second request", readAll(t, res.conns[1].ToServer), b.req)
			wantBytes(t, "second response", readAll(t, res.conns[1].ToClient), b.resp)
		})
	}
}

func TestFinRst(t *testing.T) {
	t.Parallel()
	resp := randBytes(10*1448, 9)
	tr := newTransfer(1, 2, []byte("x"), resp)
	full := tr.packets()
	var rst []*Packet
	for _, p := range full {
		if p.FIN {
			break
		}
		rst = append(rst, p)
	}
	rst = append(rst, &Packet{Src: cli, Dst: srv, Proto: ProtoTCP, Seq: 3, Ack: 3 + uint32(len(resp)), RST: true, ACK: true})
	trailing := &Packet{Src: srv, Dst: cli, Proto: ProtoTCP, Seq: 3 + uint32(len(resp)), Ack: 3, ACK: true}
	retrans := *full[5]
	tests := []struct {
		name     string
		ps       []*Packet
		fin, rst bool
	}{
		{"FIN both ways, a late ACK and a retransmission after", append(slices.Clone(full), trailing, &retrans), true, false},
		{"RST by the client", append(rst, trailing), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, Options{}, tc.ps)
			c := only(t, res)
			if res.early != 1 {
				t.Errorf("not handed out when it ended")
			}
			wantBytes(t, "stream", readAll(t, c.ToClient), resp)
			if c.ToClient.FIN != tc.fin || c.ToServer.RST != tc.rst {
				t.Errorf("FIN %v RST %v, want %v %v", c.ToClient.FIN, c.ToServer.RST, tc.fin, tc.rst)
			}
		})
	}
}

func TestSnaplen(t *testing.T) {
	t.Parallel()
	resp := randBytes(8*1448, 10)
	tr := newTransfer(1, 2, nil, resp)
	var ps []*Packet
	for _, p := range tr.packets() {
		if len(p.Payload) > 100 {
			q := *p
			q.Payload, q.Truncated, q.WireLen = p.Payload[:100], true, len(p.Payload)
			p = &q
		}
		ps = append(ps, p)
	}
	res := run(t, Options{}, ps)
	h := only(t, res).ToClient
	if h.Size != int64(len(resp)) || len(h.Gaps) != 8 {
		t.Fatalf("size %d gaps %v", h.Size, h.Gaps)
	}
	got := readAll(t, h)
	for k := range 8 {
		s := k * 1448
		if g := h.Gaps[k]; g != (flow.Range{Start: int64(s + 100), End: int64(s + 1448)}) {
			t.Fatalf("gap %d = %v", k, g)
		}
		wantBytes(t, fmt.Sprintf("segment %d", k), got[s:s+100], resp[s:s+100])
	}
	// A truncated segment whose length on the wire is unknown is kept and
	// counted.
	res = run(t, Options{}, []*Packet{{Src: srv, Dst: cli, Proto: ProtoTCP, Seq: 5, Payload: []byte("abc"), Truncated: true}})
	if !hasWarning(res.warnings, "length on the wire unknown") {
		t.Errorf("no warning for an unknown wire length: %v", res.warnings)
	}
}

func TestSpill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	trs := []transfer{
		newTransfer(1, 1_000, []byte("a"), randBytes(3<<20, 11)),
		newTransfer(2, math.MaxUint32-5000, []byte("b"), randBytes(2<<20, 12)),
	}
	trs[1].cli.Port = 40001
	var ps []*Packet
	a, b := shuffled(trs[0].packets(), 1, 0.1), shuffled(trs[1].packets(), 2, 0.1)
	for i := range max(len(a), len(b)) { // interleaved
		if i < len(a) {
			ps = append(ps, a[i])
		}
		if i < len(b) {
			ps = append(ps, b[i])
		}
	}
	// A conflicting copy of bytes 1000-1010 of the first response, right
	// after the original, so that LastWins writes into the spill file.
	conflict := &Packet{Src: srv, Dst: cli, Proto: ProtoTCP, Seq: 1_001 + 1000, Payload: []byte("XXXXXXXXXX")}
	i := slices.IndexFunc(ps, func(p *Packet) bool { return p.Src == srv && p.Dst == cli && p.Seq == 1_001 && len(p.Payload) > 0 })
	ps = slices.Insert(ps, i+1, conflict)
	for _, rule := range []OverlapRule{FirstWins, LastWins} {
		var spills int
		var res result
		var asm *Assembler
		res.conns = nil
		asm = New(Options{MemoryBytes: 256 << 10, TempDir: dir, Overlap: rule}, func(c *flow.Conn) { res.conns = append(res.conns, c) }, nil)
		for i, p := range ps {
			q := *p
			q.Frame, q.Time = i+1, t0
			asm.Add(&q)
			if asm.mem > 256<<10 {
				t.Fatalf("%v: memory charged %d over the budget after frame %d", rule, asm.mem, i+1)
			}
		}
		asm.Flush()
		spills = asm.counts.spills
		if spills == 0 {
			t.Fatalf("%v: nothing spilled", rule)
		}
		if len(res.conns) != 2 {
			t.Fatalf("%v: %d connections: %v", rule, len(res.conns), asm.Warnings())
		}
		// Handed out as each completed: put them in the order of trs.
		slices.SortFunc(res.conns, func(x, y *flow.Conn) int { return int(x.Client.Port) - int(y.Client.Port) })
		want := slices.Clone(trs[0].resp)
		if rule == LastWins {
			copy(want[1000:], "XXXXXXXXXX")
		}
		wantBytes(t, rule.String()+" first", readAll(t, res.conns[0].ToClient), want)
		wantBytes(t, rule.String()+" second", readAll(t, res.conns[1].ToClient), trs[1].resp)
		if !slices.Equal(res.conns[0].ToClient.Overlaps, []flow.Range{rg(1000, 1010)}) {
			t.Errorf("%v: overlaps %v", rule, res.conns[0].ToClient.Overlaps)
		}
		for _, c := range res.conns {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func rg(start, end int64) flow.Range { return flow.Range{Start: start, End: end} }
