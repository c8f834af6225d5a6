package tracestore

import (
	"encoding/hex"
	"slices"
)

// traceEntry summarises one trace's spans in one block (or in the
// buffer); Search merges the entries of a trace.
type traceEntry struct {
	id           [16]byte
	start, end   int64 // ns
	spans, errs  int
	hasRoot      bool
	rootStart    int64 // start of the span that name, service and app are from
	name         string
	service, app string   // of the root span, or of the earliest span
	apps         []string // distinct, at most maxNames
	services     []string
}

func addName(list []string, s string) []string {
	if s == "" || len(list) >= maxNames || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// add folds one span into the entry.
func (t *traceEntry) add(s *Span, hasParent bool) {
	start, end := s.Start.UnixNano(), s.End.UnixNano()
	if t.spans == 0 || start < t.start {
		t.start = start
	}
	if t.spans == 0 || end > t.end {
		t.end = end
	}
	isRoot := !hasParent
	if t.spans == 0 || isRoot && (!t.hasRoot || start < t.rootStart) || !isRoot && !t.hasRoot && start < t.rootStart {
		t.hasRoot = t.hasRoot || isRoot
		t.rootStart, t.name, t.service, t.app = start, s.Name, s.Service, s.App
	}
	t.spans++
	if s.StatusCode == "error" {
		t.errs++
	}
	t.apps = addName(t.apps, s.App)
	t.services = addName(t.services, s.Service)
}

// merge folds another entry of the same trace into t.
func (t *traceEntry) merge(o *traceEntry) {
	if o.spans == 0 {
		return
	}
	if t.spans == 0 {
		*t = *o
		t.apps = slices.Clone(o.apps)
		t.services = slices.Clone(o.services)
		return
	}
	t.start, t.end = min(t.start, o.start), max(t.end, o.end)
	if o.hasRoot && (!t.hasRoot || o.rootStart < t.rootStart) || !o.hasRoot && !t.hasRoot && o.rootStart < t.rootStart {
		t.hasRoot = t.hasRoot || o.hasRoot
		t.rootStart, t.name, t.service, t.app = o.rootStart, o.name, o.service, o.app
	}
	t.spans += o.spans
	t.errs += o.errs
	for _, a := range o.apps {
		t.apps = addName(t.apps, a)
	}
	for _, s := range o.services {
		t.services = addName(t.services, s)
	}
}

// summary is the entry as Search reports it.
func (t *traceEntry) summary() Summary {
	app := t.app
	if app == "" && len(t.apps) > 0 {
		app = t.apps[0]
	}
	return Summary{
		TraceID:  hex.EncodeToString(t.id[:]),
		Root:     t.name,
		Service:  t.service,
		App:      app,
		Start:    utcNano(t.start),
		Duration: durationNs(t.end - t.start),
		Spans:    t.spans,
		Errors:   t.errs,
		Partial:  !t.hasRoot,
	}
}

// buildTable summarises sorted spans per trace.
func buildTable(rs []rawSpan) []traceEntry {
	var out []traceEntry
	for i := range rs {
		r := &rs[i]
		if len(out) == 0 || out[len(out)-1].id != r.trace {
			out = append(out, traceEntry{id: r.trace})
		}
		out[len(out)-1].add(r.s, r.hasParent)
	}
	return out
}

func encodeTable(dst []byte, ts []traceEntry, base int64) []byte {
	e := encoder{b: dst}
	e.uvarint(uint64(len(ts)))
	for i := range ts {
		t := &ts[i]
		e.b = append(e.b, t.id[:]...)
		e.varint(t.start - base)
		e.uvarint(uint64(t.end - t.start))
		e.uvarint(uint64(t.spans))
		e.uvarint(uint64(t.errs))
		if t.hasRoot {
			e.b = append(e.b, 1)
		} else {
			e.b = append(e.b, 0)
		}
		e.varint(t.rootStart - t.start)
		e.str(t.name)
		e.str(t.service)
		e.str(t.app)
		e.uvarint(uint64(len(t.apps)))
		for _, a := range t.apps {
			e.str(a)
		}
		e.uvarint(uint64(len(t.services)))
		for _, s := range t.services {
			e.str(s)
		}
	}
	return e.b
}

func decodeTable(b []byte, base int64) ([]traceEntry, error) {
	d := decoder{b: b}
	n := d.count(1<<24, 24)
	out := make([]traceEntry, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		var t traceEntry
		copy(t.id[:], d.bytes(16))
		t.start = base + d.varint()
		t.end = t.start + int64(d.uvarint()&(1<<62-1))
		t.spans = int(d.uvarint() & (1<<31 - 1))
		t.errs = int(d.uvarint() & (1<<31 - 1))
		switch f := d.byte1(); f {
		case 0, 1:
			t.hasRoot = f == 1
		default:
			d.fail("trace flags %#x", f)
		}
		t.rootStart = t.start + d.varint()
		t.name = d.str(MaxNameLen)
		t.service = d.str(MaxNameLen)
		t.app = d.str(MaxNameLen)
		for range d.count(maxNames, 1) {
			t.apps = append(t.apps, d.str(MaxNameLen))
		}
		for range d.count(maxNames, 1) {
			t.services = append(t.services, d.str(MaxNameLen))
		}
		out = append(out, t)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the trace table", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}
