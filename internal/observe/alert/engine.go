package alert

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"noops/internal/notify"
)

// Sample is one series' current value. Its Labels identify the alert
// instance (app, instance, monitor, …).
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Source evaluates the rules of one Kind: a metric rule's PromQL over the
// metric store, a log rule's pattern over the log store (the Value is the
// count of matching lines in the rule's Window), a monitor rule over the
// monitor runner (1 for a failing monitor, 0 for a passing one), an
// anomaly rule over the anomaly detector (the series' score). The engine
// compares each sample with the rule's Op and Threshold; an error keeps
// the rule's alerts as they are.
type Source interface {
	Eval(ctx context.Context, r Rule, now time.Time) ([]Sample, error)
}

// Marker is a change to an app (a deploy, a rollback, a config change),
// shown beside the alerts that started soon after it.
type Marker struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"` // "deploy", "rollback", …
	App     string    `json:"app"`
	Detail  string    `json:"detail,omitempty"`
	Release int       `json:"release,omitempty"`
}

// Config sets up an Engine. Zero values take the defaults.
type Config struct {
	// Sources evaluate the rules, by Kind. SetRules refuses a rule whose
	// Kind has none.
	Sources map[Kind]Source
	// Notify sends a notification (the platform's notify.Notifier's
	// Notify). It must not block. Nil tracks alerts without sending.
	Notify func(notify.Event) bool
	// Markers, if set, lists an app's changes since a time; app is the
	// alert group's app, "" for alerts not about one app (list the
	// changes of every app then). The engine shows the latest before an
	// alert started.
	Markers func(ctx context.Context, app string, since time.Time) ([]Marker, error)
	// Interval is how often the rules are evaluated (default 30s).
	Interval time.Duration
	// GroupWait is how long a new group waits before its first
	// notification, so that alerts firing together go out together
	// (default 10s). GroupInterval is the least time between two
	// notifications of a group that changed (default 1m). Negative means
	// no wait.
	GroupWait, GroupInterval time.Duration
	// MaxAlertsPerRule bounds a rule's pending and firing alerts (default
	// 1000); the samples past it are dropped and counted.
	MaxAlertsPerRule int
	// StatePath is the JSON file that keeps the active alerts and the
	// groups' notification state across a restart; "" keeps them in
	// memory only.
	StatePath string
	// ExternalURL is the platform's base URL: an alert's generatorURL is
	// ExternalURL/alerts?rule=NAME ("" leaves it empty).
	ExternalURL string
	Now         func() time.Time
	Logger      *slog.Logger
}

func (c *Config) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		switch {
		case *d == 0:
			*d = v
		case *d < 0:
			*d = 0
		}
	}
	if c.Interval <= 0 {
		c.Interval = 30 * time.Second
	}
	set(&c.GroupWait, 10*time.Second)
	set(&c.GroupInterval, time.Minute)
	if c.MaxAlertsPerRule <= 0 {
		c.MaxAlertsPerRule = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Alert is one alert instance as Alerts reports it.
type Alert struct {
	Rule        string
	App         string
	Labels      map[string]string
	Annotations map[string]string
	State       string // "pending", "firing" or "resolved"
	Value       float64
	ActiveAt    time.Time // the condition first held
	FiredAt     time.Time // zero while pending
	ResolvedAt  time.Time // zero until resolved
	Fingerprint string
	Summary     string   // the "summary" annotation
	Changes     []Marker // what changed shortly before ActiveAt, newest first
	Severity    string
	// Error is the rule's last evaluation error, if its Source is failing:
	// the alert is then kept as it was.
	Error string
}

// The states of an alert.
const (
	StatePending  = "pending"
	StateFiring   = "firing"
	StateResolved = "resolved"
)

// RuleStatus is the health of one rule.
type RuleStatus struct {
	Name      string
	App       string
	Kind      Kind
	Health    string // "ok", "error", or "unknown" before the first evaluation
	LastError string
	LastEval  time.Time
	Pending   int
	Firing    int
	// Dropped counts the samples of the last evaluation past
	// MaxAlertsPerRule.
	Dropped int
}

// Limits on the engine as a whole.
const (
	maxRules     = 1000
	maxRecent    = 100 // resolved alerts Alerts remembers
	maxParallel  = 4   // rules evaluated at once
	minLoopSleep = 50 * time.Millisecond
)

// Engine evaluates rules and sends their alerts. Its methods are safe for
// concurrent use.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{} // cap 1: the rules changed

	evalMu sync.Mutex // one evaluation or flush at a time

	mu         sync.Mutex // guards what follows
	rules      map[string]*ruleState
	configured bool                            // SetRules was called
	active     map[string]map[string]*instance // rule name → fingerprint → pending or firing alert
	groups     map[string]*group               // groupID → group
	recent     []*instance                     // resolved, oldest first
	dirty      bool                            // state to save
	saveFailed bool                            // the last save failed (it was logged)
	started    bool
	stopped    bool
	cancel     context.CancelFunc
	done       chan struct{}
}

// ruleState is a configured rule and its evaluation health.
type ruleState struct {
	c        *compiled
	lastEval time.Time
	lastErr  string
	dropped  int
}

// New returns an Engine with no rules. With cfg.StatePath set it restores
// the alerts and groups a previous Engine saved; they are matched to
// rules at the first SetRules.
func New(cfg Config) (*Engine, error) {
	cfg.defaults()
	e := &Engine{
		cfg:    cfg,
		log:    cfg.Logger,
		wake:   make(chan struct{}, 1),
		rules:  map[string]*ruleState{},
		active: map[string]map[string]*instance{},
		groups: map[string]*group{},
		done:   make(chan struct{}),
	}
	if cfg.StatePath != "" {
		if err := e.load(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// SetRules replaces the rules at once. An invalid rule, two rules of one
// name, or a rule whose Kind has no Source changes nothing. The alerts of
// removed rules resolve; a rule kept unchanged keeps its alerts and
// health, and a changed one its alerts.
func (e *Engine) SetRules(rules []Rule) error {
	if len(rules) > maxRules {
		return fmt.Errorf("setting alert rules: %d rules, more than %d", len(rules), maxRules)
	}
	next := make(map[string]*ruleState, len(rules))
	for _, r := range rules {
		c, err := r.compile()
		if err != nil {
			return fmt.Errorf("setting alert rules: %w", err)
		}
		if next[r.Name] != nil {
			return fmt.Errorf("setting alert rules: two rules are named %s", r.Name)
		}
		if e.cfg.Sources[r.Kind] == nil {
			return fmt.Errorf("setting alert rules: rule %s: no source evaluates %s rules here", r.Name, r.Kind)
		}
		next[r.Name] = &ruleState{c: c}
	}
	now := e.cfg.Now()
	e.mu.Lock()
	for name, rs := range next {
		if old := e.rules[name]; old != nil && reflect.DeepEqual(old.c.Rule, rs.c.Rule) {
			next[name] = old
		}
	}
	for name, alerts := range e.active {
		if next[name] == nil {
			for _, in := range alerts {
				e.endLocked(in, now)
			}
			delete(e.active, name)
		}
	}
	e.rules, e.configured, e.dirty = next, true, true
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	return nil
}

// Start evaluates the rules every Interval, and sends each group's
// notification when it is due, until Stop. It returns at once.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.stopped {
		return errors.New("starting alert engine: already started")
	}
	e.started = true
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.cancel = cancel
	go e.run(run)
	return nil
}

// Stop ends the evaluations, cutting short those in flight (which change
// nothing), and saves the state.
func (e *Engine) Stop(ctx context.Context) error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return nil
	}
	e.stopped = true
	started, cancel := e.started, e.cancel
	e.mu.Unlock()
	var errs []error
	if started {
		cancel()
		select {
		case <-e.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("waiting for the alert engine to stop: %w", ctx.Err()))
		}
	}
	if e.cfg.StatePath != "" {
		e.evalMu.Lock()
		e.mu.Lock()
		e.dirty = true
		e.mu.Unlock()
		errs = append(errs, e.save())
		e.evalMu.Unlock()
	}
	return errors.Join(errs...)
}

func (e *Engine) run(ctx context.Context) {
	defer close(e.done)
	nextEval := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-e.wake:
		}
		if !time.Now().Before(nextEval) {
			e.Evaluate(ctx)
			nextEval = time.Now().Add(e.cfg.Interval)
		} else {
			e.flushDue()
		}
		wait := time.Until(nextEval)
		if due, ok := e.nextDue(); ok {
			wait = min(wait, due.Sub(e.cfg.Now()))
		}
		timer.Reset(max(wait, minLoopSleep))
	}
}

// Alerts returns the pending and firing alerts, firing first, then the
// latest resolved ones (at most 100), newest first.
func (e *Engine) Alerts() []Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Alert
	for _, alerts := range e.active {
		for _, in := range alerts {
			out = append(out, e.alertLocked(in))
		}
	}
	rank := map[string]int{StateFiring: 0, StatePending: 1}
	slices.SortFunc(out, func(a, b Alert) int {
		return cmp.Or(cmp.Compare(rank[a.State], rank[b.State]), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Fingerprint, b.Fingerprint))
	})
	for i := len(e.recent) - 1; i >= 0; i-- {
		out = append(out, e.alertLocked(e.recent[i]))
	}
	return out
}

func (e *Engine) alertLocked(in *instance) Alert {
	a := Alert{
		Rule:        in.rule,
		App:         in.app(),
		Labels:      maps.Clone(in.labels),
		Annotations: maps.Clone(in.annotations),
		State:       in.state,
		Value:       in.value,
		ActiveAt:    in.activeAt,
		FiredAt:     in.firedAt,
		ResolvedAt:  in.resolvedAt,
		Fingerprint: in.fp,
		Summary:     in.annotations["summary"],
		Changes:     slices.Clone(in.changes),
		Severity:    in.labels[labelSeverity],
	}
	if rs := e.rules[in.rule]; rs != nil && in.state != StateResolved {
		a.Error = rs.lastErr
	}
	return a
}

// Rules returns the health of each rule, by name.
func (e *Engine) Rules() []RuleStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RuleStatus, 0, len(e.rules))
	for name, rs := range e.rules {
		st := RuleStatus{Name: name, App: rs.c.App, Kind: rs.c.Kind, Health: "unknown", LastError: rs.lastErr, LastEval: rs.lastEval, Dropped: rs.dropped}
		switch {
		case rs.lastErr != "":
			st.Health = "error"
		case !rs.lastEval.IsZero():
			st.Health = "ok"
		}
		for _, in := range e.active[name] {
			if in.state == StateFiring {
				st.Firing++
			} else {
				st.Pending++
			}
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b RuleStatus) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
