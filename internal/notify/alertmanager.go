package notify

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AlertGroup is the payload of an Event of Kind "alert": one group of
// alerts, as Alertmanager's webhook carries it. The JSON names are
// Alertmanager's.
type AlertGroup struct {
	// Status is "firing" when any of Alerts is firing, else "resolved".
	// Notify derives it from Alerts; it is kept only when no alert is left
	// (all were truncated).
	Status string `json:"status"`
	// GroupKey identifies the group: `{}:{alertname="X", app="shop"}`.
	GroupKey string `json:"groupKey"`
	// GroupLabels are the labels the alerts are grouped by.
	GroupLabels map[string]string `json:"groupLabels"`
	// ExternalURL is where the platform's alert list is served.
	ExternalURL string `json:"externalURL"`
	// Alerts are the group's firing alerts, then those resolved since the
	// last notification.
	Alerts []Alert `json:"alerts"`
	// TruncatedAlerts counts the alerts left out to keep the event small
	// (at most 100 alerts and 256 KiB of them go out).
	TruncatedAlerts int `json:"truncatedAlerts"`
}

// Alert is one alert of an AlertGroup.
type Alert struct {
	Status      string            `json:"status"` // "firing" or "resolved"
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	// EndsAt is zero while the alert fires: Alertmanager's receivers read
	// "0001-01-01T00:00:00Z" as "not ended".
	EndsAt       time.Time `json:"endsAt"`
	GeneratorURL string    `json:"generatorURL"`
	// Fingerprint identifies the alert; Notify computes it from Labels
	// when it is empty.
	Fingerprint string `json:"fingerprint"`
}

// The alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// AnnotationChangedSince is the annotation that carries what changed in the
// app shortly before an alert started (a deploy, a rollback); the Slack
// sink shows it on its own line.
const AnnotationChangedSince = "changed_since"

// Limits on an AlertGroup, on top of those of an Event: with them an alert
// event stays well under the spool's line limit whatever the values.
const (
	maxAlerts     = 100       // alerts kept in one event
	maxAlertBytes = 256 << 10 // JSON bytes of the alerts kept
	maxLabels     = 32        // entries kept in each label or annotation set
	maxSlackLines = 20        // alerts listed in a Slack message
)

// normalizeAlert returns a bounded copy of g that shares nothing with it,
// with the statuses, times and fingerprints filled in; nil for nil.
func normalizeAlert(g *AlertGroup) *AlertGroup {
	if g == nil {
		return nil
	}
	out := &AlertGroup{
		Status:          StatusFiring,
		GroupKey:        clip(oneLine(g.GroupKey), maxValue),
		GroupLabels:     clipMap(g.GroupLabels, maxShort),
		ExternalURL:     clip(oneLine(g.ExternalURL), maxValue),
		TruncatedAlerts: max(g.TruncatedAlerts, 0),
	}
	if g.Status == StatusResolved {
		out.Status = StatusResolved
	}
	budget := maxAlertBytes
	for i, a := range g.Alerts {
		na := normalizeOne(a)
		b, err := json.Marshal(na)
		if i >= maxAlerts || err != nil || len(b) > budget {
			out.TruncatedAlerts += len(g.Alerts) - i
			break
		}
		budget -= len(b)
		out.Alerts = append(out.Alerts, na)
	}
	if len(out.Alerts) > 0 {
		out.Status = StatusResolved
		for _, a := range out.Alerts {
			if a.Status == StatusFiring {
				out.Status = StatusFiring
			}
		}
	}
	return out
}

func normalizeOne(a Alert) Alert {
	out := Alert{
		Status:       StatusFiring,
		Labels:       clipMap(a.Labels, maxShort),
		Annotations:  clipMap(a.Annotations, maxValue),
		StartsAt:     a.StartsAt.UTC(),
		EndsAt:       a.EndsAt.UTC(),
		GeneratorURL: clip(oneLine(a.GeneratorURL), maxValue),
		Fingerprint:  clip(oneLine(a.Fingerprint), maxShort),
	}
	if a.Status == StatusResolved {
		out.Status = StatusResolved
	}
	if out.Fingerprint == "" {
		out.Fingerprint = Fingerprint(out.Labels)
	}
	return out
}

// clipMap copies at most maxLabels entries of m (by name order), with
// names cut to maxShort and values to n bytes. The copy is never nil.
func clipMap(m map[string]string, n int) map[string]string {
	out := make(map[string]string, min(len(m), maxLabels))
	keys := sortedKeys(m)
	if len(keys) > maxLabels {
		keys = keys[:maxLabels]
	}
	for _, k := range keys {
		out[clip(k, maxShort)] = clip(m[k], n)
	}
	return out
}

// Fingerprint returns the fingerprint Alertmanager gives the label set m:
// FNV-1a 64 over the names in order, each name and value followed by the
// byte 0xff, as 16 hex digits.
func Fingerprint(m map[string]string) string {
	h := fnv.New64a()
	for _, k := range sortedKeys(m) {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(m[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// LabelString renders m as Prometheus does: {a="x", b="y"}, names in order,
// values quoted.
func LabelString(m map[string]string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k + "=" + strconv.Quote(m[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// Alertmanager returns a sink that POSTs each event as the body of
// Alertmanager's webhook (version "4"): an event with Alert set as that
// group, any other event as a group of one firing alert named after its
// Kind (labels alertname, severity, app and key; annotations summary, the
// Title, and the Fields). Receivers of Prometheus alerts (PagerDuty
// bridges, Grafana OnCall, alertmanager-webhook-logger, …) take it as
// is. It treats replies as Webhook does; its name is
// "alertmanager scheme://host".
func Alertmanager(url string, hdr http.Header) Sink {
	return newHTTPSink("alertmanager", url, hdr, alertmanagerBody)
}

// amMessage is Alertmanager's webhook body, fields in its order.
type amMessage struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []Alert           `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
}

// amReceiver is the receiver name the bodies carry.
const amReceiver = "noops"

func alertmanagerBody(e Event) ([]byte, error) {
	g := e.Alert
	if g == nil {
		g = eventAlert(e)
	}
	g = normalizeAlert(g)
	alerts := g.Alerts
	if alerts == nil {
		alerts = []Alert{}
	}
	return json.Marshal(amMessage{
		Receiver:          amReceiver,
		Status:            g.Status,
		Alerts:            alerts,
		GroupLabels:       g.GroupLabels,
		CommonLabels:      common(alerts, func(a Alert) map[string]string { return a.Labels }),
		CommonAnnotations: common(alerts, func(a Alert) map[string]string { return a.Annotations }),
		ExternalURL:       g.ExternalURL,
		Version:           "4",
		GroupKey:          g.GroupKey,
		TruncatedAlerts:   g.TruncatedAlerts,
	})
}

// eventAlert turns an event of another kind into a group of one alert.
func eventAlert(e Event) *AlertGroup {
	labels := map[string]string{"alertname": e.Kind, "severity": e.Severity}
	if e.App != "" {
		labels["app"] = e.App
	}
	if e.Key != "" {
		labels["key"] = e.Key
	}
	ann := map[string]string{"summary": e.Title}
	for k, v := range e.Fields {
		if k != "summary" {
			ann[k] = v
		}
	}
	gl := map[string]string{"alertname": e.Kind}
	return &AlertGroup{
		GroupKey:    "{}:" + LabelString(gl),
		GroupLabels: gl,
		Alerts:      []Alert{{Status: StatusFiring, Labels: labels, Annotations: ann, StartsAt: e.Time}},
	}
}

// common returns the entries that every alert's set has with the same
// value; never nil.
func common(alerts []Alert, set func(Alert) map[string]string) map[string]string {
	out := map[string]string{}
	if len(alerts) == 0 {
		return out
	}
	for k, v := range set(alerts[0]) {
		if !slices.ContainsFunc(alerts[1:], func(a Alert) bool { w, ok := set(a)[k]; return !ok || w != v }) {
			out[k] = v
		}
	}
	return out
}

// slackAlertBody renders an alert event for Slack: the title, then one
// line per alert (at most maxSlackLines) with its summary, or its own
// labels, and since when it fires or when it resolved, and what changed
// before it started.
func slackAlertBody(e Event) ([]byte, error) {
	g := normalizeAlert(e.Alert)
	var b strings.Builder
	b.WriteString("*" + slackEscape(e.Severity) + "* " + slackEscape(e.Title))
	changed := common(g.Alerts, func(a Alert) map[string]string { return a.Annotations })[AnnotationChangedSince]
	groupBy := g.GroupLabels
	shown := min(len(g.Alerts), maxSlackLines)
	for _, a := range g.Alerts[:shown] {
		when := "since " + slackTime(a.StartsAt)
		if a.Status == StatusResolved {
			when = "resolved " + slackTime(a.EndsAt)
		}
		b.WriteString("\n• " + a.Status + ": " + slackEscape(oneLine(describe(a, groupBy))) + " (" + when + ")")
		if c := a.Annotations[AnnotationChangedSince]; c != "" && changed == "" {
			b.WriteString("\n    changed since: " + slackEscape(oneLine(c)))
		}
	}
	if more := len(g.Alerts) - shown + g.TruncatedAlerts; more > 0 {
		fmt.Fprintf(&b, "\n… and %d more", more)
	}
	if changed != "" {
		b.WriteString("\nchanged since: " + slackEscape(oneLine(changed)))
	}
	return json.Marshal(struct {
		Text string `json:"text"`
	}{b.String()})
}

// describe names an alert for humans: its summary, else the labels that
// tell it from the rest of its group.
func describe(a Alert, groupBy map[string]string) string {
	if s := a.Annotations["summary"]; s != "" {
		return s
	}
	var parts []string
	for _, k := range sortedKeys(a.Labels) {
		if _, ok := groupBy[k]; !ok && k != "alertname" && k != "severity" {
			parts = append(parts, k+"="+a.Labels[k])
		}
	}
	if len(parts) == 0 {
		return a.Labels["alertname"]
	}
	return strings.Join(parts, " ")
}

func slackTime(t time.Time) string { return t.UTC().Format("Jan 2 15:04 UTC") }
