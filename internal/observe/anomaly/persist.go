package anomaly

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// stateVersion is the version of the persisted form.
const stateVersion = 1

// state is a Detector's persisted form. Occurrences are arrays
// [median, MAD, count, hi, lo], followed by [raw median, raw MAD, side]
// when clamping changed them, to keep it small.
type state struct {
	Version int           `json:"version"`
	Config  configState   `json:"config"`
	Last    *int64        `json:"last,omitempty"` // absent before the first observation
	Window  []int64       `json:"window,omitempty"`
	Slots   []slotState   `json:"slots,omitempty"`
	Run     *runState     `json:"run,omitempty"`
	Ring    []json.Number `json:"ring,omitempty"` // float32 values
}

type configState struct {
	Bucket     time.Duration `json:"bucket"`
	Seasons    int           `json:"seasons"`
	Slots      int           `json:"slots"`
	CustomSlot bool          `json:"custom_slot,omitempty"`
	Location   string        `json:"location"`
	Threshold  float64       `json:"threshold"`
	MinMAD     float64       `json:"min_mad"`
	MinRelMAD  float64       `json:"min_rel_mad"`
	K          int           `json:"k"`
	N          int           `json:"n"`
	MinSamples int           `json:"min_samples"`
	Relearn    int           `json:"relearn"`
	Warmup     staticState   `json:"warmup"`
	Direction  Direction     `json:"direction"`
}

// staticState holds Static with its unset (NaN) fields as zero, since JSON
// has no NaN.
type staticState struct {
	Min    float64 `json:"min,omitempty"`
	Max    float64 `json:"max,omitempty"`
	RelMin float64 `json:"rel_min,omitempty"`
	RelMax float64 `json:"rel_max,omitempty"`
}

type slotState struct {
	Slot int             `json:"slot"`
	Occ  [][]json.Number `json:"occ"`
}

type runState struct {
	Slot   int       `json:"slot"`
	Last   int64     `json:"last"`
	Raw    []float64 `json:"raw"`
	Capped []float64 `json:"capped"`
}

func zeroNaN(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return x
}

func (d *Detector) configState() configState { return configStateOf(d.cfg, d.custom) }

// configStateOf returns the persisted form of c, a normalized Config.
func configStateOf(c Config, custom bool) configState {
	return configState{
		Bucket: c.Bucket, Seasons: c.Seasons, Slots: c.Slots, CustomSlot: custom,
		Location: c.Location.String(), Threshold: c.Threshold, MinMAD: c.MinMAD, MinRelMAD: c.MinRelMAD,
		K: c.K, N: c.N, MinSamples: c.MinSamples, Relearn: c.Relearn,
		Warmup:    staticState{zeroNaN(c.Warmup.Min), zeroNaN(c.Warmup.Max), zeroNaN(c.Warmup.RelMin), zeroNaN(c.Warmup.RelMax)},
		Direction: c.Direction,
	}
}

// config rebuilds a Config (with the default slot function; New refuses a
// custom one, which cannot be persisted).
func (c configState) config() (Config, error) {
	if c.CustomSlot {
		return Config{}, errors.New("the state was saved with a custom slot function: unmarshal it into a Detector made by New with that function")
	}
	loc, err := time.LoadLocation(c.Location)
	if err != nil {
		return Config{}, fmt.Errorf("loading location %q: %w", c.Location, err)
	}
	return Config{
		Bucket: c.Bucket, Seasons: c.Seasons, Slots: c.Slots, Location: loc,
		Threshold: c.Threshold, MinMAD: c.MinMAD, MinRelMAD: c.MinRelMAD,
		K: c.K, N: c.N, MinSamples: c.MinSamples, Relearn: c.Relearn,
		Warmup:    Static{c.Warmup.Min, c.Warmup.Max, c.Warmup.RelMin, c.Warmup.RelMax},
		Direction: c.Direction,
	}, nil
}

func num32(x float32) json.Number {
	return json.Number(strconv.FormatFloat(float64(x), 'g', -1, 32))
}

// snapshot returns the persisted form of d.
func (d *Detector) snapshot() *state {
	st := &state{Version: stateVersion, Config: d.configState()}
	if d.started {
		last := d.last
		st.Last = &last
		st.Window = slices.Clone(d.window)
	}
	for i, h := range d.slots {
		if h == nil || len(h.occ) == 0 {
			continue
		}
		ss := slotState{Slot: i, Occ: make([][]json.Number, len(h.occ))}
		for j, o := range h.occ {
			ss.Occ[j] = []json.Number{num32(o.m), num32(o.s), json.Number(strconv.Itoa(int(o.n))), num32(o.hi), num32(o.lo)}
			if o.rm != o.m || o.rs != o.s || o.side != 0 {
				ss.Occ[j] = append(ss.Occ[j], num32(o.rm), num32(o.rs), json.Number(strconv.Itoa(int(o.side))))
			}
		}
		st.Slots = append(st.Slots, ss)
	}
	if d.run.open {
		st.Run = &runState{Slot: d.run.slot, Last: d.run.last, Raw: slices.Clone(d.run.raw), Capped: slices.Clone(d.run.capped)}
	}
	if d.ring != nil {
		for _, x := range d.ring.ordered() {
			st.Ring = append(st.Ring, num32(float32(x)))
		}
	}
	return st
}

// MarshalJSON returns the detector's configuration (except a custom Slot
// function) and state: at most Seasons summaries per slot, the open
// occurrence of a slot (at most 288 values), the k-of-n window, and with
// relative warm-up bounds the last day of values (at most 1440).
func (d *Detector) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.snapshot())
}

// UnmarshalJSON restores a state written by MarshalJSON. Into a Detector
// made by New, it keeps that detector's configuration and takes the state
// if it is compatible: the same Bucket, Slots and Location (history beyond
// Seasons is dropped, oldest first). Into a zero Detector, it takes the
// saved configuration too, which is refused if it had a custom Slot. Bad
// input is refused with an error and leaves d as it was.
func (d *Detector) UnmarshalJSON(data []byte) error {
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("decoding anomaly detector state: %w", err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("decoding anomaly detector state: version %d is not %d", st.Version, stateVersion)
	}
	target := d
	if d.slots == nil { // a zero Detector
		cfg, err := st.Config.config()
		if err != nil {
			return fmt.Errorf("decoding anomaly detector state: %w", err)
		}
		if target, err = New(cfg); err != nil {
			return fmt.Errorf("decoding anomaly detector state: config: %w", err)
		}
	} else {
		target = &Detector{cfg: d.cfg, custom: d.custom, slots: make([]*history, d.cfg.Slots)}
		if d.cfg.Warmup.relative() {
			target.ring = newSortedRing(ringSize(d.cfg.Bucket))
		}
	}
	if err := target.restore(&st); err != nil {
		return fmt.Errorf("decoding anomaly detector state: %w", err)
	}
	*d = *target
	return nil
}

// restore loads st into d, a fresh detector, checking that it fits d's
// configuration.
func (d *Detector) restore(st *state) error {
	c := st.Config
	switch {
	case c.Bucket != d.cfg.Bucket:
		return fmt.Errorf("the state has buckets of %v, not %v", c.Bucket, d.cfg.Bucket)
	case c.Slots != d.cfg.Slots:
		return fmt.Errorf("the state has %d slots, not %d", c.Slots, d.cfg.Slots)
	case c.Location != d.cfg.Location.String():
		return fmt.Errorf("the state is in location %q, not %q", c.Location, d.cfg.Location)
	}
	if st.Last != nil {
		if *st.Last < minIndex(d.cfg.Bucket) || *st.Last > maxIndex(d.cfg.Bucket) {
			return fmt.Errorf("last bucket %d is out of range", *st.Last)
		}
		d.started, d.last = true, *st.Last
		if len(st.Window) > MaxN || !slices.IsSorted(st.Window) {
			return errors.New("the k-of-n window is not a short sorted list")
		}
		for _, w := range st.Window {
			if w > d.last {
				return fmt.Errorf("the k-of-n window holds bucket %d after the last one", w)
			}
		}
		d.window = d.trim(slices.Compact(slices.Clone(st.Window)), d.last)
	}
	for _, ss := range st.Slots {
		if ss.Slot < 0 || ss.Slot >= d.cfg.Slots {
			return fmt.Errorf("slot %d is out of range", ss.Slot)
		}
		if d.slots[ss.Slot] != nil {
			return fmt.Errorf("slot %d appears twice", ss.Slot)
		}
		if len(ss.Occ) > MaxSeasons {
			return fmt.Errorf("slot %d holds %d occurrences, more than %d", ss.Slot, len(ss.Occ), MaxSeasons)
		}
		h := &history{}
		for _, raw := range ss.Occ[max(0, len(ss.Occ)-d.cfg.Seasons):] {
			o, err := parseOccurrence(raw)
			if err != nil {
				return fmt.Errorf("slot %d: %w", ss.Slot, err)
			}
			h.occ = append(h.occ, o)
		}
		if len(h.occ) > 0 {
			d.slots[ss.Slot] = h
		}
	}
	if r := st.Run; r != nil {
		switch {
		case r.Slot < 0 || r.Slot >= d.cfg.Slots:
			return fmt.Errorf("the open occurrence's slot %d is out of range", r.Slot)
		case len(r.Raw) == 0 || len(r.Raw) > runCap || len(r.Capped) != len(r.Raw):
			return errors.New("the open occurrence holds a bad number of values")
		case !d.started || r.Last > d.last:
			return errors.New("the open occurrence ends after the last observation")
		}
		d.run = run{open: true, slot: r.Slot, last: r.Last, raw: slices.Clone(r.Raw), capped: slices.Clone(r.Capped)}
	}
	if d.ring != nil {
		if len(st.Ring) > maxRing {
			return fmt.Errorf("the last-day ring holds %d values, more than %d", len(st.Ring), maxRing)
		}
		for _, n := range st.Ring[max(0, len(st.Ring)-cap(d.ring.vals)):] {
			x, err := strconv.ParseFloat(string(n), 32)
			if err != nil || !finite(x) {
				return fmt.Errorf("last-day value %q is not a finite number", n)
			}
			d.ring.add(x)
		}
	}
	return nil
}

func minIndex(b time.Duration) int64 { return math.MinInt64/int64(b) + 1 }
func maxIndex(b time.Duration) int64 { return math.MaxInt64/int64(b) - 1 }

func parseOccurrence(raw []json.Number) (occurrence, error) {
	if len(raw) != 5 && len(raw) != 8 {
		return occurrence{}, fmt.Errorf("an occurrence has %d fields, not 5 or 8", len(raw))
	}
	fields := []int{0, 1, 3, 4}
	if len(raw) == 8 {
		fields = append(fields, 5, 6)
	}
	var f [6]float32
	for i, j := range fields {
		x, err := strconv.ParseFloat(string(raw[j]), 32)
		if err != nil || !finite(x) {
			return occurrence{}, fmt.Errorf("occurrence field %q is not a finite number", raw[j])
		}
		f[i] = float32(x)
	}
	o := occurrence{m: f[0], s: f[1], hi: f[2], lo: f[3], rm: f[0], rs: f[1]}
	n, err := strconv.Atoi(string(raw[2]))
	if err != nil || n < 1 || n > runCap {
		return o, fmt.Errorf("occurrence count %q is out of range (1 to %d)", raw[2], runCap)
	}
	o.n = uint16(n)
	if len(raw) == 8 {
		side, err := strconv.Atoi(string(raw[7]))
		if err != nil || side < -1 || side > 1 {
			return o, fmt.Errorf("occurrence side %q is not -1, 0 or 1", raw[7])
		}
		o.rm, o.rs, o.side = f[4], f[5], int8(side)
	}
	if o.s < 0 || o.rs < 0 {
		return o, errors.New("an occurrence has a negative MAD")
	}
	return o, nil
}

// MarshalJSON writes the verdict with null for a number that is NaN or
// infinite (JSON has neither).
func (v Verdict) MarshalJSON() ([]byte, error) {
	num := func(x float64) *float64 {
		if !finite(x) {
			return nil
		}
		return &x
	}
	return json.Marshal(struct {
		Time      time.Time `json:"time"`
		Value     *float64  `json:"value"`
		Expected  *float64  `json:"expected"`
		Lower     *float64  `json:"lower"`
		Upper     *float64  `json:"upper"`
		Score     *float64  `json:"score"`
		Deviates  bool      `json:"deviates"`
		Firing    bool      `json:"firing"`
		WarmingUp bool      `json:"warming_up,omitempty"`
		Ignored   string    `json:"ignored,omitempty"`
	}{v.Time, num(v.Value), num(v.Expected), num(v.Lower), num(v.Upper), num(v.Score), v.Deviates, v.Firing, v.WarmingUp, v.Ignored})
}
