package storetest

import (
	"maps"
	"testing"

	"noops/internal/errkind"
	"noops/internal/store"
)

func testPromote(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	newApp(t, s, "other")
	newRelease(t, s, "other")
	_, err := s.Promote(ctx, "other", 1, 1, "deploy")
	ok(t, "Promote(other, 1)", err)

	for range 3 {
		newRelease(t, s, "web")
	}
	ok(t, "SetReleaseStatus(web, 3, failed)", s.SetReleaseStatus(ctx, "web", 3, store.StatusFailed, "crashed"))

	const (
		pending    = store.StatusPending
		live       = store.StatusLive
		superseded = store.StatusSuperseded
	)
	steps := []struct {
		name     string
		number   int
		replicas int
		reason   string
		want     map[int]store.Status
	}{
		{"first deploy", 1, 2, "deploy", map[int]store.Status{1: live, 2: pending, 3: store.StatusFailed}},
		{"next deploy", 2, 3, "deploy", map[int]store.Status{1: superseded, 2: live, 3: store.StatusFailed}},
		{"rollback", 1, 3, "rollback from 2", map[int]store.Status{1: live, 2: superseded, 3: store.StatusFailed}},
		{"failed release", 3, 1, "forced", map[int]store.Status{1: superseded, 2: superseded, 3: live}},
		{"live again", 3, 0, "scaled to zero", map[int]store.Status{1: superseded, 2: superseded, 3: live}},
	}
	for _, st := range steps {
		call := "Promote(web, " + st.name + ")"
		a, err := s.Promote(ctx, "web", st.number, st.replicas, st.reason)
		ok(t, call, err)
		want := store.App{Name: "web", Created: t0, Release: st.number, Replicas: st.replicas}
		checkApp(t, call, a, want)
		a, err = s.GetApp(ctx, "web")
		ok(t, "GetApp(web)", err)
		checkApp(t, "GetApp(web) after "+call, a, want)
		if got := statuses(t, s, "web"); !maps.Equal(got, st.want) {
			t.Errorf("statuses after %s = %v, want %v", call, got, st.want)
		}
		r, err := s.GetRelease(ctx, "web", st.number)
		ok(t, "GetRelease(web)", err)
		if r.Reason != st.reason {
			t.Errorf("reason of the promoted release after %s = %q, want %q", call, r.Reason, st.reason)
		}
	}

	// A superseded release keeps the reason it was made for.
	if r, err := s.GetRelease(ctx, "web", 2); err != nil || r.Reason != "deploy" {
		t.Errorf("GetRelease(web, 2) = %+v, %v; want reason \"deploy\" kept", r, err)
	}
	if got := statuses(t, s, "other"); got[1] != live {
		t.Errorf("statuses of other after promoting web = %v, want release 1 live", got)
	}
}

func testPromoteErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	newRelease(t, s, "web")
	newRelease(t, s, "web")
	_, err := s.Promote(ctx, "web", 1, 2, "deploy")
	ok(t, "Promote(web, 1)", err)

	tests := []struct {
		name     string
		app      string
		number   int
		replicas int
		kind     errkind.Kind
		msg      string
	}{
		{"missing app", "nope", 1, 1, errkind.NotFound, `app "nope" not found`},
		{"missing release", "web", 9, 1, errkind.NotFound, `release 9 of "web" not found`},
		{"negative replicas", "web", 2, -1, errkind.Invalid, "replicas"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Promote(ctx, tc.app, tc.number, tc.replicas, "nope")
			wantErr(t, "Promote("+tc.name+")", err, tc.kind, tc.msg)
		})
	}
	a, err := s.GetApp(ctx, "web")
	ok(t, "GetApp(web)", err)
	checkApp(t, "GetApp(web) after refused Promote calls", a, store.App{Name: "web", Created: t0, Release: 1, Replicas: 2})
	want := map[int]store.Status{1: store.StatusLive, 2: store.StatusPending}
	if got := statuses(t, s, "web"); !maps.Equal(got, want) {
		t.Errorf("statuses after refused Promote calls = %v, want %v", got, want)
	}
}
