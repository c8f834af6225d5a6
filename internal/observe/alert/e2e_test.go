package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"noops/internal/notify"
)

// amBody is what an Alertmanager webhook receiver reads, declared here
// from Alertmanager's documentation rather than from notify's types.
type amBody struct {
	Version           string            `json:"version"`
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	GroupKey          string            `json:"groupKey"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Alerts            []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     string            `json:"startsAt"`
		EndsAt       string            `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	} `json:"alerts"`
}

// hookReceiver is a webhook receiver that answers 503 while down.
type hookReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	down     bool
	attempts int
	got      []amBody
}

func newHookReceiver(t *testing.T, down bool) *hookReceiver {
	r := &hookReceiver{down: down}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if r.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var body amBody
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("receiver got %s: %v", b, err)
		}
		r.got = append(r.got, body)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) snapshot() (attempts int, got []amBody) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts, append([]amBody(nil), r.got...)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWebhookReceiverGetsFiringThenResolved is the test: a
// webhook receiver gets the alert, then the resolve, through a real
// Notifier and its Alertmanager sink; with the receiver down at first,
// the alert arrives once it is back.
func TestWebhookReceiverGetsFiringThenResolved(t *testing.T) {
	for _, tc := range []struct {
		name string
		down bool
	}{{"receiver up", false}, {"receiver down at first", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv := newHookReceiver(t, tc.down)
			n, err := notify.New(notify.Config{
				Sinks:      []notify.Sink{notify.Alertmanager(rcv.URL+"/hook/secret", nil)},
				Backoff:    5 * time.Millisecond,
				MaxBackoff: 20 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			n.Start(context.Background())
			t.Cleanup(func() { n.Stop(context.Background()) })

			src, clk := newSource(), newClock()
			e, err := New(Config{
				Sources:     map[Kind]Source{KindMetric: src},
				Notify:      n.Notify,
				Now:         clk.Now,
				ExternalURL: "https://noops.example.com",
				Markers: func(_ context.Context, app string, _ time.Time) ([]Marker, error) {
					return []Marker{{Time: t0.Add(-3 * time.Minute), Kind: "deploy", App: app, Release: 12}}, nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			r := rule("HighErrorRate", func(r *Rule) {
				r.Severity = SeverityCritical
				r.Annotations = map[string]string{"summary": "error rate {{.Value}} on {{.Labels.instance}}"}
			})
			if err := e.SetRules([]Rule{r}); err != nil {
				t.Fatal(err)
			}
			src.set("HighErrorRate", "a", 5)
			e.Evaluate(context.Background())
			clk.Add(10 * time.Second) // GroupWait
			e.Evaluate(context.Background())

			if tc.down {
				waitUntil(t, "failed attempts", func() bool { a, _ := rcv.snapshot(); return a >= 3 })
				rcv.mu.Lock()
				rcv.down = false
				rcv.mu.Unlock()
			}
			waitUntil(t, "the firing notification", func() bool { _, got := rcv.snapshot(); return len(got) == 1 })
			_, got := rcv.snapshot()
			b := got[0]
			if b.Version != "4" || b.Receiver != "noops" || b.Status != "firing" || len(b.Alerts) != 1 ||
				b.GroupKey != `{}:{alertname="HighErrorRate", app="shop"}` || b.CommonLabels["severity"] != "critical" {
				t.Fatalf("firing body %+v", b)
			}
			a := b.Alerts[0]
			if a.Status != "firing" || a.Labels["instance"] != "a" || a.Annotations["summary"] != "error rate 5 on a" ||
				a.Annotations["changed_since"] != "deploy release 12 at 13:57 UTC, 3m before" ||
				a.StartsAt != "2025-03-04T14:00:00Z" || a.EndsAt != "0001-01-01T00:00:00Z" || a.Fingerprint == "" {
				t.Errorf("firing alert %+v", a)
			}

			src.set("HighErrorRate", "a", 0)
			clk.Add(time.Minute) // GroupInterval
			e.Evaluate(context.Background())
			waitUntil(t, "the resolve", func() bool { _, got := rcv.snapshot(); return len(got) == 2 })
			_, got = rcv.snapshot()
			b = got[1]
			if b.Status != "resolved" || len(b.Alerts) != 1 || b.Alerts[0].Status != "resolved" ||
				b.Alerts[0].EndsAt != "2025-03-04T14:01:10Z" || b.Alerts[0].Fingerprint != a.Fingerprint {
				t.Errorf("resolved body %+v", b)
			}
			waitUntil(t, "the notifier to count the deliveries", func() bool { return n.Stats().Sinks[0].Delivered == 2 })
			if st := n.Stats(); st.Deduplicated != 0 || tc.down != (st.Sinks[0].Retries > 0) {
				t.Errorf("notifier stats %+v, want nothing deduplicated, retries only if the receiver was down", st)
			}
		})
	}
}

// TestStartStop runs the engine's own loop on the real clock.
func TestStartStop(t *testing.T) {
	src := newSource()
	out := &outbox{}
	e, err := New(Config{Sources: map[Kind]Source{KindMetric: src}, Notify: out.Notify, Interval: 20 * time.Millisecond, GroupWait: 30 * time.Millisecond, GroupInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetRules([]Rule{rule("R")}); err != nil {
		t.Fatal(err)
	}
	src.set("R", "a", 5)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.Start(context.Background()) == nil {
		t.Error("second Start = nil, want an error")
	}
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 2 && time.Now().Before(deadline) {
		got = append(got, summary(out.take())...)
		if len(got) == 1 {
			src.set("R")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !slices.Equal(got, []string{"firing:a", "resolved:a"}) {
		t.Errorf("notified %q, want firing then resolved", got)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Errorf("Stop = %v", err)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Errorf("second Stop = %v", err)
	}
}

// BenchmarkEvaluate measures one evaluation round of 10 rules of 1000
// firing series each, in the steady state (nothing changes).
func BenchmarkEvaluate(b *testing.B) {
	src, clk := newSource(), newClock()
	e, err := New(Config{Sources: map[Kind]Source{KindMetric: src}, Now: clk.Now, Notify: (&outbox{}).Notify})
	if err != nil {
		b.Fatal(err)
	}
	var rules []Rule
	for i := range 10 {
		name := fmt.Sprint("R", i)
		rules = append(rules, rule(name, func(r *Rule) { r.Annotations = map[string]string{"summary": "{{.Value}} on {{.Labels.instance}}"} }))
		var samples []Sample
		for j := range 1000 {
			samples = append(samples, Sample{Labels: map[string]string{"instance": fmt.Sprint(j), "job": "web"}, Value: 5})
		}
		src.setSamples(name, samples)
	}
	if err := e.SetRules(rules); err != nil {
		b.Fatal(err)
	}
	e.Evaluate(context.Background())
	b.ReportAllocs()
	for b.Loop() {
		clk.Add(30 * time.Second)
		e.Evaluate(context.Background())
	}
}
