package tracestore

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSearch(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := openStore(t, t.TempDir(), c, Options{})
	ctx := context.Background()
	t0 := c.Now()
	add := func(spans ...Span) {
		t.Helper()
		if err := s.Add(spans...); err != nil {
			t.Fatal(err)
		}
	}
	// Trace 1: shop, 300 ms, an error; its root arrives in one block and
	// its child in a later one.
	add(mkSpan(1, 1, 0, t0, 300*time.Millisecond))
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	child := mkSpan(1, 2, 1, t0.Add(10*time.Millisecond), 50*time.Millisecond)
	child.StatusCode, child.Service, child.App = "error", "db", "shop"
	add(child)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	// Trace 2: app blog, 20 ms, a minute later (stays buffered).
	b := mkSpan(2, 3, 0, t0.Add(time.Minute), 20*time.Millisecond)
	b.App, b.Service, b.Name = "blog", "blog-web", "GET /posts"
	add(b)
	// Trace 3: no root stored yet (partial), two minutes later.
	add(mkSpan(3, 4, 99, t0.Add(2*time.Minute), 5*time.Millisecond))

	ids := func(q Query) []string {
		t.Helper()
		got, err := s.Search(ctx, q)
		if err != nil {
			t.Fatalf("Search(%+v) = %v", q, err)
		}
		var out []string
		for _, g := range got {
			out = append(out, g.TraceID[len(g.TraceID)-1:])
		}
		return out
	}
	cases := []struct {
		name string
		q    Query
		want []string
	}{
		{"all, newest first", Query{}, []string{"3", "2", "1"}},
		{"limit", Query{Limit: 2}, []string{"3", "2"}},
		{"app", Query{App: "blog"}, []string{"2"}},
		{"service of a child span", Query{Service: "db"}, []string{"1"}},
		{"errors only", Query{ErrorsOnly: true}, []string{"1"}},
		{"min duration", Query{MinDuration: 100 * time.Millisecond}, []string{"1"}},
		{"from", Query{From: t0.Add(30 * time.Second)}, []string{"3", "2"}},
		{"to", Query{To: t0.Add(90 * time.Second)}, []string{"2", "1"}},
		{"window", Query{From: t0.Add(30 * time.Second), To: t0.Add(90 * time.Second)}, []string{"2"}},
		{"nothing", Query{App: "nope"}, nil},
	}
	for _, tc := range cases {
		if got := ids(tc.q); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Search = %v, want %v", tc.name, got, tc.want)
		}
	}

	got, err := s.Search(ctx, Query{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := []Summary{
		{TraceID: traceID(3), Root: "op-4", Service: "svc", App: "shop", Start: t0.Add(2 * time.Minute), Duration: 5 * time.Millisecond, Spans: 1, Partial: true},
		{TraceID: traceID(2), Root: "GET /posts", Service: "blog-web", App: "blog", Start: t0.Add(time.Minute), Duration: 20 * time.Millisecond, Spans: 1},
		{TraceID: traceID(1), Root: "op-1", Service: "svc", App: "shop", Start: t0, Duration: 300 * time.Millisecond, Spans: 2, Errors: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Search summaries:\n got %+v\nwant %+v", got, want)
	}

	// The same after everything is written and the root of trace 3
	// arrives late, in another block.
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	root3 := mkSpan(3, 99, 0, t0.Add(2*time.Minute-time.Second), 2*time.Second)
	root3.Name = "late root"
	add(root3)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err = s.Search(ctx, Query{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Root != "late root" || got[0].Partial || got[0].Spans != 2 || got[0].Duration != 2*time.Second {
		t.Errorf("after the late root: %+v", got)
	}
}

func TestTraceDeduplicatesRetries(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := openStore(t, t.TempDir(), c, Options{})
	sp := mkSpan(1, 1, 0, c.Now(), time.Second)
	for range 2 {
		if err := s.Add(sp); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Trace(context.Background(), traceID(1))
	if err != nil || len(got) != 1 {
		t.Errorf("Trace = %d spans, %v; want the retried span once", len(got), err)
	}
}

func TestTraceSpanLimit(t *testing.T) {
	t.Parallel()
	c := newClock()
	s := openStore(t, t.TempDir(), c, Options{MaxTraceSpans: 50})
	var batch []Span
	for i := range 120 {
		batch = append(batch, mkSpan(1, i+1, 0, c.Now().Add(time.Duration(i)*time.Millisecond), time.Millisecond))
	}
	if err := s.Add(batch...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Trace(context.Background(), traceID(1))
	if err != nil || len(got) != 50 || got[0].SpanID != spanID(1) {
		t.Errorf("Trace = %d spans, %v; want the first 50", len(got), err)
	}
}

func TestWaterfall(t *testing.T) {
	t0 := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	gw := mkSpan(1, 1, 0, t0, 100*time.Millisecond)
	gw.Name, gw.Service, gw.App = "GET /orders", "noops-gateway", "shop"
	app := mkSpan(1, 2, 1, t0.Add(10*time.Millisecond), 80*time.Millisecond)
	app.Name, app.Service = "GET /orders", "shop"
	db := mkSpan(1, 3, 2, t0.Add(20*time.Millisecond), 30*time.Millisecond)
	db.Name, db.Service, db.StatusCode = "SELECT orders", "shop", "error"
	orphan := mkSpan(1, 4, 42, t0.Add(50*time.Millisecond), 50*time.Millisecond)
	orphan.Name = "publish orders\x1b[2J"
	var b strings.Builder
	if err := Waterfall(&b, []Span{db, orphan, app, gw}, 20); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"trace 00000000000000000000000000abc001: 4 spans, 3 services, 100ms",
		"    start  duration status span                                         timeline",
		"      0ns     100ms ok     GET /orders  noops-gateway [app shop]        |████████████████████|",
		"   10.0ms    80.0ms ok       GET /orders  shop                          |  ████████████████  |",
		"   20.0ms    30.0ms error      SELECT orders  shop                      |    ██████          |",
		"   50.0ms    50.0ms ok     publish orders [2J  svc [app shop] (orphan)  |          ██████████|",
		"",
	}, "\n")
	if got := b.String(); got != want {
		t.Errorf("Waterfall:\n%s\nwant:\n%s", got, want)
	}

	// A cycle of parents ends; every span is printed once.
	a := mkSpan(2, 1, 2, t0, time.Millisecond)
	c := mkSpan(2, 2, 1, t0, time.Millisecond)
	self := mkSpan(2, 3, 3, t0, time.Millisecond)
	b.Reset()
	if err := Waterfall(&b, []Span{a, c, self}, 10); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "(orphan)"); n != 2 || strings.Count(b.String(), "\n") != 5 {
		t.Errorf("cycle:\n%s", b.String())
	}
	b.Reset()
	if err := Waterfall(&b, nil, 10); err != nil || b.String() != "no spans\n" {
		t.Errorf("empty: %q, %v", b.String(), err)
	}
}
