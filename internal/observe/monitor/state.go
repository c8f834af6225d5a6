package monitor

import (
	"time"
)

// State is what a monitor concluded from its recent results.
type State string

// The states.
const (
	Pending  State = "pending"  // no conclusion yet
	Up       State = "up"       // the last results passed
	Down     State = "down"     // FailAfter consecutive results failed
	Flapping State = "flapping" // up and down too often of late
)

// Result is the outcome of one check or push.
type Result struct {
	Time    time.Time
	OK      bool
	Latency time.Duration
	Error   string // why the check failed; "" when OK
	Detail  string // what was seen, e.g. "status 503", "certificate expires in 3 days"
}

// Status is a monitor's spec (with its defaults filled in), state and
// history.
type Status struct {
	Spec      Spec
	State     State
	Since     time.Time // when the current state began
	LastCheck time.Time // zero before the first result
	Last      Result
	// Uptime holds the ratio of passing results over "24h" and "7d"; a
	// window with no result has no key.
	Uptime map[string]float64
	Recent []Result // the latest results, oldest first (at most RecentSize)
	// Changes counts the up/down changes within the flapping window.
	Changes int
	// PushToken is the secret a push must carry (push monitors only).
	PushToken string
}

// Sizes of the kept history.
const (
	RecentSize     = 100 // results in Status.Recent
	maxMessage     = 512 // bytes of a Result's Error or Detail
	defaultFlapWin = 20
	defaultFlapMin = 4
)

// bucket counts the results of one minute or hour starting at Start (Unix
// seconds).
type bucket struct {
	Start int64
	OK    uint32
	Total uint32
}

// tracker holds one monitor's state and bounded history. It does no I/O
// and reads no clock: the caller passes results, which carry their time.
type tracker struct {
	state   State // visible: base, or Flapping
	since   time.Time
	base    State // pending, up or down, by the thresholds alone
	fails   int   // consecutive failed results
	oks     int   // consecutive passing results
	last    Result
	hasLast bool
	recent  []Result // oldest first, at most RecentSize
	window  []State  // base after each of the last flapWindow results
	flap    bool
	minutes []bucket // per minute, the last 24h, oldest first
	hours   []bucket // per hour, the last 7d, oldest first
}

func newTracker(now time.Time) *tracker {
	return &tracker{state: Pending, base: Pending, since: now}
}

// flapConfig is the flapping detector: the state is Flapping once the
// up/down state changed at least Changes times within the last Window
// results, and until it has changed at most Changes/2 times within them.
type flapConfig struct {
	Window  int
	Changes int
}

// record adds a result and reports the visible state before it when the
// result changed it.
func (t *tracker) record(res Result, failAfter, successAfter int, fc flapConfig) (from State, changed bool) {
	res.Error = clipMessage(res.Error)
	res.Detail = clipMessage(res.Detail)
	if res.OK {
		t.oks, t.fails = t.oks+1, 0
	} else {
		t.fails, t.oks = t.fails+1, 0
	}
	switch {
	case !res.OK && t.fails >= failAfter:
		t.base = Down
	case res.OK && (t.base == Pending || t.oks >= successAfter):
		t.base = Up
	}
	t.last, t.hasLast = res, true
	t.recent = appendBounded(t.recent, res, RecentSize)
	t.count(res)

	t.window = appendBounded(t.window, t.base, fc.Window)
	n := t.changes()
	switch {
	case !t.flap && n >= fc.Changes:
		t.flap = true
	case t.flap && n <= fc.Changes/2:
		t.flap = false
	}
	vis := t.base
	if t.flap {
		vis = Flapping
	}
	if vis == t.state {
		return "", false
	}
	from = t.state
	t.state, t.since = vis, res.Time
	return from, true
}

// changes counts the up/down changes in the flapping window.
func (t *tracker) changes() int {
	n := 0
	prev := Pending
	for _, s := range t.window {
		if s != Pending && prev != Pending && s != prev {
			n++
		}
		if s != Pending {
			prev = s
		}
	}
	return n
}

// count adds res to its minute and hour buckets and forgets buckets that
// left their window.
func (t *tracker) count(res Result) {
	sec := res.Time.Unix()
	t.minutes = addBucket(t.minutes, sec, 60, 24*3600, res.OK)
	t.hours = addBucket(t.hours, sec, 3600, 7*24*3600, res.OK)
}

// addBucket counts one result at sec in its bucket of span seconds, and
// drops the buckets that ended more than window before sec. A result
// older than the newest bucket (a clock stepping back) counts in the
// newest, so that buckets stay in order and at most window/span+1.
func addBucket(bs []bucket, sec, span, window int64, ok bool) []bucket {
	start := sec - sec%span
	if n := len(bs); n == 0 || bs[n-1].Start < start {
		bs = append(bs, bucket{Start: start})
	}
	b := &bs[len(bs)-1]
	b.Total++
	if ok {
		b.OK++
	}
	drop := 0
	for drop < len(bs)-1 && bs[drop].Start+span <= sec-window {
		drop++
	}
	if over := len(bs) - drop - int(window/span+1); over > 0 {
		drop += over
	}
	if drop > 0 {
		bs = append(bs[:0], bs[drop:]...)
	}
	return bs
}

// uptime returns the ratios over 24h (from minute buckets) and 7d (from
// hour buckets) before now.
func (t *tracker) uptime(now time.Time) map[string]float64 {
	sec := now.Unix()
	out := map[string]float64{}
	if r, ok := ratio(t.minutes, sec-24*3600-60); ok {
		out["24h"] = r
	}
	if r, ok := ratio(t.hours, sec-7*24*3600-3600); ok {
		out["7d"] = r
	}
	return out
}

// ratio is OK/Total of the buckets that start after from (the caller
// passes the window's start less one span: buckets that overlap it count).
func ratio(bs []bucket, from int64) (float64, bool) {
	var ok, total uint64
	for _, b := range bs {
		if b.Start > from {
			ok += uint64(b.OK)
			total += uint64(b.Total)
		}
	}
	if total == 0 {
		return 0, false
	}
	return float64(ok) / float64(total), true
}

// status fills the state and history parts of a Status.
func (t *tracker) status(now time.Time) Status {
	st := Status{
		State:   t.state,
		Since:   t.since,
		Uptime:  t.uptime(now),
		Recent:  append([]Result(nil), t.recent...),
		Changes: t.changes(),
	}
	if t.hasLast {
		st.Last, st.LastCheck = t.last, t.last.Time
	}
	return st
}

// appendBounded appends v and keeps the last limit elements. Dropping
// from the front reslices, so that appending stays amortized O(1) and the
// backing array stays within about twice limit.
func appendBounded[T any](s []T, v T, limit int) []T {
	s = append(s, v)
	if limit < 1 {
		limit = 1
	}
	if len(s) > limit {
		s = s[len(s)-limit:]
	}
	return s
}

// clipMessage bounds a result's text and keeps it to one printable line.
func clipMessage(s string) string {
	if len(s) > maxMessage {
		s = s[:maxMessage] + "…"
	}
	clean := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]rune, 0, len(s))
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			r = ' '
		}
		b = append(b, r)
	}
	return string(b)
}
