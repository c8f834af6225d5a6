// Package control is the platform's control plane: what the admin API asks
// for (deploy, rollback, scale, env, apps, releases) turned into builds,
// immutable releases in the store and rollouts by the supervisor.
package control

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"noops/internal/build"
	"noops/internal/errkind"
	"noops/internal/observe/metrics"
	"noops/internal/store"
	"noops/internal/supervisor"
)

// Config says where the control plane keeps its files.
type Config struct {
	Data string // the data folder: DATA/tmp for uploads, DATA/cache/<app> for build caches
	// BuildCache is shared by every app's builds for content-addressed
	// caches (Go's); "" means DATA/cache/.shared.
	BuildCache string
	Domain     string // apps are served at https://<app>.<Domain>
	Port       string // the HTTPS port when not 443, for URLs (":8443"), or ""
	Logger     *slog.Logger
	Now        func() time.Time

	Hygiene      HygieneOptions // what cleaning up keeps
	HygieneEvery time.Duration  // how often it runs besides after changes; 0 means DefaultHygieneEvery

	Autoscaler Autoscaler       // for Scaling; nil reports no autoscaling
	Metrics    *metrics.Metrics // cold starts for Scaling, forgotten on Delete; may be nil
}

// Plane carries out the admin API's requests.
type Plane struct {
	cfg    Config
	store  store.Store
	images Images
	stacks Stacks
	runner build.Runner
	super  *supervisor.Supervisor
	log    *slog.Logger

	mu    sync.Mutex
	busy  map[string]string // app → what is in progress
	doing sync.WaitGroup

	kick        chan struct{} // asks the cleanup loop to run soon
	stopHygiene context.CancelFunc
	hygieneDone chan struct{}
}

// New returns a control plane.
func New(cfg Config, st store.Store, im Images, stacks Stacks, runner build.Runner, sup *supervisor.Supervisor) *Plane {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Plane{cfg: cfg, store: st, images: im, stacks: stacks, runner: runner, super: sup, log: cfg.Logger, busy: map[string]string{},
		kick: make(chan struct{}, 1)}
}

// Start prepares the folders the plane writes and clears what a crashed
// server left in DATA/tmp.
func (p *Plane) Start(context.Context) error {
	tmp := filepath.Join(p.cfg.Data, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clearing %s: %w", tmp, err)
	}
	for _, d := range []string{tmp, filepath.Join(p.cfg.Data, "cache")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stopHygiene, p.hygieneDone = cancel, make(chan struct{})
	go func() {
		defer close(p.hygieneDone)
		p.runHygiene(ctx)
	}()
	return nil
}

// Stop waits for deploys in progress to finish or ctx to end.
func (p *Plane) Stop(ctx context.Context) error {
	if p.stopHygiene != nil {
		p.stopHygiene()
		<-p.hygieneDone
	}
	done := make(chan struct{})
	go func() { p.doing.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for deploys in progress: %w", ctx.Err())
	}
}

// claim marks app as busy with what; a second change of the same app at the
// same time is refused rather than queued behind an unknown wait.
func (p *Plane) claim(app, what string) (func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.busy[app]; ok {
		return nil, errkind.WithHint(errkind.Conflict, fmt.Errorf("%s of %s is in progress", cur, app), "wait for it to finish and try again")
	}
	p.busy[app] = what
	p.doing.Add(1)
	return func() {
		p.mu.Lock()
		delete(p.busy, app)
		p.mu.Unlock()
		p.doing.Done()
	}, nil
}

// URL is where app is served.
func (p *Plane) URL(app string) string {
	return "https://" + app + "." + p.cfg.Domain + p.cfg.Port + "/"
}

// AppView is an app with what the supervisor sees of it now.
type AppView struct {
	store.App
	URL     string
	Healthy int
}

// Apps lists the apps.
func (p *Plane) Apps(ctx context.Context) ([]AppView, error) {
	apps, err := p.store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]AppView, len(apps))
	for i, a := range apps {
		out[i] = p.view(a)
	}
	return out, nil
}

// App returns one app.
func (p *Plane) App(ctx context.Context, name string) (AppView, error) {
	a, err := p.store.GetApp(ctx, name)
	if err != nil {
		return AppView{}, err
	}
	return p.view(a), nil
}

func (p *Plane) view(a store.App) AppView {
	v := AppView{App: a, URL: p.URL(a.Name)}
	for _, sb := range p.super.Instances(a.Name) {
		if sb.State == "healthy" && sb.Release == a.Release {
			v.Healthy++
		}
	}
	return v
}

// Releases lists an app's releases, newest first.
func (p *Plane) Releases(ctx context.Context, app string) ([]store.Release, error) {
	if _, err := p.store.GetApp(ctx, app); err != nil {
		return nil, err
	}
	return p.store.ListReleases(ctx, app)
}

// Sandbox is a sandbox with its host pid and process type.
type Sandbox struct {
	store.Sandbox
	Pid     int
	Process string // web or worker
}

// Ps lists an app's sandboxes.
func (p *Plane) Ps(ctx context.Context, app string) ([]Sandbox, error) {
	if _, err := p.store.GetApp(ctx, app); err != nil {
		return nil, err
	}
	rows := p.super.Instances(app)
	out := make([]Sandbox, len(rows))
	for i, r := range rows {
		out[i] = Sandbox{Sandbox: r, Pid: p.super.Pid(r.ID), Process: supervisor.ProcessOf(r.ID)}
	}
	return out, nil
}

// Delete stops an app's sandboxes and removes it with its releases. Its
// audit records stay.
func (p *Plane) Delete(ctx context.Context, app string) error {
	if _, err := p.store.GetApp(ctx, app); err != nil {
		return err
	}
	done, err := p.claim(app, "a delete")
	if err != nil {
		return err
	}
	defer done()
	if err := p.super.StopApp(ctx, app); err != nil {
		return fmt.Errorf("stopping %s: %w", app, err)
	}
	if p.cfg.Metrics != nil {
		p.cfg.Metrics.Forget(app)
	}
	if err := p.store.DeleteApp(ctx, app); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(p.cfg.Data, "cache", app)); err != nil {
		p.log.Warn("removing build cache", "app", app, "err", err)
	}
	return nil
}

// Scale sets how many replicas of the live release run.
func (p *Plane) Scale(ctx context.Context, app string, n int) error {
	if n < 0 || n > 100 {
		return errkind.Errorf(errkind.Invalid, "replicas must be between 0 and 100, not %d", n)
	}
	a, err := p.store.GetApp(ctx, app)
	if err != nil {
		return err
	}
	if a.Release == 0 {
		return errkind.WithHint(errkind.Conflict, fmt.Errorf("%s has no live release to scale", app), "deploy it first: noops deploy")
	}
	if rel, err := p.store.GetRelease(ctx, app, a.Release); err == nil {
		if run, err := supervisor.RunConfig(rel); err == nil && run.Scale != nil {
			return errkind.WithHint(errkind.Conflict,
				fmt.Errorf("%s scales with its load (run.scale: min %d, max %d): a count set by hand would be undone within a second", app, run.Scale.Min, run.Scale.Max),
				"change run.scale in noops.yaml and deploy, or replace it with run.replicas for a fixed count")
		}
	}
	done, err := p.claim(app, "a scale")
	if err != nil {
		return err
	}
	defer done()
	// The marker goes first: sandboxes stop (or start) from now on, and an
	// alert they cause must find it.
	p.mark(ctx, app, store.KindScale, fmt.Sprintf("scaled by hand from %d to %d replicas", a.Replicas, n))
	if err := p.super.Scale(ctx, app, n); err != nil {
		p.mark(ctx, app, store.KindScale, fmt.Sprintf("scaling to %d replicas failed: %v", n, err))
		return err
	}
	return nil
}

// mark records a deploy marker: a change to an app, at its time, in the
// platform's events (`noops events --kind deploy,...`). A marker that
// cannot be written is logged; the change itself stands.
func (p *Plane) mark(ctx context.Context, app, kind, msg string) {
	if _, err := p.store.AppendEvent(context.WithoutCancel(ctx), store.Event{Time: p.cfg.Now(), App: app, Kind: kind, Message: msg}); err != nil {
		p.log.Warn("recording a deploy marker", "app", app, "kind", kind, "err", err)
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
