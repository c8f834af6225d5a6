// Package autoscale sets the web replica count of every app whose manifest
// has a run.scale section, from the load the gateway sees: Knative's KPA
// (a stable and a panic window over the requests in flight) measured ten
// times a second and decided once a second, on one node. It scales an app
// with scale.min 0 to zero after its idle time, and from zero at once when
// the gateway holds a request for it (Wake).
package autoscale

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"noops/internal/spec"
)

// Gateway is the load of the apps as the gateway sees it, and where the
// autoscaler says which apps scale from zero.
type Gateway interface {
	// Load returns the app's requests in flight now, held ones included,
	// and how many requests for it have arrived since the gateway started.
	Load(app string) (inflight int64, arrived uint64)
	// SetColdStart makes the gateway hold the app's requests while it has
	// no replica, and wake it (true), or answer them 503 (false).
	SetColdStart(app string, on bool)
}

// Scaler runs the replicas.
type Scaler interface {
	// Replicas returns the app's desired web replica count, how many of
	// its web replicas serve, and when the newest of those started.
	Replicas(app string) (desired, ready int, newest time.Time)
	// Autoscale sets the app's web replica count and brings its sandboxes
	// to it. With wait false it returns (false, nil) at once when a
	// deploy, rollback or scale holds the app.
	Autoscale(ctx context.Context, app string, n int, wait bool) (bool, error)
}

// Apps says which apps scale with the load.
type Apps interface {
	// Scaled returns the scale section (defaults applied) of every app
	// whose live release has one.
	Scaled(ctx context.Context) (map[string]spec.Scale, error)
}

// Config wires an Autoscaler.
type Config struct {
	Gateway Gateway
	Scaler  Scaler
	Apps    Apps
	// Tick is how often it decides (default 1s); it samples the load ten
	// times per tick.
	Tick   time.Duration
	Logger *slog.Logger
	Now    func() time.Time
}

// Autoscaler decides and applies replica counts; see the package doc.
type Autoscaler struct {
	cfg  Config
	log  *slog.Logger
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu   sync.Mutex
	apps map[string]*appScaler
}

// appScaler is the autoscaler's state of one app.
type appScaler struct {
	dec     *Decider
	sum     float64 // in-flight samples of the current tick
	n       int
	arrived uint64 // the gateway's count at the last decision
	last    Decision
	busy    atomic.Bool // a scale of this app runs
	wake    atomic.Bool // a cold start came while busy: wake after it
}

// New returns an autoscaler; Start runs it.
func New(cfg Config) *Autoscaler {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Autoscaler{cfg: cfg, log: cfg.Logger, apps: map[string]*appScaler{}}
}

// Start begins sampling and deciding in the background.
func (a *Autoscaler) Start(ctx context.Context) error {
	a.ctx, a.stop = context.WithCancel(context.WithoutCancel(ctx))
	if err := a.refresh(ctx); err != nil {
		return fmt.Errorf("starting the autoscaler: %w", err)
	}
	a.wg.Add(1)
	go a.run()
	return nil
}

// Stop ends the loop and waits for the scales it started.
func (a *Autoscaler) Stop(ctx context.Context) error {
	if a.stop == nil {
		return nil
	}
	a.stop()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping the autoscaler: %w", ctx.Err())
	}
}

func (a *Autoscaler) run() {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.Tick / 10)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		a.sampleAll()
		if i%10 != 0 {
			continue
		}
		if err := a.refresh(a.ctx); err != nil && a.ctx.Err() == nil {
			a.log.Warn("autoscaler: listing scaled apps", "err", err)
		}
		a.decideAll()
	}
}

// sampleAll adds the in-flight count of every scaled app to its tick.
func (a *Autoscaler) sampleAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, s := range a.apps {
		inflight, _ := a.cfg.Gateway.Load(name)
		s.sum += float64(inflight)
		s.n++
	}
}

// refresh follows the apps' scale sections: new apps get a decider (and
// cold starts when their min is 0), removed ones lose it.
func (a *Autoscaler) refresh(ctx context.Context) error {
	scaled, err := a.cfg.Apps.Scaled(ctx)
	if err != nil {
		return err
	}
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for name, cfg := range scaled {
		s := a.apps[name]
		if s == nil {
			_, arrived := a.cfg.Gateway.Load(name)
			s = &appScaler{dec: NewDecider(cfg, now), arrived: arrived}
			a.apps[name] = s
		} else if s.dec.Config() != cfg {
			s.dec.SetConfig(cfg)
		} else {
			continue
		}
		a.cfg.Gateway.SetColdStart(name, cfg.Min == 0)
	}
	for name := range a.apps {
		if _, ok := scaled[name]; !ok {
			delete(a.apps, name)
			a.cfg.Gateway.SetColdStart(name, false)
		}
	}
	return nil
}

// decideAll closes the tick of every app and applies what changed.
func (a *Autoscaler) decideAll() {
	now := a.cfg.Now()
	a.mu.Lock()
	names := make([]string, 0, len(a.apps))
	for name := range a.apps {
		names = append(names, name)
	}
	sort.Strings(names)
	type change struct {
		app  string
		s    *appScaler
		n    int
		from int
		d    Decision
	}
	var changes []change
	for _, name := range names {
		s := a.apps[name]
		avg := 0.0
		if s.n > 0 {
			avg = s.sum / float64(s.n)
		}
		s.sum, s.n = 0, 0
		_, arrived := a.cfg.Gateway.Load(name)
		s.dec.Observe(now, avg, arrived != s.arrived)
		s.arrived = arrived
		desired, ready, newest := a.cfg.Scaler.Replicas(name)
		d := s.dec.Decide(now, ready, newest)
		s.last = d
		if d.Replicas != desired && !s.busy.Load() {
			changes = append(changes, change{name, s, d.Replicas, desired, d})
		}
	}
	a.mu.Unlock()
	for _, c := range changes {
		a.apply(c.app, c.s, c.n, false, "autoscaler",
			"from", c.from, "to", c.n, "stable", round(c.d.Stable), "panic", round(c.d.Panic), "panicking", c.d.Panicked)
	}
}

// Wake scales an app at zero to one replica now: the gateway holds a
// request for it. It returns at once; a wake of an app that is being
// scaled, or that the autoscaler does not manage, does nothing.
func (a *Autoscaler) Wake(app string) {
	a.mu.Lock()
	s := a.apps[app]
	a.mu.Unlock()
	if s == nil || a.ctx == nil {
		return
	}
	if s.busy.Load() {
		s.wake.Store(true) // apply looks again when the running scale ends
		return
	}
	if desired, _, _ := a.cfg.Scaler.Replicas(app); desired > 0 {
		return // replicas are on their way (or a deploy brings them)
	}
	a.apply(app, s, 1, true, "cold start", "from", 0, "to", 1)
}

// apply runs one scale of app in the background, one at a time per app.
func (a *Autoscaler) apply(app string, s *appScaler, n int, wait bool, why string, attrs ...any) {
	if !s.busy.CompareAndSwap(false, true) {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		for {
			done, err := a.cfg.Scaler.Autoscale(a.ctx, app, n, wait)
			switch {
			case err != nil && a.ctx.Err() == nil:
				a.log.Warn(why+": scaling failed", append([]any{"app", app, "err", err}, attrs...)...)
			case done:
				a.log.Info(why+": scaled", append([]any{"app", app}, attrs...)...)
			}
			// A cold start that came during a scale (to zero, say) is
			// served by one more, unless replicas are there.
			if !s.wake.Swap(false) || a.ctx.Err() != nil {
				break
			}
			if desired, _, _ := a.cfg.Scaler.Replicas(app); desired > 0 {
				break
			}
			n, wait, why, attrs = 1, true, "cold start", []any{"from", 0, "to", 1}
		}
		s.busy.Store(false)
		if s.wake.Swap(false) { // came between the last look and now
			a.Wake(app)
		}
	}()
}

// Status is the autoscaler's view of one app, for `noops ps`.
type Status struct {
	Scale    spec.Scale
	Stable   float64 // average requests in flight over the stable window
	Panic    float64 // over the panic window
	Panicked bool
	Wanted   int // the last decision
}

// Status returns the autoscaler's view of app; ok is false when it does
// not scale it.
func (a *Autoscaler) Status(app string) (Status, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.apps[app]
	if s == nil {
		return Status{}, false
	}
	return Status{Scale: s.dec.Config(), Stable: s.last.Stable, Panic: s.last.Panic, Panicked: s.last.Panicked, Wanted: s.last.Replicas}, true
}

func round(f float64) float64 { return float64(int(f*100+0.5)) / 100 }
