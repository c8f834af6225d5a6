package anomaly

import (
	"math"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // America/New_York without the system's zoneinfo
)

func mustNew(t *testing.T, cfg Config) *Detector {
	t.Helper()
	d, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return d
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	custom := func(time.Time) int { return 0 }
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error, "" for none
	}{
		{"zero config", Config{}, ""},
		{"presets", RequestRate(), ""},
		{"bucket too small", Config{Bucket: time.Millisecond}, "bucket"},
		{"bucket too large", Config{Bucket: 48 * time.Hour}, "bucket"},
		{"seasons too many", Config{Seasons: 100}, "seasons"},
		{"negative seasons", Config{Seasons: -1}, "seasons"},
		{"custom slot without slots", Config{Slot: custom}, "slots is required"},
		{"default slot with other slots", Config{Slots: 24}, "does not match"},
		{"too many slots", Config{Slot: custom, Slots: MaxSlots + 1}, "slots"},
		{"negative threshold", Config{Threshold: -1}, "threshold"},
		{"NaN threshold", Config{Threshold: math.NaN()}, "threshold"},
		{"negative min MAD", Config{MinMAD: -1}, "min MAD"},
		{"infinite min MAD", Config{MinMAD: math.Inf(1)}, "min MAD"},
		{"k above n", Config{K: 5, N: 4}, "k of n"},
		{"n too large", Config{K: 1, N: MaxN + 1}, "k of n"},
		{"negative k", Config{K: -1}, "k of n"},
		{"min samples above seasons", Config{Seasons: 2, MinSamples: 3}, "min samples"},
		{"relearn below min samples", Config{MinSamples: 3, Relearn: 2}, "relearn"},
		{"relearn above seasons", Config{Relearn: 5}, "relearn"},
		{"static min above max", Config{Warmup: Static{Min: 2, Max: 1}}, "warmup"},
		{"static infinite", Config{Warmup: Static{Max: math.Inf(1)}}, "warmup"},
		{"static negative relative", Config{Warmup: Static{RelMax: -1}}, "warmup"},
		{"bad direction", Config{Direction: 7}, "direction"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("New(%s) = %v, want no error", tc.name, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("New(%s) = %v, want an error about %q", tc.name, err, tc.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := mustNew(t, Config{}).Config()
	if c.Bucket != 5*time.Minute || c.Seasons != 4 || c.Slots != 168 || c.Location != time.UTC ||
		c.Threshold != 4 || c.MinRelMAD != 0.02 || c.K != 3 || c.N != 4 || c.MinSamples != 2 || c.Relearn != 3 || c.Direction != Both {
		t.Errorf("defaults = %+v", c)
	}
	if c := mustNew(t, Config{N: 2}).Config(); c.K != 2 {
		t.Errorf("K with N=2 = %d, want 2", c.K)
	}
	if c := mustNew(t, Config{MinRelMAD: -1}).Config(); c.MinRelMAD >= 0 {
		t.Errorf("MinRelMAD -1 gave %v, want it off", c.MinRelMAD)
	}
}

func TestStaticBounds(t *testing.T) {
	t.Parallel()
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name   string
		s      Static
		ref    float64
		lo, hi float64
	}{
		{"zero is unset", Static{}, 10, -inf, inf},
		{"NaN is unset", Static{Min: nan, Max: nan}, 10, -inf, inf},
		{"absolute", Static{Min: 1, Max: 5}, nan, 1, 5},
		{"relative", Static{RelMin: 0.5, RelMax: 3}, 10, 5, 30},
		{"relative without a reference", Static{RelMax: 3}, nan, -inf, inf},
		{"the tighter applies", Static{Max: 20, RelMax: 3}, 10, -inf, 20},
		{"crossed: absolute wins", Static{Min: 50, RelMax: 3}, 10, 50, inf},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := tc.s.bounds(tc.ref)
			if lo != tc.lo || hi != tc.hi {
				t.Errorf("%+v.bounds(%v) = [%v, %v], want [%v, %v]", tc.s, tc.ref, lo, hi, tc.lo, tc.hi)
			}
		})
	}
}

// TestWarmup checks that during the first day the static thresholds fire
// on an obvious breach, and that nothing seasonal is claimed before
// MinSamples weeks.
func TestWarmup(t *testing.T) {
	t.Parallel()
	a := newApp(7, 3)
	rate := RequestRate()
	rate.Warmup = Static{RelMax: 5} // this app's daily swing is small
	tests := []struct {
		name       string
		kind       kind
		cfg        Config
		start, end int // the breach, on the first day
		breach     func(x float64) float64
	}{
		{"error ratio above 5%", errorKind, ErrorRatio(), 10 * bucketsPerHour, 10*bucketsPerHour + 6, func(float64) float64 { return 0.2 }},
		{"rate 8 times the day's median", rateKind, rate, 14 * bucketsPerHour, 14*bucketsPerHour + 8, func(x float64) float64 { return 8 * x }},
		{"latency 6 times the day's median", latencyKind, Latency(), 20 * bucketsPerHour, 20*bucketsPerHour + 8, func(x float64) float64 { return 6 * x }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			xs := append([]float64(nil), a.series[tc.kind]...)
			for i := tc.start; i < tc.end; i++ {
				xs[i] = tc.breach(xs[i])
			}
			vs := runSeries(tc.cfg, xs)
			firstFiring := -1
			for i, v := range vs {
				if i < 2*bucketsPerWeek {
					if !v.WarmingUp || !math.IsNaN(v.Expected) || !math.IsNaN(v.Score) {
						t.Fatalf("bucket %d (%v): WarmingUp %v, Expected %v, Score %v; want a warm-up verdict", i, v.Time, v.WarmingUp, v.Expected, v.Score)
					}
				} else if v.WarmingUp {
					t.Fatalf("bucket %d (%v) is still warming up after 2 weeks", i, v.Time)
				}
				if v.Firing && firstFiring < 0 {
					firstFiring = i
				}
				if v.Firing && (i < tc.start || i >= tc.end+DefaultN) {
					t.Errorf("bucket %d (%v) fires outside the breach [%d, %d)", i, v.Time, tc.start, tc.end)
				}
			}
			if firstFiring < 0 || firstFiring > tc.start+DefaultK {
				t.Errorf("first firing at bucket %d, want within %d buckets of %d", firstFiring, DefaultK, tc.start)
			}
		})
	}
}

// TestTimeZone checks that with a Location the slots follow local time
// across a daylight-saving change: a business-hours step in New York is
// learned in local hours and stays quiet after the clocks go back, while a
// detector reading UTC hours sees the step an hour off.
func TestTimeZone(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2024, 10, 7, 0, 0, 0, 0, ny) // Monday; DST ends on Sunday 3 November
	change := time.Date(2024, 11, 3, 2, 0, 0, 0, ny)
	_, off1 := start.Zone()
	_, off2 := change.Zone()
	if off1 == off2 {
		t.Fatal("the time zone data has no DST change on 2024-11-03")
	}
	n := 6 * bucketsPerWeek
	times := make([]time.Time, n)
	xs := make([]float64, n)
	rng := newRand(11)
	for i := range n {
		tm := start.Add(time.Duration(i) * DefaultBucket)
		local := tm.In(ny)
		level := 10.0
		if wd := local.Weekday(); wd >= time.Monday && wd <= time.Friday && local.Hour() >= 9 && local.Hour() < 17 {
			level = 100
		}
		times[i], xs[i] = tm, poisson(rng, level*300)/300
	}
	run := func(loc *time.Location) []Verdict {
		cfg := RequestRate()
		cfg.Location = loc
		d := mustNew(t, cfg)
		vs := make([]Verdict, n)
		for i := range n {
			vs[i] = d.Observe(times[i], xs[i])
		}
		return vs
	}
	local, utc := run(ny), run(time.UTC)
	localFiring, utcFiring := 0, 0
	for i := 2 * bucketsPerWeek; i < n; i++ {
		if local[i].Firing {
			localFiring++
		}
		if utc[i].Firing && times[i].After(change) {
			utcFiring++
		}
	}
	if localFiring != 0 {
		t.Errorf("the New York detector fired for %d buckets after warm-up, want none", localFiring)
	}
	if utcFiring == 0 {
		t.Error("the UTC detector never fired after the DST change; the test shows nothing")
	}
	// Monday after the change, 09:30 local: the business-hours level.
	after := time.Date(2024, 11, 4, 9, 30, 0, 0, ny)
	i := int(after.Sub(start) / DefaultBucket)
	if v := local[i]; math.Abs(v.Expected-100) > 10 || v.WarmingUp {
		t.Errorf("at %v the local detector expects %v (warming up %v), want about 100", after, v.Expected, v.WarmingUp)
	}
	if got, want := HourOfWeek(after), 1*24+9; got != want {
		t.Errorf("HourOfWeek(%v) = %d, want %d", after, got, want)
	}
	t.Logf("UTC detector: %d firing buckets after the DST change; New York detector: %d", utcFiring, localFiring)
}

// sameVerdict compares two verdicts, NaN equal to NaN.
func sameVerdict(a, b Verdict) bool {
	eq := func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) }
	return a.Time.Equal(b.Time) && eq(a.Value, b.Value) && eq(a.Expected, b.Expected) && eq(a.Lower, b.Lower) &&
		eq(a.Upper, b.Upper) && eq(a.Score, b.Score) && a.Deviates == b.Deviates && a.Firing == b.Firing &&
		a.WarmingUp == b.WarmingUp && a.Ignored == b.Ignored
}

func stateOf(t *testing.T, d *Detector) string {
	t.Helper()
	b, err := d.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	return string(b)
}

// TestGapsAndNaN checks the k-of-n window across missing buckets and
// ignored values, and that an ignored observation changes nothing.
func TestGapsAndNaN(t *testing.T) {
	t.Parallel()
	cfg := Config{Warmup: Static{Max: 10}} // every verdict here is a warm-up one
	at := func(i int) time.Time { return synthStart.Add(time.Duration(i) * DefaultBucket) }
	type obs struct {
		bucket      int
		v           float64
		firing      bool
		ignored     string // substring, "" for a used observation
		deviates    bool
		description string
	}
	tests := []struct {
		name string
		seq  []obs
	}{
		{"three of four fire", []obs{
			{0, 100, false, "", true, "first deviation"},
			{1, 100, false, "", true, "second"},
			{2, 100, true, "", true, "third: 3 of 4"},
			{3, math.NaN(), true, "not finite", false, "ignored, but 0, 1, 2 are in the window as of 3"},
			{3, 1, true, "", false, "still 3 of the last 4"},
			{4, 1, false, "", false, "2 of the last 4"},
		}},
		{"a missing bucket counts as not deviating", []obs{
			{0, 100, false, "", true, ""},
			{1, 100, false, "", true, ""},
			{4, 100, false, "", true, "buckets 2 and 3 missing: 2 of [1, 4]"},
			{5, 100, false, "", true, "4 and 5 of [2, 5]"},
			{6, 100, true, "", true, "4, 5, 6"},
		}},
		{"NaN and Inf are ignored", []obs{
			{0, 100, false, "", true, ""},
			{1, 100, false, "", true, ""},
			{2, math.NaN(), false, "not finite", false, "no third deviation"},
			{3, math.Inf(1), false, "not finite", false, ""},
			{3, 100, true, "", true, "bucket 3 can still be observed: 0, 1, 3"},
			{4, math.NaN(), false, "not finite", false, "as of bucket 4 the window holds 1 and 3"},
		}},
		{"time must advance", []obs{
			{5, 100, false, "", true, ""},
			{5, 100, false, "does not advance", false, "same bucket"},
			{4, 100, false, "does not advance", false, "earlier bucket"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := mustNew(t, cfg)
			for _, o := range tc.seq {
				before := stateOf(t, d)
				v := d.Observe(at(o.bucket), o.v)
				if v.Firing != o.firing || v.Deviates != o.deviates || (o.ignored == "") != (v.Ignored == "") || !strings.Contains(v.Ignored, o.ignored) {
					t.Errorf("Observe(bucket %d, %v) = Firing %v, Deviates %v, Ignored %q; want %v, %v, %q (%s)", o.bucket, o.v, v.Firing, v.Deviates, v.Ignored, o.firing, o.deviates, o.ignored, o.description)
				}
				if v.Ignored != "" && stateOf(t, d) != before {
					t.Errorf("ignored Observe(bucket %d, %v) changed the state", o.bucket, o.v)
				}
			}
		})
	}

	t.Run("time and slot out of range", func(t *testing.T) {
		t.Parallel()
		d := mustNew(t, Config{Slot: func(tm time.Time) int { return tm.Hour() - 1 }, Slots: 24})
		if v := d.Observe(time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC), 1); !strings.Contains(v.Ignored, "time is out of range") {
			t.Errorf("Observe(year 1500) = Ignored %q", v.Ignored)
		}
		if v := d.Observe(synthStart, 1); !strings.Contains(v.Ignored, "slot is out of range") {
			t.Errorf("Observe with slot -1 = Ignored %q", v.Ignored)
		}
		if v := d.Observe(synthStart.Add(time.Hour), 1); v.Ignored != "" {
			t.Errorf("Observe with slot 0 = Ignored %q", v.Ignored)
		}
	})

	t.Run("a long gap ends an occurrence", func(t *testing.T) {
		t.Parallel()
		d := mustNew(t, Config{})
		for i := range 3 {
			d.Observe(at(i), 5)
		}
		// Two hours later: the same slot a week later is a new
		// occurrence; here the slot changes anyway.
		d.Observe(at(3+2*bucketsPerHour), 5)
		h := d.slots[HourOfWeek(synthStart)]
		if h == nil || len(h.occ) != 1 || h.occ[0].n != 3 || h.occ[0].m != 5 {
			t.Fatalf("history of the first slot = %+v, want one occurrence of 3 values of 5", h)
		}
		// A week later, same slot: a new occurrence even without a slot change.
		d.Observe(at(bucketsPerWeek+2*bucketsPerHour), 5)
		d.Observe(at(2*bucketsPerWeek+2*bucketsPerHour), 5)
		if h := d.slots[HourOfWeek(at(2*bucketsPerHour))]; h == nil || len(h.occ) != 2 {
			t.Errorf("a slot observed three weeks running holds %+v, want two closed occurrences", h)
		}
	})
}
