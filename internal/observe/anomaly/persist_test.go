package anomaly

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// TestPersistenceRoundTrip checks that a detector restored from its JSON,
// in the middle of a slot's occurrence and with a last-day ring, gives the
// same verdicts as the one that kept running.
func TestPersistenceRoundTrip(t *testing.T) {
	t.Parallel()
	a := newApp(3, 5)
	inj, _ := inject(3, a, 2, 5)
	for _, k := range []kind{rateKind, errorKind, latencyKind} {
		t.Run(k.String(), func(t *testing.T) {
			t.Parallel()
			cfg := k.config()
			cfg.Location, _ = time.LoadLocation("Europe/Paris")
			xs := inj[k]
			at := func(i int) time.Time { return synthStart.Add(time.Duration(i) * DefaultBucket) }
			orig := mustNew(t, cfg)
			split := 3*bucketsPerWeek + 1234 + 5 // mid-hour
			for i := range split {
				orig.Observe(at(i), xs[i])
			}
			saved, err := json.Marshal(orig)
			if err != nil {
				t.Fatal(err)
			}
			if len(saved) > 64<<10 {
				t.Errorf("state is %d bytes, want it small", len(saved))
			}
			var zero Detector
			if err := json.Unmarshal(saved, &zero); err != nil {
				t.Fatalf("Unmarshal into a zero Detector: %v", err)
			}
			made := mustNew(t, cfg)
			if err := json.Unmarshal(saved, made); err != nil {
				t.Fatalf("Unmarshal into New(cfg): %v", err)
			}
			for i := split; i < len(xs); i++ {
				want := orig.Observe(at(i), xs[i])
				for name, d := range map[string]*Detector{"zero": &zero, "New": made} {
					if got := d.Observe(at(i), xs[i]); !sameVerdict(got, want) {
						t.Fatalf("restored into %s: bucket %d = %+v, want %+v", name, i, got, want)
					}
				}
			}
			if stateOf(t, &zero) != stateOf(t, orig) || stateOf(t, made) != stateOf(t, orig) {
				t.Error("states differ after the same observations")
			}
			t.Logf("state after 3 weeks: %d bytes", len(saved))
		})
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	t.Parallel()
	d := mustNew(t, Config{})
	for i := range 2 * bucketsPerDay {
		d.Observe(synthStart.Add(time.Duration(i)*DefaultBucket), float64(i%7))
	}
	good := stateOf(t, d)
	custom := mustNew(t, Config{Slot: func(time.Time) int { return 0 }, Slots: 1})
	tests := []struct {
		name   string
		into   func() *Detector
		data   string
		substr string
	}{
		{"not JSON", func() *Detector { return &Detector{} }, "{", "decoding"},
		{"wrong version", func() *Detector { return &Detector{} }, strings.Replace(good, `"version":1`, `"version":9`, 1), "version"},
		{"other bucket", func() *Detector { return mustNew(t, Config{Bucket: time.Minute}) }, good, "buckets of 5m0s"},
		{"other location", func() *Detector { return mustNew(t, Config{Location: time.FixedZone("X", 3600)}) }, good, "location"},
		{"custom slot into a zero detector", func() *Detector { return &Detector{} }, stateOf(t, custom), "custom slot"},
		{"slot out of range", func() *Detector { return &Detector{} }, strings.Replace(good, `"slot":24`, `"slot":900`, 1), "out of range"},
		{"bad occurrence", func() *Detector { return &Detector{} }, strings.Replace(good, `"occ":[[`, `"occ":[[1e99,`, 1), "occurrence"},
		{"bad config", func() *Detector { return &Detector{} }, strings.Replace(good, `"k":3`, `"k":30`, 1), "config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.data == good && tc.substr != "buckets of 5m0s" && tc.substr != "location" {
				t.Fatalf("the test's edit of the state did not apply")
			}
			d := tc.into()
			before := ""
			if d.slots != nil {
				before = stateOf(t, d)
			}
			err := d.UnmarshalJSON([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.substr) {
				t.Fatalf("UnmarshalJSON = %v, want an error about %q", err, tc.substr)
			}
			if d.slots != nil && stateOf(t, d) != before {
				t.Error("a refused state changed the detector")
			}
		})
	}
}

func TestVerdictJSON(t *testing.T) {
	t.Parallel()
	v := Verdict{Time: synthStart, Value: 1, Expected: math.NaN(), Lower: math.Inf(-1), Upper: 5, Score: math.NaN(), WarmingUp: true}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"time":"2024-01-01T00:00:00Z","value":1,"expected":null,"lower":null,"upper":5,"score":null,"deviates":false,"firing":false,"warming_up":true}`
	if string(b) != want {
		t.Errorf("json.Marshal(verdict) = %s, want %s", b, want)
	}
}

// FuzzUnmarshal feeds arbitrary bytes to UnmarshalJSON: it must refuse or
// accept without panicking, and an accepted state must keep working and
// round-trip.
func FuzzUnmarshal(f *testing.F) {
	d, _ := New(Latency())
	a := newApp(1, 1)
	for i := range bucketsPerDay + 7 {
		d.Observe(synthStart.Add(time.Duration(i)*DefaultBucket), a.series[latencyKind][i])
	}
	good, _ := d.MarshalJSON()
	f.Add(good)
	f.Add([]byte(`{"version":1,"config":{"bucket":300000000000,"seasons":4,"slots":168,"location":"UTC","threshold":4,"min_rel_mad":0.02,"k":3,"n":4,"min_samples":2,"relearn":3}}`))
	f.Add([]byte(`{"version":1,"config":{"bucket":300000000000,"seasons":4,"slots":168,"location":"UTC","threshold":4,"min_rel_mad":0.02,"k":3,"n":4,"min_samples":2,"relearn":3},"last":5,"window":[3,5],"slots":[{"slot":1,"occ":[[1,2,3,4,5],[1,2,3,4,5,6,7,1]]}],"run":{"slot":1,"last":5,"raw":[1],"capped":[1]}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"series":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Detector
		if err := d.UnmarshalJSON(data); err != nil {
			return
		}
		for i := range 30 {
			d.Observe(synthStart.Add(time.Duration(i)*time.Hour), float64(i))
		}
		b, err := d.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON after an accepted state: %v", err)
		}
		var again Detector
		if err := again.UnmarshalJSON(b); err != nil {
			t.Fatalf("UnmarshalJSON of MarshalJSON's output: %v", err)
		}
		if b2, _ := again.MarshalJSON(); string(b2) != string(b) {
			t.Fatalf("round trip changed the state:\n%s\n%s", b, b2)
		}
		var s Set
		_ = s.UnmarshalJSON(data)
		s.Observe("x", Config{}, synthStart, 1)
	})
}
