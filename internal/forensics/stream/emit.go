package stream

import (
	"fmt"
	"slices"
	"strings"

	"noops/internal/forensics/flow"
)

// build turns a finished connection into the flow.Conn handed out.
func (a *Assembler) build(c *conn) *flow.Conn {
	cd := c.clientDir()
	return &flow.Conn{
		ID:       c.id,
		Client:   c.key.sender(cd),
		Server:   c.key.sender(1 - cd),
		ToServer: a.buildHalf(c, cd),
		ToClient: a.buildHalf(c, 1-cd),
		Frames:   c.frames,
	}
}

// bounds returns where direction h starts and ends, as positions. The
// start is the byte after the SYN when it was seen; otherwise the lowest
// position any evidence shows: a segment, the FIN, or an ACK from the
// peer. The end is the highest: a segment (at its length on the wire),
// the FIN, or, without a FIN, the peer's highest ACK. An ACK that
// advanced by exactly one, or that is one past the captured data, is
// taken to acknowledge a FIN that was not captured, not a byte.
func (h *half) bounds() (base, end int64) {
	switch {
	case h.syn:
		base = h.isn + 1
	case h.dataHas || h.fin || h.ackHas:
		base = int64(1) << 62
		if h.dataHas {
			base = h.dataLo
		}
		if h.fin {
			base = min(base, h.finAt)
		}
		if h.ackHas {
			base = min(base, h.ackLo)
		}
	}
	end = base
	if h.dataHas {
		end = max(end, h.dataHi)
	}
	switch {
	case h.fin:
		end = max(end, h.finAt)
	case h.ackHas && h.ackHi > end:
		ack := h.ackHi
		if ack == end+1 || h.ackPrevHas && ack-h.ackPrev == 1 {
			ack--
		}
		end = max(end, ack)
	}
	return base, end
}

// buildHalf turns direction d of c into a flow.Half, or nil when nothing
// was captured or proved of it.
func (a *Assembler) buildHalf(c *conn, d int) *flow.Half {
	h := c.h[d]
	if h == nil {
		return nil
	}
	base, end := h.bounds()
	if end-base > a.opt.MaxConnBytes {
		a.warnf(0, "%s: stream of %d bytes cut to %d (MaxConnBytes)", c.name(h), end-base, a.opt.MaxConnBytes)
		end = base + a.opt.MaxConnBytes
	}
	size := end - base
	if h.packets == 0 && size <= 0 {
		h.st.close()
		return nil
	}
	if err := h.st.flush(); err != nil {
		a.warnf(0, "%s: %v", c.name(h), err)
	}
	h.st.buf = nil

	var exts []extent
	var before int64
	for _, b := range h.ext.blocks {
		for _, x := range b {
			s, e := x.start-base, x.end-base
			if s < 0 {
				before += min(e, 0) - s
				x.pos += min(-s, e-s)
				s = 0
			}
			e = min(e, size)
			if s < e {
				exts = append(exts, extent{s, e, x.pos})
			}
		}
	}
	h.ext = extentList{}
	if before > 0 {
		a.warnf(0, "%s: %d bytes before the SYN's sequence number dropped", c.name(h), before)
	}

	var gaps []flow.Range
	var missing int64
	cur := int64(0)
	for _, x := range exts {
		if x.start > cur {
			gaps = append(gaps, flow.Range{Start: cur, End: x.start})
			missing += x.start - cur
		}
		cur = x.end
	}
	if cur < size {
		gaps = append(gaps, flow.Range{Start: cur, End: size})
		missing += size - cur
	}
	if len(gaps) > 0 {
		a.warnf(0, "%s: %d of %d bytes not captured, in %d gaps (%s)", c.name(h), missing, size, len(gaps), rangeList(gaps, 3))
	}
	overlaps := a.overlapRanges(c, h, base, size)

	data := a.handed.add(exts, size, h.st)
	h.st = store{}
	fh := flow.NewHalf(h.src, h.dst, data, size, data.close)
	fh.Gaps, fh.Overlaps = gaps, overlaps
	fh.Frames = h.frames
	fh.SYN, fh.FIN, fh.RST = h.syn, h.fin, h.rst
	fh.Segments, fh.Retransmitted = h.segments, h.retrans
	return fh
}

// overlapRanges converts h's overlaps to offsets, sorted and merged.
func (a *Assembler) overlapRanges(c *conn, h *half, base, size int64) []flow.Range {
	var out []flow.Range
	for _, r := range h.overlaps {
		r = flow.Range{Start: max(r.Start-base, 0), End: min(r.End-base, size)}
		if r.Start < r.End {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(x, y flow.Range) int { return int(min(max(x.Start-y.Start, -1), 1)) })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && r.Start <= merged[n-1].End {
			merged[n-1].End = max(merged[n-1].End, r.End)
			continue
		}
		merged = append(merged, r)
	}
	if len(merged) > 0 {
		a.warnf(0, "%s: bytes sent twice with different contents at %s; the %s copy kept", c.name(h), rangeList(merged, 3), map[OverlapRule]string{FirstWins: "first", LastWins: "last"}[a.opt.Overlap])
	}
	return merged
}

func rangeList(rs []flow.Range, n int) string {
	var b strings.Builder
	for i, r := range rs {
		if i == n {
			fmt.Fprintf(&b, ", and %d more", len(rs)-n)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r.String())
	}
	return b.String()
}
