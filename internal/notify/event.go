package notify

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Event is one notification.
type Event struct {
	// Kind says what happened: "ban", "unban", "waf_block",
	// "challenge_failed", … It is required.
	Kind string
	// Key is the dedup key: events with the same Kind and Key within the
	// dedup window are sent once (the banned prefix, say). An empty Key
	// dedups on the Title.
	Key string
	// Time is when it happened; zero means now.
	Time time.Time
	// Title is one line for humans: "203.0.113.7 banned for 10m: flood".
	Title string
	// Severity is "info", "warning" or "critical"; anything else is
	// "warning".
	Severity string
	// App is the app concerned, if any.
	App string
	// Fields are the details: rule ids, trigger, until, client, …
	Fields map[string]string
	// Alert, set on events of Kind "alert", is the group of alerts the
	// event announces. The Alertmanager and Slack sinks render it; the
	// Webhook sink adds it to its body as "alert".
	Alert *AlertGroup
}

// The severities an Event may have.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Limits on one event, so that attacker-chosen values (a path, a user
// agent) cannot make a notification, a spool line or a queue huge. Longer
// values are cut at a rune boundary.
const (
	maxShort     = 256  // Kind, Key, App, field names
	maxTitle     = 512  // Title
	maxValue     = 1024 // each field value
	maxFields    = 32   // fields kept, by name order
	maxSpoolLine = 1 << 20
)

// normalize returns a copy of e that shares nothing with the caller, with
// defaults applied and every string within its limit.
func normalize(e Event, now time.Time) Event {
	out := Event{
		Kind:     clip(e.Kind, maxShort),
		Key:      clip(e.Key, maxShort),
		Time:     e.Time,
		Title:    clip(oneLine(e.Title), maxTitle),
		Severity: strings.ToLower(e.Severity),
		App:      clip(e.App, maxShort),
		Alert:    normalizeAlert(e.Alert),
	}
	if out.Time.IsZero() {
		out.Time = now
	}
	switch out.Severity {
	case SeverityInfo, SeverityWarning, SeverityCritical:
	default:
		out.Severity = SeverityWarning
	}
	if len(e.Fields) > 0 {
		out.Fields = make(map[string]string, min(len(e.Fields), maxFields))
		if len(e.Fields) <= maxFields {
			for k, v := range e.Fields {
				out.Fields[clip(k, maxShort)] = clip(v, maxValue)
			}
		} else {
			for _, k := range sortedKeys(e.Fields)[:maxFields] {
				out.Fields[clip(k, maxShort)] = clip(e.Fields[k], maxValue)
			}
		}
	}
	return out
}

// oneLine joins the lines of s with spaces.
var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace

// clip cuts s to at most n bytes without splitting a rune, and replaces
// invalid UTF-8 so that it survives JSON unchanged.
func clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// wireEvent is an Event as the webhook body and the spool carry it.
type wireEvent struct {
	Kind     string            `json:"kind"`
	Key      string            `json:"key"`
	Time     time.Time         `json:"time"`
	Title    string            `json:"title"`
	Severity string            `json:"severity"`
	App      string            `json:"app"`
	Fields   map[string]string `json:"fields"`
	// Alert is absent from the events of other kinds, and from spool
	// lines written before it existed.
	Alert *AlertGroup `json:"alert,omitempty"`
}

func toWire(e Event) wireEvent {
	f := e.Fields
	if f == nil {
		f = map[string]string{}
	}
	return wireEvent{Kind: e.Kind, Key: e.Key, Time: e.Time.UTC(), Title: e.Title, Severity: e.Severity, App: e.App, Fields: f, Alert: e.Alert}
}

func (w wireEvent) event() Event {
	f := w.Fields
	if len(f) == 0 {
		f = nil
	}
	return Event{Kind: w.Kind, Key: w.Key, Time: w.Time, Title: w.Title, Severity: w.Severity, App: w.App, Fields: f, Alert: w.Alert}
}

// dedupMax bounds the dedup map whatever the rate of distinct keys: past
// it the oldest keys are forgotten early.
const dedupMax = 100_000

// deduper remembers the Kind+Key of the events let through within the
// window. The window starts at the first event let through, so a condition
// that lasts is reported once per window. Not safe for concurrent use.
type deduper struct {
	window time.Duration
	max    int
	seen   map[string]time.Time // key -> when it was let through
	order  []seenAt             // the same, oldest first
}

type seenAt struct {
	key string
	at  time.Time
}

func newDeduper(window time.Duration, max int) *deduper {
	return &deduper{window: window, max: max, seen: map[string]time.Time{}}
}

// admit reports whether an event with key may go out at now, and if so
// remembers it.
func (d *deduper) admit(key string, now time.Time) bool {
	if d.window <= 0 {
		return true
	}
	for len(d.order) > 0 && (now.Sub(d.order[0].at) >= d.window || len(d.order) > d.max) {
		d.forgetOldest()
	}
	if at, ok := d.seen[key]; ok && now.Sub(at) < d.window {
		return false
	}
	d.seen[key] = now
	d.order = append(d.order, seenAt{key, now})
	if len(d.order) > d.max {
		d.forgetOldest()
	}
	return true
}

func (d *deduper) forgetOldest() {
	o := d.order[0]
	d.order[0] = seenAt{}
	d.order = d.order[1:]
	if d.seen[o.key].Equal(o.at) {
		delete(d.seen, o.key)
	}
}

func dedupKey(e Event) string {
	k := e.Key
	if k == "" {
		k = e.Title
	}
	return e.Kind + "\x00" + k
}
