package logstore

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Query selects records. Every set criterion must hold.
type Query struct {
	App      string    // "" = all
	Streams  []string  // empty = all
	From, To time.Time // zero = unbounded; [From, To)
	// Grep is a case-sensitive substring of the record's Text.
	Grep string
	// Regexp, if set, must match the record's Text.
	Regexp *regexp.Regexp
	// Fields are equalities on named fields. A record's own attributes
	// come first: app, stream, sandbox, trace_id, span_id, severity when
	// set, and for an access record method, host, path, proto, status,
	// duration_us, bytes_in, bytes_out, client, user, user_agent and
	// referer; otherwise, when Line is a JSON object, its top-level keys,
	// strings compared unquoted and other values (numbers, true, false,
	// null) as their JSON text. A field that is absent never matches.
	Fields  map[string]string
	TraceID string
	Limit   int // 0 = no limit
	// Tail, with Limit, selects the last Limit matches (still emitted
	// oldest first), as `noops logs` does by default.
	Tail bool
}

// ErrBehind is returned by Follow when its reader fell so far behind the
// writers that records were skipped.
var ErrBehind = errors.New("log follower fell behind")

// Query calls emit with the matching records, oldest first, until they
// run out, Limit is reached, emit returns an error (returned as is) or
// ctx ends. It sees what was flushed before it started.
func (s *Store) Query(ctx context.Context, q Query, emit func(Record) error) error {
	s.state.RLock()
	snap := s.snapshot(&q)
	s.state.RUnlock()
	return s.answer(ctx, &q, snap, emit)
}

// Follow is Query (with Limit and Tail applying to what is already
// stored) followed by every new matching record as it is flushed, in
// arrival order, until ctx ends (nil) or the store closes (ErrClosed).
func (s *Store) Follow(ctx context.Context, q Query, emit func(Record) error) error {
	f := &follower{ch: make(chan []Record, 256)}
	s.state.Lock()
	if s.followClosed {
		s.state.Unlock()
		return ErrClosed
	}
	snap := s.snapshot(&q)
	s.followers[f] = struct{}{}
	s.state.Unlock()
	defer func() {
		s.state.Lock()
		delete(s.followers, f)
		s.state.Unlock()
	}()
	if err := s.answer(ctx, &q, snap, emit); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case batch, ok := <-f.ch:
			if !ok {
				return ErrClosed
			}
			if n := f.missed.Swap(0); n > 0 {
				return fmt.Errorf("following logs: %d records skipped: %w", n, ErrBehind)
			}
			for i := range batch {
				if q.match(&batch[i]) {
					if err := emit(batch[i]); err != nil {
						return err
					}
				}
			}
		}
	}
}

// follower receives each flushed batch; a full channel counts as missed.
type follower struct {
	ch     chan []Record
	missed atomic.Int64
}

// source is a sorted run of records: a block on disk, or the head.
type source struct {
	meta       *blockMeta // nil for the head
	recs       []Record   // the head's matching records, sorted
	minT, maxT int64
	seq        uint64
}

// snapshot lists the sources that may hold matches. Called with s.state held.
func (s *Store) snapshot(q *Query) []source {
	from, to := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.From.IsZero() {
		from = q.From.UnixMicro()
	}
	if !q.To.IsZero() {
		to = q.To.UnixMicro() // exclusive
	}
	var mask uint32
	for _, st := range q.Streams {
		mask |= streamBit(st)
	}
	var out []source
	for _, p := range s.parts {
		for _, m := range p.blocks {
			if m.maxT < from || m.minT >= to || mask != 0 && m.streams&mask == 0 || q.App != "" && !m.hasApp(q.App) {
				continue
			}
			out = append(out, source{meta: m, minT: m.minT, maxT: m.maxT, seq: m.seq})
		}
	}
	var head []Record
	for i := range s.head {
		if q.match(&s.head[i]) {
			head = append(head, s.head[i])
		}
	}
	if len(head) > 0 {
		slices.SortStableFunc(head, func(a, b Record) int { return a.Time.Compare(b.Time) })
		out = append(out, source{recs: head, minT: head[0].Time.UnixMicro(), maxT: head[len(head)-1].Time.UnixMicro(), seq: math.MaxUint64})
	}
	return out
}

// answer answers q from the sources of a snapshot.
func (s *Store) answer(ctx context.Context, q *Query, srcs []source, emit func(Record) error) error {
	rd := &reader{s: s, files: map[string]*os.File{}}
	defer rd.close()
	if q.Tail && q.Limit > 0 {
		return s.tail(ctx, q, srcs, rd, emit)
	}
	slices.SortFunc(srcs, func(a, b source) int {
		if a.minT != b.minT {
			return cmpInt(a.minT, b.minT)
		}
		return cmpInt(a.seq, b.seq)
	})
	h := &cursors{}
	emitted := 0
	for i := 0; ; {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Open every source that may hold a record before the next one.
		for i < len(srcs) && (h.Len() == 0 || srcs[i].minT <= (*h)[0].time()) {
			recs, err := rd.load(q, &srcs[i])
			if err != nil {
				return err
			}
			if len(recs) > 0 {
				heap.Push(h, &cursor{recs: recs, seq: srcs[i].seq})
			}
			i++
		}
		if h.Len() == 0 {
			if i >= len(srcs) {
				return nil
			}
			continue
		}
		c := (*h)[0]
		if err := emit(c.recs[c.i]); err != nil {
			return err
		}
		emitted++
		if q.Limit > 0 && emitted >= q.Limit {
			return nil
		}
		if c.i++; c.i == len(c.recs) {
			heap.Pop(h)
		} else {
			heap.Fix(h, 0)
		}
	}
}

// tail keeps the last q.Limit matches in a heap, reading sources newest
// first and stopping at the first source that ends before all of them.
func (s *Store) tail(ctx context.Context, q *Query, srcs []source, rd *reader, emit func(Record) error) error {
	slices.SortFunc(srcs, func(a, b source) int {
		if a.maxT != b.maxT {
			return cmpInt(b.maxT, a.maxT)
		}
		return cmpInt(b.seq, a.seq)
	})
	h := &lastN{}
	for i := range srcs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if h.Len() == q.Limit && srcs[i].maxT < (*h)[0].r.Time.UnixMicro() {
			break
		}
		recs, err := rd.load(q, &srcs[i])
		if err != nil {
			return err
		}
		for j := range recs {
			e := entry{r: recs[j], seq: srcs[i].seq, i: j}
			switch {
			case h.Len() < q.Limit:
				e.r = cloneRecord(e.r)
				heap.Push(h, e)
			case (*h)[0].less(&e):
				e.r = cloneRecord(e.r)
				(*h)[0] = e
				heap.Fix(h, 0)
			}
		}
	}
	out := make([]Record, h.Len())
	for i := range out {
		out[i] = heap.Pop(h).(entry).r // oldest first
	}
	for _, r := range out {
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

// reader reads blocks for one query, keeping their files open.
type reader struct {
	s     *Store
	files map[string]*os.File
}

func (rd *reader) close() {
	for _, f := range rd.files {
		f.Close()
	}
}

// load returns the matching records of a source, sorted by time. A block
// that fails its checks is skipped with a warning; one whose partition
// was removed meanwhile is skipped quietly.
func (rd *reader) load(q *Query, src *source) ([]Record, error) {
	m := src.meta
	if m == nil {
		return src.recs, nil
	}
	f := rd.files[m.path]
	if f == nil {
		var err error
		if f, err = os.Open(m.path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, nil
			}
			return nil, fmt.Errorf("reading partition %s: %w", m.path, err)
		}
		rd.files[m.path] = f
	}
	if q.TraceID != "" && m.codec == codecZstd {
		if m.bloomLen == 0 {
			return nil, nil // no trace IDs in this block
		}
		bloom, err := readBloom(f, m)
		if err != nil {
			rd.corrupt(m, err)
			return nil, nil
		}
		if !bloomTest(bloom, m.bloomK, q.TraceID) {
			return nil, nil
		}
	}
	recs, err := rd.s.readBlock(f, m)
	if err != nil {
		if !errors.Is(err, errCorrupt) {
			return nil, err
		}
		rd.corrupt(m, err)
		return nil, nil
	}
	out := recs[:0]
	for i := range recs {
		if q.match(&recs[i]) {
			out = append(out, recs[i])
		}
	}
	return out, nil
}

func (rd *reader) corrupt(m *blockMeta, err error) {
	rd.s.corrupt.Add(1)
	rd.s.log.Warn("log store: skipping a corrupt block", "path", m.path, "offset", m.off, "err", err)
}

// readBlock reads, checks, decompresses and decodes one block.
func (s *Store) readBlock(f *os.File, m *blockMeta) ([]Record, error) {
	body, err := readBody(f, m)
	if err != nil {
		return nil, err
	}
	return s.dec.decode(body)
}

func cloneRecord(r Record) Record {
	r.App, r.Stream, r.Sandbox = strings.Clone(r.App), strings.Clone(r.Stream), strings.Clone(r.Sandbox)
	r.TraceID, r.SpanID, r.Severity, r.Line = strings.Clone(r.TraceID), strings.Clone(r.SpanID), strings.Clone(r.Severity), strings.Clone(r.Line)
	if r.Access != nil {
		a := *r.Access
		a.Method, a.Host, a.Path, a.Proto = strings.Clone(a.Method), strings.Clone(a.Host), strings.Clone(a.Path), strings.Clone(a.Proto)
		a.Client, a.User, a.UserAgent, a.Referer = strings.Clone(a.Client), strings.Clone(a.User), strings.Clone(a.UserAgent), strings.Clone(a.Referer)
		r.Access = &a
	}
	return r
}

func cmpInt[T int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cursor walks one source's records in the forward merge.
type cursor struct {
	recs []Record
	i    int
	seq  uint64
}

func (c *cursor) time() int64 { return c.recs[c.i].Time.UnixMicro() }

type cursors []*cursor

func (h cursors) Len() int { return len(h) }
func (h cursors) Less(i, j int) bool {
	a, b := h[i], h[j]
	if c := a.recs[a.i].Time.Compare(b.recs[b.i].Time); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}
func (h cursors) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cursors) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *cursors) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// entry is one kept record of a tail query; lastN is a min-heap of them.
type entry struct {
	r   Record
	seq uint64
	i   int
}

func (a *entry) less(b *entry) bool {
	if c := a.r.Time.Compare(b.r.Time); c != 0 {
		return c < 0
	}
	if a.seq != b.seq {
		return a.seq < b.seq
	}
	return a.i < b.i
}

type lastN []entry

func (h lastN) Len() int           { return len(h) }
func (h lastN) Less(i, j int) bool { return h[i].less(&h[j]) }
func (h lastN) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *lastN) Push(x any)        { *h = append(*h, x.(entry)) }
func (h *lastN) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
