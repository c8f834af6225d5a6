package stream

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"noops/internal/forensics/flow"
)

func TestUDP(t *testing.T) {
	t.Parallel()
	var got []flow.Datagram
	a := New(Options{}, nil, func(d flow.Datagram) { got = append(got, d) })
	tftp := flow.Endpoint{Addr: srv.Addr, Port: 69}
	buf := []byte("first")
	a.Add(&Packet{Frame: 1, Src: cli, Dst: tftp, Proto: ProtoUDP, Payload: buf})
	copy(buf, "XXXXX") // the caller reuses its buffer
	a.Add(&Packet{Frame: 2, Src: tftp, Dst: cli, Proto: ProtoUDP, Payload: []byte("second")})
	a.Add(&Packet{Frame: 3, Src: cli, Dst: tftp, Proto: ProtoUDP, Payload: []byte("thi"), Truncated: true, WireLen: 5})
	a.Add(&Packet{Frame: 4, Src: cli, Dst: tftp, Proto: 1})
	a.Flush()
	want := []string{"first", "second", "thi"}
	if len(got) != len(want) {
		t.Fatalf("got %d datagrams, want %d", len(got), len(want))
	}
	for i, d := range got {
		if string(d.Payload) != want[i] || d.Frame != i+1 {
			t.Errorf("datagram %d = frame %d %q, want frame %d %q", i, d.Frame, d.Payload, i+1, want[i])
		}
	}
	ws := a.Warnings()
	if !hasWarning(ws, "truncated, 3 of 5") || !hasWarning(ws, "other than TCP and UDP") {
		t.Errorf("warnings %v", ws)
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	other := flow.Endpoint{Addr: netip.MustParseAddr("10.9.9.9"), Port: 5555}
	seg := func(frame int, at time.Duration, src, dst flow.Endpoint, seq uint32, data string) *Packet {
		return &Packet{Frame: frame, Time: t0.Add(at), Src: src, Dst: dst, Proto: ProtoTCP, Seq: seq, Payload: []byte(data)}
	}
	var got []*flow.Conn
	a := New(Options{IdleTimeout: time.Minute}, func(c *flow.Conn) { got = append(got, c) }, nil)
	a.Add(seg(1, 0, srv, cli, 100, "abc"))
	a.Add(seg(2, 30*time.Second, srv, cli, 103, "def"))
	a.Add(seg(3, 80*time.Second, other, cli, 1, "x")) // 50 s after frame 2: not idle yet
	if len(got) != 0 {
		t.Fatalf("handed out %d connections before the timeout", len(got))
	}
	a.Add(seg(4, 91*time.Second, other, cli, 2, "y"))
	if len(got) != 1 || string(readAll(t, got[0].ToClient)) != "abcdef" {
		t.Fatalf("after the timeout: %d connections", len(got))
	}
	a.Add(seg(5, 92*time.Second, srv, cli, 106, "ghi")) // the idle connection goes on: a new one
	a.Flush()
	if len(got) != 3 || got[1].ID >= got[2].ID || string(readAll(t, got[2].ToClient)) != "ghi" {
		t.Fatalf("got %d connections", len(got))
	}
	for _, c := range got {
		c.Close()
	}
}

func TestSequenceJump(t *testing.T) {
	t.Parallel()
	ps := []*Packet{
		{Src: srv, Dst: cli, Proto: ProtoTCP, Seq: 1000, Payload: []byte("abc")},
		{Src: srv, Dst: cli, Proto: ProtoTCP, Seq: 1000 + 1<<30 + 100, Payload: []byte("far")},
		{Src: srv, Dst: cli, Proto: ProtoTCP, Seq: 1000 + 1<<29, Payload: []byte("near")}, // within 1 GiB of "far"
		{Src: cli, Dst: srv, Proto: ProtoTCP, Seq: 5, Ack: 1000 + 3<<30, ACK: true},       // an ACK far away is ignored
	}
	res := run(t, Options{}, ps)
	if len(res.conns) != 2 {
		t.Fatalf("got %d connections, want 2", len(res.conns))
	}
	if got := string(readAll(t, res.conns[0].ToClient)); got != "abc" {
		t.Errorf("first = %q", got)
	}
	h := res.conns[1].ToClient
	if h.Size != 1<<29+100+3 || len(h.Gaps) != 1 {
		t.Errorf("second: size %d gaps %v", h.Size, h.Gaps)
	}
	if !hasWarning(res.warnings, "more than 1 GiB away") || !hasWarning(res.warnings, "ACK numbers more than 1 GiB") {
		t.Errorf("warnings %v", res.warnings)
	}
}

func TestMaxConnBytes(t *testing.T) {
	t.Parallel()
	resp := randBytes(50_000, 13)
	tr := newTransfer(1, 2, nil, resp)
	res := run(t, Options{MaxConnBytes: 10_000}, shuffled(tr.packets(), 4, 0))
	h := only(t, res).ToClient
	if h.Size != 10_000 {
		t.Fatalf("size %d, want 10000", h.Size)
	}
	got := readAll(t, h)
	var kept int64
	for i := range got {
		if got[i] != 0 && got[i] != resp[i] {
			t.Fatalf("byte %d = %d, want %d or 0", i, got[i], resp[i])
		}
	}
	for _, g := range h.GapsIn(0, h.Size) {
		kept -= g.End - g.Start
	}
	if kept += h.Size; kept <= 0 {
		t.Fatalf("nothing kept")
	}
	if !hasWarning(res.warnings, "MaxConnBytes") {
		t.Errorf("no warning: %v", res.warnings)
	}
}

func TestReadAt(t *testing.T) {
	t.Parallel()
	ps := []*Packet{
		{Src: srv, Dst: cli, Proto: ProtoTCP, Seq: 10, Payload: []byte("0123")},
		{Src: srv, Dst: cli, Proto: ProtoTCP, Seq: 20, Payload: []byte("abcd")},
	}
	h := only(t, run(t, Options{}, ps)).ToClient
	want := []byte("0123\x00\x00\x00\x00\x00\x00abcd")
	for _, tc := range []struct {
		off, n  int
		wantN   int
		wantEOF bool
	}{
		{0, 14, 14, false}, {2, 5, 5, false}, {8, 10, 6, true}, {14, 1, 0, true}, {13, 1, 1, false},
	} {
		p := bytes.Repeat([]byte{0xff}, tc.n)
		n, err := h.Data.ReadAt(p, int64(tc.off))
		if n != tc.wantN || (err == io.EOF) != tc.wantEOF || (err != nil && err != io.EOF) {
			t.Errorf("ReadAt(%d bytes, %d) = %d, %v; want %d, EOF %v", tc.n, tc.off, n, err, tc.wantN, tc.wantEOF)
			continue
		}
		if !bytes.Equal(p[:n], want[tc.off:tc.off+n]) {
			t.Errorf("ReadAt(%d, %d) = %q", tc.n, tc.off, p[:n])
		}
	}
}

// TestExtentList checks the block list against a byte map.
func TestExtentList(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 1))
	var l extentList
	held := map[int64]int64{} // position → store position
	var pos int64
	for range 20000 {
		s := r.Int64N(200_000)
		e := s + 1 + r.Int64N(20)
		// Add only the parts not held yet, as addData does.
		for x := s; x < e; {
			if _, ok := held[x]; ok {
				x++
				continue
			}
			y := x
			for y < e {
				if _, ok := held[y]; ok {
					break
				}
				y++
			}
			l.add(extent{x, y, pos})
			for z := x; z < y; z++ {
				held[z] = pos + z - x
			}
			pos += y - x
			x = y
		}
	}
	all := l.all()
	var n int
	for i, x := range all {
		if i > 0 && all[i-1].end > x.start {
			t.Fatalf("extents %v and %v overlap or are out of order", all[i-1], x)
		}
		for z := x.start; z < x.end; z++ {
			if held[z] != x.pos+z-x.start {
				t.Fatalf("position %d maps to %d, want %d", z, x.pos+z-x.start, held[z])
			}
		}
		n += int(x.end - x.start)
	}
	if n != len(held) {
		t.Fatalf("extents cover %d positions, want %d", n, len(held))
	}
	for range 1000 {
		x := r.Int64N(210_000)
		c := l.seek(x)
		want := slices.IndexFunc(all, func(e extent) bool { return e.end > x })
		if want < 0 != !l.valid(c) || want >= 0 && *l.at(c) != all[want] {
			t.Fatalf("seek(%d) wrong", x)
		}
	}
}

// TestStore checks memory and spilled stores against a byte slice.
func TestStore(t *testing.T) {
	t.Parallel()
	for _, spillAt := range []int{-1, 0, 3, 40} {
		r := rand.New(rand.NewPCG(uint64(spillAt+10), 3))
		var s store
		var model []byte
		sf, err := newSpillFile(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 40 {
			if i == spillAt {
				if err := s.spill(sf); err != nil {
					t.Fatal(err)
				}
			}
			b := randBytes(r.IntN(3*fileBufMax/2)+1, uint64(i))
			if r.IntN(4) == 0 {
				b = b[:r.IntN(100)+1]
			}
			pos, err := s.appendBytes(b)
			if err != nil || pos != int64(len(model)) {
				t.Fatalf("append at %d: %d, %v", len(model), pos, err)
			}
			model = append(model, b...)
			if r.IntN(3) == 0 { // overwrite a random range
				o := r.IntN(len(model))
				w := randBytes(min(r.IntN(5000)+1, len(model)-o), uint64(1000+i))
				if err := s.writeAt(w, int64(o)); err != nil {
					t.Fatal(err)
				}
				copy(model[o:], w)
			}
			if i%7 == 0 && spillAt >= 0 && i > spillAt {
				if err := s.spill(sf); err != nil { // flushes the buffer
					t.Fatal(err)
				}
			}
		}
		got := make([]byte, len(model))
		if err := s.readAt(got, 0); err != nil {
			t.Fatal(err)
		}
		wantBytes(t, "store", got, model)
		o := len(model) / 3
		if err := s.readAt(got[:1000], int64(o)); err != nil || !bytes.Equal(got[:1000], model[o:o+1000]) {
			t.Fatalf("partial read: %v", err)
		}
		s.close()
		sf.release()
	}
}

// TestHostile feeds a million one-packet connections, then a million
// disjoint one-byte segments of one connection, and checks that the heap
// stays bounded by the memory budget.
func TestHostile(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000
	}
	const budget = 16 << 20
	var handed int
	a := New(Options{MemoryBytes: budget}, func(c *flow.Conn) { handed++; c.Close() }, nil)
	base := heapInUse()
	var peak uint64
	p := Packet{Proto: ProtoTCP, Dst: srv, Time: t0, Payload: []byte{'x'}}
	for i := range n {
		p.Frame = i + 1
		p.Src = flow.Endpoint{Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Port: uint16(1024 + i%60000)}
		p.Seq = uint32(i) * 7919
		a.Add(&p)
		if i%(n/10) == 0 {
			peak = max(peak, heapInUse())
		}
	}
	p.Src = cli
	for i := range n {
		p.Frame = n + i + 1
		p.Seq = uint32(i) * 2 // every other byte: no two segments join
		a.Add(&p)
		if i%(n/10) == 0 {
			peak = max(peak, heapInUse())
		}
	}
	a.Flush()
	peak = max(peak, heapInUse())
	if a.mem != 0 {
		t.Errorf("memory charged after Flush: %d", a.mem)
	}
	if peak > base+4*budget {
		t.Fatalf("heap grew by %d MiB for a budget of %d MiB", (peak-base)>>20, budget>>20)
	}
	if handed < n {
		t.Fatalf("handed out %d connections, want at least %d", handed, n)
	}
	if !hasWarning(a.Warnings(), "memory budget") {
		t.Errorf("no warning about early hand-outs")
	}
	t.Logf("%d packets: heap grew by at most %d MiB (budget %d MiB), %d connections", 2*n, (peak-base)>>20, budget>>20, handed)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestHeldConns: a caller that keeps every connection it was handed (as
// an FTP extractor keeps data connections until the control connection
// ends) stays within the budget, because held bytes are spilled too,
// even while another goroutine reads them.
func TestHeldConns(t *testing.T) {
	t.Parallel()
	const budget = 1 << 20
	var trs []transfer
	var ps []*Packet
	for i := range 20 {
		tr := newTransfer(uint32(i), uint32(1000*i), []byte("RETR x"), randBytes(300_000, uint64(100+i)))
		tr.cli.Port = uint16(50000 + i)
		trs = append(trs, tr)
		ps = append(ps, tr.packets()...)
	}
	var mu sync.Mutex
	var held []*flow.Conn
	a := New(Options{MemoryBytes: budget, TempDir: t.TempDir()}, func(c *flow.Conn) {
		mu.Lock()
		held = append(held, c)
		mu.Unlock()
	}, nil)
	stop := make(chan struct{})
	done := make(chan error)
	go func() { // reads what is held while the Assembler spills it
		buf := make([]byte, 4096)
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			mu.Lock()
			cs := slices.Clone(held)
			mu.Unlock()
			for _, c := range cs {
				if _, err := c.ToClient.Data.ReadAt(buf, 1000); err != nil {
					done <- err
					return
				}
			}
			runtime.Gosched()
		}
	}()
	for i, p := range ps {
		q := *p
		q.Frame, q.Time = i+1, t0
		a.Add(&q)
		if m := a.mem + a.handed.mem.Load(); m > budget {
			t.Fatalf("frame %d: %d bytes charged, budget %d", i+1, m, budget)
		}
	}
	a.Flush()
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(held) != len(trs) || a.counts.spills == 0 {
		t.Fatalf("%d connections, %d spills", len(held), a.counts.spills)
	}
	slices.SortFunc(held, func(x, y *flow.Conn) int { return int(x.Client.Port) - int(y.Client.Port) })
	for i, c := range held {
		wantBytes(t, fmt.Sprint("transfer ", i), readAll(t, c.ToClient), trs[i].resp)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if m := a.handed.mem.Load(); m != 0 {
		t.Fatalf("%d bytes still charged after every Close", m)
	}
}
