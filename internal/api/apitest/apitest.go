// Package apitest holds an in-memory control plane and log source that
// serve every admin API call: apps with numbered releases, replica counts
// and env. Tests of the API and of its clients (the CLI) run the real
// api.Handler over them.
package apitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"noops/internal/apitype"
	"noops/internal/control"
	"noops/internal/errkind"
	"noops/internal/observe/metrics"
	"noops/internal/store"
)

// Plane is a small in-memory control plane: apps with numbered releases,
// replica counts and env, enough to serve every API call. Tests set its
// exported fields before serving, or under Lock while serving.
type Plane struct {
	sync.Mutex
	now      time.Time
	releases map[string][]store.Release // newest first
	calls    []string                   // "Scale web 3", … in call order

	Known map[string]*store.App
	Err   error            // when set, every call fails with it
	Fail  map[string]error // calls about these apps fail with the error
	// DeployFunc, when set, replaces the built-in deploy.
	DeployFunc func(ctx context.Context, req control.DeployRequest, out control.Progress) (store.Release, error)
}

// NewPlane returns an empty plane whose records carry the time now.
func NewPlane(now time.Time) *Plane {
	return &Plane{now: now, Known: map[string]*store.App{}, releases: map[string][]store.Release{}, Fail: map[string]error{}}
}

// AddApp adds an app with n live-able releases (env A=1 on each).
func (p *Plane) AddApp(name string, n int) {
	p.Lock()
	defer p.Unlock()
	p.Known[name] = &store.App{Name: name, Created: p.now, Replicas: 1}
	for i := 1; i <= n; i++ {
		p.addReleaseLocked(name, "deploy", map[string]string{"A": "1"})
	}
}

func (p *Plane) addReleaseLocked(app, reason string, env map[string]string) store.Release {
	rel := store.Release{App: app, Number: len(p.releases[app]) + 1, Image: "sha256:" + strings.Repeat("ab", 32),
		Env: env, Created: p.now, Status: store.StatusLive, Reason: reason}
	for i := range p.releases[app] {
		if p.releases[app][i].Status == store.StatusLive {
			p.releases[app][i].Status = store.StatusSuperseded
		}
	}
	p.releases[app] = append([]store.Release{rel}, p.releases[app]...)
	p.Known[app].Release = rel.Number
	return rel
}

func (p *Plane) called(format string, args ...any) {
	p.calls = append(p.calls, fmt.Sprintf(format, args...))
}

// Calls lists the calls made so far ("Scale web 3"), in order.
func (p *Plane) Calls() []string {
	p.Lock()
	defer p.Unlock()
	return append([]string(nil), p.calls...)
}

// check returns the injected error for app, or NotFound when it does not exist.
func (p *Plane) check(app string) error {
	if p.Err != nil {
		return p.Err
	}
	if err := p.Fail[app]; err != nil {
		return err
	}
	if _, ok := p.Known[app]; !ok {
		return errkind.WithHint(errkind.NotFound, fmt.Errorf("app %q does not exist", app), "see `noops apps`")
	}
	return nil
}

func (p *Plane) view(a store.App) control.AppView {
	return control.AppView{App: a, URL: p.URL(a.Name), Healthy: a.Replicas}
}

func (p *Plane) Apps(ctx context.Context) ([]control.AppView, error) {
	p.Lock()
	defer p.Unlock()
	p.called("Apps")
	if p.Err != nil {
		return nil, p.Err
	}
	names := make([]string, 0, len(p.Known))
	for n := range p.Known {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]control.AppView, len(names))
	for i, n := range names {
		out[i] = p.view(*p.Known[n])
	}
	return out, nil
}

func (p *Plane) App(ctx context.Context, name string) (control.AppView, error) {
	p.Lock()
	defer p.Unlock()
	p.called("App %s", name)
	if err := p.check(name); err != nil {
		return control.AppView{}, err
	}
	return p.view(*p.Known[name]), nil
}

func (p *Plane) Delete(ctx context.Context, app string) error {
	p.Lock()
	defer p.Unlock()
	p.called("Delete %s", app)
	if err := p.check(app); err != nil {
		return err
	}
	delete(p.Known, app)
	delete(p.releases, app)
	return nil
}

func (p *Plane) Deploy(ctx context.Context, req control.DeployRequest, out control.Progress) (store.Release, error) {
	p.Lock()
	p.called("Deploy %s", req.App)
	err, custom := p.Err, p.DeployFunc
	if err == nil {
		err = p.Fail[req.App]
	}
	p.Unlock()
	if err != nil {
		return store.Release{}, err
	}
	if custom != nil {
		return custom(ctx, req, out)
	}
	out.Stage("receiving")
	h := sha256.New()
	n, err := io.Copy(h, req.Archive)
	if err != nil {
		return store.Release{}, errkind.Errorf(errkind.Invalid, "receiving upload: %v", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); req.SHA256 != "" && got != req.SHA256 {
		return store.Release{}, errkind.WithHint(errkind.Invalid, fmt.Errorf("the upload is incomplete"), "run the deploy again")
	}
	out.Log(fmt.Sprintf("received %d bytes", n))
	out.Stage("building")
	p.Lock()
	defer p.Unlock()
	if _, ok := p.Known[req.App]; !ok {
		p.Known[req.App] = &store.App{Name: req.App, Created: p.now, Replicas: 1}
	}
	env := map[string]string{}
	if rels := p.releases[req.App]; len(rels) > 0 {
		env = rels[0].Env
	}
	return p.addReleaseLocked(req.App, "deploy", env), nil
}

func (p *Plane) Releases(ctx context.Context, app string) ([]store.Release, error) {
	p.Lock()
	defer p.Unlock()
	p.called("Releases %s", app)
	if err := p.check(app); err != nil {
		return nil, err
	}
	return append([]store.Release(nil), p.releases[app]...), nil
}

func (p *Plane) Rollback(ctx context.Context, app string, to int) (store.Release, error) {
	p.Lock()
	defer p.Unlock()
	p.called("Rollback %s %d", app, to)
	if err := p.check(app); err != nil {
		return store.Release{}, err
	}
	rels := p.releases[app]
	if to == 0 {
		if len(rels) < 2 {
			return store.Release{}, errkind.Errorf(errkind.Conflict, "%s has no earlier release", app)
		}
		to = rels[1].Number
	}
	for _, r := range rels {
		if r.Number == to {
			return p.addReleaseLocked(app, fmt.Sprintf("rollback to %d", to), r.Env), nil
		}
	}
	return store.Release{}, errkind.Errorf(errkind.NotFound, "%s has no release %d", app, to)
}

func (p *Plane) Scale(ctx context.Context, app string, n int) error {
	p.Lock()
	defer p.Unlock()
	p.called("Scale %s %d", app, n)
	if err := p.check(app); err != nil {
		return err
	}
	if n < 0 || n > 100 {
		return errkind.Errorf(errkind.Invalid, "replicas must be between 0 and 100, not %d", n)
	}
	p.Known[app].Replicas = n
	return nil
}

// Scaling reports the app's replicas as ready, with one cold start of
// 12ms when its replica count is 0 (it has scaled to zero before).
func (p *Plane) Scaling(ctx context.Context, app string) (control.Scaling, error) {
	p.Lock()
	defer p.Unlock()
	p.called("Scaling %s", app)
	if err := p.check(app); err != nil {
		return control.Scaling{}, err
	}
	a := p.Known[app]
	out := control.Scaling{Desired: a.Replicas, Ready: a.Replicas}
	if a.Replicas == 0 {
		out.ColdStarts = metrics.ColdStartStats{Count: 1, P50: 12 * time.Millisecond, P99: 12 * time.Millisecond, Max: 12 * time.Millisecond}
	}
	return out, nil
}

func (p *Plane) Ps(ctx context.Context, app string) ([]control.Sandbox, error) {
	p.Lock()
	defer p.Unlock()
	p.called("Ps %s", app)
	if err := p.check(app); err != nil {
		return nil, err
	}
	a := p.Known[app]
	out := make([]control.Sandbox, a.Replicas)
	for i := range out {
		out[i] = control.Sandbox{Sandbox: store.Sandbox{ID: fmt.Sprintf("%s-%d-%d", app, a.Release, i), App: app, Release: a.Release,
			State: "healthy", Addr: fmt.Sprintf("10.88.0.%d:8080", i+2), Created: p.now, Updated: p.now}, Pid: 1000 + i}
	}
	return out, nil
}

func (p *Plane) Env(ctx context.Context, app string) (store.Release, error) {
	p.Lock()
	defer p.Unlock()
	p.called("Env %s", app)
	if err := p.check(app); err != nil {
		return store.Release{}, err
	}
	if len(p.releases[app]) == 0 {
		return store.Release{App: app}, nil
	}
	return p.releases[app][0], nil
}

func (p *Plane) SetEnv(ctx context.Context, app string, set map[string]string, unset []string) (store.Release, error) {
	p.Lock()
	defer p.Unlock()
	p.called("SetEnv %s %d %d", app, len(set), len(unset))
	if err := p.check(app); err != nil {
		return store.Release{}, err
	}
	env := map[string]string{}
	if rels := p.releases[app]; len(rels) > 0 {
		for k, v := range rels[0].Env {
			env[k] = v
		}
	}
	for k, v := range set {
		env[k] = v
	}
	for _, k := range unset {
		delete(env, k)
	}
	return p.addReleaseLocked(app, "env change", env), nil
}

func (p *Plane) URL(app string) string { return "https://" + app + ".noops.test/" }

// Logs serves fixed log lines per app, as stdout lines a second apart
// from Start, and records how it was asked.
type Logs struct {
	mu    sync.Mutex
	Lines map[string][]string // app → lines of text, set before serving
	asked []string            // "APP LINES FOLLOW"
}

// LogStart is the time of the first line Logs serves.
var LogStart = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func (l *Logs) Logs(ctx context.Context, app string, q apitype.LogQuery, emit func(apitype.LogLine) error) error {
	l.mu.Lock()
	l.asked = append(l.asked, fmt.Sprintf("%s %d %v", app, q.Lines, q.Follow))
	var all []apitype.LogLine
	for i, s := range l.Lines[app] {
		t := LogStart.Add(time.Duration(i) * time.Second)
		if strings.Contains(s, q.Grep) && (q.From.IsZero() || !t.Before(q.From)) && (q.To.IsZero() || t.Before(q.To)) {
			all = append(all, apitype.LogLine{Time: t, App: app, Stream: "stdout", Sandbox: app + "-1-0", Line: s})
		}
	}
	l.mu.Unlock()
	if q.Lines >= 0 && q.Lines < len(all) {
		all = all[len(all)-q.Lines:]
	}
	for _, line := range all {
		if err := emit(line); err != nil {
			return err
		}
	}
	return nil
}

func (l *Logs) AskedFor() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.asked...)
}
