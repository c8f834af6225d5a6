package alert

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// restart stops f's engine and returns a fixture whose new engine reads
// the same state file, with the same source, clock and rules.
func restart(t *testing.T, f *fixture, rules ...Rule) *fixture {
	t.Helper()
	if err := f.e.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	g := newFixture(t, f.e.cfg)
	g.src, g.clk = f.src, f.clk
	g.e.cfg.Sources = map[Kind]Source{KindMetric: f.src}
	g.e.cfg.Now = f.clk.Now
	g.setRules(rules...)
	return g
}

func TestRestart(t *testing.T) {
	r := rule("R", forDur(5*time.Minute))
	tests := []struct {
		name string
		// before runs on the first engine; after on the second, which
		// starts one minute later.
		before func(f *fixture)
		rules  []Rule // of the second engine
		after  func(t *testing.T, f *fixture)
	}{
		{
			name: "still firing: no second firing, then the resolve",
			before: func(f *fixture) {
				f.src.set("R", "a", 5)
				f.step(0)
				f.step(5 * time.Minute) // fires, waits 10s
				f.step(10 * time.Second)
			},
			rules: []Rule{r},
			after: func(t *testing.T, f *fixture) {
				for range 5 {
					if got := f.step(time.Minute); len(got) != 0 {
						t.Fatalf("after restart, notified %q, want nothing", summary(got))
					}
				}
				if a := f.e.Alerts(); len(a) != 1 || !a[0].FiredAt.Equal(t0.Add(5*time.Minute)) {
					t.Errorf("Alerts() = %+v, want a firing since before the restart", a)
				}
				f.src.set("R")
				if got := summary(f.step(time.Minute)); !slices.Equal(got, []string{"resolved:a"}) {
					t.Errorf("notified %q, want resolved:a", got)
				}
			},
		},
		{
			name: "resolved while down",
			before: func(f *fixture) {
				f.src.set("R", "a", 5)
				f.step(0)
				f.step(5 * time.Minute)
				f.step(10 * time.Second)
				f.src.set("R", "a", 0)
			},
			rules: []Rule{r},
			after: func(t *testing.T, f *fixture) {
				if got := summary(f.step(0)); !slices.Equal(got, []string{"resolved:a"}) {
					t.Errorf("notified %q, want resolved:a", got)
				}
			},
		},
		{
			name: "rule removed while down",
			before: func(f *fixture) {
				f.src.set("R", "a", 5)
				f.step(0)
				f.step(5 * time.Minute)
				f.step(10 * time.Second)
			},
			rules: nil,
			after: func(t *testing.T, f *fixture) {
				if got := summary(f.step(0)); !slices.Equal(got, []string{"resolved:a"}) {
					t.Errorf("notified %q, want resolved:a", got)
				}
			},
		},
		{
			name: "pending keeps its start",
			before: func(f *fixture) {
				f.src.set("R", "a", 5)
				f.step(0)
				f.step(3 * time.Minute)
			},
			rules: []Rule{r},
			after: func(t *testing.T, f *fixture) {
				f.step(0)
				if st := f.states(); st["a"] != StatePending {
					t.Fatalf("states %v, want a pending", st)
				}
				f.step(time.Minute) // 5m after it became active
				if st := f.states(); st["a"] != StateFiring {
					t.Errorf("states %v, want a firing", st)
				}
			},
		},
		{
			name: "a waiting group still waits from when it formed",
			before: func(f *fixture) {
				f.src.set("R", "a", math.Inf(1))
				f.step(0)
				f.step(5 * time.Minute) // fires; the group waits 10s
			},
			rules: []Rule{r},
			after: func(t *testing.T, f *fixture) {
				got := f.step(0)
				if !slices.Equal(summary(got), []string{"firing:a"}) {
					t.Fatalf("notified %q, want firing:a", summary(got))
				}
				if a := f.e.Alerts(); !math.IsInf(a[0].Value, 1) {
					t.Errorf("value %v, want +Inf", a[0].Value)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "alerts", "state.json")
			f := newFixture(t, Config{StatePath: path})
			f.setRules(r)
			tc.before(f)
			f.out.take()
			f.clk.Add(time.Minute)
			g := restart(t, f, tc.rules...)
			tc.after(t, g)
			if err := g.e.Stop(context.Background()); err != nil {
				t.Errorf("Stop: %v", err)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("state file: %v, %v; want mode 0600", fi, err)
			}
			if _, err := os.Stat(path + ".tmp"); err == nil {
				t.Error("a temporary state file was left behind")
			}
		})
	}
}

// TestKeysAcrossRestart checks that a notification after a restart does
// not reuse a key of one before it (notify would dedup it).
func TestKeysAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	f := newFixture(t, Config{StatePath: path, GroupWait: -1})
	f.setRules(rule("R"))
	f.src.set("R", "a", 5)
	first := f.step(0)
	f.clk.Add(time.Minute)
	g := restart(t, f, rule("R"))
	g.src.set("R", "a", 5, "b", 5)
	second := g.step(0)
	if len(first) != 1 || len(second) != 1 || first[0].Key == second[0].Key {
		t.Errorf("keys %v and %v, want two different", first, second)
	}
}

func TestUnusableState(t *testing.T) {
	t.Run("corrupt is moved aside", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		os.WriteFile(path, []byte(`{"version":1,"alerts":[`), 0o600)
		f := newFixture(t, Config{StatePath: path})
		if len(f.e.Alerts()) != 0 || !strings.Contains(f.log.String(), "unusable") {
			t.Errorf("Alerts() = %v, log %s; want empty and a logged error", f.e.Alerts(), f.log)
		}
		if b, err := os.ReadFile(path + ".corrupt"); err != nil || string(b) != `{"version":1,"alerts":[` {
			t.Errorf("corrupt file kept as %q, %v", b, err)
		}
	})
	t.Run("a directory is an error", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := New(Config{StatePath: dir}); err == nil || !strings.Contains(err.Error(), "reading alert state") {
			t.Errorf("New with a directory as state = %v, want a reading error", err)
		}
	})
	t.Run("invalid entries are skipped", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		good := stateAlert{Rule: "R", Labels: map[string]string{"alertname": "R", "app": "shop"}, State: StateFiring, Value: "5", ActiveAt: t0, FiredAt: t0}
		spoof := good
		spoof.Labels = map[string]string{"alertname": "Other"}
		badState := good
		badState.State = "exploded"
		badLabel := good
		badLabel.Labels = map[string]string{"alertname": "R", "x": "a\nb"}
		nan := good
		nan.Value = "NaN"
		st := stateFile{Version: 1, Alerts: []stateAlert{good, spoof, badState, badLabel, nan, good},
			Groups: []stateGroup{{Rule: "R", App: "shop", Severity: "loud", CreatedAt: t0}, {Rule: "R", App: "shop", Severity: "warning", CreatedAt: t0, Notified: []string{"x"}}}}
		b, _ := json.Marshal(st)
		os.WriteFile(path, b, 0o600)
		f := newFixture(t, Config{StatePath: path})
		if a := f.e.Alerts(); len(a) != 1 || !strings.Contains(f.log.String(), "entries=6") {
			t.Errorf("Alerts() = %+v, log %s; want the one good alert and 6 entries skipped", a, f.log)
		}
		if len(f.e.groups) != 1 {
			t.Errorf("%d groups restored, want 1", len(f.e.groups))
		}
	})
}

// FuzzDecodeState feeds arbitrary state files to the decoder: it refuses
// or restores within bounds, and what it restores saves and restores the
// same.
func FuzzDecodeState(f *testing.F) {
	src, clk := newSource(), newClock()
	e, err := New(Config{Sources: map[Kind]Source{KindMetric: src}, GroupWait: -1, Now: clk.Now,
		Markers: func(context.Context, string, time.Time) ([]Marker, error) {
			return []Marker{{Time: t0, Kind: "deploy", Release: 3}}, nil
		}})
	if err != nil {
		f.Fatal(err)
	}
	err = e.SetRules([]Rule{rule("R", func(r *Rule) { r.Annotations = map[string]string{"summary": "{{.Value}}"} }), rule("P", forDur(time.Hour))})
	if err != nil {
		f.Fatal(err)
	}
	src.set("R", "a", 5, "b", 6)
	src.set("P", "c", 5)
	e.Evaluate(context.Background())
	src.set("R", "a", 5)
	clk.Add(time.Minute)
	e.Evaluate(context.Background())
	seed, _ := json.Marshal(e.snapshotLocked())
	f.Add(seed)
	f.Add([]byte(`{"version":1,"alerts":[{"rule":"R","labels":{"alertname":"R"},"state":"firing","value":"+Inf","activeAt":"2025-01-01T00:00:00Z","firedAt":"2025-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeState(data, 10)
		if err != nil {
			return
		}
		re := &Engine{active: r.active, groups: r.groups, recent: r.recent}
		for _, alerts := range r.active {
			if len(alerts) > 10 {
				t.Fatalf("%d alerts of one rule restored, want at most 10", len(alerts))
			}
		}
		if len(r.recent) > maxRecent {
			t.Fatalf("%d recent alerts, want at most %d", len(r.recent), maxRecent)
		}
		b, err := json.Marshal(re.snapshotLocked())
		if err != nil {
			t.Fatalf("encoding a restored state: %v", err)
		}
		again, err := decodeState(b, 10)
		if err != nil || again.skipped != 0 || len(again.active) != len(r.active) || len(again.groups) != len(r.groups) || len(again.recent) != len(r.recent) {
			t.Fatalf("restored state does not round-trip: %v, %+v vs %+v", err, again, r)
		}
	})
}

// TestOrphanAlertGetsAGroup checks that a firing alert restored without
// its group (its entry was invalid) is still announced.
func TestOrphanAlertGetsAGroup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	labels := map[string]string{"alertname": "R", "app": "shop", "severity": "warning", "instance": "a"}
	st := stateFile{Version: 1, Alerts: []stateAlert{{Rule: "R", Labels: labels, State: StateFiring, Value: "5", ActiveAt: t0, FiredAt: t0}}}
	b, _ := json.Marshal(st)
	os.WriteFile(path, b, 0o600)
	f := newFixture(t, Config{StatePath: path})
	f.setRules(rule("R"))
	f.src.set("R", "a", 5)
	f.step(0)
	if got := summary(f.step(10 * time.Second)); !slices.Equal(got, []string{"firing:a"}) {
		t.Errorf("notified %q, want firing:a after GroupWait", got)
	}
}
