package tracestore

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The uncompressed sections of a block.
//
// Payload: uvarint span count, then per span:
//
//	trace ID (16 bytes), span ID (8), flags (1: bit 0 = has a parent),
//	[parent ID (8)], start (varint ns from the block's base),
//	duration (uvarint ns), kind (1), status (1),
//	name, service, app, status message (strings),
//	uvarint attribute count, (key, value)…,
//	uvarint event count, (name, time (varint ns from the span's start),
//	uvarint attribute count, (key, value)…)…
//
// A string is a uvarint length and its bytes. Spans are sorted by trace
// ID, then start, so a trace's spans sit together (and compress well).
//
// Trace table (the index section): uvarint entry count, then per trace in
// the block, sorted by trace ID:
//
//	trace ID (16), start (varint ns from the base), end (uvarint ns
//	after start), spans (uvarint), errors (uvarint), flags (1: bit 0 =
//	the root span is in this block), name, service, app (of the root, or
//	of the earliest span), uvarint app count, apps…, uvarint service
//	count, services… (distinct, at most maxNames each).

// maxNames bounds the distinct apps and services a trace table entry keeps.
const maxNames = 8

var errCorrupt = errors.New("corrupt block")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
}

// rawSpan is a span with its IDs decoded, as the codec handles it.
type rawSpan struct {
	trace, parent [16]byte // parent uses the first 8 bytes
	span          [8]byte
	hasParent     bool
	s             *Span
}

func parseID(dst []byte, s string) {
	_, _ = hex.Decode(dst, []byte(s))
}

func toRaw(s *Span) rawSpan {
	var r rawSpan
	parseID(r.trace[:], s.TraceID)
	parseID(r.span[:], s.SpanID)
	if s.ParentID != "" {
		r.hasParent = true
		parseID(r.parent[:8], s.ParentID)
	}
	r.s = s
	return r
}

// sortRaw orders spans by trace ID, then start, then span ID.
func sortRaw(rs []rawSpan) {
	slices.SortFunc(rs, func(a, b rawSpan) int {
		if c := strings.Compare(string(a.trace[:]), string(b.trace[:])); c != 0 {
			return c
		}
		if c := a.s.Start.Compare(b.s.Start); c != 0 {
			return c
		}
		return strings.Compare(string(a.span[:]), string(b.span[:]))
	})
}

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }

func (e *encoder) attrs(m map[string]string) {
	e.uvarint(uint64(len(m)))
	if len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic bytes
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

// encodePayload appends the payload of sorted spans to dst; base is the
// smallest start in nanoseconds.
func encodePayload(dst []byte, rs []rawSpan, base int64) []byte {
	e := encoder{b: dst}
	e.uvarint(uint64(len(rs)))
	for i := range rs {
		r := &rs[i]
		s := r.s
		e.b = append(e.b, r.trace[:]...)
		e.b = append(e.b, r.span[:]...)
		if r.hasParent {
			e.b = append(e.b, 1)
			e.b = append(e.b, r.parent[:8]...)
		} else {
			e.b = append(e.b, 0)
		}
		start := s.Start.UnixNano()
		e.varint(start - base)
		e.uvarint(uint64(s.End.UnixNano() - start))
		e.b = append(e.b, kindCode(s.Kind), statusCode(s.StatusCode))
		e.str(s.Name)
		e.str(s.Service)
		e.str(s.App)
		e.str(s.StatusMessage)
		e.attrs(s.Attributes)
		e.uvarint(uint64(len(s.Events)))
		for _, ev := range s.Events {
			e.str(ev.Name)
			e.varint(ev.Time.UnixNano() - start)
			e.attrs(ev.Attributes)
		}
	}
	return e.b
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = corruptf(format, args...)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail("%d bytes wanted, %d left", n, len(d.b))
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte1() byte {
	if b := d.bytes(1); b != nil {
		return b[0]
	}
	return 0
}

// strBytes reads a string of at most max bytes without copying.
func (d *decoder) strBytes(max int) []byte {
	n := d.uvarint()
	if n > uint64(max) {
		d.fail("string of %d bytes over the limit %d", n, max)
		return nil
	}
	return d.bytes(int(n))
}

func (d *decoder) str(max int) string { return string(d.strBytes(max)) }

// count reads a count of items of at least minSize bytes each, at most max.
func (d *decoder) count(max, minSize int) int {
	n := d.uvarint()
	if n > uint64(max) || n*uint64(minSize) > uint64(len(d.b)) {
		d.fail("count %d too large", n)
		return 0
	}
	return int(n)
}

func (d *decoder) attrs(max int, keep bool) map[string]string {
	n := d.count(max, 2)
	var m map[string]string
	if keep && n > 0 {
		m = make(map[string]string, n)
	}
	for range n {
		k := d.strBytes(MaxAttrKeyLen)
		v := d.strBytes(MaxAttrValueLen)
		if keep && d.err == nil {
			m[string(k)] = string(v)
		}
	}
	return m
}

// decodePayload decodes a payload. With only set, it returns just the
// spans of that trace (and skips the others without allocating).
func decodePayload(b []byte, base int64, only *[16]byte) ([]Span, error) {
	d := decoder{b: b}
	n := d.count(1<<24, 40)
	var out []Span
	if only == nil {
		out = make([]Span, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		trace := d.bytes(16)
		keep := d.err == nil && (only == nil || string(trace) == string(only[:]))
		var s Span
		span := d.bytes(8)
		var parent []byte
		switch f := d.byte1(); f {
		case 0:
		case 1:
			parent = d.bytes(8)
		default:
			d.fail("span flags %#x", f)
		}
		start := base + d.varint()
		dur := d.uvarint()
		kind, status := d.byte1(), d.byte1()
		if d.err == nil && (int(kind) >= len(kinds) || int(status) >= len(statuses) || dur > 1<<62 || start <= 0) {
			d.fail("span %d: kind %d, status %d, start %d, duration %d", i, kind, status, start, dur)
		}
		name := d.strBytes(MaxNameLen)
		service := d.strBytes(MaxNameLen)
		app := d.strBytes(MaxNameLen)
		msg := d.strBytes(MaxStatusLen)
		attrs := d.attrs(MaxAttributes, keep)
		ne := d.count(MaxEvents, 3)
		var evs []SpanEvent
		if keep && ne > 0 {
			evs = make([]SpanEvent, 0, ne)
		}
		for range ne {
			en := d.strBytes(MaxNameLen)
			et := start + d.varint()
			ea := d.attrs(MaxEventAttributes, keep)
			if keep && d.err == nil {
				evs = append(evs, SpanEvent{Name: string(en), Time: utcNano(et), Attributes: ea})
			}
		}
		if !keep || d.err != nil {
			continue
		}
		s.TraceID = hex.EncodeToString(trace)
		s.SpanID = hex.EncodeToString(span)
		if parent != nil {
			s.ParentID = hex.EncodeToString(parent)
		}
		s.Start = utcNano(start)
		s.End = utcNano(start + int64(dur))
		s.Kind, s.StatusCode = kinds[kind], statuses[status]
		s.Name, s.Service, s.App, s.StatusMessage = string(name), string(service), string(app), string(msg)
		s.Attributes, s.Events = attrs, evs
		out = append(out, s)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the last span", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}
