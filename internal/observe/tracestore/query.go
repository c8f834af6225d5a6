package tracestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"noops/internal/errkind"
)

// Trace returns every span of the trace (up to Options.MaxTraceSpans),
// sorted by start, from the segments whose bloom filter may hold it and
// from the buffer. A span stored twice (a client's retry) is returned
// once. It fails with errkind.Invalid for a malformed ID and
// errkind.NotFound when no span of the trace is stored.
func (s *Store) Trace(ctx context.Context, traceID string) ([]Span, error) {
	id := strings.ToLower(strings.TrimSpace(traceID))
	if !ValidTraceID(id) {
		return nil, errkind.Errorf(errkind.Invalid, "trace ID %.40q is not 32 hex digits (not all zero)", traceID)
	}
	var raw [16]byte
	parseID(raw[:], id)

	s.mu.Lock()
	var blocks []*blockRef
	for _, g := range s.segs {
		for _, b := range g.blocks {
			if b.filter.Test(raw[:]) {
				blocks = append(blocks, b)
			}
		}
	}
	var out []Span
	collect := func(sp *Span) {
		if sp.TraceID == id {
			out = append(out, copySpan(sp))
		}
	}
	for _, c := range s.pending {
		for _, sp := range c.spans {
			collect(sp)
		}
	}
	for _, sp := range s.buf {
		collect(sp)
	}
	s.mu.Unlock()

	slices.SortFunc(blocks, func(a, b *blockRef) int { return cmpInt64(a.h.minStart, b.h.minStart) })
	for _, b := range blocks {
		if len(out) >= s.opt.MaxTraceSpans {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		spans, err := s.readSpans(b, &raw)
		if err != nil {
			return nil, err
		}
		out = append(out, spans...)
	}
	if len(out) == 0 {
		return nil, errkind.WithHint(errkind.NotFound, fmt.Errorf("trace %s not found", id),
			"traces are kept for "+s.opt.MaxAge.String()+"; check the ID, or list recent traces")
	}
	slices.SortStableFunc(out, func(a, b Span) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.SpanID, b.SpanID)
	})
	out = slices.CompactFunc(out, func(a, b Span) bool {
		return a.SpanID == b.SpanID && a.Start.Equal(b.Start) && a.ParentID == b.ParentID
	})
	if len(out) > s.opt.MaxTraceSpans {
		out = out[:s.opt.MaxTraceSpans]
	}
	return out, nil
}

// readSpans reads a block's spans of one trace. A block whose segment was
// removed meanwhile yields nothing; a corrupt one is logged, counted and
// skipped.
func (s *Store) readSpans(b *blockRef, only *[16]byte) ([]Span, error) {
	z, err := readSection(b.seg.path, b.off+headerSize+int64(b.h.tableLen), b.h.payLen)
	if err == nil {
		var spans []Span
		if spans, err = s.c.payload(&b.h, z, only); err == nil {
			return spans, nil
		}
	}
	return nil, s.readFailed(b, err)
}

func (s *Store) readFailed(b *blockRef, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, errCorrupt):
		s.mu.Lock()
		s.stats.CorruptBlocks++
		s.mu.Unlock()
		s.log.Warn("trace store: skipping a corrupt block", "segment", filepath.Base(b.seg.path), "offset", b.off, "cause", err.Error())
		return nil
	}
	return fmt.Errorf("reading segment %s: %w", filepath.Base(b.seg.path), err)
}

func copySpan(sp *Span) Span {
	c := *sp
	// Attributes and events are never changed once stored; sharing them
	// with the caller is safe as long as the caller does not change them
	// either, which the copy guards against.
	if sp.Attributes != nil {
		c.Attributes = make(map[string]string, len(sp.Attributes))
		for k, v := range sp.Attributes {
			c.Attributes[k] = v
		}
	}
	c.Events = slices.Clone(sp.Events)
	return c
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func durationNs(n int64) time.Duration { return time.Duration(n) }

// Query selects traces for Search. Zero fields do not filter.
type Query struct {
	App         string        // a span of the trace came from this app
	Service     string        // a span of the trace has this service.name
	From, To    time.Time     // the trace's start is within [From, To]
	MinDuration time.Duration // first span start to last span end
	ErrorsOnly  bool          // a span has status "error"
	Limit       int           // default 20, at most 1000
}

// Summary describes one trace.
type Summary struct {
	TraceID  string
	Root     string // the root span's name (or the earliest span's, when Partial)
	Service  string // the root span's service
	App      string // the root span's app, or the first app seen
	Start    time.Time
	Duration time.Duration
	Spans    int
	Errors   int
	Partial  bool // no root span is stored (yet)
}

// maxSearchTraces bounds the traces Search holds in memory; past it, older
// blocks are not read.
const maxSearchTraces = 200_000

// Search returns the most recent traces matching q, newest first. It
// reads the trace tables (not the spans) of the blocks holding spans that
// started at or after q.From, newest first, and merges them per trace.
func (s *Store) Search(ctx context.Context, q Query) ([]Summary, error) {
	if q.Limit <= 0 {
		q.Limit = 20
	}
	q.Limit = min(q.Limit, 1000)
	from := int64(0)
	if !q.From.IsZero() {
		from = q.From.UnixNano()
	}
	traces := map[[16]byte]*traceEntry{}
	fold := func(t *traceEntry) {
		if e := traces[t.id]; e != nil {
			e.merge(t)
			return
		}
		if len(traces) < maxSearchTraces {
			e := &traceEntry{}
			e.merge(t)
			traces[t.id] = e
		}
	}

	s.mu.Lock()
	var mem []*Span
	for _, c := range s.pending {
		mem = append(mem, c.spans...)
	}
	mem = append(mem, s.buf...)
	var blocks []*blockRef
	for _, g := range s.segs {
		if g.maxStart < from {
			continue
		}
		for _, b := range g.blocks {
			if b.h.maxStart >= from {
				blocks = append(blocks, b)
			}
		}
	}
	s.mu.Unlock()

	rs := make([]rawSpan, len(mem))
	for i, sp := range mem {
		rs[i] = toRaw(sp)
	}
	sortRaw(rs)
	for _, t := range buildTable(rs) {
		fold(&t)
	}
	slices.SortFunc(blocks, func(a, b *blockRef) int { return cmpInt64(b.h.maxStart, a.h.maxStart) })
	for _, b := range blocks {
		if len(traces) >= maxSearchTraces {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		z, err := readSection(b.seg.path, b.off+headerSize, b.h.tableLen)
		var table []traceEntry
		if err == nil {
			table, err = s.c.table(&b.h, z)
		}
		if err != nil {
			if err = s.readFailed(b, err); err != nil {
				return nil, err
			}
			continue
		}
		for i := range table {
			fold(&table[i])
		}
	}

	var out []Summary
	for _, t := range traces {
		if q.matches(t) {
			out = append(out, t.summary())
		}
	}
	slices.SortFunc(out, func(a, b Summary) int {
		if c := b.Start.Compare(a.Start); c != 0 {
			return c
		}
		return strings.Compare(a.TraceID, b.TraceID)
	})
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func (q *Query) matches(t *traceEntry) bool {
	switch {
	case q.App != "" && !slices.Contains(t.apps, q.App):
		return false
	case q.Service != "" && !slices.Contains(t.services, q.Service):
		return false
	case !q.From.IsZero() && t.start < q.From.UnixNano():
		return false
	case !q.To.IsZero() && t.start > q.To.UnixNano():
		return false
	case q.MinDuration > 0 && time.Duration(t.end-t.start) < q.MinDuration:
		return false
	case q.ErrorsOnly && t.errs == 0:
		return false
	}
	return true
}
