package anomaly

import (
	"math"
	"testing"
)

// TestLevelShiftIsLearned checks that a lasting level shift fires at once,
// then becomes the new normal after Relearn weeks.
func TestLevelShiftIsLearned(t *testing.T) {
	t.Parallel()
	const weeks = 7
	start := 2*bucketsPerWeek + 3*bucketsPerDay + 10*bucketsPerHour // a Thursday, 10:00, after warm-up
	tests := []struct {
		name   string
		kind   kind
		factor float64
	}{
		{"rate doubles", rateKind, 2},
		{"rate halves", rateKind, 0.5},
		{"latency doubles", latencyKind, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(5, weeks)
			cfg := tc.kind.config()
			vs := runSeries(cfg, shifted(a, tc.kind, start, tc.factor))
			if !vs[start+DefaultK].Firing {
				t.Errorf("not firing %d buckets after the shift", DefaultK)
			}
			learned := start + DefaultSeasons*bucketsPerWeek // Relearn (3) weeks, plus a week of margin
			last := -1
			for i := start; i < len(vs); i++ {
				if vs[i].Firing {
					last = i
				}
			}
			if last >= learned {
				t.Errorf("still firing %.1f days after the shift, want quiet after %d weeks", float64(last-start)/bucketsPerDay, DefaultSeasons)
			}
			t.Logf("firing ended %.1f days after the shift", float64(last-start)/bucketsPerDay)
			// In the last week the baseline is the new level.
			i := len(vs) - bucketsPerDay/2
			clean := runSeries(cfg, a.series[tc.kind])
			if got, want := vs[i].Expected, tc.factor*clean[i].Expected; math.Abs(got-want) > 0.1*want {
				t.Errorf("expected value a week after learning = %v, want about %v", got, want)
			}
		})
	}
}

// TestIncidentIsNotLearned checks that a long incident, left out of the
// baseline, leaves it within a sigma of where it would have been, even
// when it comes back a week later (stored as it was, two of four weeks
// would move the median halfway).
func TestIncidentIsNotLearned(t *testing.T) {
	t.Parallel()
	a := newApp(9, 5)
	start := 2*bucketsPerWeek + bucketsPerDay + 8*bucketsPerHour // Tuesday 08:00 in week 3
	end := start + 8*bucketsPerHour
	xs := append([]float64(nil), a.series[rateKind]...)
	for i := start; i < end; i++ {
		xs[i] *= 3
	}
	cfg := RequestRate()
	vs, clean := runSeries(cfg, xs), runSeries(cfg, a.series[rateKind])
	for i := start; i < end; i++ {
		if !vs[i].Deviates && i > start {
			t.Fatalf("bucket %d of the incident does not deviate", i)
		}
	}
	for i := start + bucketsPerWeek; i < end+bucketsPerWeek; i++ {
		if sigma := (clean[i].Upper - clean[i].Expected) / DefaultThreshold; math.Abs(vs[i].Expected-clean[i].Expected) > sigma {
			t.Fatalf("a week after the incident, bucket %d expects %v; without the incident %v", i, vs[i].Expected, clean[i].Expected)
		}
		if vs[i].Firing {
			t.Fatalf("a week after the incident, bucket %d fires", i)
		}
	}
	// Even a second week of the same incident is not learned (Relearn is 3).
	for i := start + bucketsPerWeek; i < end+bucketsPerWeek; i++ {
		xs[i] *= 3
	}
	vs = runSeries(cfg, xs)
	for i := start + 2*bucketsPerWeek; i < end+2*bucketsPerWeek; i++ {
		if sigma := (clean[i].Upper - clean[i].Expected) / DefaultThreshold; math.Abs(vs[i].Expected-clean[i].Expected) > sigma {
			t.Fatalf("after two weeks of the incident, bucket %d expects %v; without it %v", i, vs[i].Expected, clean[i].Expected)
		}
	}
}

// BenchmarkObserve measures one observation of a detector past warm-up,
// with the last-day ring of the latency preset.
func BenchmarkObserve(b *testing.B) {
	a := newApp(1, 3)
	xs := a.series[latencyKind]
	d, _ := New(Latency())
	for i := range 2 * bucketsPerWeek {
		d.Observe(at(i), xs[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		i := 2*bucketsPerWeek + n
		d.Observe(at(i), xs[i%len(xs)])
	}
}

// TestRecurringEventIsLearned checks that a short event at the same time
// every day (a 15-minute batch job tripling the latency) is part of the
// band once most past weeks had it: from the start it never fires after
// warm-up; appearing later, it fires on its first weeks only.
func TestRecurringEventIsLearned(t *testing.T) {
	t.Parallel()
	const weeks = 7
	a := newApp(6, weeks)
	job := func(from int) []float64 {
		xs := append([]float64(nil), a.series[latencyKind]...)
		for day := from; day < weeks*7; day++ {
			for i := range 3 {
				xs[day*bucketsPerDay+2*bucketsPerHour+i] *= 3
			}
		}
		return xs
	}
	firingDays := func(vs []Verdict, fromWeek, toWeek int) int {
		n := 0
		for day := fromWeek * 7; day < toWeek*7; day++ {
			for i := range bucketsPerDay {
				if vs[day*bucketsPerDay+i].Firing {
					n++
					break
				}
			}
		}
		return n
	}
	always := runSeries(Latency(), job(0))
	if n := firingDays(always, DefaultMinSamples, weeks); n != 0 {
		t.Errorf("a job running since the first day fired on %d days after warm-up, want 0", n)
	}
	late := runSeries(Latency(), job(2*7))
	if n := firingDays(late, 2, 3); n < 5 {
		t.Errorf("a new daily job fired on %d days of its first week, want most", n)
	}
	if n := firingDays(late, 5, weeks); n != 0 {
		t.Errorf("a daily job fired on %d days of its fourth and fifth weeks, want 0", n)
	}
	t.Logf("a new daily job fired on %d, %d, %d days of its first three weeks", firingDays(late, 2, 3), firingDays(late, 3, 4), firingDays(late, 4, 5))
}
