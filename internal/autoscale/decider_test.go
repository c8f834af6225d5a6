package autoscale

import (
	"testing"
	"time"

	"noops/internal/spec"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func scale(min, max, conc int, idle, retain, window time.Duration) spec.Scale {
	return spec.Scale{Min: min, Max: max, Concurrency: conc, Idle: spec.Duration(idle), Retain: spec.Duration(retain), Window: spec.Duration(window)}
}

// run feeds d one sample a second for secs seconds of constant load,
// deciding after each with ready replicas (ready < 0: the count decided
// the second before, as if replicas started at once), and returns the
// decisions.
func run(d *Decider, start time.Time, secs int, load float64, ready int) ([]int, time.Time) {
	now := start
	var out []int
	follow := ready < 0
	if follow {
		ready = 1
	}
	for range secs {
		now = now.Add(time.Second)
		d.Observe(now, load, load > 0)
		got := d.Decide(now, ready, t0).Replicas
		out = append(out, got)
		if follow {
			ready = got
		}
	}
	return out, now
}

func last(xs []int) int { return xs[len(xs)-1] }

func TestDecideSteadyLoad(t *testing.T) {
	d := NewDecider(scale(0, 10, 100, time.Minute, 0, 60*time.Second), t0)
	got, _ := run(d, t0, 90, 250, -1)
	if last(got) != 3 {
		t.Errorf("250 in flight with a target of 100: %v, want to settle at 3", got)
	}
}

func TestDecideMax(t *testing.T) {
	d := NewDecider(scale(0, 4, 10, time.Minute, 0, 60*time.Second), t0)
	got, _ := run(d, t0, 70, 1000, -1)
	for _, n := range got {
		if n > 4 {
			t.Fatalf("decisions %v go above max 4", got)
		}
	}
	if last(got) != 4 {
		t.Errorf("decisions %v, want to reach max 4", got)
	}
}

// TestDecidePanic: a burst makes it panic and scale up from the short
// window within seconds; while it panics it never scales down; a stable
// window after the burst it falls back, by at most half per decision.
func TestDecidePanic(t *testing.T) {
	d := NewDecider(scale(1, 20, 10, time.Minute, 0, 60*time.Second), t0)
	_, now := run(d, t0, 60, 5, -1)       // one replica is plenty
	burst, now := run(d, now, 6, 100, -1) // the panic window is 6s
	if burst[0] < 2 || !d.panicking {
		t.Fatalf("first decisions of a 20x burst: %v (panicking %v), want a panic scale-up at once", burst, d.panicking)
	}
	if last(burst) != 10 {
		t.Errorf("burst decisions %v, want 10 (100 in flight / 10) within the panic window", burst)
	}
	calm, now := run(d, now, 30, 0, -1)
	for _, n := range calm {
		if n < 10 {
			t.Fatalf("decisions after the burst %v: scaled down while panicking", calm)
		}
	}
	after, _ := run(d, now, 40, 0, -1)
	if d.panicking {
		t.Errorf("still panicking a stable window after the burst")
	}
	prev := 10
	for _, n := range after {
		if n < (prev+1)/2 {
			t.Fatalf("decisions %v fall faster than half per second", after)
		}
		prev = n
	}
	if last(after) != 1 {
		t.Errorf("decisions after the panic %v, want back to min 1", after)
	}
}

// TestDecideIdle: min 0 goes to zero only after idle without a request,
// and retain keeps the last replica for its time after it started.
func TestDecideIdle(t *testing.T) {
	d := NewDecider(scale(0, 10, 100, 10*time.Second, 0, 6*time.Second), t0)
	got, now := run(d, t0, 9, 0, 1)
	for _, n := range got {
		if n != 1 {
			t.Fatalf("decisions before idle %v, want 1", got)
		}
	}
	got, now = run(d, now, 2, 0, 1)
	if last(got) != 0 {
		t.Errorf("decisions after 11s idle %v, want 0", got)
	}
	// A request resets idle.
	d.Observe(now.Add(time.Second), 0, true)
	if n := d.Decide(now.Add(time.Second), 1, t0).Replicas; n != 1 {
		t.Errorf("right after a request: %d, want 1", n)
	}

	r := NewDecider(scale(0, 10, 100, 2*time.Second, time.Minute, 6*time.Second), t0)
	started := t0.Add(5 * time.Second)
	now = t0
	for range 30 {
		now = now.Add(time.Second)
		r.Observe(now, 0, false)
		if n := r.Decide(now, 1, started).Replicas; n != 1 {
			t.Fatalf("at %s with retain 1m of a replica started at 5s: %d, want 1", now.Sub(t0), n)
		}
	}
	now = started.Add(time.Minute)
	r.Observe(now, 0, false)
	if n := r.Decide(now, 1, started).Replicas; n != 0 {
		t.Errorf("retain over: %d, want 0", n)
	}
}

func TestDecideMinAndColdStart(t *testing.T) {
	d := NewDecider(scale(2, 10, 100, time.Second, 0, 6*time.Second), t0)
	got, _ := run(d, t0, 30, 0, 2)
	if last(got) != 2 {
		t.Errorf("no load with min 2: %v, want 2", got)
	}
	z := NewDecider(scale(0, 10, 100, time.Second, 0, 6*time.Second), t0)
	now := t0.Add(time.Minute)
	if n := z.Decide(now, 0, time.Time{}).Replicas; n != 0 {
		t.Errorf("at zero with no load: %d, want 0", n)
	}
	z.Observe(now, 0.5, true) // a held request
	if n := z.Decide(now, 0, time.Time{}).Replicas; n != 1 {
		t.Errorf("at zero with a held request: %d, want 1", n)
	}
	z.Observe(now.Add(time.Second), 350, true)
	if n := z.Decide(now.Add(time.Second), 0, time.Time{}).Replicas; n != 4 {
		t.Errorf("at zero with 350 waiting, target 100: %d, want 4", n)
	}
}
