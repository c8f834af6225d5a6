// Package supervisor keeps each app's sandboxes running as the store says
// they should: it runs a release's release command before anything else of
// it, rolls releases out replica by replica behind health checks, runs
// their workers unrouted, restarts sandboxes that exit with exponential
// backoff, scales, drains, and on start re-adopts the sandboxes that
// outlived a previous server.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/gateway"
	"noops/internal/netns"
	"noops/internal/runtime"
	"noops/internal/store"
)

// Network gives sandboxes their own network namespace.
type Network interface {
	// Create makes the sandbox's empty namespace and returns its path;
	// Attach then connects it to the bridge (on failure it removes it).
	Create(id string) (string, error)
	Attach(ctx context.Context, id string) (netns.Attachment, error)
	Teardown(ctx context.Context, id string) error
}

// Images turns a release's image into what a sandbox needs.
type Images interface {
	Get(d v1.Hash) (v1.Image, error)
	Unpack(ctx context.Context, d v1.Hash) ([]string, error)
}

// Router is the gateway's route table as the supervisor drives it.
type Router interface {
	SetBackends(app string, backends []gateway.Backend, reason string)
	RemoveApp(app string)
	Drain(ctx context.Context, backendID string) error
}

// Guard is the gateway's access layer as the supervisor drives it: the
// access section of the release that serves is the one that applies.
type Guard interface {
	SetRelease(rel store.Release) error
	RemoveApp(app string)
}

// Runner runs a sandbox in the foreground to completion, its output going
// to the writers while it runs: a release's release command.
// (*runc.Driver).Run is one.
type Runner interface {
	Run(ctx context.Context, spec runtime.Spec, stdout, stderr io.Writer) (runtime.Exit, error)
}

// Config tunes the supervisor. Zero values take the defaults.
type Config struct {
	LogDir        string        // per-app sandbox log files: LogDir/<app>/<sandbox>.log
	StartTimeout  time.Duration // a new sandbox must pass its health check within this (default 30s)
	StopGrace     time.Duration // SIGTERM to SIGKILL (default 10s)
	DrainTimeout  time.Duration // wait for in-flight requests before stopping (default 30s)
	BackoffMin    time.Duration // first restart delay (default 1s)
	BackoffMax    time.Duration // longest restart delay (default 5m)
	CheckInterval time.Duration // health check of a running sandbox (default 5s)
	// WorkerSettle is how long a worker must stay up after its start to
	// count as ready (default 1s): a worker has no health check.
	WorkerSettle time.Duration
	// ReleaseTimeout bounds a release command; it is killed after it
	// (default 10m).
	ReleaseTimeout time.Duration
	// Runner runs release commands. Without one, a release whose image
	// has a release process fails to roll out.
	Runner Runner
	// Guard applies a release's access policy to its app's requests (the
	// access layer); nil leaves access to the gateway's default.
	Guard Guard
	// Identities gives each sandbox an SVID; Firewall confines its
	// traffic. Either may be nil (tests of the supervisor alone).
	Identities Identities
	Firewall   Firewall
	// Env is added to every sandbox's environment (where the gateway's
	// internal listener is, say).
	Env    []string
	Logger *slog.Logger
	Now    func() time.Time
}

func (c *Config) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.StartTimeout, 30*time.Second)
	set(&c.StopGrace, 10*time.Second)
	set(&c.DrainTimeout, 30*time.Second)
	set(&c.BackoffMin, time.Second)
	set(&c.BackoffMax, 5*time.Minute)
	set(&c.CheckInterval, 5*time.Second)
	set(&c.WorkerSettle, time.Second)
	set(&c.ReleaseTimeout, 10*time.Minute)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Supervisor runs the apps' sandboxes.
type Supervisor struct {
	cfg    Config
	store  store.Store
	driver runtime.Driver
	net    Network
	images Images
	router Router
	log    *slog.Logger

	ctx    context.Context // lives from Start to Stop; instances run under it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	apps map[string]*appState

	scaledMu sync.Mutex
	scaled   map[string]scaledRelease // Scaled's cache, by app

	// stoppingAll is set by StopAll: no sandbox starts any more (the
	// autoscaler and the event bus, still running, would wake apps).
	stoppingAll atomic.Bool
}

// appState is what the supervisor runs for one app.
type appState struct {
	name     string
	rollout  sync.Mutex     // one rollout, scale or stop at a time
	retiring sync.WaitGroup // replicas being drained in the background
	insts    map[string]*instance
	noWeb    bool // the live release's image has no web process (under Supervisor.mu)
	// standby is made ahead for the next cold start while the app is at
	// zero; preparing is set while one is made (both under Supervisor.mu).
	standby   *standby
	preparing bool
	stopped   bool // StopApp ran since the last reconcile: a standby being made is not kept
}

// New returns a supervisor; Start adopts what is running and begins work.
func New(cfg Config, st store.Store, d runtime.Driver, n Network, im Images, r Router) *Supervisor {
	cfg.defaults()
	return &Supervisor{cfg: cfg, store: st, driver: d, net: n, images: im, router: r, log: cfg.Logger, apps: map[string]*appState{}, scaled: map[string]scaledRelease{}}
}

func (s *Supervisor) app(name string) *appState {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[name]
	if a == nil {
		a = &appState{name: name, insts: map[string]*instance{}}
		s.apps[name] = a
	}
	return a
}

// Start re-adopts sandboxes left running by an earlier server, removes the
// ones nobody wants, marks interrupted rollouts failed, and brings every app
// to its desired replica count in the background.
func (s *Supervisor) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	apps, err := s.store.ListApps(ctx)
	if err != nil {
		return fmt.Errorf("listing apps: %w", err)
	}
	live := map[string]store.App{}
	for _, a := range apps {
		live[a.Name] = a
		if err := s.failInterrupted(ctx, a.Name); err != nil {
			return err
		}
	}
	rows, err := s.store.ListSandboxes(ctx, "")
	if err != nil {
		return fmt.Errorf("listing sandboxes: %w", err)
	}
	known := map[string]bool{}
	for _, row := range rows {
		known[row.ID] = true
		a, ok := live[row.App]
		st, serr := s.driver.State(ctx, row.ID)
		switch {
		case !ok || row.Release != a.Release || serr != nil || st.Status != runtime.Running:
			s.log.Info("removing sandbox left from an earlier server", "sandbox", row.ID, "app", row.App)
			s.cleanup(ctx, row.ID)
			if err := s.store.DeleteSandbox(ctx, row.ID); err != nil {
				return fmt.Errorf("forgetting sandbox %s: %w", row.ID, err)
			}
		default:
			if err := s.adopt(ctx, row); err != nil {
				s.log.Warn("could not adopt sandbox; replacing it", "sandbox", row.ID, "err", err)
				s.cleanup(ctx, row.ID)
				_ = s.store.DeleteSandbox(ctx, row.ID)
			}
		}
	}
	// Sandboxes the driver has but the store does not (a crash between
	// starting one and recording it) belong to nobody.
	if states, err := s.driver.List(ctx); err == nil {
		for _, st := range states {
			if !known[st.ID] {
				s.log.Info("removing unrecorded sandbox", "sandbox", st.ID)
				s.cleanup(ctx, st.ID)
			}
		}
	}
	for _, a := range apps {
		if a.Release > 0 && s.cfg.Guard != nil {
			// Access first: a route is never served without its policy.
			if err := s.guardLive(ctx, a); err != nil {
				s.log.Error("applying the access policy of the live release; the app's requests are refused", "app", a.Name, "err", err)
			}
		}
		s.publish(a.Name)
		if a.Release > 0 {
			name := a.Name
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if err := s.Reconcile(s.ctx, name); err != nil && s.ctx.Err() == nil {
					s.log.Warn("reconciling app", "app", name, "err", err)
				}
			}()
		}
	}
	return nil
}

// guardLive applies the access section of an app's live release.
func (s *Supervisor) guardLive(ctx context.Context, a store.App) error {
	rel, err := s.store.GetRelease(ctx, a.Name, a.Release)
	if err != nil {
		return err
	}
	return s.cfg.Guard.SetRelease(rel)
}

// Stop stops supervising. Sandboxes keep running (they are adopted by the
// next server), so a restart of the platform does not restart the apps.
func (s *Supervisor) Stop(ctx context.Context) error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping supervisor: %w", ctx.Err())
	}
}

// StopAll stops and removes every sandbox of every app. Tests and
// `noops server --stop-sandboxes` use it; a normal shutdown leaves them.
func (s *Supervisor) StopAll(ctx context.Context) error {
	s.stoppingAll.Store(true)
	s.mu.Lock()
	names := make([]string, 0, len(s.apps))
	for n := range s.apps {
		names = append(names, n)
	}
	s.mu.Unlock()
	var errs []error
	for _, n := range names {
		errs = append(errs, s.StopApp(ctx, n))
	}
	return errors.Join(errs...)
}

func (s *Supervisor) failInterrupted(ctx context.Context, app string) error {
	rels, err := s.store.ListReleases(ctx, app)
	if err != nil {
		return fmt.Errorf("listing releases of %s: %w", app, err)
	}
	for _, r := range rels {
		if r.Status == store.StatusPending {
			if err := s.store.SetReleaseStatus(ctx, app, r.Number, store.StatusFailed, "interrupted by a server restart"); err != nil {
				return fmt.Errorf("marking release %d of %s failed: %w", r.Number, app, err)
			}
		}
	}
	return nil
}

// cleanup removes a sandbox's process, files and network, best effort.
func (s *Supervisor) cleanup(ctx context.Context, id string) {
	if err := s.driver.Stop(ctx, id, s.cfg.StopGrace); err != nil && !isNotFound(err) {
		s.log.Warn("stopping sandbox", "sandbox", id, "err", err)
	}
	if err := s.driver.Delete(ctx, id); err != nil {
		s.log.Warn("deleting sandbox", "sandbox", id, "err", err)
	}
	if err := s.net.Teardown(ctx, id); err != nil {
		s.log.Warn("removing sandbox network", "sandbox", id, "err", err)
	}
	s.release(id)
}

// publish gives the router the app's current healthy, routable sandboxes.
func (s *Supervisor) publish(app string) {
	a := s.app(app)
	s.mu.Lock()
	var backends []gateway.Backend
	var reason string
	ids := make([]string, 0, len(a.insts))
	for id := range a.insts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		in := a.insts[id]
		if in.proc != Web {
			continue // workers are never routed
		}
		if in.routable() {
			backends = append(backends, gateway.Backend{ID: in.id, Addr: in.addr})
		} else if r := in.why(); r != "" && reason == "" {
			reason = r
		}
	}
	noWeb := a.noWeb
	s.mu.Unlock()
	switch {
	case len(backends) == 0 && noWeb && reason == "":
		s.router.SetBackends(app, nil, "app has no web process")
		return
	case reason == "":
		reason = "no replica is running"
	}
	s.router.SetBackends(app, backends, app+": no healthy replica ("+reason+")")
}

// setNoWeb records whether the app's live release lacks a web process,
// which publish tells the gateway.
func (s *Supervisor) setNoWeb(app string, procs map[string]process) {
	_, web := procs[Web]
	a := s.app(app)
	s.mu.Lock()
	a.noWeb = !web
	s.mu.Unlock()
}

// Instances describes the app's sandboxes as the supervisor sees them now,
// web and worker ones; ProcessOf tells a row's process type from its ID.
func (s *Supervisor) Instances(app string) []store.Sandbox {
	a := s.app(app)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.Sandbox, 0, len(a.insts))
	for _, in := range a.insts {
		out = append(out, in.row())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	if sb := a.standby; sb != nil {
		out = append(out, store.Sandbox{ID: sb.id, App: app, Release: sb.rel, State: StateStandby, Addr: sb.addr})
	}
	return out
}

// StateStandby is the state Instances gives a standby sandbox: made ahead
// for the next cold start of an app at zero replicas, not serving.
const StateStandby = "standby"
