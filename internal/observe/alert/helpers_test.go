package alert

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"noops/internal/notify"
)

// t0 is the tests' epoch.
var t0 = time.Date(2025, 3, 4, 14, 0, 0, 0, time.UTC)

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: t0} }

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

// tableSource is a Source that answers each rule from a table the test
// sets: the samples, or an error. It records the rules it was asked.
type tableSource struct {
	mu      sync.Mutex
	samples map[string][]Sample
	errs    map[string]error
	asked   []Rule
}

func newSource() *tableSource {
	return &tableSource{samples: map[string][]Sample{}, errs: map[string]error{}}
}

func (s *tableSource) Eval(ctx context.Context, r Rule, now time.Time) ([]Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, r)
	if err := s.errs[r.Name]; err != nil {
		return nil, err
	}
	return slices.Clone(s.samples[r.Name]), nil
}

// set makes rule's samples values, one per instance label "i": set("r",
// "a", 5, "b", 1).
func (s *tableSource) set(rule string, kv ...any) {
	var out []Sample
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Sample{Labels: map[string]string{"instance": kv[i].(string)}, Value: toFloat(kv[i+1])})
	}
	s.mu.Lock()
	s.samples[rule] = out
	delete(s.errs, rule)
	s.mu.Unlock()
}

func (s *tableSource) setSamples(rule string, samples []Sample) {
	s.mu.Lock()
	s.samples[rule] = samples
	s.mu.Unlock()
}

func (s *tableSource) fail(rule string, err error) {
	s.mu.Lock()
	s.errs[rule] = err
	s.mu.Unlock()
}

func toFloat(v any) float64 {
	switch v := v.(type) {
	case int:
		return float64(v)
	case float64:
		return v
	}
	panic("not a number")
}

// outbox records the events the engine notifies, as the notifier would
// take them.
type outbox struct {
	mu     sync.Mutex
	events []notify.Event
}

func (o *outbox) Notify(e notify.Event) bool {
	o.mu.Lock()
	o.events = append(o.events, e)
	o.mu.Unlock()
	return true
}

// take returns the events notified since the last take.
func (o *outbox) take() []notify.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	ev := o.events
	o.events = nil
	return ev
}

// fixture is an engine over a tableSource for every kind, an outbox and
// a clock.
type fixture struct {
	t   *testing.T
	e   *Engine
	src *tableSource
	out *outbox
	clk *clock
	log *bytes.Buffer
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{t: t, src: newSource(), out: &outbox{}, clk: newClock(), log: &bytes.Buffer{}}
	if cfg.Sources == nil {
		cfg.Sources = map[Kind]Source{KindMetric: f.src, KindLog: f.src, KindMonitor: f.src, KindAnomaly: f.src}
	}
	cfg.Notify = f.out.Notify
	if cfg.Now == nil {
		cfg.Now = f.clk.Now
	}
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: f.log}, nil))
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.e = e
	return f
}

// step advances the clock by d and evaluates once.
func (f *fixture) step(d time.Duration) []notify.Event {
	f.clk.Add(d)
	f.e.Evaluate(context.Background())
	return f.out.take()
}

func (f *fixture) setRules(rules ...Rule) {
	f.t.Helper()
	if err := f.e.SetRules(rules); err != nil {
		f.t.Fatalf("SetRules: %v", err)
	}
}

// states returns the state of each active or recently resolved alert by
// its "instance" label.
func (f *fixture) states() map[string]string {
	out := map[string]string{}
	for _, a := range f.e.Alerts() {
		if _, ok := out[a.Labels["instance"]]; !ok { // the newest first
			out[a.Labels["instance"]] = a.State
		}
	}
	return out
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// summary renders events as "status:instances" lists, for comparisons:
// "firing:a,b resolved:c".
func summary(events []notify.Event) []string {
	var out []string
	for _, e := range events {
		by := map[string][]string{}
		for _, a := range e.Alert.Alerts {
			by[a.Status] = append(by[a.Status], a.Labels["instance"])
		}
		s := ""
		for _, st := range slices.Sorted(maps.Keys(by)) {
			if s != "" {
				s += " "
			}
			slices.Sort(by[st])
			s += st + ":" + join(by[st])
		}
		out = append(out, s)
	}
	return out
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

var errDown = errors.New("metric store unreachable")

// rule is a metric rule on the samples set for name.
func rule(name string, opts ...func(*Rule)) Rule {
	r := Rule{Name: name, App: "shop", Kind: KindMetric, Expr: "rate(errors[5m])", Op: ">", Threshold: 1}
	for _, o := range opts {
		o(&r)
	}
	return r
}

func forDur(d time.Duration) func(*Rule) { return func(r *Rule) { r.For = d } }
