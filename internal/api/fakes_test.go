package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"noops/internal/control"
	"noops/internal/errkind"
	"noops/internal/store"
)

// fakePlane is a small in-memory control plane: apps with numbered
// releases, replica counts and env, enough to serve every API call.
type fakePlane struct {
	mu       sync.Mutex
	now      time.Time
	apps     map[string]*store.App
	releases map[string][]store.Release // newest first

	err  error            // when set, every call fails with it
	fail map[string]error // calls about these apps fail with the error

	// deploy, when set, replaces the built-in deploy.
	deploy func(ctx context.Context, req control.DeployRequest, out control.Progress) (store.Release, error)
	calls  []string // "Scale web 3", … in call order
}

func newFakePlane(now time.Time) *fakePlane {
	return &fakePlane{now: now, apps: map[string]*store.App{}, releases: map[string][]store.Release{}, fail: map[string]error{}}
}

// addApp adds an app with n live-able releases (env A=1 on each).
func (p *fakePlane) addApp(name string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.apps[name] = &store.App{Name: name, Created: p.now, Replicas: 1}
	for i := 1; i <= n; i++ {
		p.addReleaseLocked(name, "deploy", map[string]string{"A": "1"})
	}
}

func (p *fakePlane) addReleaseLocked(app, reason string, env map[string]string) store.Release {
	rel := store.Release{App: app, Number: len(p.releases[app]) + 1, Image: "sha256:" + strings.Repeat("ab", 32),
		Env: env, Created: p.now, Status: store.StatusLive, Reason: reason}
	for i := range p.releases[app] {
		if p.releases[app][i].Status == store.StatusLive {
			p.releases[app][i].Status = store.StatusSuperseded
		}
	}
	p.releases[app] = append([]store.Release{rel}, p.releases[app]...)
	p.apps[app].Release = rel.Number
	return rel
}

func (p *fakePlane) called(format string, args ...any) {
	p.calls = append(p.calls, fmt.Sprintf(format, args...))
}

func (p *fakePlane) callLog() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.calls...)
}

// check returns the injected error for app, or NotFound when it does not exist.
func (p *fakePlane) check(app string) error {
	if p.err != nil {
		return p.err
	}
	if err := p.fail[app]; err != nil {
		return err
	}
	if _, ok := p.apps[app]; !ok {
		return errkind.WithHint(errkind.NotFound, fmt.Errorf("app %q does not exist", app), "see `noops apps`")
	}
	return nil
}

func (p *fakePlane) view(a store.App) control.AppView {
	return control.AppView{App: a, URL: p.URL(a.Name), Healthy: a.Replicas}
}

func (p *fakePlane) Apps(ctx context.Context) ([]control.AppView, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.called("Apps")
	if p.err != nil {
		return nil, p.err
	}
	names := make([]string, 0, len(p.apps))
	for n := range p.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]control.AppView, len(names))
	for i, n := range names {
		out[i] = p.view(*p.apps[n])
	}
	return out, nil
}

func (p *fakePlane) App(ctx context.Context, name string) (control.AppView, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.called("App %s", name)
	if err := p.check(name); err != nil {
		return control.AppView{}, err
	}
	return p.view(*p.apps[name]), nil
}

func (p *fakePlane) Delete(ctx context.Context, app string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.called("Delete %s", app)
	if err := p.check(app); err != nil {
		return err
	}
	delete(p.apps, app)
	delete(p.releases, app)
	return nil
}

func (p *fakePlane) Deploy(ctx context.Context, req control.DeployRequest, out control.Progress) (store.Release, error) {
	p.mu.Lock()
	p.called("Deploy %s", req.App)
	err, custom := p.err, p.deploy
	if err == nil {
		err = p.fail[req.App]
	}
	p.mu.Unlock()
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
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.apps[req.App]; !ok {
		p.apps[req.App] = &store.App{Name: req.App, Created: p.now, Replicas: 1}
	}
	env := map[string]string{}
	if rels := p.releases[req.App]; len(rels) > 0 {
		env = rels[0].Env
	}
	return p.addReleaseLocked(req.App, "deploy", env), nil
}

func (p *fakePlane) Releases(ctx context.Context, app string) ([]store.Release, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.called("Releases %s", app)
	if err := p.check(app); err != nil {
		return nil, err
	}
	return append([]store.Release(nil), p.releases[app]...), nil
}

func (p *fakePlane) Rollback(ctx context.Context, app string, to int) (store.Release, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
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

func (p *fakePlane) Scale(ctx context.Context, app string, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.called("Scale %s %d", app, n)
	if err := p.check(app); err != nil {
		return err
	}
	if n < 0 || n > 100 {
		return errkind.Errorf(errkind.Invalid, "replicas must be between 0 and 100, not %d", n)
	}
	p.apps[app].Replicas = n
	return nil
}

func (p *fakePlane) Ps(ctx context.Context, app string) ([]control.Sandbox, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.called("Ps %s", app)
	if err := p.check(app); err != nil {
		return nil, err
	}
	a := p.apps[app]
	out := make([]control.Sandbox, a.Replicas)
	for i := range out {
		out[i] = control.Sandbox{Sandbox: store.Sandbox{ID: fmt.Sprintf("%s-%d-%d", app, a.Release, i), App: app, Release: a.Release,
			State: "healthy", Addr: fmt.Sprintf("10.88.0.%d:8080", i+2), Created: p.now, Updated: p.now}, Pid: 1000 + i}
	}
	return out, nil
}

func (p *fakePlane) Env(ctx context.Context, app string) (store.Release, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.called("Env %s", app)
	if err := p.check(app); err != nil {
		return store.Release{}, err
	}
	if len(p.releases[app]) == 0 {
		return store.Release{App: app}, nil
	}
	return p.releases[app][0], nil
}

func (p *fakePlane) SetEnv(ctx context.Context, app string, set map[string]string, unset []string) (store.Release, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
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

func (p *fakePlane) URL(app string) string { return "https://" + app + ".noops.test/" }

// fakeLogs serves fixed log lines per app and records how it was asked.
type fakeLogs struct {
	mu    sync.Mutex
	lines map[string][]string
	asked []string // "APP LINES FOLLOW"
}

func (l *fakeLogs) Tail(ctx context.Context, app string, lines int, follow bool, w func(line []byte) error) error {
	l.mu.Lock()
	l.asked = append(l.asked, fmt.Sprintf("%s %d %v", app, lines, follow))
	all := l.lines[app]
	l.mu.Unlock()
	if lines < len(all) {
		all = all[len(all)-lines:]
	}
	for _, s := range all {
		if err := w([]byte(s)); err != nil {
			return err
		}
	}
	return nil
}

func (l *fakeLogs) askedFor() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.asked...)
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
