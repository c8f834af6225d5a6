package stream

import (
	"bytes"
	"fmt"

	"noops/internal/forensics/flow"
)

// maxJump is how far outside what a direction has shown so far a sequence
// number may be and still belong to it: the largest TCP window (65535
// scaled by 2^14) is just under 1 GiB, so a segment further away than
// that cannot be part of the same connection.
const maxJump = 1 << 30

// maxOverlapRanges is the most overlap ranges one direction records.
const maxOverlapRanges = 1024

// half is the assembly state of one direction. Positions are relative
// sequence numbers: int64 offsets from ref, the first sequence number the
// direction showed, read near anchor (the highest position seen) so that
// a stream may wrap past 2^32 and grow beyond 4 GiB.
type half struct {
	src, dst flow.Endpoint
	packets  int // packets sent in this direction
	ref      uint32
	anchor   int64

	has    bool  // any position known
	lo, hi int64 // span of every position known

	syn   bool
	isn   int64 // position of the SYN
	fin   bool
	rst   bool
	finAt int64 // position of the FIN: the stream's end

	dataHas        bool
	dataLo, dataHi int64 // span of the segments, truncated ones at full length

	ackHas                bool
	ackLo, ackHi, ackPrev int64 // peer's ACKs: lowest, highest, second highest
	ackPrevHas            bool

	ext      extentList
	covered  int64 // bytes in ext
	st       store
	overlaps []flow.Range

	segments, retrans int
	frames            flow.Frames // packets that carried payload
	capWarned         bool
	overlapWarned     bool
}

// rel turns a sequence number into a position.
func (h *half) rel(seq uint32) int64 {
	cur := h.ref + uint32(h.anchor)
	return h.anchor + int64(int32(seq-cur))
}

// outside reports whether position x is too far from what the direction
// has shown to belong to it.
func (h *half) outside(x int64) bool {
	return h.has && (x < h.lo-maxJump || x > h.hi+maxJump)
}

func (h *half) see(x int64) {
	if !h.has {
		h.has, h.lo, h.hi = true, x, x
	} else {
		h.lo, h.hi = min(h.lo, x), max(h.hi, x)
	}
	h.anchor = h.hi
}

func (h *half) seeData(start, end int64) {
	if !h.dataHas {
		h.dataHas, h.dataLo, h.dataHi = true, start, end
	} else {
		h.dataLo, h.dataHi = min(h.dataLo, start), max(h.dataHi, end)
	}
	h.see(start)
	h.see(end)
}

func (h *half) seeAck(x int64) {
	switch {
	case !h.ackHas:
		h.ackHas, h.ackLo, h.ackHi = true, x, x
	case x > h.ackHi:
		h.ackPrev, h.ackPrevHas, h.ackHi = h.ackHi, true, x
	case x < h.ackHi && (!h.ackPrevHas || x > h.ackPrev):
		h.ackPrev, h.ackPrevHas = x, true
	}
	h.ackLo = min(h.ackLo, x)
	h.see(x)
}

// capBase is where MaxConnBytes counts from while assembling.
func (h *half) capBase() int64 {
	if h.syn {
		return h.isn + 1
	}
	return h.lo
}

// memBytes is the memory the direction holds.
func (h *half) memBytes() int64 {
	return halfOverhead + h.st.memBytes() + int64(h.ext.n)*extentSize + int64(cap(h.overlaps))*16
}

// addData puts the segment b at position start: new bytes are stored,
// bytes already held are compared, and where they differ the overlap
// rule decides which stay. It reports whether any byte was stored, and
// whether every byte was already held (a retransmission).
func (h *half) addData(a *Assembler, c *conn, frame int, start int64, b []byte) (stored, dup bool) {
	end := start + int64(len(b))
	if last := h.ext.last(); last == nil || start >= last.end {
		return h.store(a, c, frame, start, b), false // the common case: in order
	}
	type piece struct{ start, end int64 }
	var pieces [4]piece
	fresh := pieces[:0]
	cur := start
	for it := h.ext.seek(start); h.ext.valid(it) && cur < end; it = h.ext.next(it) {
		x := h.ext.at(it)
		if x.start >= end {
			break
		}
		if x.start > cur {
			fresh = append(fresh, piece{cur, x.start})
			cur = x.start
		}
		ce := min(end, x.end)
		h.compare(a, c, frame, b[cur-start:ce-start], x.pos+(cur-x.start), cur)
		cur = ce
	}
	if cur < end {
		fresh = append(fresh, piece{cur, end})
	}
	for _, p := range fresh {
		if h.store(a, c, frame, p.start, b[p.start-start:p.end-start]) {
			stored = true
		}
	}
	return stored, len(fresh) == 0
}

// compare checks the new bytes b, which cover position at, against the
// held bytes at store position pos, and applies the overlap rule.
func (h *half) compare(a *Assembler, c *conn, frame int, b []byte, pos, at int64) {
	first, last := -1, -1
	off := 0
	check := func(nb, held []byte) {
		if !bytes.Equal(nb, held) {
			for i := range nb {
				if nb[i] != held[i] {
					if first < 0 {
						first = off + i
					}
					last = off + i
				}
			}
		}
		off += len(nb)
	}
	err := h.st.span(b, pos, func(p, held []byte) { check(p, held[:len(p)]) }, func(p []byte, o int64) error {
		held := a.scratchBuf(len(p))
		if err := h.readFile(held, o); err != nil {
			return err
		}
		check(p, held)
		return nil
	})
	if err != nil {
		a.warnf(frame, "%s: comparing a retransmission: %v", c.name(h), err)
		return
	}
	if first < 0 {
		return
	}
	h.addOverlap(a, c, flow.Range{Start: at + int64(first), End: at + int64(last) + 1})
	if a.opt.Overlap == LastWins {
		if err := h.st.writeAt(b[first:last+1], pos+int64(first)); err != nil {
			a.warnf(frame, "%s: applying an overlap: %v", c.name(h), err)
		}
	}
}

func (h *half) readFile(p []byte, off int64) error {
	if _, err := h.st.sf.f.ReadAt(p, off); err != nil {
		return fmt.Errorf("reading spill file: %w", err)
	}
	return nil
}

func (h *half) addOverlap(a *Assembler, c *conn, r flow.Range) {
	if n := len(h.overlaps); n > 0 && h.overlaps[n-1].End >= r.Start && h.overlaps[n-1].Start <= r.End {
		h.overlaps[n-1] = flow.Range{Start: min(h.overlaps[n-1].Start, r.Start), End: max(h.overlaps[n-1].End, r.End)}
		return
	}
	if len(h.overlaps) >= maxOverlapRanges {
		if !h.overlapWarned {
			h.overlapWarned = true
			a.warnf(0, "%s: more than %d overlapping ranges with different bytes; later ones resolved but not listed", c.name(h), maxOverlapRanges)
		}
		return
	}
	h.overlaps = append(h.overlaps, r)
}

// store keeps the new bytes b at position start, within MaxConnBytes.
func (h *half) store(a *Assembler, c *conn, frame int, start int64, b []byte) bool {
	limit := h.capBase() + a.opt.MaxConnBytes
	if room := a.opt.MaxConnBytes - h.st.size; int64(len(b)) > room || start+int64(len(b)) > limit {
		keep := max(0, min(int64(len(b)), room, limit-start))
		if !h.capWarned {
			h.capWarned = true
			a.warnf(frame, "%s: more than %d bytes (MaxConnBytes); the rest of the direction is dropped and reported as gaps", c.name(h), a.opt.MaxConnBytes)
		}
		b = b[:keep]
	}
	if len(b) == 0 {
		return false
	}
	pos, err := h.st.appendBytes(b)
	if err != nil {
		a.warnf(frame, "%s: %d bytes lost: %v", c.name(h), len(b), err)
		return false
	}
	h.ext.add(extent{start, start + int64(len(b)), pos})
	h.covered += int64(len(b))
	return true
}
