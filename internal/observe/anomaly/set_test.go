package anomaly

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func at(i int) time.Time { return synthStart.Add(time.Duration(i) * DefaultBucket) }

func TestSetFiringAndBound(t *testing.T) {
	t.Parallel()
	s := NewSet(2)
	cfg := Config{Warmup: Static{Max: 10}}
	for i := range 3 {
		s.Observe("a", cfg, at(i), 1)
		s.Observe("b", cfg, at(i), 100)
	}
	if got := s.Firing(); !slices.Equal(got, []string{"b"}) {
		t.Errorf("Firing() = %v, want [b]", got)
	}
	if v, ok := s.Last("b"); !ok || !v.Firing || v.Value != 100 {
		t.Errorf("Last(b) = %+v, %v", v, ok)
	}
	// "a" was observed least recently (before "b" at bucket 2): a third
	// series evicts it.
	s.Observe("c", cfg, at(3), 1)
	if s.Len() != 2 {
		t.Errorf("Len() = %d, want 2", s.Len())
	}
	if _, ok := s.Last("a"); ok {
		t.Error("series a is still there; want it evicted")
	}
	if _, ok := s.Last("b"); !ok {
		t.Error("series b was evicted; want the least recently observed one to go")
	}
	s.Remove("b")
	if got := s.Firing(); len(got) != 0 {
		t.Errorf("Firing() after Remove = %v", got)
	}
}

func TestSetRefuses(t *testing.T) {
	t.Parallel()
	s := NewSet(0)
	if v := s.Observe("x", Config{K: 9}, at(0), 1); !strings.Contains(v.Ignored, "invalid config") {
		t.Errorf("Observe with a bad config: Ignored %q", v.Ignored)
	}
	if v := s.Observe(strings.Repeat("x", 300), Config{}, at(0), 1); !strings.Contains(v.Ignored, "too long") {
		t.Errorf("Observe with a long name: Ignored %q", v.Ignored)
	}
	if s.Len() != 0 {
		t.Errorf("Len() = %d after refusals, want 0", s.Len())
	}
	var zero Set
	if v := zero.Observe("x", Config{}, at(0), 1); v.Ignored != "" {
		t.Errorf("zero Set: Observe = %+v", v)
	}
}

// TestSetReconfigure checks that a changed Config keeps the learned
// history when it can.
func TestSetReconfigure(t *testing.T) {
	t.Parallel()
	a := newApp(2, 3)
	s := NewSet(10)
	cfg := RequestRate()
	n := 2*bucketsPerWeek + 7
	for i := range n {
		s.Observe("shop/rate", cfg, at(i), a.series[rateKind][i])
	}
	stricter := cfg
	stricter.Threshold = 6
	v := s.Observe("shop/rate", stricter, at(n), a.series[rateKind][n])
	if v.WarmingUp {
		t.Fatal("a new threshold threw the history away")
	}
	ref := mustNew(t, cfg)
	for i := range n {
		ref.Observe(at(i), a.series[rateKind][i])
	}
	want := ref.Observe(at(n), a.series[rateKind][n])
	if v.Expected != want.Expected || v.Upper-v.Expected <= want.Upper-want.Expected {
		t.Errorf("after the change: expected %v, band %v; before: %v, %v", v.Expected, v.Upper-v.Expected, want.Expected, want.Upper-want.Expected)
	}
	// Another bucket width cannot keep the history.
	v = s.Observe("shop/rate", Config{Bucket: time.Minute}, at(n+1), 1)
	if !v.WarmingUp {
		t.Error("a new bucket width kept a history of other buckets")
	}
}

func TestSetPersistence(t *testing.T) {
	t.Parallel()
	a := newApp(4, 3)
	custom := Config{Slot: func(t time.Time) int { return t.Hour() }, Slots: 24, Direction: Up, MinMAD: 0.005}
	cfgs := map[string]Config{"shop/rate": RequestRate(), "shop/errors": custom, "shop/latency": Latency()}
	series := map[string][]float64{"shop/rate": a.series[rateKind], "shop/errors": a.series[errorKind], "shop/latency": a.series[latencyKind]}
	s := NewSet(10)
	split := 2*bucketsPerWeek + 100
	for i := range split {
		for name, cfg := range cfgs {
			s.Observe(name, cfg, at(i), series[name][i])
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	restored := NewSet(10)
	if err := json.Unmarshal(b, restored); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	for i := split; i < len(series["shop/rate"]); i++ {
		for name, cfg := range cfgs {
			want := s.Observe(name, cfg, at(i), series[name][i])
			if got := restored.Observe(name, cfg, at(i), series[name][i]); !sameVerdict(got, want) {
				t.Fatalf("%s bucket %d: restored %+v, want %+v", name, i, got, want)
			}
		}
	}
	if err := NewSet(2).UnmarshalJSON(b); err == nil || !strings.Contains(err.Error(), "more than 2") {
		t.Errorf("Unmarshal of 3 series into a set of 2 = %v, want a refusal", err)
	}
	if err := restored.UnmarshalJSON([]byte(`{"series":{"x":{"version":1}}}`)); err == nil {
		t.Error("Unmarshal of a bad detector succeeded")
	}
	if restored.Len() != 3 {
		t.Errorf("a refused Unmarshal left %d series, want the 3 it had", restored.Len())
	}
}

func TestSetConcurrent(t *testing.T) {
	t.Parallel()
	s := NewSet(100)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				s.Observe(fmt.Sprintf("app%d/rate", g), RequestRate(), at(i), float64(i%10))
				s.Firing()
			}
		})
	}
	wg.Wait()
	if s.Len() != 4 {
		t.Errorf("Len() = %d, want 4", s.Len())
	}
}
