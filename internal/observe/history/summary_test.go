package history

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
)

const interval = 15 * time.Second

// traffic drives steady traffic for the intervals [from, to) of 15s after
// t0 and scrapes at the end of each. Each interval shop gets 100
// requests: 90 of 20ms (85 answered 200, 3 answered 500, 2 left before an
// answer), 8 of 200ms and 2 of 2s, these two with trace IDs; blog gets 10
// of 1ms. Shop's two sandboxes use 0.5 and 1 core, 100 MB and 50 MB, 10
// and 5 processes. It returns the trace IDs of the slow requests by the
// time of the scrape that followed them.
func traffic(t *testing.T, db *DB, p *platform, from, to int) map[string]time.Time {
	t.Helper()
	slow := map[string]time.Time{}
	for i := from; i < to; i++ {
		at := t0.Add(time.Duration(i) * interval)
		for j := range 90 {
			status := "200"
			switch {
			case j < 3:
				status = "500"
			case j < 5:
				status = "0"
			}
			p.request("shop", "GET", status, 20*time.Millisecond, "")
		}
		for range 8 {
			p.request("shop", "POST", "200", 200*time.Millisecond, "")
		}
		for j := range 2 {
			id := fmt.Sprintf("%016x%016x", i, j+1)
			p.request("shop", "GET", "200", 2*time.Second, id)
			slow[id] = at
		}
		for range 10 {
			p.request("blog", "GET", "200", time.Millisecond, "")
		}
		p.cpu.WithLabelValues("shop", "a").Add(7.5)
		p.cpu.WithLabelValues("shop", "b").Add(15)
		p.memory.WithLabelValues("shop", "a").Set(100e6)
		p.memory.WithLabelValues("shop", "b").Set(50e6)
		p.pids.WithLabelValues("shop", "a").Set(10)
		p.pids.WithLabelValues("shop", "b").Set(5)
		scrapeAt(t, db, at)
	}
	return slow
}

func TestSummary(t *testing.T) {
	t.Parallel()
	p := newPlatform()
	db := openDB(t, t.TempDir(), p.reg, Options{Interval: interval})
	slow := traffic(t, db, p, 0, 81) // 20 minutes
	now := t0.Add(20 * time.Minute)

	// The app's own http.server.request.duration over OTLP lands beside
	// the gateway's, not in it.
	acc, rej, err := db.AppendOTLP("shop", request("shop", histogram("http.server.request.duration", "s", cumulative,
		&metricspb.HistogramDataPoint{TimeUnixNano: ns(now.Add(-time.Minute)), Count: 1e6, ExplicitBounds: []float64{1}, BucketCounts: []uint64{0, 1e6}})), now)
	if err != nil || acc != 1 || rej != 0 {
		t.Fatalf("AppendOTLP = %d, %d, %v; want 1 accepted", acc, rej, err)
	}

	ctx := context.Background()
	s, err := db.Summary(ctx, "shop", 10*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"Requests", s.Requests, 4000},
		{"Rate", s.Rate, 4000.0 / 600},
		{"Errors", s.Errors, 200},
		{"ErrorRatio", s.ErrorRatio, 0.05},
		{"CPU", s.CPU, 1.5},
		{"Memory", s.Memory, 150e6},
		{"Pids", s.Pids, 15},
	} {
		if !near(c.got, c.want) {
			t.Errorf("Summary(shop).%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// Linear interpolation within the buckets: p50 in (10ms, 25ms] at
	// 50/90, p95 in (100ms, 250ms] at 5/8, p99 in (1s, 2.5s] at 1/2.
	for _, c := range []struct {
		name      string
		got, want time.Duration
	}{
		{"P50", s.P50, 10*time.Millisecond + 15*time.Millisecond*50/90},
		{"P95", s.P95, 100*time.Millisecond + 150*time.Millisecond*5/8},
		{"P99", s.P99, 1750 * time.Millisecond},
	} {
		if !nearDur(c.got, c.want) {
			t.Errorf("Summary(shop).%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if s.Window != 10*time.Minute {
		t.Errorf("Summary(shop).Window = %v, want 10m", s.Window)
	}
	if at, ok := slow[s.Exemplar]; !ok || !at.After(now.Add(-10*time.Minute)) || at.After(now) {
		t.Errorf("Summary(shop).Exemplar = %q (of %v), want the trace ID of a slow request of the last 10m", s.Exemplar, at)
	}

	b, err := db.Summary(ctx, "blog", 10*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if !near(b.Requests, 400) || b.Errors != 0 || b.ErrorRatio != 0 || !nearDur(b.P50, 2500*time.Microsecond) || b.CPU != 0 || b.Exemplar != "" {
		t.Errorf("Summary(blog) = %+v, want 400 requests, no errors, p50 2.5ms, nothing else", b)
	}
	none, err := db.Summary(ctx, "nobody", 10*time.Minute, now)
	if err != nil || none != (Summary{Window: 10 * time.Minute}) {
		t.Errorf("Summary(nobody) = %+v, %v; want zeros", none, err)
	}
	short, err := db.Summary(ctx, "shop", time.Second, now)
	if err != nil || short.Window != 2*interval || !near(short.Rate, 100.0/15) {
		t.Errorf("Summary(shop, 1s) = %+v, %v; want a 30s window at 6.67/s", short, err)
	}
	if _, err := db.Summary(ctx, `shop"}`, time.Minute, now); err != nil {
		t.Errorf("Summary of a name with quotes: %v, want an (empty) answer", err)
	}
	if _, err := db.Summary(ctx, "", time.Minute, now); err == nil {
		t.Error("Summary of no app: no error")
	}
	if _, err := db.Summary(ctx, "shop", 0, now); err == nil {
		t.Error("Summary over no window: no error")
	}
}

func TestPoints(t *testing.T) {
	t.Parallel()
	p := newPlatform()
	db := openDB(t, t.TempDir(), p.reg, Options{Interval: interval})
	traffic(t, db, p, 0, 41)                // 10 minutes of traffic,
	scrapeAt(t, db, t0.Add(15*time.Minute)) // then 5 quiet ones
	now := t0.Add(15 * time.Minute)

	pts, err := db.Points(context.Background(), "shop", 10*time.Minute, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 11 || !pts[0].Time.Equal(now.Add(-10*time.Minute)) || !pts[10].Time.Equal(now) {
		t.Fatalf("Points = %d points from %v to %v, want 11 from -10m to now", len(pts), pts[0].Time, pts[len(pts)-1].Time)
	}
	for i, pt := range pts[1:6] { // steps over steady traffic
		if !near(pt.Rate, 100.0/15) || !near(pt.ErrorRatio, 0.05) || !nearDur(pt.P95, 193750*time.Microsecond) {
			t.Errorf("Points[%d] = %+v, want 6.67/s, 5%% errors, p95 193.75ms", i+1, pt)
		}
	}
	if last := pts[10]; last.Rate != 0 || last.ErrorRatio != 0 || last.P95 != 0 {
		t.Errorf("Points[10], after the traffic stopped, = %+v, want zeros", last)
	}
	for _, c := range []struct {
		name         string
		window, step time.Duration
	}{
		{"no step", time.Hour, 0},
		{"step longer than window", time.Minute, time.Hour},
		{"too many steps", 24 * time.Hour, time.Second},
	} {
		if _, err := db.Points(context.Background(), "shop", c.window, c.step, now); err == nil {
			t.Errorf("Points with %s: no error", c.name)
		}
	}
}

func TestQueryRangeAndExemplars(t *testing.T) {
	t.Parallel()
	p := newPlatform()
	db := openDB(t, t.TempDir(), p.reg, Options{Interval: interval})
	slow := traffic(t, db, p, 0, 41)
	ctx := context.Background()
	start, end := t0.Add(5*time.Minute), t0.Add(10*time.Minute)

	const expr = `sum(rate(http_server_request_duration_seconds_count{app="shop"}[1m]))`
	m, err := db.QueryRange(ctx, expr, start, end, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || len(m[0].Floats) != 6 {
		t.Fatalf("QueryRange = %v, want one series of 6 points", m)
	}
	for _, pt := range m[0].Floats {
		if !near(pt.F, 100.0/15) {
			t.Errorf("QueryRange at %v = %v, want 6.67", time.UnixMilli(pt.T).UTC(), pt.F)
		}
	}

	res, err := db.Exemplars(ctx, `histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{app="shop"}[1m])))`, start, end)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range res {
		if r.SeriesLabels.Get("le") != "2.5" {
			t.Errorf("exemplar on series %s, want only le=2.5 (the slow requests')", r.SeriesLabels)
		}
		for _, e := range r.Exemplars {
			id := e.Labels.Get("trace_id")
			at, ok := slow[id]
			if !ok || at.UnixMilli() != e.Ts || at.Before(start) || at.After(end) {
				t.Errorf("exemplar %s at %v: want a slow request's trace ID at its scrape time in the range", e.Labels, time.UnixMilli(e.Ts).UTC())
			}
			ids = append(ids, id)
		}
	}
	// One exemplar per bucket per scrape: the last slow request of each
	// of the 21 scrapes in [5m, 10m].
	if len(ids) != 21 || len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 21 {
		t.Errorf("Exemplars = %d trace IDs, want 21: %v", len(ids), ids)
	}

	for _, c := range []struct{ name, expr string }{
		{"syntax", "sum(("},
		{"empty", ""},
		{"string result", `"text"`},
	} {
		if _, err := db.Query(ctx, c.expr, end); err == nil {
			t.Errorf("Query(%s %q): no error", c.name, c.expr)
		}
	}
	if _, err := db.QueryRange(ctx, expr, end, start, time.Minute); err == nil {
		t.Error("QueryRange with end before start: no error")
	}
	if _, err := db.QueryRange(ctx, expr, start, start.Add(24*time.Hour), time.Second); err == nil {
		t.Error("QueryRange of 86400 steps: no error")
	}
	if v := valueAt(t, db, "1+1", end); v != 2 {
		t.Errorf("Query(1+1) = %v, want 2", v)
	}
}
