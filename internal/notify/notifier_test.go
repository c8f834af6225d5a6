package notify

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDedup(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before Notify
		e     Event
		want  bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"same kind and key", []step{{0, ev("a"), true}, {time.Minute, ev("a"), false}}},
		{"other key", []step{{0, ev("a"), true}, {0, ev("b"), true}}},
		{"other kind", []step{{0, ev("a"), true}, {0, Event{Kind: "unban", Key: "a"}, true}}},
		{"window passed", []step{{0, ev("a"), true}, {9 * time.Minute, ev("a"), false}, {time.Minute, ev("a"), true}}},
		{"window starts at the first", []step{{0, ev("a"), true}, {6 * time.Minute, ev("a"), false}, {6 * time.Minute, ev("a"), true}}},
		{"empty key dedups on title", []step{{0, Event{Kind: "waf_block", Title: "x"}, true}, {0, Event{Kind: "waf_block", Title: "x"}, false}, {0, Event{Kind: "waf_block", Title: "y"}, true}}},
		{"no kind", []step{{0, Event{Key: "a"}, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t, nil)
			clk := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
			n := start(t, Config{Sinks: []Sink{Webhook(r.URL, nil)}, Now: clk.Now})
			var sent, deduped int
			for i, s := range tc.steps {
				clk.Add(s.after)
				if got := n.Notify(s.e); got != s.want {
					t.Errorf("step %d: Notify(%s/%s) = %v, want %v", i, s.e.Kind, s.e.Key, got, s.want)
				}
				if s.want {
					sent++
				} else if s.e.Kind != "" {
					deduped++
				}
			}
			waitFor(t, "deliveries", func() bool { return sinkStats(n, 0).Delivered == uint64(sent) })
			if got := n.Stats().Deduplicated; got != uint64(deduped) {
				t.Errorf("Stats().Deduplicated = %d, want %d", got, deduped)
			}
			if got := r.count(); got != sent {
				t.Errorf("receiver got %d requests, want %d", got, sent)
			}
		})
	}
}

func TestDeduperIsBounded(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	d := newDeduper(time.Minute, 100)
	for i := range 1000 {
		d.admit(fmt.Sprint(i), t0)
	}
	if len(d.seen) > 100 || len(d.order) > 100 {
		t.Errorf("after 1000 keys with max 100: %d seen, %d in order", len(d.seen), len(d.order))
	}
	if !d.admit("late", t0.Add(time.Minute)) || len(d.seen) != 1 {
		t.Errorf("after the window, %d keys remembered, want 1 (the others expired)", len(d.seen))
	}
}

func TestRetriesUntilDelivered(t *testing.T) {
	t.Parallel()
	// 503 for the first three requests, then 200.
	r := newReceiver(t, func(n int, _ []byte) int {
		if n <= 3 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	n := start(t, Config{Sinks: []Sink{Webhook(r.URL, nil)}, Backoff: 10 * time.Millisecond})
	n.Notify(ev("a"))
	waitFor(t, "delivery", func() bool { return sinkStats(n, 0).Delivered == 1 })
	time.Sleep(50 * time.Millisecond) // a second delivery would show by now
	st := sinkStats(n, 0)
	if got := r.delivered(t); !slices.Equal(got, []string{"a"}) {
		t.Errorf("delivered %q, want [a] exactly once", got)
	}
	if r.count() != 4 || st.Retries != 3 || st.Pending != 0 || st.Dropped != 0 || !strings.Contains(st.LastError, "503") {
		t.Errorf("after 3 failures: %d requests, stats %+v; want 4 requests, 3 retries, LastError with 503", r.count(), st)
	}
}

func TestOrderKeptThroughFailures(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, func(n int, _ []byte) int {
		if n%2 == 1 {
			return http.StatusBadGateway
		}
		return http.StatusNoContent
	})
	n := start(t, Config{Sinks: []Sink{Webhook(r.URL, nil)}, Backoff: time.Millisecond})
	var want []string
	for i := range 20 {
		k := fmt.Sprint(i)
		want = append(want, k)
		n.Notify(ev(k))
	}
	waitFor(t, "deliveries", func() bool { return sinkStats(n, 0).Delivered == 20 })
	if got := r.delivered(t); !slices.Equal(got, want) {
		t.Errorf("delivered %q, want %q", got, want)
	}
}

func TestHangingSinkHoldsUpNothing(t *testing.T) {
	t.Parallel()
	hang := hangingServer(t)
	good := newReceiver(t, nil)
	n := start(t, Config{
		Sinks:   []Sink{Webhook(hang.URL, nil), Webhook(good.URL, nil)},
		Timeout: 50 * time.Millisecond,
		Backoff: 10 * time.Millisecond,
	})
	begin := time.Now()
	for i := range 100 {
		n.Notify(ev(fmt.Sprint(i)))
	}
	if d := time.Since(begin); d > 500*time.Millisecond {
		t.Errorf("100 Notify calls took %v with a hanging sink", d)
	}
	waitFor(t, "the good sink", func() bool { return sinkStats(n, 1).Delivered == 100 })
	waitFor(t, "a timed-out send", func() bool { return sinkStats(n, 0).Retries > 0 })
	if st := sinkStats(n, 0); st.Delivered != 0 || st.Pending != 100 || !strings.Contains(st.LastError, "deadline") {
		t.Errorf("hanging sink stats %+v, want 100 pending and a deadline error", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Errorf("Stop = %v, want nil (a send in flight is cut short)", err)
	}
	if n.Notify(ev("late")) {
		t.Error("Notify after Stop = true, want false")
	}
}

func TestPermanentFailureDrops(t *testing.T) {
	for _, code := range []int{400, 404, 413, 422} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t, func(int, []byte) int { return code })
			n := start(t, Config{Sinks: []Sink{Webhook(r.URL, nil)}, Backoff: time.Millisecond})
			n.Notify(ev("a"))
			n.Notify(ev("b"))
			waitFor(t, "the drops", func() bool { return sinkStats(n, 0).Dropped == 2 })
			time.Sleep(20 * time.Millisecond) // a retry would show by now
			st := sinkStats(n, 0)
			if r.count() != 2 || st.Rejected != 2 || st.Retries != 0 || st.Pending != 0 || st.Delivered != 0 {
				t.Errorf("after two %d replies: %d requests, stats %+v; want 2 requests, 2 rejected, no retry", code, r.count(), st)
			}
		})
	}
}

func TestMaxQueueDropsOldest(t *testing.T) {
	t.Parallel()
	r := newReceiver(t, nil)
	n := newStopped(t, Config{Sinks: []Sink{Webhook(r.URL, nil)}, MaxQueue: 3})
	for _, k := range []string{"1", "2", "3", "4", "5"} {
		if !n.Notify(ev(k)) {
			t.Fatalf("Notify(%s) = false, want true even with a full queue", k)
		}
	}
	if st := sinkStats(n, 0); st.Pending != 3 || st.Dropped != 2 {
		t.Errorf("stats %+v, want 3 pending, 2 dropped", st)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deliveries", func() bool { return sinkStats(n, 0).Delivered == 3 })
	if got := r.delivered(t); !slices.Equal(got, []string{"3", "4", "5"}) {
		t.Errorf("delivered %q, want the newest three [3 4 5]", got)
	}
}

func TestPanickingSinkIsContained(t *testing.T) {
	t.Parallel()
	bad := funcSink{"bad", func(context.Context, Event) error { panic("boom") }}
	r := newReceiver(t, nil)
	n := start(t, Config{Sinks: []Sink{bad, Webhook(r.URL, nil)}})
	n.Notify(ev("a"))
	waitFor(t, "both sinks", func() bool {
		st := n.Stats()
		return st.Sinks[0].Rejected == 1 && st.Sinks[1].Delivered == 1
	})
}

func TestLifecycle(t *testing.T) {
	n := newStopped(t, Config{})
	if err := n.Start(context.Background()); err != nil {
		t.Fatalf("Start = %v", err)
	}
	if err := n.Start(context.Background()); err == nil {
		t.Error("second Start = nil, want an error")
	}
	if !n.Notify(ev("a")) {
		t.Error("Notify with no sinks = false, want true")
	}
	for i := range 2 {
		if err := n.Stop(context.Background()); err != nil {
			t.Errorf("Stop #%d = %v", i+1, err)
		}
	}
	unstarted := newStopped(t, Config{})
	if err := unstarted.Stop(context.Background()); err != nil {
		t.Errorf("Stop without Start = %v", err)
	}
}

// TestNoSecretsLogged runs a Slack sink through failures of every kind and
// looks for its URL's secret in the logs and Stats.
func TestNoSecretsLogged(t *testing.T) {
	t.Parallel()
	const secret = "XXXXsecretXXXX"
	r := newReceiver(t, func(n int, _ []byte) int { return []int{503, 429, 400, 200}[min(n, 4)-1] })
	var mu sync.Mutex
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	refused := newReceiver(t, nil)
	refused.Close()
	n := start(t, Config{
		Sinks:   []Sink{Slack(r.URL + "/services/T0/B0/" + secret), Slack(refused.URL + "/services/" + secret)},
		Backoff: time.Millisecond, Logger: log, Spool: t.TempDir(),
	})
	n.Notify(ev("a"))
	n.Notify(ev("b"))
	waitFor(t, "the slack sink", func() bool { st := sinkStats(n, 0); return st.Delivered+st.Dropped == 2 })
	waitFor(t, "the refused sink", func() bool { return sinkStats(n, 1).Retries > 2 })
	n.Stop(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), secret) || !strings.Contains(logs.String(), "slack 127.0.0.1") {
		t.Errorf("logs hold the secret, or not the sink name:\n%s", logs.String())
	}
	for _, st := range n.Stats().Sinks {
		if strings.Contains(st.LastError, secret) || st.LastError == "" {
			t.Errorf("Stats LastError = %q, want an error without the secret", st.LastError)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestNormalizeBoundsEvents(t *testing.T) {
	fields := map[string]string{}
	for i := range 100 {
		fields[fmt.Sprintf("f%03d", i)] = strings.Repeat("é", 2000)
	}
	e := normalize(Event{Kind: "waf_block", Title: strings.Repeat("x", 10000), Fields: fields}, time.Now())
	if len(e.Title) != maxTitle || len(e.Fields) != maxFields || len(e.Fields["f000"]) != maxValue || e.Severity != SeverityWarning || e.Time.IsZero() {
		t.Errorf("normalize kept title %d, %d fields, value %d, severity %q, time %v", len(e.Title), len(e.Fields), len(e.Fields["f000"]), e.Severity, e.Time)
	}
	fields["f000"] = "changed"
	if e.Fields["f000"] == "changed" {
		t.Error("normalize shares the Fields map with the caller")
	}
}

// BenchmarkNotify measures the request-path cost of Notify with two sinks.
func BenchmarkNotify(b *testing.B) {
	discard := func(name string) Sink {
		return funcSink{name, func(context.Context, Event) error { return nil }}
	}
	for _, spool := range []bool{false, true} {
		b.Run(fmt.Sprintf("spool=%v", spool), func(b *testing.B) {
			cfg := Config{Sinks: []Sink{discard("a"), discard("b")}}
			if spool {
				cfg.Spool = b.TempDir()
			}
			n, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			n.Start(context.Background())
			defer n.Stop(context.Background())
			e := Event{Kind: "waf_block", Title: "blocked", Fields: map[string]string{"rule": "942100", "client": "203.0.113.7"}}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				e.Key = fmt.Sprint(i)
				n.Notify(e)
			}
		})
	}
}
