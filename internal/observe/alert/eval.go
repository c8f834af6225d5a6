package alert

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"noops/internal/notify"
)

// instance is one alert: a series of a rule whose condition holds (pending
// or firing), or held (resolved).
type instance struct {
	rule        string
	fp          string
	labels      map[string]string
	annotations map[string]string
	state       string
	value       float64
	activeAt    time.Time
	firedAt     time.Time
	resolvedAt  time.Time
	changes     []Marker
	rendered    *compiled // the rule whose templates made annotations, at value
}

// app is the app of the alert's group: its "app" label.
func (in *instance) app() string { return in.labels[labelApp] }

// result is the outcome of one rule's evaluation.
type result struct {
	samples []Sample
	err     error
}

// Evaluate evaluates every rule once at Now and sends the notifications
// that are due. Start calls it every Interval; tests call it directly.
func (e *Engine) Evaluate(ctx context.Context) {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	now := e.cfg.Now()
	e.mu.Lock()
	rules := slices.Collect(maps.Values(e.rules))
	e.mu.Unlock()
	slices.SortFunc(rules, func(a, b *ruleState) int { return cmp.Compare(a.c.Name, b.c.Name) })
	results := e.evalAll(ctx, rules, now)
	if ctx.Err() != nil {
		return // stopping: the evaluations were cut short
	}
	var fired []*instance
	e.mu.Lock()
	for i, rs := range rules {
		if e.rules[rs.c.Name] == rs { // not replaced meanwhile
			fired = append(fired, e.applyLocked(rs, results[i], now)...)
		}
	}
	e.mu.Unlock()
	e.attachChanges(ctx, fired)
	e.flush(now)
}

// evalAll asks the Sources, a few rules at a time, each within Interval.
func (e *Engine) evalAll(ctx context.Context, rules []*ruleState, now time.Time) []result {
	results := make([]result, len(rules))
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i, rs := range rules {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = e.evalRule(ctx, rs.c, now)
		})
	}
	wg.Wait()
	return results
}

func (e *Engine) evalRule(ctx context.Context, c *compiled, now time.Time) (res result) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Interval)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			res = result{err: fmt.Errorf("evaluating %s rule: panic: %v", c.Kind, p)}
		}
	}()
	s, err := e.cfg.Sources[c.Kind].Eval(ctx, c.Rule, now)
	if err != nil {
		return result{err: fmt.Errorf("evaluating %s rule: %w", c.Kind, err)}
	}
	return result{samples: s}
}

// candidate is a sample whose condition holds, with its alert labels.
type candidate struct {
	labels map[string]string
	fp     string
	value  float64
	known  bool // an alert of this series is already active
}

// applyLocked moves rs's alerts on with its evaluation result and returns
// those that started firing.
func (e *Engine) applyLocked(rs *ruleState, res result, now time.Time) []*instance {
	c := rs.c
	rs.lastEval = now
	if res.err != nil {
		if rs.lastErr == "" {
			e.log.Warn("alert rule cannot be evaluated; keeping its alerts as they are", "rule", c.Name, "err", res.err)
		}
		rs.lastErr = res.err.Error()
		return nil
	}
	if rs.lastErr != "" {
		e.log.Info("alert rule evaluates again", "rule", c.Name)
		rs.lastErr = ""
	}
	act := e.active[c.Name]
	if act == nil {
		act = map[string]*instance{}
		e.active[c.Name] = act
	}
	var cands []candidate
	seen := map[string]bool{}
	for _, s := range res.samples {
		if !holds(c.Op, s.Value, c.Threshold) {
			continue
		}
		labels := alertLabels(c, s.Labels)
		fp := notify.Fingerprint(labels)
		if seen[fp] {
			continue
		}
		seen[fp] = true
		cands = append(cands, candidate{labels, fp, s.Value, act[fp] != nil})
	}
	dropped := 0
	if max := e.cfg.MaxAlertsPerRule; len(cands) > max {
		// Keep the alerts already active, so that a flood of new series
		// does not resolve them; then the first fingerprints.
		slices.SortFunc(cands, func(a, b candidate) int {
			if a.known != b.known {
				if a.known {
					return -1
				}
				return 1
			}
			return cmp.Compare(a.fp, b.fp)
		})
		dropped, cands = len(cands)-max, cands[:max]
		if rs.dropped == 0 {
			e.log.Warn("alert rule matches too many series; dropping the rest", "rule", c.Name, "max", max, "dropped", dropped)
		}
	}
	rs.dropped = dropped
	var fired []*instance
	kept := make(map[string]bool, len(cands))
	for _, cd := range cands {
		kept[cd.fp] = true
		in := act[cd.fp]
		if in == nil {
			in = &instance{rule: c.Name, fp: cd.fp, labels: cd.labels, state: StatePending, activeAt: now}
			act[cd.fp] = in
			e.dirty = true
		}
		if in.rendered != c || in.value != cd.value {
			in.value, in.rendered = cd.value, c
			in.annotations = renderAnnotations(c, in.labels, in.value)
		}
		if in.state == StatePending && now.Sub(in.activeAt) >= c.For {
			e.fireLocked(in, c, now)
			fired = append(fired, in)
		}
	}
	for fp, in := range act {
		if !kept[fp] {
			e.endLocked(in, now)
			delete(act, fp)
		}
	}
	return fired
}

// fireLocked turns a pending alert into a firing one, in its group.
func (e *Engine) fireLocked(in *instance, c *compiled, now time.Time) {
	in.state, in.firedAt = StateFiring, now
	e.dirty = true
	id := groupID(in.rule, in.app())
	g := e.groups[id]
	if g == nil {
		g = newGroup(in.rule, in.app(), now)
		e.groups[id] = g
	}
	g.severity = c.Severity
	delete(g.resolved, in.fp) // it resolved and fired again before the notification
}

// endLocked ends an alert whose condition no longer holds: a pending one
// is forgotten, a firing one resolves, to be announced if its group has
// announced it firing.
func (e *Engine) endLocked(in *instance, now time.Time) {
	e.dirty = true
	if in.state != StateFiring {
		return
	}
	in.state, in.resolvedAt = StateResolved, now
	if g := e.groups[groupID(in.rule, in.app())]; g != nil && g.notified[in.fp] {
		g.resolved[in.fp] = in
	}
	e.recent = append(e.recent, in)
	if len(e.recent) > maxRecent {
		e.recent[0] = nil
		e.recent = e.recent[1:]
	}
}

// Limits on the labels a Source gives a sample.
const maxSampleLabels = 32

// alertLabels is the label set of a sample's alert: the sample's labels
// (at most maxSampleLabels, names made valid, values cut to
// maxLabelValue, empty ones dropped), then the rule's, then alertname,
// severity and, for an app's rule, app.
func alertLabels(c *compiled, sample map[string]string) map[string]string {
	out := make(map[string]string, min(len(sample), maxSampleLabels)+len(c.Labels)+3)
	keys := slices.Sorted(maps.Keys(sample))
	for _, k := range keys[:min(len(keys), maxSampleLabels)] {
		name, v := labelName(k), labelValue(sample[k])
		if name != "" && v != "" {
			out[name] = v
		}
	}
	maps.Copy(out, c.Labels)
	out[labelAlertname] = c.Name
	out[labelSeverity] = c.Severity
	if c.App != "" {
		out[labelApp] = c.App
	}
	return out
}

// labelName makes k a valid label name: '_' for what is not a letter,
// digit or '_', at most maxLabelName bytes.
func labelName(k string) string {
	if len(k) > maxLabelName {
		k = k[:maxLabelName]
	}
	b := []byte(k)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			b[i] = '_'
		}
	}
	return string(b)
}

// labelValue makes v printable UTF-8 of at most maxLabelValue bytes.
func labelValue(v string) string {
	v = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(v, "\uFFFD"))
	return clipBytes(v, maxLabelValue)
}

// The changes shown beside an alert: at most maxChanges, made within
// changesLookback before it became active (or while it was pending).
const (
	maxChanges      = 3
	changesLookback = time.Hour
	markersTimeout  = 5 * time.Second
)

// attachChanges asks Markers, once per app, for what changed before the
// alerts that just fired.
func (e *Engine) attachChanges(ctx context.Context, fired []*instance) {
	if e.cfg.Markers == nil || len(fired) == 0 {
		return
	}
	byApp := map[string][]*instance{}
	for _, in := range fired {
		byApp[in.app()] = append(byApp[in.app()], in)
	}
	for _, app := range slices.Sorted(maps.Keys(byApp)) {
		ins := byApp[app]
		since := ins[0].activeAt
		for _, in := range ins {
			since = minTime(since, in.activeAt)
		}
		mctx, cancel := context.WithTimeout(ctx, markersTimeout)
		ms, err := e.cfg.Markers(mctx, app, since.Add(-changesLookback))
		cancel()
		if err != nil {
			e.log.Warn("listing changes to show beside alerts", "app", app, "err", err)
			continue
		}
		e.mu.Lock()
		for _, in := range ins {
			in.changes = changesFor(ms, in.activeAt, in.firedAt)
			e.dirty = true
		}
		e.mu.Unlock()
	}
}

// changesFor picks the markers from changesLookback before activeAt to
// firedAt, newest first, at most maxChanges, with their text bounded.
func changesFor(ms []Marker, activeAt, firedAt time.Time) []Marker {
	var out []Marker
	for _, m := range ms {
		if !m.Time.Before(activeAt.Add(-changesLookback)) && !m.Time.After(firedAt) {
			out = append(out, cleanMarker(m))
		}
	}
	slices.SortStableFunc(out, func(a, b Marker) int { return b.Time.Compare(a.Time) })
	return slices.Clip(out[:min(len(out), maxChanges)])
}

func cleanMarker(m Marker) Marker {
	return Marker{Time: m.Time.UTC(), Kind: clipText(m.Kind, 32), App: clipText(m.App, maxName), Detail: clipText(m.Detail, 200), Release: max(m.Release, 0)}
}

// clipText makes s one printable line of at most n bytes.
func clipText(s string, n int) string { return clipBytes(labelValue(s), n) }

// clipBytes cuts s, valid UTF-8, to at most n bytes at a rune boundary.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
