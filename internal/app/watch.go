package app

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"time"

	"noops/internal/access"
	"noops/internal/notify"
	"noops/internal/observe/alert"
	"noops/internal/observe/monitor"
	"noops/internal/spec"
	"noops/internal/store"
)

// watch keeps the uptime monitors and the alert rules in step with the
// live releases: every app gets a monitor on its health path (apps that
// scale to zero excepted: a check would keep them awake) and an alert
// when it is down, plus what its manifest's monitors and alerts say.
// It is a supervisor Guard: SetRelease and RemoveApp come with every
// release that goes live and every app deleted.
type watch struct {
	a     *App
	token string // the health monitors' pass through the access layer

	mu       sync.Mutex
	monitors map[string][]monitor.Spec // by app
	rules    map[string][]alert.Rule   // by app
	live     map[string]bool           // apps the gateway routes: their monitors run
	runner   *monitor.Runner
	engine   *alert.Engine
}

// HeaderMonitor carries the platform's health monitor token: with it, a
// GET of an app's health path passes the access layer (the check runs in
// the server and connects over loopback; the token never leaves it).
const HeaderMonitor = "X-Noops-Monitor"

func newWatch(a *App) *watch {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return &watch{a: a, token: hex.EncodeToString(b), monitors: map[string][]monitor.Spec{}, rules: map[string][]alert.Rule{}, live: map[string]bool{}}
}

// SetRelease derives app's monitors and rules from rel.
func (w *watch) SetRelease(rel store.Release) error {
	var cfg spec.Config
	if len(rel.Config) > 0 {
		if err := json.Unmarshal(rel.Config, &cfg); err != nil {
			return fmt.Errorf("decoding the monitors of release %d: %w", rel.Number, err)
		}
	}
	mons, rules, err := w.derive(rel.App, cfg)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.monitors[rel.App], w.rules[rel.App] = mons, rules
	w.mu.Unlock()
	return w.apply()
}

// RemoveApp forgets app's monitors and rules (its alerts resolve).
func (w *watch) RemoveApp(app string) {
	w.mu.Lock()
	delete(w.monitors, app)
	delete(w.rules, app)
	delete(w.live, app)
	w.mu.Unlock()
	if err := w.apply(); err != nil {
		w.a.log.Warn("updating monitors after removing an app", "app", app, "err", err)
	}
}

// derive turns a release's config into monitor specs and alert rules.
func (w *watch) derive(app string, cfg spec.Config) ([]monitor.Spec, []alert.Rule, error) {
	host := app + "." + w.a.cfg.Domain
	gw := w.a.HTTPSAddr()
	var mons []monitor.Spec
	var rules []alert.Rule
	health := cfg.Health
	if health == "" {
		health = spec.DefaultHealth
	}
	if cfg.Scale == nil || cfg.Scale.Min > 0 {
		m := monitor.DefaultForApp(app, health, gw, host)
		m.Headers = map[string]string{HeaderMonitor: w.token}
		if d := w.a.cfg.Observe.MonitorInterval; d > 0 {
			m.Interval, m.Timeout = d, min(m.Timeout, d)
		}
		mons = append(mons, m)
		rules = append(rules, alert.Rule{Name: app + ":down", App: app, Kind: alert.KindMonitor, Expr: m.Name, Severity: alert.SeverityCritical,
			Annotations: map[string]string{"summary": app + " does not answer on " + health}})
	}
	for _, m := range cfg.Monitors {
		s := monitor.Spec{Name: app + "." + m.Name, App: app, Interval: time.Duration(m.Interval), Timeout: time.Duration(m.Timeout),
			Method: m.Method, Headers: m.Headers, Status: m.Status, BodyContains: m.Body, BodyRegexp: m.BodyRegexp,
			MaxLatency: time.Duration(m.MaxLatency), CertMinDays: m.CertMinDays, Grace: time.Duration(m.Grace),
			FailAfter: m.FailAfter, SuccessAfter: m.SuccessAfter}
		switch {
		case m.HTTP != "":
			s.Kind, s.Target = monitor.HTTP, m.HTTP
		case m.Path != "":
			s.Kind, s.Target, s.Host = monitor.HTTP, "https://"+loopbackOf(gw)+m.Path, host
		case m.TCP != "":
			s.Kind, s.Target = monitor.TCP, m.TCP
		case m.TLS != "":
			s.Kind, s.Target = monitor.TLS, m.TLS
		case m.Push:
			s.Kind = monitor.Push
		}
		if err := s.Validate(); err != nil {
			return nil, nil, fmt.Errorf("monitor %s of %s: %w", m.Name, app, err)
		}
		mons = append(mons, s)
	}
	for _, r := range cfg.Alerts {
		rule := alert.Rule{Name: app + ":" + r.Name, App: app, Op: r.Op, Threshold: r.Threshold, Window: time.Duration(r.Window),
			For: time.Duration(r.For), Severity: r.Severity, Repeat: time.Duration(r.Repeat)}
		if r.Summary != "" {
			rule.Annotations = map[string]string{"summary": r.Summary}
		}
		switch {
		case r.Metric != "":
			rule.Kind, rule.Expr = alert.KindMetric, r.Metric
		case r.Log != "":
			rule.Kind, rule.Expr = alert.KindLog, r.Log
		case r.Monitor == "health":
			rule.Kind, rule.Expr = alert.KindMonitor, monitor.AppPrefix+app
		case r.Monitor == "*":
			rule.Kind, rule.Expr = alert.KindMonitor, "*"
		case r.Monitor != "":
			rule.Kind, rule.Expr = alert.KindMonitor, app+"."+r.Monitor
		case r.Anomaly != "":
			rule.Kind, rule.Expr = alert.KindAnomaly, r.Anomaly
		}
		if err := rule.Validate(); err != nil {
			return nil, nil, fmt.Errorf("alert %s of %s: %w", r.Name, app, err)
		}
		rules = append(rules, rule)
	}
	// Every app's request rate, error ratio and p95 latency are watched
	// for anomalies unless its manifest has its own rule for the series.
	for _, series := range []string{"rate", "errors", "latency"} {
		own := false
		for _, r := range cfg.Alerts {
			own = own || r.Anomaly == series
		}
		if !own {
			rules = append(rules, alert.Rule{Name: app + ":anomaly-" + series, App: app, Kind: alert.KindAnomaly, Expr: series,
				Severity: alert.SeverityWarning, Annotations: map[string]string{"summary": app + "'s " + anomalyText[series] +
					" is unusual for this time of the week (robust z {{.Labels.score}}, expected {{.Labels.expected}})"}})
		}
	}
	return mons, rules, nil
}

var anomalyText = map[string]string{"rate": "request rate", "errors": "error ratio", "latency": "p95 latency"}

// apply hands the whole set to the runner and the engine, once started.
// An app's monitors run once the gateway routes it: a new app's first
// release is not down while it starts.
func (w *watch) apply() error {
	w.mu.Lock()
	runner, engine := w.runner, w.engine
	var mons []monitor.Spec
	var rules []alert.Rule
	for _, app := range sortedApps(w.monitors) {
		if !w.live[app] && w.a.gateway != nil && w.a.gateway.HasHost(app+"."+w.a.cfg.Domain) {
			w.live[app] = true
		}
		if w.live[app] {
			mons = append(mons, w.monitors[app]...)
		}
	}
	for _, app := range sortedApps(w.rules) {
		rules = append(rules, w.rules[app]...)
	}
	w.mu.Unlock()
	if runner != nil {
		if err := runner.Set(mons); err != nil {
			return err
		}
	}
	if engine != nil {
		return engine.SetRules(rules)
	}
	return nil
}

func sortedApps[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// loopbackOf is the loopback address of a listen address (":443").
func loopbackOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return "127.0.0.1" + addr[i:]
		}
	}
	return "127.0.0.1"
}

// startWatch starts the monitors and the alert engine with the rules of
// the live releases.
func (a *App) startWatch(ctx context.Context) error {
	w := a.watch
	runner, err := monitor.New(monitor.Config{Logger: a.log, StatePath: a.path("telemetry", "monitors.json"), RootCAs: a.ca.RootPool(),
		OnChange: a.monitorChanged})
	if err != nil {
		return err
	}
	var send func(notify.Event) bool
	if a.notify != nil {
		send = a.notify.Notify
	}
	engine, err := alert.New(alert.Config{Notify: send, Markers: a.markers, StatePath: a.path("telemetry", "alerts.json"), Logger: a.log,
		Interval: a.cfg.Observe.AlertInterval, GroupWait: a.cfg.Observe.AlertGroupWait,
		ExternalURL: "https://" + APIHost(a.cfg.Domain) + portSuffix(a.HTTPSAddr()),
		Sources: map[alert.Kind]alert.Source{alert.KindMetric: metricSource{a}, alert.KindLog: logSource{a}, alert.KindMonitor: monitorSource{a},
			alert.KindAnomaly: newAnomalySource(a)}})
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.runner, w.engine = runner, engine
	w.mu.Unlock()
	if err := w.apply(); err != nil {
		return err
	}
	if err := runner.Start(ctx); err != nil {
		return err
	}
	a.started1("monitors", runner.Stop)
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); w.waitLive(lctx, time.Second) }()
	a.started1("monitor activation", func(context.Context) error { cancel(); <-done; return nil })
	if err := engine.Start(ctx); err != nil {
		return err
	}
	a.started1("alerts", engine.Stop)
	return nil
}

// waitLive applies the monitors of apps that became routed since, every
// tick, until ctx ends.
func (w *watch) waitLive(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		pending := false
		for app := range w.monitors {
			if !w.live[app] && w.a.gateway.HasHost(app+"."+w.a.cfg.Domain) {
				pending = true
			}
		}
		w.mu.Unlock()
		if pending {
			if err := w.apply(); err != nil {
				w.a.log.Warn("starting the monitors of a new app", "err", err)
			}
		}
	}
}

// monitorChanged records a monitor's state change as a platform event
// and has the alerts look at it at once.
func (a *App) monitorChanged(st monitor.Status, from monitor.State) {
	if from == monitor.Pending && st.State == monitor.Up {
		return // the first check of a new monitor: not news
	}
	msg := fmt.Sprintf("monitor %s is %s (was %s)", st.Spec.Name, st.State, from)
	if d := st.Last.Error; d != "" {
		msg += ": " + d
	} else if d := st.Last.Detail; d != "" && st.State != monitor.Up {
		msg += ": " + d
	}
	if _, err := a.store.AppendEvent(context.Background(), store.Event{Time: st.Since, App: st.Spec.App, Kind: "monitor", Message: msg}); err != nil {
		a.log.Warn("recording a monitor change", "monitor", st.Spec.Name, "err", err)
	}
	if e := a.watch.engineOf(); e != nil {
		go e.Evaluate(context.Background())
	}
}

func (w *watch) engineOf() *alert.Engine {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.engine
}

func (w *watch) runnerOf() *monitor.Runner {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.runner
}

var releaseRE = regexp.MustCompile(`release (\d+)`)

// markers lists the changes (deploy markers) of app since a time.
func (a *App) markers(ctx context.Context, app string, since time.Time) ([]alert.Marker, error) {
	evs, err := a.store.ListEvents(ctx, store.EventQuery{App: app, From: since, Limit: 50,
		Kinds: []string{store.KindDeploy, store.KindRollback, store.KindConfig, store.KindRebase, store.KindScale, store.KindBan}})
	if err != nil {
		return nil, err
	}
	out := make([]alert.Marker, 0, len(evs))
	for _, e := range evs {
		m := alert.Marker{Time: e.Time, Kind: e.Kind, App: e.App, Detail: e.Message}
		if s := releaseRE.FindStringSubmatch(e.Message); s != nil {
			m.Release, _ = strconv.Atoi(s[1])
		}
		out = append(out, m)
	}
	return out, nil
}

// healthGuard is the access layer with one exception: the platform's
// own health monitors, which carry the watch's token, GET an app's health
// path without signing in.
type healthGuard struct{ a *App }

func (g healthGuard) Admit(w http.ResponseWriter, r *http.Request, app string) bool {
	if v := r.Header[HeaderMonitor]; len(v) == 1 && r.Method == http.MethodGet && g.a.watch != nil {
		delete(r.Header, HeaderMonitor)
		if subtle.ConstantTimeCompare([]byte(v[0]), []byte(g.a.watch.token)) == 1 && g.a.watch.isHealthPath(app, r.URL.Path) {
			for _, k := range []string{access.HeaderUser, access.HeaderRoles, access.HeaderDevice, access.HeaderTrust, access.HeaderWorkload} {
				delete(r.Header, k)
			}
			return true
		}
	}
	delete(r.Header, HeaderMonitor)
	return g.a.access.Admit(w, r, app)
}

// isHealthPath reports whether path is the target of app's default
// monitor.
func (w *watch) isHealthPath(app, path string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.monitors[app] {
		if m.Name == monitor.AppPrefix+app {
			u := m.Target
			for i := len("https://"); i < len(u); i++ {
				if u[i] == '/' {
					return u[i:] == path
				}
			}
		}
	}
	return false
}

// AdmitWorkload is the access layer's: calls between workloads on the
// internal listener.
func (g healthGuard) AdmitWorkload(w http.ResponseWriter, r *http.Request, app string) bool {
	return g.a.access.AdmitWorkload(w, r, app)
}
