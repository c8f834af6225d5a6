package alert

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"noops/internal/notify"
)

// TestChangedSince checks the markers shown beside an alert.
func TestChangedSince(t *testing.T) {
	var calls []string
	at := func(h, m int) time.Time { return time.Date(2025, 3, 4, h, m, 0, 0, time.UTC) }
	markers := []Marker{
		{Time: at(12, 59), Kind: "deploy", App: "shop", Release: 9},                        // too old
		{Time: at(13, 15), Kind: "config", App: "shop", Detail: "DATABASE_URL"},            // 4th newest
		{Time: at(13, 35), Kind: "rollback", App: "shop", Release: 11},                     //
		{Time: at(14, 2), Kind: "deploy", App: "shop", Release: 12},                        //
		{Time: at(14, 6), Kind: "deploy", App: "shop", Release: 13, Detail: "line\nbreak"}, // while pending
		{Time: at(14, 8), Kind: "deploy", App: "shop", Release: 14},                        // after it fired
	}
	cfg := Config{GroupWait: -1, Markers: func(ctx context.Context, app string, since time.Time) ([]Marker, error) {
		calls = append(calls, app+" "+since.Format("15:04"))
		if app == "broken" {
			return nil, errors.New("marker store down")
		}
		return markers, nil
	}}
	f := newFixture(t, cfg)
	f.setRules(rule("R", forDur(2*time.Minute)), rule("B", forDur(2*time.Minute), func(r *Rule) { r.App = "broken" }))
	f.src.set("R", "a", 5)
	f.src.set("B", "b", 5)
	f.step(5 * time.Minute) // 14:05: pending
	events := f.step(2 * time.Minute)
	if !slices.Equal(calls, []string{"broken 13:05", "shop 13:05"}) {
		t.Errorf("Markers called for %q, want broken then shop since an hour before active", calls)
	}
	want := "deploy release 13 (line break) at 14:06 UTC, 1m after; deploy release 12 at 14:02 UTC, 3m before; rollback release 11 at 13:35 UTC, 30m before"
	var r *notify.Event
	for i := range events {
		if events[i].App == "shop" {
			r = &events[i]
		}
	}
	if len(events) != 2 || r == nil {
		t.Fatalf("got %d events, want one per rule (a Markers error does not hold an alert back)", len(events))
	}
	if got := r.Alert.Alerts[0].Annotations[notify.AnnotationChangedSince]; got != want {
		t.Errorf("changed_since = %q\nwant %q", got, want)
	}
	if r.Fields["changed_since"] != want {
		t.Errorf("fields %v, want changed_since", r.Fields)
	}
	for _, a := range f.e.Alerts() {
		if a.Rule == "R" && (len(a.Changes) != 3 || a.Changes[0].Release != 13 || a.Changes[2].Release != 11) {
			t.Errorf("Changes = %+v, want releases 13, 12, 11", a.Changes)
		}
	}
	if !strings.Contains(f.log.String(), "marker store down") {
		t.Errorf("Markers error not logged:\n%s", f.log)
	}
	if got := changesText([]Marker{{Time: at(14, 0), Kind: "deploy", App: "api", Release: 3}}, at(16, 5), ""); got != "deploy of api release 3 at 14:00 UTC, 2h5m before" {
		t.Errorf("changesText for a platform-wide alert = %q", got)
	}
}
