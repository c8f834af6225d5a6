package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAlertmanagerConformance(t *testing.T) {
	t.Parallel()
	testSinkConformance(t, func(url string) Sink { return Alertmanager(url, nil) })
}

func TestAlertmanagerName(t *testing.T) {
	s := Alertmanager("https://user:pw@am.example.com:9093/api/secret?token=secret", nil)
	if got, want := s.Name(), "alertmanager https://am.example.com:9093"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if _, err := New(Config{Sinks: []Sink{Alertmanager("am.example.com/secret", nil)}}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("New with a relative URL = %v, want an error without the URL", err)
	}
	// The same URL as a webhook and as an Alertmanager sink are two sinks.
	u := "http://example.com/hook"
	if _, err := New(Config{Sinks: []Sink{Webhook(u, nil), Alertmanager(u, nil)}}); err != nil {
		t.Errorf("New with a webhook and an alertmanager sink on one URL = %v, want nil", err)
	}
}

// TestFingerprint checks against values computed with
// github.com/prometheus/common/model's LabelSet.Fingerprint.
func TestFingerprint(t *testing.T) {
	tests := []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"alertname": "HighErrorRate", "app": "shop", "instance": "a"}, "69e262fea324af09"},
		{nil, "cbf29ce484222325"},
	}
	for _, tc := range tests {
		if got := Fingerprint(tc.labels); got != tc.want {
			t.Errorf("Fingerprint(%v) = %s, want %s", tc.labels, got, tc.want)
		}
	}
	if got, want := LabelString(map[string]string{"b": `say "hi"`, "a": "x"}), `{a="x", b="say \"hi\""}`; got != want {
		t.Errorf("LabelString = %s, want %s", got, want)
	}
}

// alertEvent is a group of one firing and one resolved alert, as the alert
// engine sends it.
func alertEvent() Event {
	at := time.Date(2025, 1, 2, 14, 5, 0, 0, time.UTC)
	return Event{
		Kind:     "alert",
		Key:      "g/firing/1",
		Time:     at,
		Title:    "[FIRING:1] HighErrorRate app=shop",
		Severity: "critical",
		App:      "shop",
		Fields:   map[string]string{"status": "firing"},
		Alert: &AlertGroup{
			Status:      "whatever", // derived from the alerts
			GroupKey:    `{}:{alertname="HighErrorRate", app="shop"}`,
			GroupLabels: map[string]string{"alertname": "HighErrorRate", "app": "shop"},
			ExternalURL: "https://noops.example.com",
			Alerts: []Alert{
				{
					Status:       StatusFiring,
					Labels:       map[string]string{"alertname": "HighErrorRate", "app": "shop", "instance": "a"},
					Annotations:  map[string]string{"summary": "errors at 7% on a", AnnotationChangedSince: "deploy release 12 at 14:02 UTC, 3m before"},
					StartsAt:     at,
					GeneratorURL: "https://noops.example.com/alerts?rule=HighErrorRate",
				},
				{
					Status:      StatusResolved,
					Labels:      map[string]string{"alertname": "HighErrorRate", "app": "shop", "instance": "b"},
					Annotations: map[string]string{"summary": "errors at 0% on b <!channel>", AnnotationChangedSince: "deploy release 12 at 14:02 UTC, 1m before"},
					StartsAt:    at.Add(-2 * time.Minute),
					EndsAt:      at,
					Fingerprint: "0123456789abcdef",
				},
			},
		},
	}
}

// TestAlertBodies checks the exact JSON each sink posts for alert events
// and for other events, through a Notifier.
func TestAlertBodies(t *testing.T) {
	ban := Event{Kind: "ban", Key: "203.0.113.0/24", Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Title: "203.0.113.7 banned", Severity: "critical", App: "shop", Fields: map[string]string{"trigger": "flood"}}
	twoChanges := alertEvent()
	twoChanges.Alert.Alerts[1].Annotations[AnnotationChangedSince] = twoChanges.Alert.Alerts[0].Annotations[AnnotationChangedSince]
	twoChanges.Alert.TruncatedAlerts = 3
	tests := []struct {
		name string
		sink func(url string) Sink
		e    Event
		want string
	}{
		{"alertmanager alert", func(u string) Sink { return Alertmanager(u, nil) }, alertEvent(),
			`{"receiver":"noops","status":"firing","alerts":[` +
				`{"status":"firing","labels":{"alertname":"HighErrorRate","app":"shop","instance":"a"},"annotations":{"changed_since":"deploy release 12 at 14:02 UTC, 3m before","summary":"errors at 7% on a"},"startsAt":"2025-01-02T14:05:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"https://noops.example.com/alerts?rule=HighErrorRate","fingerprint":"69e262fea324af09"},` +
				`{"status":"resolved","labels":{"alertname":"HighErrorRate","app":"shop","instance":"b"},"annotations":{"changed_since":"deploy release 12 at 14:02 UTC, 1m before","summary":"errors at 0% on b \u003c!channel\u003e"},"startsAt":"2025-01-02T14:03:00Z","endsAt":"2025-01-02T14:05:00Z","generatorURL":"","fingerprint":"0123456789abcdef"}],` +
				`"groupLabels":{"alertname":"HighErrorRate","app":"shop"},"commonLabels":{"alertname":"HighErrorRate","app":"shop"},"commonAnnotations":{},"externalURL":"https://noops.example.com","version":"4","groupKey":"{}:{alertname=\"HighErrorRate\", app=\"shop\"}","truncatedAlerts":0}`},
		{"alertmanager other event", func(u string) Sink { return Alertmanager(u, nil) }, ban,
			`{"receiver":"noops","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"ban","app":"shop","key":"203.0.113.0/24","severity":"critical"},"annotations":{"summary":"203.0.113.7 banned","trigger":"flood"},"startsAt":"2025-01-02T03:04:05Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"` +
				Fingerprint(map[string]string{"alertname": "ban", "app": "shop", "key": "203.0.113.0/24", "severity": "critical"}) + `"}],` +
				`"groupLabels":{"alertname":"ban"},"commonLabels":{"alertname":"ban","app":"shop","key":"203.0.113.0/24","severity":"critical"},"commonAnnotations":{"summary":"203.0.113.7 banned","trigger":"flood"},"externalURL":"","version":"4","groupKey":"{}:{alertname=\"ban\"}","truncatedAlerts":0}`},
		{"slack alert", Slack, alertEvent(),
			`{"text":"*critical* [FIRING:1] HighErrorRate app=shop\n• firing: errors at 7% on a (since Jan 2 14:05 UTC)\n    changed since: deploy release 12 at 14:02 UTC, 3m before\n• resolved: errors at 0% on b \u0026lt;!channel\u0026gt; (resolved Jan 2 14:05 UTC)\n    changed since: deploy release 12 at 14:02 UTC, 1m before"}`},
		{"slack alert with common change and truncation", Slack, twoChanges,
			`{"text":"*critical* [FIRING:1] HighErrorRate app=shop\n• firing: errors at 7% on a (since Jan 2 14:05 UTC)\n• resolved: errors at 0% on b \u0026lt;!channel\u0026gt; (resolved Jan 2 14:05 UTC)\n… and 3 more\nchanged since: deploy release 12 at 14:02 UTC, 3m before"}`},
		{"webhook alert", func(u string) Sink { return Webhook(u, nil) }, alertEvent(), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newReceiver(t, nil)
			n := start(t, Config{Sinks: []Sink{tc.sink(r.URL + "/hook")}})
			if !n.Notify(tc.e) {
				t.Fatalf("Notify = false, want true")
			}
			waitFor(t, "delivery", func() bool { return sinkStats(n, 0).Delivered == 1 })
			r.mu.Lock()
			got := r.bodies[0]
			r.mu.Unlock()
			if tc.want == "" { // the webhook: the group rides along as "alert"
				var w wireEvent
				if err := json.Unmarshal(got, &w); err != nil || w.Alert == nil {
					t.Fatalf("webhook body %s: %v; want an alert member", got, err)
				}
				if want := normalizeAlert(tc.e.Alert); !reflect.DeepEqual(w.Alert, want) {
					t.Errorf("webhook alert =\n%+v\nwant\n%+v", w.Alert, want)
				}
				return
			}
			if string(got) != tc.want {
				t.Errorf("body =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestNormalizeBoundsAlerts(t *testing.T) {
	big := strings.Repeat("\x01", 5000) // 6 bytes each in JSON
	var g AlertGroup
	for i := range 1000 {
		labels := map[string]string{"alertname": "X"}
		ann := map[string]string{}
		for j := range 50 {
			labels[fmt.Sprintf("l%02d", j)] = big
			ann[fmt.Sprintf("a%02d", j)] = big
		}
		labels["i"] = fmt.Sprint(i)
		g.Alerts = append(g.Alerts, Alert{Status: StatusResolved, Labels: labels, Annotations: ann})
	}
	g.GroupLabels = g.Alerts[0].Labels
	g.GroupKey = big
	fields := map[string]string{}
	for j := range 50 {
		fields[fmt.Sprintf("f%02d", j)] = big
	}
	e := normalize(Event{Kind: "alert", Title: big, Fields: fields, Alert: &g}, time.Now())
	a := e.Alert
	if len(a.Alerts)+a.TruncatedAlerts != 1000 || len(a.GroupLabels) != maxLabels || len(a.GroupKey) > maxValue || a.Status != StatusResolved {
		t.Errorf("normalize kept %d alerts + %d truncated, %d group labels, key %d bytes, status %q", len(a.Alerts), a.TruncatedAlerts, len(a.GroupLabels), len(a.GroupKey), a.Status)
	}
	line, err := encodeRecord(record{item: &item{seq: 1, ev: e}})
	if err != nil || len(line) > maxSpoolLine {
		t.Errorf("spool line of the largest alert event: %d bytes, %v; want at most %d", len(line), err, maxSpoolLine)
	}
	for name, sink := range map[string]func(Event) ([]byte, error){"alertmanager": alertmanagerBody, "slack": slackBody} {
		if b, err := sink(e); err != nil || len(b) > 2*maxSpoolLine {
			t.Errorf("%s body of the largest alert event: %d bytes, %v", name, len(b), err)
		}
	}
	// Realistic alerts all fit.
	var small AlertGroup
	for i := range maxAlerts + 5 {
		small.Alerts = append(small.Alerts, Alert{Labels: map[string]string{"alertname": "X", "instance": fmt.Sprint(i)}, Annotations: map[string]string{"summary": strings.Repeat("s", 500)}})
	}
	if s := normalizeAlert(&small); len(s.Alerts) != maxAlerts || s.TruncatedAlerts != 5 || s.Status != StatusFiring {
		t.Errorf("normalize of %d small alerts kept %d, truncated %d, status %q; want %d, 5, firing", maxAlerts+5, len(s.Alerts), s.TruncatedAlerts, s.Status, maxAlerts)
	}
	// Nothing is shared with the caller.
	orig := alertEvent()
	cp := normalize(orig, time.Now())
	orig.Alert.Alerts[0].Labels["instance"] = "changed"
	orig.Alert.GroupLabels["app"] = "changed"
	if cp.Alert.Alerts[0].Labels["instance"] != "a" || cp.Alert.GroupLabels["app"] != "shop" {
		t.Error("normalize shares the alert group's maps with the caller")
	}
}

// TestSpoolCarriesAlerts checks that the spool keeps an alert group, and
// still reads lines written before events had one.
func TestSpoolCarriesAlerts(t *testing.T) {
	e := normalize(alertEvent(), time.Now())
	line, err := encodeRecord(record{item: &item{seq: 2, ev: e}})
	if err != nil {
		t.Fatal(err)
	}
	old := `{"seq":1,"event":{"kind":"ban","key":"a","time":"2025-01-01T00:00:00Z","title":"t","severity":"info","app":"","fields":{"x":"y"}}}` + "\n"
	items, err := parseSpool(strings.NewReader(old+string(line)), func(n int, err error) { t.Errorf("line %d: %v", n, err) })
	if err != nil || len(items) != 2 {
		t.Fatalf("parseSpool = %d items, %v; want 2", len(items), err)
	}
	if items[0].ev.Alert != nil || items[0].ev.Fields["x"] != "y" {
		t.Errorf("old line read as %+v, want a ban without an alert group", items[0].ev)
	}
	if got := normalize(items[1].ev, time.Now()); !reflect.DeepEqual(got.Alert, e.Alert) {
		t.Errorf("alert group through the spool =\n%+v\nwant\n%+v", got.Alert, e.Alert)
	}
	if b, _ := encodeRecord(record{item: &item{seq: 1, ev: ev("a")}}); bytes.Contains(b, []byte(`"alert"`)) {
		t.Errorf("spool line of a ban %s has an alert member", b)
	}
}

// TestAlertSurvivesRestart sends an alert event to a receiver that is
// down, restarts the Notifier on the same spool, and checks the receiver
// then gets the same Alertmanager body.
func TestAlertSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := newReceiver(t, func(int, []byte) int { return http.StatusServiceUnavailable })
	cfg := Config{Sinks: []Sink{Alertmanager(r.URL, nil)}, Spool: dir, Backoff: 5 * time.Millisecond}
	n1 := start(t, cfg)
	n1.Notify(alertEvent())
	waitFor(t, "a failed send", func() bool { return sinkStats(n1, 0).Retries > 0 })
	if err := n1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.setStatus(nil)
	n2 := start(t, cfg)
	waitFor(t, "delivery after restart", func() bool { return sinkStats(n2, 0).Delivered == 1 })
	want, _ := alertmanagerBody(normalize(alertEvent(), time.Now()))
	r.mu.Lock()
	got := r.ok[0]
	r.mu.Unlock()
	if !bytes.Equal(got, want) {
		t.Errorf("body after restart =\n%s\nwant\n%s", got, want)
	}
}

// FuzzAlertBodies feeds arbitrary alert groups (as a spool or a caller
// could hold them) through normalize and the sinks' bodies.
func FuzzAlertBodies(f *testing.F) {
	seed, _ := json.Marshal(alertEvent().Alert)
	f.Add(seed)
	f.Add([]byte(`{"status":"resolved","alerts":[{"labels":{"a":"\u0000\ud800"},"status":"x"},{}],"truncatedAlerts":-5}`))
	f.Add([]byte(`{"alerts":null,"groupLabels":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var g AlertGroup
		if json.Unmarshal(data, &g) != nil {
			return
		}
		e := normalize(Event{Kind: "alert", Title: "t", Alert: &g}, time.Now())
		if again := normalize(e, e.Time); !reflect.DeepEqual(again.Alert, e.Alert) {
			t.Fatalf("normalize is not idempotent:\n%+v\n%+v", e.Alert, again.Alert)
		}
		a := e.Alert
		if a.TruncatedAlerts < 0 || len(a.Alerts) > maxAlerts || a.Status != StatusFiring && a.Status != StatusResolved {
			t.Fatalf("normalized group out of bounds: %d alerts, %d truncated, status %q", len(a.Alerts), a.TruncatedAlerts, a.Status)
		}
		for _, body := range []func(Event) ([]byte, error){alertmanagerBody, slackBody, webhookBody} {
			b, err := body(e)
			if err != nil || !json.Valid(b) {
				t.Fatalf("body %q: %v", b, err)
			}
		}
	})
}
