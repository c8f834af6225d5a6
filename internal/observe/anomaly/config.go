package anomaly

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults applied by New to a Config field left at its zero value.
const (
	DefaultBucket     = 5 * time.Minute
	DefaultSeasons    = 4
	DefaultSlots      = 168 // hours in a week
	DefaultThreshold  = 4.0
	DefaultMinRelMAD  = 0.02
	DefaultK          = 3
	DefaultN          = 4
	DefaultMinSamples = 2
)

// Limits on a Config, so that a detector's state stays small.
const (
	MaxSeasons = 52
	MaxSlots   = 10080 // minutes in a week
	MaxN       = 64
)

// madToSigma turns a median absolute deviation into the standard
// deviation it estimates for normally distributed values.
const madToSigma = 1.4826

// Direction says which deviations count.
type Direction int

const (
	// Both counts a value above or below the band (request rate).
	Both Direction = iota
	// Up counts only a value above the band (error ratio, latency).
	Up
	// Down counts only a value below the band.
	Down
)

// String returns "both", "up" or "down".
func (d Direction) String() string {
	switch d {
	case Both:
		return "both"
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// Static holds the thresholds used while a slot has too little history for
// its seasonal baseline (warm-up). A field that is zero or NaN is unset: no
// bound on that side. Min and Max are absolute; RelMin and RelMax are
// multiples of the median of the last day of observations (see the package
// documentation), for a series whose scale is not known in advance. When
// both an absolute and a relative bound are set on one side, the tighter
// one applies (if they cross, only the absolute bounds apply). Static
// bounds apply whatever the Config's Direction.
//
// The zero Static sets no bound, so nothing deviates during warm-up.
type Static struct {
	Min, Max       float64
	RelMin, RelMax float64
}

// Config configures a Detector. The zero value of every field selects its
// default; New checks the result.
type Config struct {
	// Bucket is the width of one observation (default 5m, 1s to 24h).
	// Observe maps a time to the bucket that holds it.
	Bucket time.Duration
	// Seasons is how many past occurrences of each slot are kept: weeks,
	// with the default weekly slot (default 4, at most 52).
	Seasons int
	// Slot maps the start of a bucket, in Location, to its seasonal slot
	// in [0, Slots). Default HourOfWeek. Consecutive buckets with the same
	// slot form one occurrence of it; occurrences of a slot must be more
	// than an hour (and 12 buckets) apart.
	Slot func(t time.Time) int
	// Slots is the number of values Slot returns (default 168 with the
	// default Slot; required with a custom one; at most 10080).
	Slots int
	// Location is the time zone in which Slot reads a time (default UTC).
	Location *time.Location
	// Threshold is the robust z-score |x - median| / (1.4826*MAD) above
	// which a bucket deviates (default 4), unless the slot's band is
	// widened to the extremes it reaches every week (see Verdict.Upper).
	Threshold float64
	// MinMAD and MinRelMAD floor the MAD, so that a flat series does not
	// alarm on noise: the MAD used is at least MinMAD (in the series'
	// units) and at least MinRelMAD times |median|. MinMAD defaults to 0;
	// MinRelMAD defaults to 0.02 and a negative MinRelMAD turns it off. A
	// series that sits at zero (an error ratio) needs MinMAD.
	MinMAD, MinRelMAD float64
	// K and N: a detector fires when at least K of the last N buckets
	// deviate (default 3 of 4; 1 <= K <= N <= 64). A missing bucket counts
	// as not deviating.
	K, N int
	// MinSamples is how many past occurrences a slot needs before its
	// seasonal baseline is used; until then the slot is warming up and
	// Warmup applies (default 2, at most Seasons).
	MinSamples int
	// Relearn is how many consecutive occurrences of a slot must have been
	// mostly outside the band, on the same side, before the slot's history
	// is replaced by their unclamped values: a lasting level shift is
	// learned after Relearn weeks (default max(MinSamples, Seasons−1),
	// 3 weeks with the defaults; MinSamples to Seasons).
	Relearn int
	// Warmup holds the thresholds used while a slot warms up.
	Warmup Static
	// Direction says which deviations count (default Both).
	Direction Direction
}

// HourOfWeek is the default Slot: the day of the week (Sunday = 0) times
// 24 plus the hour, in t's location.
func HourOfWeek(t time.Time) int { return int(t.Weekday())*24 + t.Hour() }

// RequestRate returns the configuration recommended for a request rate in
// requests per second: both directions and a MAD of at least 5% of the
// level and 0.01 requests per second. It has no warm-up thresholds: the
// normal range of a rate is unknown until learned (a business-hours app
// can swing a hundredfold in a day, and a small app may be idle at night).
func RequestRate() Config {
	return Config{Direction: Both, MinRelMAD: 0.05, MinMAD: 0.01}
}

// ErrorRatio returns the configuration recommended for the ratio of failed
// requests (0 to 1): upward only, a MAD of at least 0.005 (half a
// percentage point), and during warm-up a breach above 5%. Feed NaN for a
// bucket with very few requests (say under 20): its ratio is noise.
func ErrorRatio() Config {
	return Config{Direction: Up, MinMAD: 0.005, Warmup: Static{Max: 0.05}}
}

// Latency returns the configuration recommended for a latency quantile in
// seconds (p95): upward only, a MAD of at least 5% of the level and 5 ms,
// and during warm-up a breach above 4 times the last day's median.
func Latency() Config {
	return Config{Direction: Up, MinRelMAD: 0.05, MinMAD: 0.005, Warmup: Static{RelMax: 4}}
}

// set reports whether a Static field holds a bound.
func set(x float64) bool { return x != 0 && !math.IsNaN(x) }

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// normalize applies the defaults to cfg and checks it.
func normalize(cfg Config) (Config, error) {
	if cfg.Bucket == 0 {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Bucket < time.Second || cfg.Bucket > 24*time.Hour {
		return cfg, fmt.Errorf("bucket %v is out of range (1s to 24h)", cfg.Bucket)
	}
	if cfg.Seasons == 0 {
		cfg.Seasons = DefaultSeasons
	}
	if cfg.Seasons < 1 || cfg.Seasons > MaxSeasons {
		return cfg, fmt.Errorf("seasons %d is out of range (1 to %d)", cfg.Seasons, MaxSeasons)
	}
	if cfg.Slot == nil {
		if cfg.Slots == 0 {
			cfg.Slots = DefaultSlots
		}
		if cfg.Slots != DefaultSlots {
			return cfg, fmt.Errorf("slots %d does not match the default hour-of-week slot (168)", cfg.Slots)
		}
	} else if cfg.Slots == 0 {
		return cfg, errors.New("slots is required with a custom slot function")
	}
	if cfg.Slots < 1 || cfg.Slots > MaxSlots {
		return cfg, fmt.Errorf("slots %d is out of range (1 to %d)", cfg.Slots, MaxSlots)
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultThreshold
	}
	if !(cfg.Threshold > 0 && cfg.Threshold <= 100) {
		return cfg, fmt.Errorf("threshold %v is out of range (above 0, at most 100)", cfg.Threshold)
	}
	if !(cfg.MinMAD >= 0) || math.IsInf(cfg.MinMAD, 0) {
		return cfg, fmt.Errorf("min MAD %v is not a finite number >= 0", cfg.MinMAD)
	}
	switch {
	case cfg.MinRelMAD == 0:
		cfg.MinRelMAD = DefaultMinRelMAD
	case cfg.MinRelMAD < 0:
		cfg.MinRelMAD = -1 // off; kept negative so that normalizing twice is stable
	case !(cfg.MinRelMAD <= 10):
		return cfg, fmt.Errorf("min relative MAD %v is out of range (at most 10)", cfg.MinRelMAD)
	}
	if cfg.N == 0 {
		cfg.N = DefaultN
	}
	if cfg.K == 0 {
		cfg.K = min(DefaultK, cfg.N)
	}
	if cfg.K < 1 || cfg.N > MaxN || cfg.K > cfg.N {
		return cfg, fmt.Errorf("k of n (%d of %d) is out of range (1 <= k <= n <= %d)", cfg.K, cfg.N, MaxN)
	}
	if cfg.MinSamples == 0 {
		cfg.MinSamples = min(DefaultMinSamples, cfg.Seasons)
	}
	if cfg.MinSamples < 1 || cfg.MinSamples > cfg.Seasons {
		return cfg, fmt.Errorf("min samples %d is out of range (1 to seasons, %d)", cfg.MinSamples, cfg.Seasons)
	}
	if cfg.Relearn == 0 {
		cfg.Relearn = max(cfg.MinSamples, cfg.Seasons-1)
	}
	if cfg.Relearn < cfg.MinSamples || cfg.Relearn > cfg.Seasons {
		return cfg, fmt.Errorf("relearn %d is out of range (min samples, %d, to seasons, %d)", cfg.Relearn, cfg.MinSamples, cfg.Seasons)
	}
	if err := cfg.Warmup.check(); err != nil {
		return cfg, fmt.Errorf("warmup: %w", err)
	}
	if cfg.Direction < Both || cfg.Direction > Down {
		return cfg, fmt.Errorf("direction %d is not Both, Up or Down", int(cfg.Direction))
	}
	return cfg, nil
}

func (s Static) check() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"min", s.Min}, {"max", s.Max}, {"relative min", s.RelMin}, {"relative max", s.RelMax}} {
		if math.IsInf(f.v, 0) {
			return fmt.Errorf("%s is infinite", f.name)
		}
	}
	if set(s.Min) && set(s.Max) && s.Min > s.Max {
		return fmt.Errorf("min %v is above max %v", s.Min, s.Max)
	}
	if set(s.RelMin) && s.RelMin < 0 || set(s.RelMax) && s.RelMax < 0 {
		return errors.New("relative bounds must be >= 0")
	}
	if set(s.RelMin) && set(s.RelMax) && s.RelMin > s.RelMax {
		return fmt.Errorf("relative min %v is above relative max %v", s.RelMin, s.RelMax)
	}
	return nil
}

// relative reports whether s needs the median of the last day.
func (s Static) relative() bool { return set(s.RelMin) || set(s.RelMax) }

// bounds returns the band of s given ref, the median of the last day (NaN
// when unknown, which leaves the relative bounds unset).
func (s Static) bounds(ref float64) (lo, hi float64) {
	lo, hi = math.Inf(-1), math.Inf(1)
	if set(s.Min) {
		lo = s.Min
	}
	if set(s.Max) {
		hi = s.Max
	}
	if !math.IsNaN(ref) {
		if set(s.RelMin) {
			lo = max(lo, s.RelMin*ref)
		}
		if set(s.RelMax) {
			hi = min(hi, s.RelMax*ref)
		}
	}
	if lo > hi { // relative and absolute bounds cross: keep the absolute ones
		return s.bounds(math.NaN())
	}
	return lo, hi
}
