package stream

import (
	"slices"
	"sort"
)

// extent maps the stream positions [start, end) to the store at pos.
// During assembly positions are relative sequence numbers; in an emitted
// Half they are offsets from the direction's first byte.
type extent struct{ start, end, pos int64 }

// extentSize is what one extent costs in memory, with slack, for the
// memory budget.
const extentSize = 32

// blockMax is the most extents one block of an extentList holds before it
// is split in two.
const blockMax = 256

// extentList is an ordered set of non-overlapping extents kept as a list
// of sorted blocks (a one-level B-tree), so that inserting in the middle
// costs O(log n + blockMax) rather than O(n): a fully shuffled stream of
// a million segments stays fast. Extents are never removed.
type extentList struct {
	blocks [][]extent
	n      int
}

// last returns the extent that ends highest, or nil.
func (l *extentList) last() *extent {
	if len(l.blocks) == 0 {
		return nil
	}
	b := l.blocks[len(l.blocks)-1]
	return &b[len(b)-1]
}

// first returns the extent that starts lowest, or nil.
func (l *extentList) first() *extent {
	if len(l.blocks) == 0 {
		return nil
	}
	return &l.blocks[0][0]
}

// cursor points at one extent of a list: block bi, index i.
type cursor struct{ bi, i int }

// seek returns a cursor at the first extent that ends after x; it is past
// the end (valid reports false) when there is none.
func (l *extentList) seek(x int64) cursor {
	bi := sort.Search(len(l.blocks), func(k int) bool {
		b := l.blocks[k]
		return b[len(b)-1].end > x
	})
	if bi == len(l.blocks) {
		return cursor{bi, 0}
	}
	b := l.blocks[bi]
	return cursor{bi, sort.Search(len(b), func(k int) bool { return b[k].end > x })}
}

func (l *extentList) valid(c cursor) bool { return c.bi < len(l.blocks) }

func (l *extentList) at(c cursor) *extent { return &l.blocks[c.bi][c.i] }

func (l *extentList) next(c cursor) cursor {
	c.i++
	if c.i == len(l.blocks[c.bi]) {
		c = cursor{c.bi + 1, 0}
	}
	return c
}

// prev returns the extent before the cursor, or nil.
func (l *extentList) prev(c cursor) *extent {
	if c.bi < len(l.blocks) && c.i > 0 {
		return &l.blocks[c.bi][c.i-1]
	}
	if c.bi == 0 {
		return nil
	}
	b := l.blocks[c.bi-1]
	return &b[len(b)-1]
}

// add inserts e, which must not overlap any extent. When e continues its
// predecessor both in position and in the store, the predecessor grows
// instead, so an in-order stream stays one extent.
func (l *extentList) add(e extent) {
	c := l.seek(e.start)
	if p := l.prev(c); p != nil && p.end == e.start && p.pos+(p.end-p.start) == e.pos {
		p.end = e.end
		return
	}
	l.n++
	if len(l.blocks) == 0 {
		l.blocks = [][]extent{append(make([]extent, 0, 2), e)}
		return
	}
	if c.bi == len(l.blocks) {
		c = cursor{c.bi - 1, len(l.blocks[c.bi-1])}
	}
	b := slices.Insert(l.blocks[c.bi], c.i, e)
	if len(b) <= blockMax {
		l.blocks[c.bi] = b
		return
	}
	half := len(b) / 2
	right := append(make([]extent, 0, blockMax+1), b[half:]...)
	l.blocks[c.bi] = b[:half]
	l.blocks = slices.Insert(l.blocks, c.bi+1, right)
}

// all returns every extent in order.
func (l *extentList) all() []extent {
	out := make([]extent, 0, l.n)
	for _, b := range l.blocks {
		out = append(out, b...)
	}
	return out
}
