package stream

import (
	"fmt"
	"time"

	"noops/internal/forensics/flow"
)

// Memory charged for bookkeeping, for the memory budget.
const (
	connOverhead = 640 // conn, map entry, key
	halfOverhead = 448 // half
)

// connKey is a 4-tuple with the endpoints in a fixed order, so that both
// directions find the same connection. Direction 0 is a → b.
type connKey struct{ a, b flow.Endpoint }

func keyOf(src, dst flow.Endpoint) (connKey, int) {
	if c := src.Addr.Compare(dst.Addr); c < 0 || c == 0 && src.Port <= dst.Port {
		return connKey{src, dst}, 0
	}
	return connKey{dst, src}, 1
}

// sender returns the endpoint that sends in direction d.
func (k connKey) sender(d int) flow.Endpoint {
	if d == 0 {
		return k.a
	}
	return k.b
}

// conn is an open connection.
type conn struct {
	id         int
	key        connKey
	firstDir   int
	h          [2]*half
	frames     flow.Frames
	lastTime   time.Time
	prev, next *conn // activity list, most recent first
	mem        int64 // charged to the budget
	rst        bool
	synDir     int // direction that sent a SYN without ACK, or -1
	synAckDir  int // direction that sent a SYN-ACK, or -1
}

// fit says how a packet relates to an open connection.
type fit int

const (
	fitOK    fit = iota
	fitReuse     // a new SYN: the 4-tuple is used again
	fitJump      // data too far from the stream: a new connection
)

// fits decides whether p belongs to c.
func (c *conn) fits(p *Packet, dir int) fit {
	h := c.h[dir]
	if h == nil || !h.has {
		return fitOK
	}
	x := h.rel(p.Seq)
	if p.SYN {
		switch {
		case h.syn && x == h.isn:
			return fitOK // retransmitted
		case !h.syn && x+1 <= h.lo && !h.outside(x):
			return fitOK // the SYN arrived after the data
		}
		return fitReuse
	}
	if (len(p.Payload) > 0 || p.FIN) && !p.RST && h.outside(x) {
		return fitJump
	}
	return fitOK
}

// halfFor returns direction d's state, creating it with seq as reference.
func (c *conn) halfFor(d int, seq uint32) *half {
	if c.h[d] == nil {
		c.h[d] = &half{src: c.key.sender(d), dst: c.key.sender(1 - d), ref: seq}
	}
	return c.h[d]
}

// add applies p, sent in direction dir, to the connection.
func (c *conn) add(a *Assembler, p *Packet, dir int) {
	h := c.halfFor(dir, p.Seq)
	h.packets++
	seeFrame(&c.frames, p)
	pos := h.rel(p.Seq)
	if p.SYN {
		if !h.syn {
			h.syn, h.isn = true, pos
			h.see(pos + 1)
		}
		if p.ACK {
			c.synAckDir = dir
		} else {
			c.synDir = dir
		}
		pos++
	}
	wire := int64(len(p.Payload))
	if p.Truncated && p.WireLen > len(p.Payload) {
		wire = int64(p.WireLen)
	}
	switch {
	case p.RST && h.outside(pos):
		a.warnf(p.Frame, "%s: RST far outside the stream ignored", c.name(h))
	case p.RST:
		c.rst, h.rst = true, true
		if len(p.Payload) > 0 {
			a.warnf(p.Frame, "%s: %d bytes carried by a RST ignored (not stream data)", c.name(h), len(p.Payload))
		}
	default:
		if wire > 0 {
			c.addPayload(a, h, p, pos, wire)
		}
		if p.FIN {
			at := pos + wire
			if !h.fin {
				h.fin, h.finAt = true, at
				h.see(at)
			} else if at != h.finAt {
				a.warnf(p.Frame, "%s: a second FIN at a different position ignored", c.name(h))
			}
		}
	}
	if p.ACK {
		o := c.halfFor(1-dir, p.Ack)
		if x := o.rel(p.Ack); o.outside(x) {
			a.counts.farAcks++
		} else {
			o.seeAck(x)
		}
	}
}

// addPayload stores the payload of p, which starts at pos and was wire
// bytes long on the wire.
func (c *conn) addPayload(a *Assembler, h *half, p *Packet, pos, wire int64) {
	if p.Truncated && p.WireLen <= len(p.Payload) {
		a.counts.truncUnknown++
	}
	if last := h.ext.last(); wire == 1 && last != nil && last.end == pos+1 && h.dataHi == pos+1 {
		// A keep-alive: one byte of garbage at the last position sent,
		// which no receiver takes as data.
		a.counts.keepalives++
		return
	}
	h.seeData(pos, pos+wire)
	seeFrame(&h.frames, p)
	b := p.Payload
	if h.syn && pos <= h.isn {
		cut := h.isn + 1 - pos
		a.warnf(p.Frame, "%s: %d bytes before the SYN's sequence number dropped", c.name(h), min(cut, int64(len(b))))
		if cut >= int64(len(b)) {
			return
		}
		b, pos = b[cut:], pos+cut
	}
	if len(b) == 0 {
		return
	}
	switch stored, dup := h.addData(a, c, p.Frame, pos, b); {
	case stored:
		h.segments++
	case dup:
		h.retrans++
	}
}

func seeFrame(f *flow.Frames, p *Packet) {
	if f.First == 0 || p.Frame < f.First {
		f.First, f.FirstTime = p.Frame, p.Time
	}
	if p.Frame >= f.Last {
		f.Last, f.LastTime = p.Frame, p.Time
	}
}

// complete reports whether the connection is over and every byte of it
// is in: both directions ended (FIN, or a RST for the connection), each
// captured direction's start is known from its SYN, and no byte between
// start and end is missing. Anything less waits for more packets, the
// idle timeout or Flush.
func (c *conn) complete() bool {
	if !c.rst {
		for _, h := range c.h {
			if h == nil || h.packets == 0 || !h.fin {
				return false
			}
		}
	}
	seen := false
	for _, h := range c.h {
		if h == nil || h.packets == 0 {
			continue
		}
		if !h.syn {
			return false
		}
		// bounds counts the peer's ACKs: after a RST captured before the
		// last data segment, the ACKs prove bytes are still to come.
		base, end := h.bounds()
		if h.dataHas && (h.dataLo < base || h.dataHi > end) || h.covered != end-base {
			return false
		}
		seen = true
	}
	return seen
}

// memBytes is what the connection holds, for the memory budget.
func (c *conn) memBytes() int64 {
	n := int64(connOverhead)
	for _, h := range c.h {
		if h != nil {
			n += h.memBytes()
		}
	}
	return n
}

// clientDir is the direction the client sends in: the SYN's sender, or
// the SYN-ACK's receiver, or else the side with the higher port (the
// ephemeral one), or else the sender of the first packet.
func (c *conn) clientDir() int {
	switch {
	case c.synDir >= 0:
		return c.synDir
	case c.synAckDir >= 0:
		return 1 - c.synAckDir
	case c.key.a.Port > c.key.b.Port:
		return 0
	case c.key.a.Port < c.key.b.Port:
		return 1
	}
	return c.firstDir
}

// name says which connection and direction a warning is about.
func (c *conn) name(h *half) string {
	return fmt.Sprintf("conn %d %s → %s", c.id, h.src, h.dst)
}

func (c *conn) close() {
	for _, h := range c.h {
		if h != nil {
			h.st.close()
		}
	}
}
