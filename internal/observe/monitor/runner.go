package monitor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"sync"
	"time"

	"noops/internal/errkind"
)

// Config configures a Runner. Zero values take the defaults.
type Config struct {
	Now func() time.Time // default time.Now
	// Resolver resolves target names (nil: net.DefaultResolver). It is not
	// used when Dial is set.
	Resolver *net.Resolver
	// Dial opens the connections of checks (nil: a net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// RootCAs verifies the certificates of https and tls targets (nil: the
	// system's roots). The lead adds the internal CA here for DefaultForApp.
	RootCAs *x509.CertPool
	// OnChange is called on every change of a monitor's State, without
	// holding the Runner's locks, so it may call List, Get or Push. The
	// calls for one monitor come in order; those of different monitors
	// may come concurrently. st.PushToken is always empty here.
	OnChange func(st Status, from State)
	Logger   *slog.Logger
	// StatePath, if set, is a JSON file that keeps states, history and
	// push tokens across restarts; it is written atomically, mode 0600.
	StatePath string
	// FlapWindow (default 20) and FlapChanges (default 4) tune flapping: a
	// monitor whose up/down state changed FlapChanges times within its
	// last FlapWindow results is Flapping until at most FlapChanges/2
	// changes remain within them.
	FlapWindow  int
	FlapChanges int
	// SaveEvery is how often changed state is written to StatePath
	// (default 10s); Set and Stop write at once.
	SaveEvery time.Duration
}

// Runner runs a set of monitors. Its methods are safe for concurrent use.
type Runner struct {
	cfg  Config
	log  *slog.Logger
	flap flapConfig

	setMu  sync.Mutex // serializes Set
	saveMu sync.Mutex // serializes writes of StatePath

	mu       sync.Mutex // guards what follows and every monitor's mutable fields
	mons     map[string]*monitor
	restored map[string]*savedMonitor // loaded from StatePath, not yet claimed by Set
	started  bool
	stopped  bool
	run      context.Context
	cancel   context.CancelFunc
	dirty    bool
	saveErr  bool // the last save failed (it was logged)
	wg       sync.WaitGroup
}

// monitor is one monitor of the current set.
type monitor struct {
	spec  Spec
	c     *compiled
	p     *prober // nil for push
	t     *tracker
	token string // push only

	checking sync.Mutex // serializes the checks of a probing monitor

	// Guarded by Runner.mu.
	lastPush   time.Time // the last push, zero if none is known
	watchFrom  time.Time // when this process began expecting pushes
	due        time.Time // push: a missing push is a failure from then on
	wake       chan struct{}
	cancel     context.CancelFunc // its loop, while running
	outbox     []change
	delivering bool
}

// change is a state change waiting for OnChange.
type change struct {
	st   Status
	from State
}

// New returns a Runner with no monitors. With cfg.StatePath set it loads
// the saved states; Set gives them back to the monitors with the same
// name, kind, target and host.
func New(cfg Config) (*Runner, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FlapWindow <= 0 {
		cfg.FlapWindow = defaultFlapWin
	}
	if cfg.FlapChanges <= 0 {
		cfg.FlapChanges = defaultFlapMin
	}
	if cfg.FlapChanges >= cfg.FlapWindow {
		return nil, errkind.Errorf(errkind.Invalid, "configuring monitors: flap changes %d must be below the flap window %d", cfg.FlapChanges, cfg.FlapWindow)
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = 10 * time.Second
	}
	r := &Runner{
		cfg:  cfg,
		log:  cfg.Logger,
		flap: flapConfig{Window: cfg.FlapWindow, Changes: cfg.FlapChanges},
		mons: map[string]*monitor{},
	}
	if cfg.StatePath != "" {
		saved, err := loadState(cfg.StatePath, r.log)
		if err != nil {
			return nil, err
		}
		r.restored = saved
	}
	return r, nil
}

// Set replaces the whole set of monitors, or changes nothing and returns
// an errkind.Invalid error when a spec is invalid or two share a name. A
// monitor whose name, kind, target and host are unchanged keeps its
// state, history and push token; its other fields take effect from its
// next check. Removed monitors stop.
func (r *Runner) Set(specs []Spec) error {
	type entry struct {
		spec Spec
		c    *compiled
	}
	var errs []error
	entries := make([]entry, 0, len(specs))
	names := map[string]bool{}
	for _, s := range specs {
		n, c, err := s.normalize()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if names[n.Name] {
			errs = append(errs, fmt.Errorf("monitor %q: defined twice", n.Name))
			continue
		}
		names[n.Name] = true
		entries = append(entries, entry{n, c})
	}
	if len(errs) > 0 {
		return errkind.E(errkind.Invalid, fmt.Errorf("setting monitors: %w", errors.Join(errs...)))
	}
	r.setMu.Lock()
	defer r.setMu.Unlock()
	r.mu.Lock()
	now := r.cfg.Now()
	next := make(map[string]*monitor, len(entries))
	for _, e := range entries {
		old := r.mons[e.spec.Name]
		switch {
		case old != nil && specEqual(old.spec, e.spec):
			next[e.spec.Name] = old
		case old != nil && sameTarget(old.spec, e.spec):
			m := r.newMonitor(e.spec, e.c, old.t, old.token, now)
			m.lastPush, m.watchFrom, m.due = old.lastPush, old.watchFrom, old.due
			if e.spec.Kind == Push && old.spec.Interval+old.spec.Grace != e.spec.Interval+e.spec.Grace {
				m.due = m.watchFrom.Add(e.spec.Interval + e.spec.Grace)
				if !m.lastPush.Before(m.watchFrom) {
					m.due = m.lastPush.Add(e.spec.Interval + e.spec.Grace)
				}
			}
			next[e.spec.Name] = m
		default:
			t, tok, last := newTracker(now), "", time.Time{}
			if sv := r.restored[e.spec.Name]; sv != nil && sv.matches(e.spec) {
				t, tok, last = sv.tracker(r.flap), sv.Token, sv.LastPush
				delete(r.restored, e.spec.Name)
			}
			if e.spec.Kind == Push && tok == "" {
				tok = newToken()
			}
			m := r.newMonitor(e.spec, e.c, t, tok, now)
			m.lastPush = last
			next[e.spec.Name] = m
		}
	}
	for name, old := range r.mons {
		if next[name] != old {
			r.stopLocked(old)
		}
	}
	r.mons = next
	if r.started && !r.stopped {
		for _, m := range next {
			if m.cancel == nil {
				r.startLocked(m)
			}
		}
	}
	r.dirty = true
	r.mu.Unlock()
	if r.cfg.StatePath != "" {
		r.save() // push tokens are durable before Set returns
	}
	return nil
}

func (r *Runner) newMonitor(s Spec, c *compiled, t *tracker, token string, now time.Time) *monitor {
	m := &monitor{spec: s, c: c, t: t, token: token, watchFrom: now, wake: make(chan struct{}, 1)}
	if s.Kind == Push {
		m.due = now.Add(s.Interval + s.Grace)
	} else {
		m.p = newProber(s, c, &r.cfg)
	}
	return m
}

// specEqual reports whether two normalized specs are the same.
func specEqual(a, b Spec) bool {
	if !maps.Equal(a.Headers, b.Headers) || !slices.Equal(a.Status, b.Status) {
		return false
	}
	a.Headers, b.Headers, a.Status, b.Status = nil, nil, nil, nil
	return reflect.DeepEqual(a, b)
}

// sameTarget reports whether two specs watch the same thing, so that
// history carries over.
func sameTarget(a, b Spec) bool {
	return a.Kind == b.Kind && a.Target == b.Target && a.Host == b.Host
}

// Start runs every monitor on its schedule, each first checked within
// min(Interval, 5s) of Start. It returns at once; the monitors run until
// Stop, not until ctx ends.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return errors.New("starting monitors: already started")
	}
	r.started = true
	r.run, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, m := range r.mons {
		r.startLocked(m)
	}
	if r.cfg.StatePath != "" {
		r.wg.Add(1)
		go r.saveLoop(r.run)
	}
	return nil
}

// Stop ends every monitor, cutting short the checks in flight (their
// results are dropped), and writes StatePath. When ctx ends first it
// still writes and returns ctx's error.
func (r *Runner) Stop(ctx context.Context) error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	if r.cancel != nil {
		r.cancel()
	}
	for _, m := range r.mons {
		m.cancel = nil
	}
	r.mu.Unlock()
	var errs []error
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("waiting for monitors to stop: %w", ctx.Err()))
	}
	if r.cfg.StatePath != "" {
		errs = append(errs, r.save())
	}
	return errors.Join(errs...)
}

func (r *Runner) startLocked(m *monitor) {
	ctx, cancel := context.WithCancel(r.run)
	m.cancel = cancel
	r.wg.Add(1)
	if m.spec.Kind == Push {
		go r.pushLoop(ctx, m)
	} else {
		go r.probeLoop(ctx, m)
	}
}

func (r *Runner) stopLocked(m *monitor) {
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
	if m.p != nil {
		m.p.close()
	}
}

// probeLoop checks an http, tcp or tls monitor on its schedule.
func (r *Runner) probeLoop(ctx context.Context, m *monitor) {
	defer r.wg.Done()
	timer := time.NewTimer(randDuration(min(m.spec.Interval, 5*time.Second)))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		next := m.spec.Interval
		if _, retry, ok := r.probe(ctx, m); ok && retry {
			next = m.spec.RetryInterval
		}
		timer.Reset(jitter(next))
	}
}

// probe runs one check of m and records it. It reports whether the next
// check should come sooner to confirm a failure, and false when the check
// was cut short because m stopped.
func (r *Runner) probe(ctx context.Context, m *monitor) (res Result, retry, ok bool) {
	m.checking.Lock()
	res = m.p.check(ctx)
	if ctx.Err() != nil {
		m.checking.Unlock()
		return res, false, false
	}
	r.mu.Lock()
	recorded := r.recordLocked(m, res)
	retry = !res.OK && m.t.fails < m.spec.FailAfter
	r.mu.Unlock()
	m.checking.Unlock()
	if recorded {
		r.flush(m)
	}
	return res, retry, true
}

// recordLocked adds res to m's history when m is still current, and
// queues the state change it caused for OnChange.
func (r *Runner) recordLocked(m *monitor, res Result) bool {
	if r.mons[m.spec.Name] != m {
		return false
	}
	from, changed := m.t.record(res, m.spec.FailAfter, m.spec.SuccessAfter, r.flap)
	r.dirty = true
	if changed {
		st := r.statusLocked(m)
		r.log.Info("monitor changed state", "monitor", m.spec.Name, "from", string(from), "to", string(st.State), "error", st.Last.Error)
		if r.cfg.OnChange != nil {
			st.PushToken = ""
			m.outbox = appendBounded(m.outbox, change{st, from}, 64)
		}
	}
	return true
}

// flush delivers m's queued changes to OnChange, outside r.mu. Whoever
// finds no delivery in progress delivers, so that the calls for one
// monitor stay in order even when OnChange calls back into the Runner.
func (r *Runner) flush(m *monitor) {
	r.mu.Lock()
	if m.delivering || len(m.outbox) == 0 {
		r.mu.Unlock()
		return
	}
	m.delivering = true
	defer func() {
		r.mu.Lock()
		m.delivering = false
		r.mu.Unlock()
	}()
	for len(m.outbox) > 0 {
		c := m.outbox[0]
		m.outbox = m.outbox[1:]
		r.mu.Unlock()
		r.cfg.OnChange(c.st, c.from)
		r.mu.Lock()
	}
	r.mu.Unlock()
}

// statusLocked returns m's status, with copies of its slices and maps.
func (r *Runner) statusLocked(m *monitor) Status {
	st := m.t.status(r.cfg.Now())
	st.Spec = m.spec
	st.Spec.Headers = maps.Clone(m.spec.Headers)
	st.Spec.Status = slices.Clone(m.spec.Status)
	st.PushToken = m.token
	return st
}

// List returns the status of every monitor, sorted by name.
func (r *Runner) List() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.mons))
	for _, name := range slices.Sorted(maps.Keys(r.mons)) {
		out = append(out, r.statusLocked(r.mons[name]))
	}
	return out
}

// Get returns the status of the monitor named name.
func (r *Runner) Get(name string) (Status, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.mons[name]
	if !ok {
		return Status{}, false
	}
	return r.statusLocked(m), true
}

// CheckNow runs one check of the monitor named name at once and records
// it. For a push monitor it records a failure when the push is overdue,
// and otherwise returns a passing result without recording it: a push
// monitor's history is its pushes and its missed deadlines.
func (r *Runner) CheckNow(ctx context.Context, name string) (Result, error) {
	r.mu.Lock()
	m, ok := r.mons[name]
	r.mu.Unlock()
	if !ok {
		return Result{}, errkind.Errorf(errkind.NotFound, "checking monitor %q: no such monitor", clip(name, maxNameLen))
	}
	if m.spec.Kind == Push {
		res, _ := r.checkPush(m)
		return res, nil
	}
	res, _, ok := r.probe(ctx, m)
	if !ok {
		return res, fmt.Errorf("checking monitor %q: %w", name, context.Cause(ctx))
	}
	return res, nil
}

// randDuration returns a random duration in [0, d).
func randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// jitter spreads d by ±5% so that monitors started together drift apart.
func jitter(d time.Duration) time.Duration {
	spread := d / 10
	if spread <= 0 {
		return d
	}
	return d - spread/2 + randDuration(spread)
}
