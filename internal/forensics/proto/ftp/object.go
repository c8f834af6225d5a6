package ftp

import (
	"bytes"
	"fmt"
	"math"

	"noops/internal/forensics/flow"
	"noops/internal/forensics/proto"
)

// part is one transfer's share of an object: the bytes of half placed at
// offset off (the REST position).
type part struct {
	t    *transfer
	half *flow.Half
	off  int64
}

// maxHole is the largest run of missing bytes an object may have before
// its first captured byte or between REST pieces: a REST offset further
// out makes its own object rather than one full of zeros.
const maxHole = 1 << 30

// build turns the matched transfers into objects, stitching a transfer
// that starts at a REST offset onto the earlier transfer of the same file.
func build(sessions []*session) ([]*flow.Object, []flow.Warning) {
	var (
		groups [][]part
		ends   []int64 // each group's end
		byKey  = map[string]int{}
		warns  []flow.Warning
	)
	for _, s := range sessions {
		for _, t := range s.transfers {
			h, w := carrier(t)
			if w != "" {
				warns = append(warns, flow.Warning{Message: w})
			}
			if h == nil {
				continue
			}
			p := part{t: t, half: h, off: t.rest}
			key := fmt.Sprintf("%s|%d|%s", t.ctrl.Server.Addr, t.upload, t.name)
			if i, ok := byKey[key]; ok && t.rest > 0 && t.name != "" && !t.listing && t.rest <= ends[i]+maxHole {
				groups[i] = append(groups[i], p)
				ends[i] = max(ends[i], p.off+h.Size)
				continue
			}
			if t.name != "" && !t.listing && t.rest <= maxHole {
				byKey[key] = len(groups)
			}
			groups = append(groups, []part{p})
			ends = append(ends, p.off+h.Size)
		}
	}
	objs := make([]*flow.Object, 0, len(groups))
	for _, g := range groups {
		objs = append(objs, object(g, sessionFlavor(sessions, g[0].t)))
	}
	return objs, warns
}

func sessionFlavor(sessions []*session, t *transfer) string {
	for _, s := range sessions {
		if s.ctrl == t.ctrl {
			return s.flavor
		}
	}
	return ""
}

// carrier picks the data connection's direction that carries the file,
// or says why there is none.
func carrier(t *transfer) (*flow.Half, string) {
	if t.data == nil {
		end := ""
		if t.final != nil {
			end = fmt.Sprintf(" (%d %s)", t.final.Code, t.final.Text())
		}
		return nil, fmt.Sprintf("FTP %s%s: no data connection for it was captured", t.label(), end)
	}
	down, up := halves(t)
	var h *flow.Half
	switch {
	case t.upload > 0:
		h = up
	case t.upload < 0:
		h = down
	case down != nil && down.Size > 0:
		h, t.upload = down, -1
	case up != nil && up.Size > 0:
		h, t.upload = up, 1
	case down != nil && (t.ann.size == 0 || t.listing):
		h, t.upload = down, -1 // an empty file or listing
	default:
		return nil, fmt.Sprintf("FTP %s: data conn %d carried no bytes either way that were captured (an upload whose client side is missing?)",
			t.label(), t.data.ID)
	}
	if h == nil {
		dir := "server→client"
		if t.upload > 0 {
			dir = "client→server"
		}
		return nil, fmt.Sprintf("FTP %s: the %s data of conn %d was not captured (only the other side is in the capture)",
			t.label(), dir, t.data.ID)
	}
	return h, ""
}

func object(parts []part, flavor string) *flow.Object {
	first := parts[0].t
	o := &flow.Object{
		Protocol: "ftp",
		Name:     first.name,
		NameFrom: first.nameFrom,
		Flow:     proto.Ref(first.data, parts[0].half),
		Control:  proto.Ref(first.ctrl, nil),
		Complete: true,
	}
	switch {
	case first.listing:
		o.Name, o.NameFrom, o.ContentType = fmt.Sprintf("ftp-listing-%d-%d.txt", first.ctrl.ID, first.seq), "", "text/plain"
		o.Notes = append(o.Notes, "directory listing")
	case o.Name == "":
		o.Name = fmt.Sprintf("ftp-%d-%d", first.ctrl.ID, first.seq)
	}
	if first.upload > 0 {
		o.Notes = append(o.Notes, "upload (client to server)")
	}
	if parts[0].off > maxHole {
		// Too far out to place: the object starts at the REST offset.
		o.Notes = append(o.Notes, fmt.Sprintf("the object is the file from offset %d on (REST %d); what comes before was not captured",
			parts[0].off, parts[0].off))
		parts[0].off = 0
		parts[0].t.ann.size, parts[0].t.size213 = -1, -1
	}
	a := &proto.Assembly{}
	var (
		size     int64
		expected = int64(-1)
		from     string
		endOK    bool // the part that reaches the end ended with 226
	)
	for i, p := range parts {
		t, h := p.t, p.half
		partNotes(o, p, i == 0)
		if ov := a.AddHalf(p.off, h, 0, h.Size); len(ov) > 0 {
			o.Notes = append(o.Notes, compareOverlaps(a, h, p.off, ov, t.data.ID))
		}
		ok := t.final != nil && (t.final.Code == 226 || t.final.Code == 250)
		if end := p.off + h.Size; end >= size {
			size, endOK = end, ok
		}
		if full, by := fullSize(o, p, flavor, ok); full > expected {
			expected, from = full, by
		}
		o.Frames = mergeFrames(o.Frames, h.Frames)
		if i == 0 {
			o.Ranges = covered(h)
		}
	}
	a.SetSize(size)
	o.Data, o.Size, o.ExpectedSize = a, size, expected
	o.Gaps = a.Gaps(size)
	if expected >= 0 && expected != size {
		o.Notes = append(o.Notes, fmt.Sprintf("size mismatch: %s announced %d bytes, the capture holds %d", from, expected, size))
	}
	if expected > size {
		o.Gaps = append(o.Gaps, flow.Range{Start: size, End: expected})
	}
	o.Complete = endOK && len(o.Gaps) == 0 && (expected < 0 || expected == size)
	return o
}

// partNotes records how the transfer was found and what its control
// connection said about its end.
func partNotes(o *flow.Object, p part, first bool) {
	t, h := p.t, p.half
	where := fmt.Sprintf("data conn %d (%s→%s, %s)", t.data.ID, h.Src, h.Dst, t.mode)
	o.Notes = append(o.Notes, fmt.Sprintf("%s: %s matched by %s", t.label(), where, t.matchedBy))
	if p.off > 0 {
		if first {
			o.Notes = append(o.Notes, fmt.Sprintf("starts at REST offset %d: bytes 0-%d were not transferred in the capture", p.off, p.off))
		} else {
			o.Decoded = append(o.Decoded, fmt.Sprintf("REST %d stitched", p.off))
			o.Notes = append(o.Notes, fmt.Sprintf("bytes %d-%d from %s (REST %d)", p.off, p.off+h.Size, where, p.off))
		}
	}
	if t.nameFrom == "150 reply" {
		o.Notes = append(o.Notes, "name from the 150 reply: the client's command was not captured")
	}
	for _, g := range h.Gaps {
		o.Notes = append(o.Notes, fmt.Sprintf("bytes %d-%d not captured (conn %d %s bytes %d-%d)",
			p.off+g.Start, p.off+g.End, t.data.ID, proto.Direction(t.data, h), g.Start, g.End))
	}
	switch {
	case t.final == nil && !t.replies:
		o.Notes = append(o.Notes, "the server's replies were not captured: whether the transfer completed is unknown")
	case t.final == nil:
		o.Notes = append(o.Notes, "no reply ended the transfer (no 226): it may be incomplete")
	case t.final.Code == 226 || t.final.Code == 250:
	default:
		o.Notes = append(o.Notes, fmt.Sprintf("transfer aborted: %d %s", t.final.Code, t.final.Text()))
	}
	if h.RST {
		o.Notes = append(o.Notes, fmt.Sprintf("data conn %d was reset", t.data.ID))
	} else if !h.FIN && t.final == nil {
		o.Notes = append(o.Notes, fmt.Sprintf("data conn %d did not close in the capture", t.data.ID))
	}
	if t.ascii {
		o.Notes = append(o.Notes, "ASCII mode (TYPE A): line endings are as sent, not as stored")
	}
}

// fullSize reads the file's whole size from what the server announced
// for a transfer, -1 when unknown, and says who announced it. vsftpd's
// 150 reply gives the whole file's size even after REST, ProFTPD's the
// bytes left to send; the 213 reply to SIZE always the whole file's.
// Disagreements between the two, and Pure-FTPd's approximate "N kbytes to
// download" against a completed transfer's bytes, are noted.
func fullSize(o *flow.Object, p part, flavor string, completed bool) (int64, string) {
	t, got := p.t, p.half.Size
	full, by := int64(-1), ""
	if a := t.ann.size; a >= 0 {
		by = "the 150 reply"
		switch {
		case p.off+got == a:
			full = a
		case (got == a && p.off > 0) || flavor == "proftpd":
			full = p.off + a
		default:
			full = a
		}
	}
	if s := t.size213; s >= 0 {
		if full >= 0 && s != full {
			o.Notes = append(o.Notes, fmt.Sprintf("the SIZE reply (213 %d) and the 150 reply (%d bytes) disagree", s, full))
		}
		if s > full {
			full, by = s, "the SIZE reply"
		}
	}
	if k := t.ann.kbytes; k >= 0 && completed {
		if want := k * 1024; math.Abs(float64(got)-want) > 0.05*1024+1 {
			o.Notes = append(o.Notes, fmt.Sprintf("size mismatch: the 150 reply announced %.1f kbytes, the data connection carried %d bytes", k, got))
		}
	}
	return full, by
}

// compareOverlaps says whether bytes received twice (a REST before the
// end of what was already held) agree.
func compareOverlaps(a *proto.Assembly, h *flow.Half, off int64, ov []flow.Range, conn int) string {
	const chunk = 1 << 16
	kept, again := make([]byte, chunk), make([]byte, chunk)
	for _, r := range ov {
		for pos := r.Start; pos < r.End; pos += chunk {
			n := int(min(chunk, r.End-pos))
			_, err1 := a.ReadAt(kept[:n], pos)
			_, err2 := h.Data.ReadAt(again[:n], pos-off)
			if err1 != nil || err2 != nil || !bytes.Equal(kept[:n], again[:n]) {
				return fmt.Sprintf("bytes %s received twice (conn %d after REST) differ: the first copy is kept", proto.FormatRanges(ov), conn)
			}
		}
	}
	return fmt.Sprintf("bytes %s received twice (conn %d after REST), identical", proto.FormatRanges(ov), conn)
}

func mergeFrames(a, b flow.Frames) flow.Frames {
	if a.First == 0 || (b.First > 0 && b.First < a.First) {
		a.First, a.FirstTime = b.First, b.FirstTime
	}
	if b.Last > a.Last {
		a.Last, a.LastTime = b.Last, b.LastTime
	}
	return a
}

// covered is [0, Size) of h without its gaps.
func covered(h *flow.Half) []flow.Range {
	var out []flow.Range
	pos := int64(0)
	for _, g := range h.GapsIn(0, h.Size) {
		if g.Start > pos {
			out = append(out, flow.Range{Start: pos, End: g.Start})
		}
		pos = max(pos, g.End)
	}
	if pos < h.Size || h.Size == 0 {
		out = append(out, flow.Range{Start: pos, End: h.Size})
	}
	return out
}
