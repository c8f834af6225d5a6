package alert

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"noops/internal/notify"
)

// TestLifecycle drives one rule through table-driven evaluations with
// notifications sent as soon as they change (no group waits), checking
// each alert's state and what is notified.
func TestLifecycle(t *testing.T) {
	type step struct {
		after  time.Duration
		values []any // instance, value, …; nil: no samples
		err    error // the Source fails instead
		states map[string]string
		notes  []string // summary() of the notifications
	}
	type states = map[string]string
	tests := []struct {
		name  string
		rule  Rule
		steps []step
	}{
		{"pending then firing after For", rule("R", forDur(time.Minute)), []step{
			{0, []any{"a", 5}, nil, states{"a": StatePending}, nil},
			{30 * time.Second, []any{"a", 5}, nil, states{"a": StatePending}, nil},
			{30 * time.Second, []any{"a", 5}, nil, states{"a": StateFiring}, []string{"firing:a"}},
			{30 * time.Second, []any{"a", 5}, nil, states{"a": StateFiring}, nil},
		}},
		{"a flap before For cancels", rule("R", forDur(time.Minute)), []step{
			{0, []any{"a", 5}, nil, states{"a": StatePending}, nil},
			{50 * time.Second, []any{"a", 0}, nil, states{}, nil},
			{10 * time.Second, []any{"a", 5}, nil, states{"a": StatePending}, nil},
			{50 * time.Second, []any{"a", 5}, nil, states{"a": StatePending}, nil},
			{10 * time.Second, []any{"a", 5}, nil, states{"a": StateFiring}, []string{"firing:a"}},
		}},
		{"For 0 fires at once", rule("R"), []step{
			{0, []any{"a", 5}, nil, states{"a": StateFiring}, []string{"firing:a"}},
		}},
		{"at the threshold is not above it", rule("R"), []step{
			{0, []any{"a", 1}, nil, states{}, nil},
		}},
		{"resolves below the threshold", rule("R"), []step{
			{0, []any{"a", 5}, nil, states{"a": StateFiring}, []string{"firing:a"}},
			{30 * time.Second, []any{"a", 0.5}, nil, states{"a": StateResolved}, []string{"resolved:a"}},
			{30 * time.Second, []any{"a", 0.5}, nil, states{"a": StateResolved}, nil},
		}},
		{"resolves when the series disappears", rule("R"), []step{
			{0, []any{"a", 5, "b", 5}, nil, states{"a": StateFiring, "b": StateFiring}, []string{"firing:a,b"}},
			{30 * time.Second, []any{"a", 5}, nil, states{"a": StateFiring, "b": StateResolved}, []string{"firing:a resolved:b"}},
			{30 * time.Second, nil, nil, states{"a": StateResolved, "b": StateResolved}, []string{"resolved:a"}},
		}},
		{"a source error neither resolves nor fires", rule("R", forDur(time.Minute)), []step{
			{0, []any{"a", 5, "b", 5}, nil, states{"a": StatePending, "b": StatePending}, nil},
			{time.Minute, []any{"a", 5}, nil, states{"a": StateFiring}, []string{"firing:a"}},
			{time.Second, []any{"b", 5}, nil, states{"a": StateResolved, "b": StatePending}, []string{"resolved:a"}},
			{time.Minute, nil, errDown, states{"a": StateResolved, "b": StatePending}, nil},
			{time.Minute, nil, errDown, states{"a": StateResolved, "b": StatePending}, nil},
			{time.Second, []any{"b", 5}, nil, states{"a": StateResolved, "b": StateFiring}, []string{"firing:b"}},
			{time.Second, nil, errDown, states{"a": StateResolved, "b": StateFiring}, nil},
			{time.Second, []any{}, nil, states{"a": StateResolved, "b": StateResolved}, []string{"resolved:b"}},
		}},
		{"less than", rule("R", func(r *Rule) { r.Op, r.Threshold = "<", 0.99 }), []step{
			{0, []any{"a", 0.5, "b", 1}, nil, states{"a": StateFiring}, []string{"firing:a"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Config{GroupWait: -1, GroupInterval: -1})
			f.setRules(tc.rule)
			for i, s := range tc.steps {
				if s.err != nil {
					f.src.fail(tc.rule.Name, s.err)
				} else {
					f.src.set(tc.rule.Name, s.values...)
				}
				got := summary(f.step(s.after))
				if !slices.Equal(got, s.notes) {
					t.Errorf("step %d: notified %q, want %q", i, got, s.notes)
				}
				if st := f.states(); !maps.Equal(st, s.states) {
					t.Errorf("step %d: states %v, want %v", i, st, s.states)
				}
			}
		})
	}
}

func TestHolds(t *testing.T) {
	nan := func() float64 { var z float64; return z / z }()
	tests := []struct {
		op   string
		v, t float64
		want bool
	}{
		{">", 2, 1, true}, {">", 1, 1, false}, {">=", 1, 1, true}, {"<", 0, 1, true}, {"<", 1, 1, false},
		{"<=", 1, 1, true}, {"==", 1, 1, true}, {"==", 2, 1, false}, {"!=", 2, 1, true}, {"!=", 1, 1, false},
		{">", nan, 1, false}, {"<", nan, 1, false}, {"!=", nan, 1, false}, {"==", nan, nan, false},
	}
	for _, tc := range tests {
		if got := holds(tc.op, tc.v, tc.t); got != tc.want {
			t.Errorf("holds(%q, %v, %v) = %v, want %v", tc.op, tc.v, tc.t, got, tc.want)
		}
	}
}

// TestGrouping follows one group through Alertmanager's timers: GroupWait
// before the first notification, GroupInterval between changes, Repeat
// for reminders of an unchanged group.
func TestGrouping(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	f.setRules(rule("HighErrorRate"))
	steps := []struct {
		after  time.Duration
		values []any
		want   []string
	}{
		{0, []any{"a", 5, "b", 5}, nil},               // firing; the group waits 10s
		{5 * time.Second, []any{"a", 5, "b", 5}, nil}, // still waiting
		{5 * time.Second, []any{"a", 5, "b", 5}, []string{"firing:a,b"}},
		{10 * time.Second, []any{"a", 5, "b", 5, "c", 5}, nil}, // changed, 1m after the last
		{40 * time.Second, []any{"a", 5, "b", 5, "c", 5}, nil}, //
		{10 * time.Second, []any{"a", 5, "b", 5, "c", 5}, []string{"firing:a,b,c"}},
		{time.Minute, []any{"a", 5, "b", 5, "c", 5}, nil}, // unchanged: nothing
		{4*time.Hour - time.Minute - time.Second, []any{"a", 5, "b", 5, "c", 5}, nil},
		{time.Second, []any{"a", 5, "b", 5, "c", 5}, []string{"firing:a,b,c"}}, // the reminder
		{30 * time.Second, []any{"a", 5, "c", 5}, nil},                         // b resolved; 1m after the reminder
		{30 * time.Second, []any{"a", 5, "c", 5}, []string{"firing:a,c resolved:b"}},
		{time.Minute, nil, []string{"resolved:a,c"}},
		{time.Hour, nil, nil}, // the group is gone
	}
	var keys []string
	for i, s := range steps {
		f.src.set("HighErrorRate", s.values...)
		events := f.step(s.after)
		if got := summary(events); !slices.Equal(got, s.want) {
			t.Fatalf("step %d: notified %q, want %q", i, got, s.want)
		}
		for _, e := range events {
			keys = append(keys, e.Key)
			switch i {
			case 8:
				if e.Fields["reminder"] != "1" || e.Title != "[FIRING:3] HighErrorRate app=shop" {
					t.Errorf("reminder: fields %v, title %q; want reminder 1", e.Fields, e.Title)
				}
			case 11:
				if e.Title != "[RESOLVED] HighErrorRate app=shop" || e.Alert.Status != notify.StatusResolved || e.Fields["status"] != "resolved" {
					t.Errorf("last notification: title %q, status %q; want [RESOLVED]", e.Title, e.Alert.Status)
				}
				for _, a := range e.Alert.Alerts {
					if !a.EndsAt.Equal(f.clk.Now()) || a.StartsAt.IsZero() {
						t.Errorf("resolved alert %v: startsAt %v endsAt %v; want endsAt %v", a.Labels, a.StartsAt, a.EndsAt, f.clk.Now())
					}
				}
			}
		}
	}
	if len(keys) != 5 || len(slices.Compact(slices.Sorted(slices.Values(keys)))) != 5 {
		t.Errorf("keys %q, want 5 distinct (notify would dedup equal ones)", keys)
	}
}

// TestGroupEdges covers alerts that come and go around notifications.
func TestGroupEdges(t *testing.T) {
	t.Run("fired and resolved before the first notification", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Config{})
		f.setRules(rule("R"))
		f.src.set("R", "a", 5)
		f.step(0)
		f.src.set("R")
		if got := append(f.step(5*time.Second), f.step(10*time.Second)...); len(got) != 0 {
			t.Errorf("notified %q, want nothing", summary(got))
		}
	})
	t.Run("resolved and firing again before the resolve went out", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Config{GroupWait: -1})
		f.setRules(rule("R"))
		f.src.set("R", "a", 5)
		if got := summary(f.step(0)); !slices.Equal(got, []string{"firing:a"}) {
			t.Fatalf("notified %q, want firing:a", got)
		}
		f.src.set("R", "a", 0)
		f.step(10 * time.Second)
		f.src.set("R", "a", 5)
		f.step(10 * time.Second)
		if got := append(f.step(time.Minute), f.step(time.Minute)...); len(got) != 0 {
			t.Errorf("notified %q, want nothing: the group is as last announced", summary(got))
		}
	})
	t.Run("a platform-wide rule groups by app", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, Config{GroupWait: -1})
		f.setRules(rule("R", func(r *Rule) { r.App = "" }))
		f.src.setSamples("R", []Sample{
			{Labels: map[string]string{"app": "a", "instance": "1"}, Value: 5},
			{Labels: map[string]string{"app": "a", "instance": "2"}, Value: 5},
			{Labels: map[string]string{"app": "b", "instance": "1"}, Value: 5},
			{Labels: map[string]string{"instance": "gw"}, Value: 5},
		})
		var titles []string
		for _, e := range f.step(0) {
			titles = append(titles, fmt.Sprintf("%s %s %d", e.Title, e.App, len(e.Alert.Alerts)))
		}
		want := []string{"[FIRING:1] R  1", "[FIRING:2] R app=a a 2", "[FIRING:1] R app=b b 1"}
		if !slices.Equal(titles, want) {
			t.Errorf("notifications %q, want %q", titles, want)
		}
	})
}

// TestEvent checks one notification in full.
func TestEvent(t *testing.T) {
	f := newFixture(t, Config{GroupWait: -1, ExternalURL: "https://noops.example.com/"})
	f.setRules(rule("HighErrorRate", func(r *Rule) {
		r.Severity = SeverityCritical
		r.Labels = map[string]string{"team": "payments"}
		r.Annotations = map[string]string{"summary": `errors at {{printf "%.1f" .Value}} on {{.Labels.instance}} of {{.App}}`}
	}))
	f.src.set("HighErrorRate", "a", 5.25)
	events := f.step(0)
	if len(events) != 1 {
		t.Fatalf("got %d events, want 1", len(events))
	}
	e := events[0]
	labels := map[string]string{"alertname": "HighErrorRate", "app": "shop", "severity": "critical", "team": "payments", "instance": "a"}
	gl := map[string]string{"alertname": "HighErrorRate", "app": "shop"}
	wantKey := fmt.Sprintf("%s/%d/firing/1", notify.Fingerprint(gl), t0.UnixNano())
	if e.Kind != "alert" || e.Key != wantKey || e.Title != "[FIRING:1] HighErrorRate app=shop" || e.Severity != "critical" || e.App != "shop" || !e.Time.Equal(t0) {
		t.Errorf("event %+v", e)
	}
	if want := map[string]string{"status": "firing", "rule": "HighErrorRate", "firing": "1", "resolved": "0"}; !maps.Equal(e.Fields, want) {
		t.Errorf("fields %v, want %v", e.Fields, want)
	}
	g := e.Alert
	if g.GroupKey != `{}:{alertname="HighErrorRate", app="shop"}` || !maps.Equal(g.GroupLabels, gl) || g.ExternalURL != "https://noops.example.com/" || len(g.Alerts) != 1 {
		t.Fatalf("group %+v", g)
	}
	a := g.Alerts[0]
	if !maps.Equal(a.Labels, labels) || a.Annotations["summary"] != "errors at 5.2 on a of shop" || a.Status != "firing" ||
		!a.StartsAt.Equal(t0) || !a.EndsAt.IsZero() || a.Fingerprint != notify.Fingerprint(labels) ||
		a.GeneratorURL != "https://noops.example.com/alerts?rule=HighErrorRate" {
		t.Errorf("alert %+v", a)
	}
	got := f.e.Alerts()
	if len(got) != 1 || got[0].Summary != "errors at 5.2 on a of shop" || got[0].Severity != "critical" || got[0].App != "shop" || got[0].Value != 5.25 || got[0].Fingerprint != a.Fingerprint {
		t.Errorf("Alerts() = %+v", got)
	}
}

func TestRemovedRuleResolves(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{GroupWait: -1})
	f.setRules(rule("A"), rule("B", forDur(time.Hour)))
	f.src.set("A", "a", 5)
	f.src.set("B", "b", 5)
	if got := summary(f.step(0)); !slices.Equal(got, []string{"firing:a"}) {
		t.Fatalf("notified %q, want firing:a", got)
	}
	f.setRules()
	f.clk.Add(time.Minute)
	f.e.flushDue()
	if got := summary(f.out.take()); !slices.Equal(got, []string{"resolved:a"}) {
		t.Errorf("after removing the rules, notified %q, want resolved:a", got)
	}
	if st := f.states(); !maps.Equal(st, map[string]string{"a": StateResolved}) {
		t.Errorf("states %v, want only a resolved (b was pending)", st)
	}
	if n := len(f.e.Rules()); n != 0 {
		t.Errorf("Rules() has %d rules, want 0", n)
	}
}

func TestSetRulesRefuses(t *testing.T) {
	f := newFixture(t, Config{Sources: map[Kind]Source{KindMetric: newSource()}})
	f.setRules(rule("A"))
	tests := []struct {
		name  string
		rules []Rule
		want  string
	}{
		{"two of one name", []Rule{rule("A"), rule("A")}, "two rules are named A"},
		{"no source", []Rule{{Name: "L", Kind: KindLog, Expr: "panic"}}, "no source evaluates log rules"},
		{"invalid", []Rule{rule("A"), {Name: "B", Kind: KindMetric}}, "rule B: the rule has no expression"},
		{"too many", make([]Rule, maxRules+1), "more than"},
	}
	for _, tc := range tests {
		err := f.e.SetRules(tc.rules)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: SetRules = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if rs := f.e.Rules(); len(rs) != 1 || rs[0].Name != "A" {
		t.Errorf("after refused SetRules, Rules() = %+v, want A alone", rs)
	}
}

// TestSourceErrorReported checks that a failing Source is logged once, and
// shown on the rule and its alerts until it recovers.
func TestSourceErrorReported(t *testing.T) {
	f := newFixture(t, Config{GroupWait: -1})
	f.setRules(rule("R"))
	f.src.set("R", "a", 5)
	f.step(0)
	f.src.fail("R", errDown)
	for range 3 {
		f.step(time.Minute)
	}
	f.setRules(rule("R")) // unchanged: keeps its health
	rs := f.e.Rules()
	al := f.e.Alerts()
	if len(rs) != 1 || rs[0].Health != "error" || !strings.Contains(rs[0].LastError, "unreachable") || rs[0].Firing != 1 {
		t.Errorf("Rules() = %+v, want R in error with 1 firing", rs)
	}
	if len(al) != 1 || al[0].State != StateFiring || !strings.Contains(al[0].Error, "unreachable") {
		t.Errorf("Alerts() = %+v, want a firing with the error", al)
	}
	if n := strings.Count(f.log.String(), "cannot be evaluated"); n != 1 {
		t.Errorf("error logged %d times, want once:\n%s", n, f.log)
	}
	f.src.set("R", "a", 5)
	f.step(time.Minute)
	if rs := f.e.Rules(); rs[0].Health != "ok" || rs[0].LastError != "" || !strings.Contains(f.log.String(), "evaluates again") {
		t.Errorf("after recovery Rules() = %+v", rs)
	}
}

// panicSource is a Source that panics, as a buggy one might.
type panicSource struct{}

func (panicSource) Eval(context.Context, Rule, time.Time) ([]Sample, error) { panic("boom") }

func TestPanickingSourceIsAnError(t *testing.T) {
	f := newFixture(t, Config{Sources: map[Kind]Source{KindMetric: panicSource{}}})
	f.setRules(rule("R"))
	f.step(0)
	if rs := f.e.Rules(); rs[0].Health != "error" || !strings.Contains(rs[0].LastError, "panic: boom") {
		t.Errorf("Rules() = %+v, want the panic as the error", rs)
	}
}

// TestBounds checks the limit on a rule's alerts and on sample labels.
func TestBounds(t *testing.T) {
	f := newFixture(t, Config{GroupWait: -1, MaxAlertsPerRule: 100})
	f.setRules(rule("R", forDur(time.Hour)))
	var samples []Sample
	for i := range 150 {
		samples = append(samples, Sample{Labels: map[string]string{"instance": fmt.Sprint(i)}, Value: 5})
	}
	f.src.setSamples("R", samples)
	f.step(0)
	old := map[string]bool{}
	for _, a := range f.e.Alerts() {
		old[a.Fingerprint] = true
	}
	if rs := f.e.Rules()[0]; rs.Pending != 100 || rs.Dropped != 50 || len(old) != 100 {
		t.Fatalf("Rules() = %+v, want 100 pending and 50 dropped", rs)
	}
	// 150 new series arrive: the 100 active are kept.
	for i := range 150 {
		samples = append(samples, Sample{Labels: map[string]string{"instance": fmt.Sprint("new", i)}, Value: 5})
	}
	f.src.setSamples("R", samples)
	f.step(time.Minute)
	for _, a := range f.e.Alerts() {
		if !old[a.Fingerprint] {
			t.Fatalf("alert %v replaced one already active", a.Labels)
		}
	}
	if rs := f.e.Rules()[0]; rs.Pending != 100 || rs.Dropped != 200 || strings.Count(f.log.String(), "too many series") != 1 {
		t.Errorf("Rules() = %+v, want 100 pending and 200 dropped, logged once", rs)
	}

	// One sample with hostile labels.
	labels := map[string]string{"": "x", "a-b": "1", "9x": "2", "alertname": "spoof", "b_nl": "line\nbreak\x00"}
	for i := range 100 {
		labels[fmt.Sprintf("l%03d", i)] = strings.Repeat("é", 1000)
	}
	f.setRules(rule("L"))
	f.src.setSamples("L", []Sample{{Labels: labels, Value: 5}})
	f.step(time.Minute)
	var got map[string]string
	for _, a := range f.e.Alerts() {
		if a.Rule == "L" {
			got = a.Labels
		}
	}
	if len(got) > maxSampleLabels+3 || got["alertname"] != "L" || got["a_b"] != "1" || got["_x"] != "2" || got["b_nl"] != "line break " {
		t.Errorf("labels of a hostile sample: %d, alertname %q, a_b %q, _x %q, b_nl %q", len(got), got["alertname"], got["a_b"], got["_x"], got["b_nl"])
	}
	for k, v := range got {
		if len(v) > maxLabelValue || len(k) > maxLabelName {
			t.Errorf("label %q of %d bytes kept", k, len(v))
		}
	}
}
