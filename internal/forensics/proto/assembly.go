package proto

import (
	"fmt"
	"io"
	"sort"

	"noops/internal/forensics/flow"
)

// MaxOffset bounds the offsets and sizes an extractor believes: a
// protocol field claiming more (a REST or Content-Range position, a
// size) is hostile or corrupt, and sums of such numbers must not
// overflow.
const MaxOffset = 1 << 50

// Assembly is an io.ReaderAt made of pieces of other ReaderAts placed at
// offsets of an object. Bytes no piece covers read as zeros; Gaps lists
// them. The first piece placed over a byte wins: later pieces fill only
// what is still uncovered.
type Assembly struct {
	pieces []piece // sorted by off, not overlapping
	size   int64
}

type piece struct {
	off, n int64 // object offsets [off, off+n)
	r      io.ReaderAt
	roff   int64 // where the piece starts in r
}

func (p piece) end() int64 { return p.off + p.n }

// Add places n bytes of r, read from roff, at offset off of the object.
// Ranges already covered keep their earlier bytes; Add returns them (in
// object offsets) so that a caller can compare the two copies.
func (a *Assembly) Add(off int64, r io.ReaderAt, roff, n int64) (overlaps []flow.Range) {
	if n <= 0 || off < 0 || off > MaxOffset || n > MaxOffset {
		return nil
	}
	end := off + n
	a.size = max(a.size, end)
	if len(a.pieces) == 0 || a.pieces[len(a.pieces)-1].end() <= off {
		a.pieces = append(a.pieces, piece{off, n, r, roff})
		return nil
	}
	var add []piece
	pos := off
	i := sort.Search(len(a.pieces), func(i int) bool { return a.pieces[i].end() > off })
	for ; i < len(a.pieces) && pos < end; i++ {
		p := a.pieces[i]
		if p.off >= end {
			break
		}
		if p.off > pos {
			add = append(add, piece{pos, p.off - pos, r, roff + pos - off})
		}
		ov := flow.Range{Start: max(pos, p.off), End: min(end, p.end())}
		if ov.End > ov.Start {
			overlaps = append(overlaps, ov)
		}
		pos = max(pos, p.end())
	}
	if pos < end {
		add = append(add, piece{pos, end - pos, r, roff + pos - off})
	}
	if len(add) > 0 {
		a.pieces = append(a.pieces, add...)
		sort.Slice(a.pieces, func(i, j int) bool { return a.pieces[i].off < a.pieces[j].off })
	}
	return overlaps
}

// AddHalf places the bytes [start, end) of h at offset off, leaving out
// h's gaps so that they stay uncovered (and another piece may fill them).
// It returns the overlaps as Add does.
func (a *Assembly) AddHalf(off int64, h *flow.Half, start, end int64) (overlaps []flow.Range) {
	end = min(end, h.Size)
	pos := start
	for _, g := range h.GapsIn(start, end) {
		if g.Start > pos {
			overlaps = append(overlaps, a.Add(off+pos-start, h.Data, pos, g.Start-pos)...)
		}
		pos = max(pos, g.End)
	}
	if end > pos {
		overlaps = append(overlaps, a.Add(off+pos-start, h.Data, pos, end-pos)...)
	}
	return overlaps
}

// SetSize sets the object's size (pieces beyond it are cut off when read).
func (a *Assembly) SetSize(n int64) { a.size = max(n, 0) }

// Size is the object's size: the end of the last piece unless SetSize
// said otherwise.
func (a *Assembly) Size() int64 { return a.size }

// Covered is the number of bytes pieces cover within [0, Size).
func (a *Assembly) Covered() int64 {
	var n int64
	for _, p := range a.pieces {
		n += max(0, min(p.end(), a.size)-p.off)
	}
	return n
}

// Gaps returns the ranges of [0, limit) no piece covers.
func (a *Assembly) Gaps(limit int64) []flow.Range {
	var out []flow.Range
	pos := int64(0)
	for _, p := range a.pieces {
		if p.off >= limit {
			break
		}
		if p.off > pos {
			out = append(out, flow.Range{Start: pos, End: p.off})
		}
		pos = max(pos, p.end())
	}
	if pos < limit {
		out = append(out, flow.Range{Start: pos, End: limit})
	}
	return out
}

// ReadAt reads the object; uncovered bytes read as zeros.
func (a *Assembly) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading assembly at %d: negative offset", off)
	}
	if off >= a.size {
		return 0, io.EOF
	}
	want := len(b)
	if rest := a.size - off; int64(want) > rest {
		want = int(rest)
	}
	n := 0
	i := sort.Search(len(a.pieces), func(i int) bool { return a.pieces[i].end() > off })
	for n < want {
		pos := off + int64(n)
		if i >= len(a.pieces) || a.pieces[i].off >= pos+int64(want-n) {
			clear(b[n:want])
			n = want
			break
		}
		p := a.pieces[i]
		if p.off > pos {
			k := int(p.off - pos)
			clear(b[n : n+k])
			n += k
			continue
		}
		k := int(min(p.end()-pos, int64(want-n)))
		m, err := p.r.ReadAt(b[n:n+k], p.roff+pos-p.off)
		n += m
		if m < k {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("reading assembly piece at %d: %w", p.off, err)
		}
		i++
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}
