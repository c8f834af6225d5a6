package tracestore

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func traceID(n int) string { return fmt.Sprintf("%032x", 0xabc000+n) }
func spanID(n int) string  { return fmt.Sprintf("%016x", 0x5000+n) }

// mkSpan is span n of trace tr, child of parent (0: a root), starting at
// start and lasting d.
func mkSpan(tr, n, parent int, start time.Time, d time.Duration) Span {
	s := Span{
		TraceID: traceID(tr), SpanID: spanID(n),
		Name: fmt.Sprintf("op-%d", n), Kind: "server", Service: "svc", App: "shop",
		Start: start, End: start.Add(d), StatusCode: "ok",
		Attributes: map[string]string{"http.method": "GET", "url.path": fmt.Sprintf("/items/%d", n)},
	}
	if parent != 0 {
		s.ParentID = spanID(parent)
		s.Kind = "client"
	}
	return s
}

func openStore(t *testing.T, dir string, c *clock, opt Options) *Store {
	t.Helper()
	opt.Now = c.Now
	if opt.FlushEvery == 0 {
		opt.FlushEvery = time.Hour // tests flush explicitly
	}
	s, err := Open(dir, opt)
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func spanIDs(spans []Span) []string {
	var ids []string
	for _, s := range spans {
		ids = append(ids, s.SpanID)
	}
	return ids
}
