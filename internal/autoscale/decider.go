package autoscale

import (
	"math"
	"time"

	"noops/internal/spec"
)

// PanicThreshold is how many times the replicas that run the panic
// window's load must ask for before the decider panics (Knative's 200%).
const PanicThreshold = 2.0

// MaxScaleDown is the most the replica count may fall in one decision:
// to half of what runs (Knative's max-scale-down-rate of 2).
const MaxScaleDown = 2.0

// sample is one second's average concurrency of an app.
type sample struct {
	at          time.Time
	concurrency float64
}

// Decider is Knative's KPA for one app, fed one sample a second: the
// desired replica count is the average concurrency over the stable window
// divided by the target; when the panic window's average asks for
// PanicThreshold times the replicas that are ready, it panics and from
// then on only scales up, until a whole stable window has passed without
// such a burst. It never goes below Min nor above Max, and reaches zero
// only when Min is 0, no request arrived for Idle and the last replica
// has run for Retain. It is not safe for concurrent use.
type Decider struct {
	cfg        spec.Scale
	samples    []sample // the stable window's, oldest first
	panicking  bool
	panicSince time.Time // last time the panic window asked for a panic
	panicMax   int       // the highest count decided while panicking
	lastActive time.Time // last sample with a request, or the decider's start
}

// NewDecider returns a decider for cfg (defaults applied) that counts the
// app as active at now, so a new app is not scaled to zero before Idle.
func NewDecider(cfg spec.Scale, now time.Time) *Decider {
	return &Decider{cfg: cfg, lastActive: now}
}

// Config returns the scale section the decider follows.
func (d *Decider) Config() spec.Scale { return d.cfg }

// SetConfig changes the scale section (a new release changed it); the
// windows' samples are kept.
func (d *Decider) SetConfig(cfg spec.Scale) { d.cfg = cfg }

// Observe records one second of the app's load: the average number of
// requests in flight over it (held ones included) and whether any request
// arrived in it.
func (d *Decider) Observe(now time.Time, concurrency float64, active bool) {
	if active || concurrency > 0 {
		d.lastActive = now
	}
	d.samples = append(d.samples, sample{at: now, concurrency: concurrency})
	cut := now.Add(-time.Duration(d.cfg.Window))
	i := 0
	for i < len(d.samples) && !d.samples[i].at.After(cut) {
		i++
	}
	d.samples = d.samples[i:]
}

// average is the mean concurrency of the samples newer than now-window.
func (d *Decider) average(now time.Time, window time.Duration) float64 {
	cut := now.Add(-window)
	var sum float64
	n := 0
	for i := len(d.samples) - 1; i >= 0 && d.samples[i].at.After(cut); i-- {
		sum += d.samples[i].concurrency
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// Decision is what Decide concluded, with why, for logs and `noops ps`.
type Decision struct {
	Replicas int
	Stable   float64 // average concurrency over the stable window
	Panic    float64 // over the panic window
	Panicked bool
}

// Decide returns the replica count the app should have now. ready is how
// many replicas serve; started is when the newest of them started (zero
// when none runs).
func (d *Decider) Decide(now time.Time, ready int, started time.Time) Decision {
	window := time.Duration(d.cfg.Window)
	stable, panicAvg := d.average(now, window), d.average(now, window/10)
	target := float64(d.cfg.Concurrency)
	want := int(math.Ceil(stable / target))
	panicWant := int(math.Ceil(panicAvg / target))

	if ready > 0 && float64(panicWant) >= PanicThreshold*float64(ready) {
		if !d.panicking {
			d.panicking, d.panicMax = true, ready
		}
		d.panicSince = now
	} else if d.panicking && now.Sub(d.panicSince) >= window {
		d.panicking, d.panicMax = false, 0
	}
	switch {
	case d.panicking:
		// Panic: follow the short window up, never down.
		want = max(want, panicWant, d.panicMax)
		d.panicMax = want
	case ready == 0:
		// A cold start: as many as the requests waiting ask for.
		want = max(want, panicWant)
	default:
		// Down by at most half of what runs per decision, and to zero
		// only when idle.
		want = max(want, int(math.Ceil(float64(ready)/MaxScaleDown)), 1)
		if want == 1 && d.cfg.Min == 0 && panicAvg == 0 && d.idle(now, started) {
			want = 0
		}
	}
	want = min(max(want, d.cfg.Min), d.cfg.Max)
	return Decision{Replicas: want, Stable: stable, Panic: panicAvg, Panicked: d.panicking}
}

// idle reports whether an app at Min 0 may go to zero: no request for
// Idle, and the newest replica has run for Retain.
func (d *Decider) idle(now, started time.Time) bool {
	if now.Sub(d.lastActive) < time.Duration(d.cfg.Idle) {
		return false
	}
	return started.IsZero() || now.Sub(started) >= time.Duration(d.cfg.Retain)
}
