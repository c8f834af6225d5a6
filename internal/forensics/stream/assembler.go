package stream

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"noops/internal/forensics/flow"
)

// OverlapRule says which copy stands when two segments carry different
// bytes for the same position of a stream.
type OverlapRule int

const (
	// FirstWins keeps the bytes captured first (the default). Windows
	// keeps the original for every overlap, and the "bsd" policy that
	// Suricata and Snort apply by default keeps it except where the new
	// segment starts before the original; and it is what an investigator
	// expects: a later copy cannot rewrite what was already captured.
	FirstWins OverlapRule = iota
	// LastWins keeps the bytes captured last, as Snort's "last" policy
	// (modelled on Cisco IOS).
	LastWins
)

func (r OverlapRule) String() string {
	if r == LastWins {
		return "last-wins"
	}
	return "first-wins"
}

// Defaults for Options fields left zero.
const (
	DefaultMaxConnBytes = 4 << 30
	DefaultMemoryBytes  = 256 << 20
	DefaultIdleTimeout  = 2 * time.Minute
)

// Options configure an Assembler. The zero value means the defaults.
type Options struct {
	// Overlap resolves bytes sent twice with different contents.
	Overlap OverlapRule
	// MaxConnBytes caps the bytes kept per direction of a connection;
	// beyond it bytes are dropped, reported as gaps, with a warning.
	MaxConnBytes int64
	// MemoryBytes caps the memory held for open connections and for the
	// bytes of handed-out Halves not closed yet. Beyond it the largest
	// directions move to a temporary file, and if the open connections'
	// bookkeeping alone still exceeds it the least recently active ones
	// are handed out early.
	MemoryBytes int64
	// TempDir is where spill files go ("" means os.TempDir()).
	TempDir string
	// IdleTimeout finishes a connection that saw no packet for this long
	// in capture time.
	IdleTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxConnBytes <= 0 {
		o.MaxConnBytes = DefaultMaxConnBytes
	}
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = DefaultMemoryBytes
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Overlap != LastWins {
		o.Overlap = FirstWins
	}
	return o
}

// maxClosed is how many finished 4-tuples are remembered to absorb their
// last ACKs and retransmissions.
const maxClosed = 1 << 16

// maxWarnings is how many warnings are kept word for word.
const maxWarnings = 1000

// Assembler turns packets into connections and datagrams. It is not safe
// for concurrent use; the Conns it hands out are the caller's.
type Assembler struct {
	opt          Options
	emitConn     func(*flow.Conn)
	emitDatagram func(flow.Datagram)

	conns      map[connKey]*conn
	head, tail *conn // activity list, most recent first
	nextID     int
	now        time.Time
	mem        int64
	pending    []*conn

	closed  map[connKey]closedConn
	closedQ []closedRef
	gen     uint64

	handed      *handedSet // handed-out halves still holding memory
	sf          *spillFile
	spillFailed bool
	scratch     []byte

	warns  []flow.Warning
	counts counts
}

// counts are things reported as one summary warning each.
type counts struct {
	dropped, evicted, farAcks, truncUnknown, otherProto, late, spills, keepalives int
}

// closedConn remembers where a finished connection's directions ended.
type closedConn struct {
	end [2]uint32 // sequence number after the last byte (and FIN)
	has [2]bool
	gen uint64
}

type closedRef struct {
	key connKey
	gen uint64
	t   time.Time
}

// New returns an Assembler that hands finished connections to emitConn
// and UDP datagrams to emitDatagram; either may be nil to discard them.
func New(opt Options, emitConn func(*flow.Conn), emitDatagram func(flow.Datagram)) *Assembler {
	return &Assembler{
		opt:          opt.withDefaults(),
		emitConn:     emitConn,
		emitDatagram: emitDatagram,
		conns:        make(map[connKey]*conn),
		closed:       make(map[connKey]closedConn),
		handed:       newHandedSet(),
	}
}

// Add feeds one packet; packets must come in capture order. It may hand
// out connections that finished (both sides closed and complete, or
// idle) before it returns.
func (a *Assembler) Add(p *Packet) {
	if p == nil {
		return
	}
	if p.Time.After(a.now) {
		a.now = p.Time
	}
	a.expire()
	switch p.Proto {
	case ProtoTCP:
		a.addTCP(p)
	case ProtoUDP:
		a.addUDP(p)
	default:
		a.counts.otherProto++
	}
	if a.mem+a.handed.mem.Load() > a.opt.MemoryBytes {
		a.shrink()
	}
	a.emitPending()
}

func (a *Assembler) addTCP(p *Packet) {
	key, dir := keyOf(p.Src, p.Dst)
	c := a.conns[key]
	switch {
	case c == nil:
		if cl, ok := a.closed[key]; ok {
			if a.absorb(cl, p, dir) {
				return
			}
			delete(a.closed, key)
			if !p.SYN {
				a.warnf(p.Frame, "%s → %s: data after the connection closed; starting a new connection", p.Src, p.Dst)
			}
		}
		c = a.open(key, dir)
	default:
		switch c.fits(p, dir) {
		case fitReuse:
			a.finish(c, false)
			c = a.open(key, dir)
		case fitJump:
			a.warnf(p.Frame, "%s → %s: sequence number more than 1 GiB away from conn %d's stream; starting a new connection", p.Src, p.Dst, c.id)
			a.finish(c, false)
			c = a.open(key, dir)
		}
	}
	c.add(a, p, dir)
	if p.Time.After(c.lastTime) {
		c.lastTime = p.Time
	}
	a.touch(c)
	m := c.memBytes()
	a.mem += m - c.mem
	c.mem = m
	if c.complete() {
		a.finish(c, true)
	}
}

func (a *Assembler) addUDP(p *Packet) {
	if p.Truncated {
		a.warnf(p.Frame, "UDP %s → %s: datagram truncated, %d of %d bytes captured", p.Src, p.Dst, len(p.Payload), p.WireLen)
	}
	if a.emitDatagram != nil {
		a.emitDatagram(flow.Datagram{Src: p.Src, Dst: p.Dst, Frame: p.Frame, Time: p.Time, Payload: bytes.Clone(p.Payload)})
	}
}

// open starts a connection for key whose first packet goes in dir.
func (a *Assembler) open(key connKey, dir int) *conn {
	a.nextID++
	c := &conn{id: a.nextID, key: key, firstDir: dir, synDir: -1, synAckDir: -1, mem: connOverhead}
	a.conns[key] = c
	a.mem += c.mem
	return c
}

// touch moves c to the front of the activity list.
func (a *Assembler) touch(c *conn) {
	if a.head == c {
		return
	}
	a.unlink(c)
	c.next = a.head
	if a.head != nil {
		a.head.prev = c
	}
	a.head = c
	if a.tail == nil {
		a.tail = c
	}
}

func (a *Assembler) unlink(c *conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else if a.head == c {
		a.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else if a.tail == c {
		a.tail = c.prev
	}
	c.prev, c.next = nil, nil
}

// finish takes c out of the open set and queues it to be handed out;
// closed says it ended normally, so stragglers for its 4-tuple are
// absorbed rather than starting a new connection.
func (a *Assembler) finish(c *conn, closed bool) {
	delete(a.conns, c.key)
	a.unlink(c)
	a.mem -= c.mem
	if closed {
		a.remember(c)
	}
	a.pending = append(a.pending, c)
}

// emitPending hands out the finished connections, by first packet.
func (a *Assembler) emitPending() {
	if len(a.pending) == 0 {
		return
	}
	slices.SortFunc(a.pending, func(x, y *conn) int { return x.id - y.id })
	for i, c := range a.pending {
		a.pending[i] = nil
		fc := a.build(c)
		if a.emitConn != nil {
			a.emitConn(fc)
		} else {
			fc.Close()
		}
	}
	a.pending = a.pending[:0]
}

// expire finishes the connections idle for longer than IdleTimeout and
// forgets old closed 4-tuples.
func (a *Assembler) expire() {
	for a.tail != nil && a.now.Sub(a.tail.lastTime) > a.opt.IdleTimeout {
		a.finish(a.tail, false)
	}
	for len(a.closedQ) > 0 {
		r := a.closedQ[0]
		if len(a.closed) <= maxClosed && a.now.Sub(r.t) <= a.opt.IdleTimeout {
			break
		}
		if cl, ok := a.closed[r.key]; ok && cl.gen == r.gen {
			delete(a.closed, r.key)
		}
		a.closedQ = a.closedQ[1:]
	}
}

// remember records where c's directions ended.
func (a *Assembler) remember(c *conn) {
	a.gen++
	cl := closedConn{gen: a.gen}
	for d, h := range c.h {
		if h == nil || h.packets == 0 {
			continue
		}
		switch {
		case h.fin:
			cl.end[d], cl.has[d] = h.ref+uint32(h.finAt+1), true
		case h.dataHas:
			cl.end[d], cl.has[d] = h.ref+uint32(h.dataHi), true
		}
	}
	a.closed[c.key] = cl
	a.closedQ = append(a.closedQ, closedRef{c.key, a.gen, a.now})
}

// absorb reports whether p, for a finished 4-tuple, adds nothing: an
// ACK, a RST or a retransmission of what the connection already held.
func (a *Assembler) absorb(cl closedConn, p *Packet, dir int) bool {
	if p.SYN {
		return false
	}
	if len(p.Payload) == 0 && !p.FIN || p.RST {
		return true
	}
	if cl.has[dir] && int32(p.Seq+uint32(len(p.Payload))-cl.end[dir]) <= 0 {
		a.counts.late++
		return true
	}
	return false
}

// shrink brings memory back under the budget: first the directions
// holding the most bytes, open or handed out and not closed yet, move to
// the spill file; then, if the open connections' bookkeeping alone is
// over, the least recently active connections are handed out early.
func (a *Assembler) shrink() {
	target := a.opt.MemoryBytes / 4 * 3
	type cand struct {
		c     *conn // open, with h
		h     *half
		d     *halfData // handed out
		n     int64
		order int
	}
	var cs []cand
	for _, c := range a.conns {
		for dir, h := range c.h {
			if h != nil && h.st.memBytes() >= minSpill {
				cs = append(cs, cand{c: c, h: h, n: h.st.memBytes(), order: 2*c.id + dir})
			}
		}
	}
	for _, d := range a.handed.largest(minSpill) {
		cs = append(cs, cand{d: d, n: d.charged, order: -d.order})
	}
	slices.SortFunc(cs, func(x, y cand) int {
		if x.n != y.n {
			return int(min(max(y.n-x.n, -1), 1))
		}
		return x.order - y.order
	})
	for _, x := range cs {
		if a.mem+a.handed.mem.Load() <= target || a.spillFailed {
			break
		}
		if err := a.spill(x.h, x.d); err != nil {
			a.spillFailed = true
			a.warnf(0, "spilling to disk: %v; connections are handed out early instead", err)
			break
		}
		if x.c != nil {
			m := x.c.memBytes()
			a.mem += m - x.c.mem
			x.c.mem = m
		}
	}
	for a.mem > target && a.tail != nil {
		a.counts.evicted++
		a.finish(a.tail, false)
	}
}

// minSpill is the least memory a direction must hold to be spilled.
const minSpill = 4096

// spill moves the bytes of h, or of the handed-out d, to the current
// spill file.
func (a *Assembler) spill(h *half, d *halfData) error {
	if a.sf != nil && a.sf.size >= spillRotate {
		a.sf.release()
		a.sf = nil
	}
	if a.sf == nil {
		sf, err := newSpillFile(a.opt.TempDir)
		if err != nil {
			return err
		}
		a.sf = sf
	}
	if d != nil {
		first, err := a.handed.spill(d, a.sf)
		if first {
			a.counts.spills++
		}
		return err
	}
	if h.st.sf == nil {
		a.counts.spills++
	}
	return h.st.spill(a.sf)
}

func (a *Assembler) scratchBuf(n int) []byte {
	if cap(a.scratch) < n {
		a.scratch = make([]byte, n)
	}
	return a.scratch[:n]
}

// Flush hands out every open connection, by first packet: the capture
// has ended. The Assembler may be used again afterwards.
func (a *Assembler) Flush() {
	for c := a.tail; c != nil; c = a.tail {
		a.finish(c, false)
	}
	a.emitPending()
	clear(a.closed)
	a.closedQ = nil
	if a.sf != nil {
		a.sf.release()
		a.sf = nil
	}
}

// Close discards every open connection without handing it out, releasing
// its memory and spill space; for a caller that stops early.
func (a *Assembler) Close() {
	for c := a.tail; c != nil; c = a.tail {
		a.unlink(c)
		delete(a.conns, c.key)
		c.close()
	}
	a.mem = 0
	clear(a.closed)
	a.closedQ = nil
	if a.sf != nil {
		a.sf.release()
		a.sf = nil
	}
}

func (a *Assembler) warnf(frame int, format string, args ...any) {
	if len(a.warns) >= maxWarnings {
		a.counts.dropped++
		return
	}
	a.warns = append(a.warns, flow.Warning{Frame: frame, Message: fmt.Sprintf(format, args...)})
}

// Warnings returns what was lost or doubted so far: gaps, overlaps,
// dropped bytes, and summaries of what happened too often to list.
func (a *Assembler) Warnings() []flow.Warning {
	out := slices.Clone(a.warns)
	add := func(n int, format string) {
		if n > 0 {
			out = append(out, flow.Warning{Message: fmt.Sprintf(format, n)})
		}
	}
	n := a.counts
	add(n.evicted, "%d connections handed out before they ended to stay within the memory budget (MemoryBytes); later packets of theirs start new connections")
	add(n.spills, "%d stream directions spilled to a temporary file to stay within the memory budget")
	add(n.truncUnknown, "%d TCP segments truncated by the capture with their length on the wire unknown: the missing bytes are not reported as gaps")
	add(n.farAcks, "%d ACK numbers more than 1 GiB away from their stream ignored")
	add(n.late, "%d retransmissions after a connection closed ignored")
	add(n.keepalives, "%d keep-alive probes (one byte at the last position sent) ignored")
	add(n.otherProto, "%d packets of protocols other than TCP and UDP ignored")
	add(n.dropped, "%d more warnings not listed")
	return out
}
