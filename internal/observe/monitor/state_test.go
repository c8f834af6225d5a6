package monitor

import (
	"math"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// feed records results given as 'o' (pass) and 'x' (fail), one a second,
// and returns the visible state after each.
func feed(tr *tracker, seq string, failAfter, successAfter int, fc flapConfig) []State {
	var out []State
	for i, c := range seq {
		tr.record(Result{Time: t0.Add(time.Duration(i) * time.Second), OK: c == 'o'}, failAfter, successAfter, fc)
		out = append(out, tr.state)
	}
	return out
}

func TestTrackerThresholds(t *testing.T) {
	t.Parallel()
	P, U, D := Pending, Up, Down
	noFlap := flapConfig{Window: 20, Changes: 100}
	tests := []struct {
		name                    string
		seq                     string
		failAfter, successAfter int
		want                    []State
	}{
		{"first success is up", "o", 2, 3, []State{U}},
		{"one failure is not down", "oxo", 2, 1, []State{U, U, U}},
		{"two failures are down", "oxxo", 2, 1, []State{U, U, D, U}},
		{"pending until fail_after", "xxx", 2, 1, []State{P, D, D}},
		{"fail_after 1", "oxo", 1, 1, []State{U, D, U}},
		{"success_after 3", "xxooxooo", 2, 3, []State{P, D, D, D, D, D, D, U}},
		{"interrupted failures", "oxoxoxo", 2, 1, []State{U, U, U, U, U, U, U}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := feed(newTracker(t0), tc.seq, tc.failAfter, tc.successAfter, noFlap)
			if strings.Join(states(got), ",") != strings.Join(states(tc.want), ",") {
				t.Errorf("states after %q = %v, want %v", tc.seq, got, tc.want)
			}
		})
	}
}

func states(ss []State) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

func TestFlapping(t *testing.T) {
	t.Parallel()
	fc := flapConfig{Window: 20, Changes: 4}
	tr := newTracker(t0)
	// up, down, up, down: three changes, not yet flapping.
	got := feed(tr, "oxox", 1, 1, fc)
	if want := []State{Up, Down, Up, Down}; strings.Join(states(got), ",") != strings.Join(states(want), ",") {
		t.Fatalf("states = %v, want %v", got, want)
	}
	// The fourth change within 20 results: flapping, since then.
	from, changed := tr.record(Result{Time: t0.Add(4 * time.Second), OK: true}, 1, 1, fc)
	if !changed || from != Down || tr.state != Flapping || !tr.since.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("after the 4th change: state %s since %s (changed %v from %s), want flapping since +4s", tr.state, tr.since, changed, from)
	}
	if st := tr.status(t0.Add(5 * time.Second)); st.Changes != 4 || st.State != Flapping {
		t.Errorf("status = %s with %d changes, want flapping with 4", st.State, st.Changes)
	}
	// It stays flapping, even through a failure and recovery, until at
	// most 2 changes remain within the last 20 results.
	i := 5
	for _, c := range "xo" {
		tr.record(Result{Time: t0.Add(time.Duration(i) * time.Second), OK: c == 'o'}, 1, 1, fc)
		if tr.state != Flapping {
			t.Fatalf("result %d: state %s, want flapping", i, tr.state)
		}
		i++
	}
	for ; ; i++ {
		from, changed := tr.record(Result{Time: t0.Add(time.Duration(i) * time.Second), OK: true}, 1, 1, fc)
		if changed {
			if from != Flapping || tr.state != Up {
				t.Fatalf("result %d: changed from %s to %s, want flapping to up", i, from, tr.state)
			}
			break
		}
		if i > 100 {
			t.Fatal("never stopped flapping")
		}
	}
	// Changes happen between results 0..6; the window of result i starts
	// at i-19; at most 2 changes remain in it once it starts at 4.
	if i != 23 {
		t.Errorf("stopped flapping at result %d, want 23", i)
	}
}

// TestHistoryBounded checks results every second for 8 days: the history
// stays within its bounds and the uptime ratios are right.
func TestHistoryBounded(t *testing.T) {
	t.Parallel()
	tr := newTracker(t0)
	fc := flapConfig{Window: 20, Changes: 4}
	const days = 8
	n := days * 24 * 3600
	for i := range n {
		// The last day fails one result in 4; the days before one in 10.
		ok := i%10 != 0
		if i >= n-24*3600 {
			ok = i%4 != 0
		}
		tr.record(Result{Time: t0.Add(time.Duration(i) * time.Second), OK: ok, Error: "e"}, 2, 1, fc)
	}
	if len(tr.minutes) > 24*60+1 || len(tr.hours) > 7*24+1 || len(tr.recent) != RecentSize || len(tr.window) != 20 {
		t.Errorf("history holds %d minute buckets, %d hour buckets, %d results, %d window; want at most 1441, 169, 100, 20",
			len(tr.minutes), len(tr.hours), len(tr.recent), len(tr.window))
	}
	if cap(tr.recent) > 2*RecentSize+8 {
		t.Errorf("recent results backed by %d slots, want about %d", cap(tr.recent), 2*RecentSize)
	}
	now := t0.Add(time.Duration(n) * time.Second)
	up := tr.uptime(now)
	if math.Abs(up["24h"]-0.75) > 0.001 {
		t.Errorf("uptime 24h = %v, want 0.75", up["24h"])
	}
	want7d := (6*0.9 + 0.75) / 7
	if math.Abs(up["7d"]-want7d) > 0.01 {
		t.Errorf("uptime 7d = %v, want about %v", up["7d"], want7d)
	}
	// A day later with no results, the 24h window is empty.
	if up := tr.uptime(now.Add(25 * time.Hour)); len(up) != 1 {
		t.Errorf("uptime a day after the last result = %v, want only 7d", up)
	}
}

func TestClockSteppingBack(t *testing.T) {
	t.Parallel()
	tr := newTracker(t0)
	fc := flapConfig{Window: 20, Changes: 4}
	tr.record(Result{Time: t0.Add(time.Hour), OK: true}, 2, 1, fc)
	tr.record(Result{Time: t0, OK: false}, 2, 1, fc)
	if len(tr.minutes) != 1 || tr.minutes[0].Total != 2 || tr.minutes[0].OK != 1 {
		t.Errorf("minute buckets = %+v, want one with 1 of 2", tr.minutes)
	}
}

func TestClipMessage(t *testing.T) {
	t.Parallel()
	long := clipMessage(strings.Repeat("é", 400))
	if len(long) > maxMessage+len("…") {
		t.Errorf("clipMessage(800 bytes) = %d bytes, want at most %d", len(long), maxMessage+3)
	}
	if got := clipMessage("bad\r\nline\x00\xff"); got != "bad  line  " {
		t.Errorf("clipMessage = %q, want %q", got, "bad  line  ")
	}
}
