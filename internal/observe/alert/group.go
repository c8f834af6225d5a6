package alert

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"noops/internal/notify"
)

// group is the alerts of one rule and one app, notified together.
type group struct {
	rule, app string
	severity  string
	createdAt time.Time            // it got its first firing alert (GroupWait runs from here)
	lastSent  time.Time            // zero before its first notification
	seq       int                  // notifications sent
	reminders int                  // of which reminders since the last change
	notified  map[string]bool      // fingerprints sent as firing last time
	resolved  map[string]*instance // resolved since, to announce
}

func newGroup(rule, app string, now time.Time) *group {
	return &group{rule: rule, app: app, severity: SeverityWarning, createdAt: now, notified: map[string]bool{}, resolved: map[string]*instance{}}
}

func groupID(rule, app string) string { return rule + "\x00" + app }

// labels are the group's labels: alertname and, if any, app.
func (g *group) labels() map[string]string {
	l := map[string]string{labelAlertname: g.rule}
	if g.app != "" {
		l[labelApp] = g.app
	}
	return l
}

// plan is what a group is to send, and when.
type plan struct {
	due      time.Time
	send     bool // there is something to send at due
	reminder bool
	firing   []*instance // sorted by fingerprint
}

// firingLocked indexes the firing alerts by group.
func (e *Engine) firingLocked() map[string][]*instance {
	idx := map[string][]*instance{}
	for _, alerts := range e.active {
		for _, in := range alerts {
			if in.state == StateFiring {
				id := groupID(in.rule, in.app())
				idx[id] = append(idx[id], in)
			}
		}
	}
	for _, ins := range idx {
		slices.SortFunc(ins, func(a, b *instance) int { return cmp.Compare(a.fp, b.fp) })
	}
	return idx
}

// planLocked decides a group's next notification, following
// Alertmanager: the first after GroupWait, one for a change (alerts
// firing or resolved) at least GroupInterval after the last, and an
// unchanged firing group again after the rule's Repeat.
func (e *Engine) planLocked(g *group, firing []*instance) plan {
	p := plan{firing: firing}
	switch {
	case g.lastSent.IsZero():
		// Alerts that fired and resolved before the first notification
		// are not announced at all.
		p.send, p.due = len(firing) > 0, g.createdAt.Add(e.cfg.GroupWait)
	case len(g.resolved) > 0 || !sameSet(firing, g.notified):
		p.send, p.due = true, g.lastSent.Add(e.cfg.GroupInterval)
	case len(firing) > 0:
		p.send, p.reminder, p.due = true, true, g.lastSent.Add(e.repeatLocked(g))
	}
	return p
}

func (e *Engine) repeatLocked(g *group) time.Duration {
	if rs := e.rules[g.rule]; rs != nil {
		return rs.c.Repeat
	}
	return defaultRepeat
}

func sameSet(firing []*instance, notified map[string]bool) bool {
	if len(firing) != len(notified) {
		return false
	}
	for _, in := range firing {
		if !notified[in.fp] {
			return false
		}
	}
	return true
}

// flushDue sends the notifications that are due now.
func (e *Engine) flushDue() {
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	e.flush(e.cfg.Now())
}

// flush sends the notifications due at now, forgets the groups left with
// nothing to say, and saves the state if it changed. The caller holds
// evalMu.
func (e *Engine) flush(now time.Time) {
	var events []notify.Event
	e.mu.Lock()
	idx := e.firingLocked()
	for id, ins := range idx {
		if e.groups[id] == nil { // restored without its group
			e.groups[id] = newGroup(ins[0].rule, ins[0].app(), now)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(e.groups)) {
		g := e.groups[id]
		p := e.planLocked(g, idx[id])
		if !p.send {
			delete(e.groups, id)
			e.dirty = true
			continue
		}
		if now.Before(p.due) {
			continue
		}
		events = append(events, e.eventLocked(g, p, now))
		if len(p.firing) == 0 {
			delete(e.groups, id)
		}
		e.dirty = true
	}
	e.mu.Unlock()
	for _, ev := range events {
		if e.cfg.Notify != nil && !e.cfg.Notify(ev) {
			e.log.Warn("notifier refused an alert notification", "key", ev.Key, "title", ev.Title)
		}
	}
	e.save()
}

// nextDue returns when the next group notification is due.
func (e *Engine) nextDue() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	idx := e.firingLocked()
	var next time.Time
	for id, g := range e.groups {
		if p := e.planLocked(g, idx[id]); p.send && (next.IsZero() || p.due.Before(next)) {
			next = p.due
		}
	}
	return next, !next.IsZero()
}

// eventLocked builds g's notification and records it as sent.
func (e *Engine) eventLocked(g *group, p plan, now time.Time) notify.Event {
	if rs := e.rules[g.rule]; rs != nil {
		g.severity = rs.c.Severity
	}
	resolved := slices.SortedFunc(maps.Values(g.resolved), func(a, b *instance) int { return cmp.Compare(a.fp, b.fp) })
	status := notify.StatusFiring
	title := fmt.Sprintf("[FIRING:%d] %s", len(p.firing), g.rule)
	if len(p.firing) == 0 {
		status, title = notify.StatusResolved, "[RESOLVED] "+g.rule
	}
	if g.app != "" {
		title += " app=" + g.app
	}
	g.seq++
	if p.reminder {
		g.reminders++
	} else {
		g.reminders = 0
	}
	gl := g.labels()
	ag := &notify.AlertGroup{
		Status:      status,
		GroupKey:    "{}:" + notify.LabelString(gl),
		GroupLabels: gl,
		ExternalURL: e.cfg.ExternalURL,
	}
	fields := map[string]string{
		"status":   status,
		"rule":     g.rule,
		"firing":   strconv.Itoa(len(p.firing)),
		"resolved": strconv.Itoa(len(resolved)),
	}
	if g.reminders > 0 {
		fields["reminder"] = strconv.Itoa(g.reminders)
	}
	for _, in := range slices.Concat(p.firing, resolved) {
		a := e.notifyAlert(in, g.app)
		ag.Alerts = append(ag.Alerts, a)
		if c := a.Annotations[notify.AnnotationChangedSince]; c != "" && fields["changed_since"] == "" {
			fields["changed_since"] = c
		}
	}
	g.lastSent = now
	g.notified = make(map[string]bool, len(p.firing))
	for _, in := range p.firing {
		g.notified[in.fp] = true
	}
	clear(g.resolved)
	return notify.Event{
		Kind:     "alert",
		Key:      eventKey(g, gl, status),
		Time:     now,
		Title:    title,
		Severity: g.severity,
		App:      g.app,
		Fields:   fields,
		Alert:    ag,
	}
}

// eventKey is the notify dedup key of g's latest notification: the group,
// when it was created, the status and the notification's number. It
// differs for every notification, so that notify's dedup window does not
// swallow a change, a reminder or a resolve, nor the first notification of
// a group that fires again soon after it resolved.
func eventKey(g *group, labels map[string]string, status string) string {
	return fmt.Sprintf("%s/%d/%s/%d", notify.Fingerprint(labels), g.createdAt.UnixNano(), status, g.seq)
}

// notifyAlert is an alert as notify carries it; "changed_since" is added
// to its annotations when something changed before it started.
func (e *Engine) notifyAlert(in *instance, app string) notify.Alert {
	ann := maps.Clone(in.annotations)
	if len(in.changes) > 0 {
		if ann == nil {
			ann = map[string]string{}
		}
		ann[notify.AnnotationChangedSince] = changesText(in.changes, in.activeAt, app)
	}
	a := notify.Alert{
		Status:      notify.StatusFiring,
		Labels:      maps.Clone(in.labels),
		Annotations: ann,
		StartsAt:    in.firedAt,
		Fingerprint: in.fp,
	}
	if in.state == StateResolved {
		a.Status, a.EndsAt = notify.StatusResolved, in.resolvedAt
	}
	if e.cfg.ExternalURL != "" {
		a.GeneratorURL = strings.TrimSuffix(e.cfg.ExternalURL, "/") + "/alerts?rule=" + url.QueryEscape(in.rule)
	}
	return a
}

// changesText renders markers as "deploy release 12 at 14:02 UTC, 3m
// before; …", relative to when the alert became active. A marker of
// another app than the group's names it.
func changesText(ms []Marker, activeAt time.Time, app string) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		s := cmp.Or(m.Kind, "change")
		if m.App != "" && m.App != app {
			s += " of " + m.App
		}
		if m.Release > 0 {
			s += " release " + strconv.Itoa(m.Release)
		}
		if m.Detail != "" {
			s += " (" + m.Detail + ")"
		}
		s += " at " + m.Time.UTC().Format("15:04 UTC")
		if d := activeAt.Sub(m.Time); d >= 0 {
			s += ", " + shortDuration(d) + " before"
		} else {
			s += ", " + shortDuration(-d) + " after"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// shortDuration renders d as "45s", "3m" or "1h5m".
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
	if m == 0 {
		return strconv.Itoa(h) + "h"
	}
	return fmt.Sprintf("%dh%dm", h, m)
}
