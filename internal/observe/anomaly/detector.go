package anomaly

import (
	"math"
	"slices"
	"time"
)

const (
	// runCap bounds the observations kept for the open occurrence of a
	// slot (a day at the default width); beyond it the oldest are dropped.
	runCap = 288
	// minRunGap: an occurrence of a slot ends after this many buckets
	// without an observation (or an hour, if longer), even if the next
	// observation falls in the same slot.
	minRunGap = 12
	// minRef is how many observations the last-day median needs before
	// relative warm-up bounds apply.
	minRef = 12
	// minRunForSpread: an occurrence with fewer observations says nothing
	// about the spread within a slot.
	minRunForSpread = 3
	// maxRing bounds the last-day ring.
	maxRing = 1440
)

// Verdict is what a Detector concluded about one observation.
type Verdict struct {
	Time  time.Time
	Value float64
	// Expected is the seasonal baseline (the median of the slot's past
	// occurrences); NaN during warm-up and for an ignored observation.
	Expected float64
	// Lower and Upper bound the band: Expected ± Threshold × scale,
	// widened to a scale past the lowest and highest values the slot
	// reached in most past occurrences; or the static bounds during
	// warm-up (±Inf where unset).
	Lower, Upper float64
	// Score is the robust z-score (Value − Expected) / scale, where scale
	// is 1.4826 × the floored MAD; NaN during warm-up. A score beyond
	// Threshold does not deviate if the value stays within a widened band.
	Score float64
	// Deviates says the value is outside the band in the configured
	// Direction (or outside the static bounds, either way, during
	// warm-up).
	Deviates bool
	// Firing says at least K of the last N buckets, this one included,
	// deviated.
	Firing bool
	// WarmingUp says the slot has fewer than MinSamples past occurrences,
	// so the static thresholds applied.
	WarmingUp bool
	// Ignored is why the observation was not used ("" when it was): a
	// value that is NaN or infinite, a time that does not advance, or one
	// whose slot is out of range. An ignored observation changes nothing;
	// Firing then tells the state of the window at Time.
	Ignored string
}

// Detector watches one series. It is not safe for concurrent use; a Set
// serializes access to its detectors.
type Detector struct {
	cfg     Config
	custom  bool  // cfg.Slot was given, not the default
	started bool  // an observation was accepted
	last    int64 // bucket index of the last accepted observation
	window  []int64
	slots   []*history // by slot, nil until the slot's first occurrence ends
	run     run
	ring    *sortedRing // last day of clamped values; nil unless Warmup is relative
	scratch []float64
}

// history is a slot's past occurrences, oldest first, at most Seasons.
type history struct {
	occ  []occurrence
	base baseline // cached; valid while ok
}

type baseline struct {
	ok       bool
	exp, mad float64
	hi, lo   float64 // the median of the occurrences' hi and lo
}

// occurrence summarizes one occurrence of a slot: the median and MAD of its
// values clamped to the band in force when each was observed, the same of
// the raw values, its highest and lowest raw values, how many values, and
// whether most of them were above (+1) or below (−1) the band.
type occurrence struct {
	m, s, rm, rs float32
	hi, lo       float32
	n            uint16
	side         int8
}

// run is the open occurrence of a slot.
type run struct {
	open        bool
	slot        int
	last        int64 // bucket index of its last observation
	raw, capped []float64
}

// New returns a Detector for cfg, with its defaults applied.
func New(cfg Config) (*Detector, error) {
	custom := cfg.Slot != nil
	cfg, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	if !custom {
		cfg.Slot = HourOfWeek
	}
	d := &Detector{cfg: cfg, custom: custom, slots: make([]*history, cfg.Slots)}
	if cfg.Warmup.relative() {
		d.ring = newSortedRing(ringSize(cfg.Bucket))
	}
	return d, nil
}

// ringSize is a day of buckets, within [minRef, maxRing].
func ringSize(b time.Duration) int {
	return int(min(max(int64(24*time.Hour/b), minRef), maxRing))
}

// Config returns the detector's configuration with its defaults applied.
func (d *Detector) Config() Config { return d.cfg }

// index returns the bucket that holds t.
func (d *Detector) index(t time.Time) (int64, bool) {
	if t.Year() < 1700 || t.Year() > 2200 {
		return 0, false
	}
	ns, b := t.UnixNano(), int64(d.cfg.Bucket)
	i := ns / b
	if ns%b < 0 {
		i--
	}
	return i, true
}

// Observe judges v, the value of the bucket that holds t, and learns from
// it. Buckets must advance: an observation for the bucket of the previous
// one, or an earlier one, is ignored, as is a NaN or infinite value. A
// bucket that is skipped counts as not deviating.
func (d *Detector) Observe(t time.Time, v float64) Verdict {
	nan := math.NaN()
	out := Verdict{Time: t, Value: v, Expected: nan, Lower: nan, Upper: nan, Score: nan}
	idx, ok := d.index(t)
	switch {
	case !ok:
		out.Ignored = "time is out of range"
		return out
	case d.started && idx <= d.last:
		out.Ignored = "time does not advance"
		out.Firing = d.firing(d.last)
		return out
	case !finite(v):
		out.Ignored = "value is not finite"
		out.Firing = d.firing(idx)
		return out
	}
	slot := d.cfg.Slot(time.Unix(0, idx*int64(d.cfg.Bucket)).In(d.cfg.Location))
	if slot < 0 || slot >= d.cfg.Slots {
		out.Ignored = "slot is out of range"
		out.Firing = d.firing(idx)
		return out
	}
	if d.run.open && (d.run.slot != slot || idx-d.run.last > d.runGap()) {
		d.closeRun()
	}

	if h := d.slots[slot]; h != nil && len(h.occ) >= d.cfg.MinSamples {
		b := h.baseline(d.cfg.MinSamples, &d.scratch)
		scale := madToSigma * max(b.mad, d.cfg.MinMAD, d.cfg.MinRelMAD*math.Abs(b.exp))
		out.Expected = b.exp
		// The band is widened to a sigma past the highest and lowest
		// values this slot reached in most past occurrences (the median
		// of their maxima and minima): a short event that recurs every
		// week, such as a batch job, is not an anomaly.
		out.Lower = min(b.exp-d.cfg.Threshold*scale, b.lo-scale)
		out.Upper = max(b.exp+d.cfg.Threshold*scale, b.hi+scale)
		switch {
		case scale > 0:
			out.Score = (v - b.exp) / scale
		case v > b.exp:
			out.Score = math.Inf(1)
		case v < b.exp:
			out.Score = math.Inf(-1)
		default:
			out.Score = 0
		}
		switch d.cfg.Direction {
		case Up:
			out.Deviates = v > out.Upper
		case Down:
			out.Deviates = v < out.Lower
		default:
			out.Deviates = v > out.Upper || v < out.Lower
		}
	} else {
		ref := nan
		if d.ring != nil {
			ref = d.ring.median()
		}
		out.WarmingUp = true
		out.Lower, out.Upper = d.cfg.Warmup.bounds(ref)
		out.Deviates = v < out.Lower || v > out.Upper
	}

	capped := v // during warm-up, values enter the history as they are
	if !out.WarmingUp {
		capped = min(max(v, out.Lower), out.Upper)
	}
	if !d.run.open {
		d.run = run{open: true, slot: slot, raw: d.run.raw[:0], capped: d.run.capped[:0]}
	}
	if len(d.run.raw) == runCap {
		d.run.raw = append(d.run.raw[:0], d.run.raw[1:]...)
		d.run.capped = append(d.run.capped[:0], d.run.capped[1:]...)
	}
	d.run.raw = append(d.run.raw, v)
	d.run.capped = append(d.run.capped, capped)
	d.run.last = idx
	if d.ring != nil {
		d.ring.add(float64(f32(capped)))
	}

	d.window = d.trim(d.window, idx)
	if out.Deviates {
		d.window = append(d.window, idx)
	}
	d.started, d.last = true, idx
	out.Firing = len(d.window) >= d.cfg.K
	return out
}

// runGap is how many buckets without an observation end an occurrence.
func (d *Detector) runGap() int64 {
	return max(minRunGap, int64(time.Hour/d.cfg.Bucket))
}

// trim drops from w the buckets that are no longer among the last N as of
// bucket idx.
func (d *Detector) trim(w []int64, idx int64) []int64 {
	first := idx - int64(d.cfg.N) + 1
	i := 0
	for i < len(w) && w[i] < first {
		i++
	}
	return append(w[:0], w[i:]...)
}

// firing reports whether K of the N buckets ending at idx deviated.
func (d *Detector) firing(idx int64) bool {
	n := 0
	for _, w := range d.window {
		if w > idx-int64(d.cfg.N) && w <= idx {
			n++
		}
	}
	return n >= d.cfg.K
}

// closeRun summarizes the open occurrence into its slot's history.
func (d *Detector) closeRun() {
	r := &d.run
	r.open = false
	if len(r.raw) == 0 {
		return
	}
	var o occurrence
	var m, s float64
	m, s, d.scratch = medianMAD(r.capped, d.scratch)
	o.m, o.s = quant(m), quant(s)
	m, s, d.scratch = medianMAD(r.raw, d.scratch)
	o.rm, o.rs = quant(m), quant(s)
	o.n = uint16(len(r.raw))
	o.hi, o.lo = quant(slices.Max(r.raw)), quant(slices.Min(r.raw))
	above, below := 0, 0
	for i, x := range r.raw {
		if x > r.capped[i] {
			above++
		} else if x < r.capped[i] {
			below++
		}
	}
	switch n := len(r.raw); {
	case 2*above > n:
		o.side = 1
	case 2*below > n:
		o.side = -1
	}
	h := d.slots[r.slot]
	if h == nil {
		h = &history{}
		d.slots[r.slot] = h
	}
	h.add(o, d.cfg.Seasons, d.cfg.Relearn)
}

// f32 converts x to float32, saturating instead of overflowing to an
// infinity (which JSON cannot hold); NaN, which finite inputs cannot
// produce, becomes 0.
func f32(x float64) float32 {
	if math.IsNaN(x) {
		return 0
	}
	return float32(min(max(x, -math.MaxFloat32), math.MaxFloat32))
}

// quant rounds x to 5 significant digits in a float32, which is all a
// baseline needs, to keep the persisted state small.
func quant(x float64) float32 {
	if x == 0 || !finite(x) {
		return f32(x)
	}
	p := math.Pow10(4 - int(math.Floor(math.Log10(math.Abs(x)))))
	if r := math.Round(x*p) / p; finite(r) {
		return f32(r)
	}
	return f32(x)
}

// add appends o, keeping the newest seasons occurrences. When the newest
// relearn occurrences were all mostly outside the band on the same side,
// the slot has shifted for good: its history becomes those occurrences,
// unclamped.
func (h *history) add(o occurrence, seasons, relearn int) {
	if len(h.occ) == seasons {
		h.occ = append(h.occ[:0], h.occ[1:]...)
	}
	h.occ = append(h.occ, o)
	h.base.ok = false
	if o.side == 0 || len(h.occ) < relearn {
		return
	}
	recent := h.occ[len(h.occ)-relearn:]
	for _, p := range recent {
		if p.side != o.side {
			return
		}
	}
	for i := range recent {
		o := &recent[i]
		o.m, o.s, o.side = o.rm, o.rs, 0
	}
	h.occ = append(h.occ[:0], recent...)
}

// baseline returns the slot's median and MAD: the median of the
// occurrences' medians, and the root sum of squares of the spread within
// an occurrence (the median of their MADs) and across them (the MAD of
// their medians). Shifted occurrences (mostly outside the band) are left
// out, unless fewer than minSamples others remain.
func (h *history) baseline(minSamples int, scratch *[]float64) baseline {
	if h.base.ok {
		return h.base
	}
	normal := 0
	for _, o := range h.occ {
		if o.side == 0 {
			normal++
		}
	}
	use := func(o occurrence) bool { return o.side == 0 || normal < minSamples }
	xs := (*scratch)[:0]
	for _, o := range h.occ {
		if use(o) {
			xs = append(xs, float64(o.m))
		}
	}
	exp := median(xs)
	xs = xs[:0]
	for _, o := range h.occ {
		if use(o) {
			xs = append(xs, math.Abs(float64(o.m)-exp))
		}
	}
	across := median(xs)
	xs = xs[:0]
	for _, o := range h.occ {
		if use(o) && o.n >= minRunForSpread {
			xs = append(xs, float64(o.s))
		}
	}
	within := 0.0
	if len(xs) > 0 {
		within = median(xs)
	}
	xs = xs[:0]
	for _, o := range h.occ {
		if use(o) {
			xs = append(xs, float64(o.hi))
		}
	}
	hi := median(xs)
	xs = xs[:0]
	for _, o := range h.occ {
		if use(o) {
			xs = append(xs, float64(o.lo))
		}
	}
	lo := median(xs)
	*scratch = xs
	h.base = baseline{ok: true, exp: exp, mad: math.Hypot(within, across), hi: hi, lo: lo}
	return h.base
}
