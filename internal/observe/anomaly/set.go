package anomaly

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// DefaultMaxSeries is the size of a Set made with NewSet(0).
const DefaultMaxSeries = 10000

// maxSeriesName bounds a series name.
const maxSeriesName = 256

// Set keeps one Detector per named series (such as "shop/rate"), each with
// its own Config, up to a bounded count. It is safe for concurrent use.
type Set struct {
	mu     sync.Mutex
	max    int
	series map[string]*member
	tick   uint64
}

type member struct {
	d    *Detector
	key  configState // the Config the detector runs with, to notice a change
	last Verdict
	used uint64 // s.tick at the last Observe, for eviction
}

// NewSet returns a Set of at most max series (DefaultMaxSeries if max <= 0).
// When it is full, a new series evicts the one observed least recently.
func NewSet(max int) *Set {
	if max <= 0 {
		max = DefaultMaxSeries
	}
	return &Set{max: max, series: map[string]*member{}}
}

// Observe passes (t, v) to the detector of series, creating it from cfg on
// first use. If cfg differs from the configuration the detector runs with,
// the detector is rebuilt from cfg and keeps its history when it can (same
// Bucket, Slots and Location); it always takes cfg.Slot. An invalid cfg, or
// a name longer than 256 bytes, gives a Verdict with Ignored set.
func (s *Set) Observe(series string, cfg Config, t time.Time, v float64) Verdict {
	nan := math.NaN()
	if len(series) > maxSeriesName {
		return Verdict{Time: t, Value: v, Expected: nan, Lower: nan, Upper: nan, Score: nan, Ignored: "series name is too long"}
	}
	norm, err := normalize(cfg)
	if err != nil {
		return Verdict{Time: t, Value: v, Expected: nan, Lower: nan, Upper: nan, Score: nan, Ignored: "invalid config: " + err.Error()}
	}
	key := configStateOf(norm, cfg.Slot != nil)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.series == nil { // a zero Set
		s.series = map[string]*member{}
	}
	if s.max <= 0 {
		s.max = DefaultMaxSeries
	}
	s.tick++
	m := s.series[series]
	switch {
	case m == nil:
		if len(s.series) >= s.max {
			s.evict()
		}
		d, _ := New(cfg) // cfg was checked above
		m = &member{d: d, key: key}
		s.series[series] = m
	case m.key != key:
		d, _ := New(cfg)
		if d.restore(m.d.snapshot()) != nil {
			d, _ = New(cfg) // incompatible: start over
		}
		m.d, m.key = d, key
	case cfg.Slot != nil:
		m.d.cfg.Slot = cfg.Slot
	}
	m.used = s.tick
	m.last = m.d.Observe(t, v)
	return m.last
}

// evict drops the series observed least recently.
func (s *Set) evict() {
	var oldest string
	var used uint64 = math.MaxUint64
	for name, m := range s.series {
		if m.used < used || m.used == used && name < oldest {
			oldest, used = name, m.used
		}
	}
	delete(s.series, oldest)
}

// Firing returns, sorted, the series whose latest verdict was firing.
func (s *Set) Firing() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, m := range s.series {
		if m.last.Firing {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Last returns the latest verdict of series.
func (s *Set) Last(series string) (Verdict, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.series[series]
	if m == nil {
		return Verdict{}, false
	}
	return m.last, true
}

// Remove forgets series (an app that was deleted).
func (s *Set) Remove(series string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.series, series)
}

// Len returns the number of series.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series)
}

type setState struct {
	Series map[string]*Detector `json:"series"`
}

// MarshalJSON returns every detector's state (see Detector.MarshalJSON).
// Latest verdicts are not kept: Firing is empty after a restore until the
// series are observed again.
func (s *Set) MarshalJSON() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := setState{Series: make(map[string]*Detector, len(s.series))}
	for name, m := range s.series {
		st.Series[name] = m.d
	}
	return json.Marshal(st)
}

// UnmarshalJSON replaces the set's series with those of data, each with
// its saved configuration (a detector saved with a custom Slot takes the
// one of the next Observe). The set's bound applies: data with more series
// is refused, as is any bad detector state, leaving s as it was.
func (s *Set) UnmarshalJSON(data []byte) error {
	var st struct {
		Series map[string]json.RawMessage `json:"series"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("decoding anomaly set: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max <= 0 {
		s.max = DefaultMaxSeries
	}
	if len(st.Series) > s.max {
		return fmt.Errorf("decoding anomaly set: %d series, more than %d", len(st.Series), s.max)
	}
	series := make(map[string]*member, len(st.Series))
	for name, raw := range st.Series {
		if len(name) > maxSeriesName {
			return fmt.Errorf("decoding anomaly set: a series name is longer than %d bytes", maxSeriesName)
		}
		d, err := decodeMember(raw)
		if err != nil {
			return fmt.Errorf("decoding anomaly set: series %q: %w", name, err)
		}
		series[name] = &member{d: d, key: d.configState()}
	}
	s.series = series
	return nil
}

// decodeMember decodes a detector for a Set. A custom slot function cannot
// be saved, so such a detector gets a placeholder that puts every bucket
// out of range until Observe hands it the real one.
func decodeMember(raw json.RawMessage) (*Detector, error) {
	var probe struct {
		Config configState `json:"config"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, err
	}
	if !probe.Config.CustomSlot {
		d := &Detector{}
		if err := d.UnmarshalJSON(raw); err != nil {
			return nil, err
		}
		return d, nil
	}
	c := probe.Config
	c.CustomSlot = false
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	cfg.Slot = func(time.Time) int { return -1 }
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	return d, nil
}
