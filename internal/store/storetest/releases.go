package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
)

func testReleaseRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	in := store.Release{App: "web", Number: 42, Image: digest, SourceDigest: "sha256:5ource",
		Buildpack: "golang", Config: json.RawMessage(`{"port": 8080, "health": "/healthz", "replicas": 2}`),
		Env:     map[string]string{"DATABASE_URL": "postgres://db/x?sslmode=require", "EMPTY": "", "GREETING": "héllo \"world\"\n"},
		Created: t0, Status: store.StatusPending, Reason: "deploy"}
	want := in
	want.Number = 1 // r.Number is ignored

	got, err := s.CreateRelease(ctx, in)
	ok(t, "CreateRelease(web)", err)
	checkRelease(t, "CreateRelease(web)", got, want)
	got, err = s.GetRelease(ctx, "web", 1)
	ok(t, "GetRelease(web, 1)", err)
	checkRelease(t, "GetRelease(web, 1)", got, want)
	rels, err := s.ListReleases(ctx, "web")
	ok(t, "ListReleases(web)", err)
	if len(rels) != 1 {
		t.Fatalf("ListReleases(web) = %v, want [1]", numbers(rels))
	}
	checkRelease(t, "ListReleases(web)[0]", rels[0], want)
}

func testReleaseDefaults(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	lo := time.Now()
	got, err := s.CreateRelease(ctx, store.Release{App: "web", Image: digest, Env: map[string]string{}, Config: json.RawMessage{}})
	hi := time.Now()
	ok(t, "CreateRelease(web) with defaults", err)
	between(t, "CreateRelease(web).Created", got.Created, lo, hi)
	want := store.Release{App: "web", Number: 1, Image: digest, Created: got.Created, Status: store.StatusPending}
	checkRelease(t, "CreateRelease(web) with defaults", got, want)
	got, err = s.GetRelease(ctx, "web", 1)
	ok(t, "GetRelease(web, 1)", err)
	checkRelease(t, "GetRelease(web, 1) with defaults", got, want)
	if got.Env != nil || got.Config != nil {
		t.Errorf("GetRelease(web, 1) Env = %#v, Config = %#v; want nil for empty ones", got.Env, got.Config)
	}

	failed, err := s.CreateRelease(ctx, store.Release{App: "web", Image: digest, Status: store.StatusFailed, Reason: "build failed"})
	ok(t, "CreateRelease(web) failed", err)
	if failed.Number != 2 || failed.Status != store.StatusFailed || failed.Reason != "build failed" {
		t.Errorf("CreateRelease(web) failed = %+v, want number 2, failed, reason kept", failed)
	}
}

func testReleaseNumbering(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "a")
	newApp(t, s, "b")
	for want := 1; want <= 2; want++ {
		if r := newRelease(t, s, "a"); r.Number != want {
			t.Errorf("release of a = number %d, want %d", r.Number, want)
		}
	}
	ok(t, "SetReleaseStatus(a, 2, failed)", s.SetReleaseStatus(ctx, "a", 2, store.StatusFailed, "health check failed"))
	if r := newRelease(t, s, "a"); r.Number != 3 {
		t.Errorf("release of a after 2 failed = number %d, want 3 (never reused)", r.Number)
	}
	r, err := s.CreateRelease(ctx, store.Release{App: "a", Image: digest, Status: store.StatusFailed, Reason: "x"})
	ok(t, "CreateRelease(a) failed", err)
	if r.Number != 4 {
		t.Errorf("failed release of a = number %d, want 4", r.Number)
	}
	if r := newRelease(t, s, "a"); r.Number != 5 {
		t.Errorf("release of a after a failed one = number %d, want 5", r.Number)
	}
	if r := newRelease(t, s, "b"); r.Number != 1 {
		t.Errorf("first release of b = number %d, want 1 (numbers are per app)", r.Number)
	}
	rels, err := s.ListReleases(ctx, "a")
	ok(t, "ListReleases(a)", err)
	if got, want := numbers(rels), []int{5, 4, 3, 2, 1}; !slices.Equal(got, want) {
		t.Errorf("ListReleases(a) = %v, want %v (newest first)", got, want)
	}
}

func testCreateReleaseErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	good := store.Release{App: "web", Image: digest, Reason: "deploy"}
	with := func(f func(r *store.Release)) store.Release {
		r := good
		f(&r)
		return r
	}
	tests := []struct {
		name string
		r    store.Release
		kind errkind.Kind
		msg  string
	}{
		{"missing app", with(func(r *store.Release) { r.App = "nope" }), errkind.NotFound, `app "nope" not found`},
		{"empty app", with(func(r *store.Release) { r.App = "" }), errkind.Invalid, "name"},
		{"no image", with(func(r *store.Release) { r.Image = "" }), errkind.Invalid, "image"},
		{"bad config", with(func(r *store.Release) { r.Config = json.RawMessage(`{"port":`) }), errkind.Invalid, "JSON"},
		{"live", with(func(r *store.Release) { r.Status = store.StatusLive }), errkind.Invalid, "live"},
		{"superseded", with(func(r *store.Release) { r.Status = store.StatusSuperseded }), errkind.Invalid, "superseded"},
		{"unknown status", with(func(r *store.Release) { r.Status = "weird" }), errkind.Invalid, "weird"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateRelease(ctx, tc.r)
			wantErr(t, "CreateRelease("+tc.name+")", err, tc.kind, tc.msg)
		})
	}
	// A refused release takes no number.
	if r := newRelease(t, s, "web"); r.Number != 1 {
		t.Errorf("release of web after refused ones = number %d, want 1", r.Number)
	}
	rels, err := s.ListReleases(ctx, "web")
	ok(t, "ListReleases(web)", err)
	if len(rels) != 1 {
		t.Errorf("ListReleases(web) = %v, want [1]", numbers(rels))
	}
}

func testGetReleaseErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	newApp(t, s, "empty")
	newRelease(t, s, "web")
	tests := []struct {
		app    string
		number int
		msg    string
	}{
		{"web", 2, `release 2 of "web" not found`},
		{"web", 0, `release 0 of "web" not found`},
		{"empty", 1, `release 1 of "empty" not found`},
		{"nope", 1, `app "nope" not found`},
	}
	for _, tc := range tests {
		call := fmt.Sprintf("GetRelease(%s, %d)", tc.app, tc.number)
		t.Run(call, func(t *testing.T) {
			_, err := s.GetRelease(ctx, tc.app, tc.number)
			wantErr(t, call, err, errkind.NotFound, tc.msg)
		})
	}
	_, err := s.ListReleases(ctx, "nope")
	wantErr(t, "ListReleases(nope)", err, errkind.NotFound, `app "nope" not found`)
	rels, err := s.ListReleases(ctx, "empty")
	ok(t, "ListReleases(empty)", err)
	if rels == nil || len(rels) != 0 {
		t.Errorf("ListReleases(empty) = %#v, want an empty, non-nil list", rels)
	}
}

func testSetReleaseStatus(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	want := newRelease(t, s, "web")
	steps := []struct {
		status store.Status
		reason string
	}{
		{store.StatusFailed, "health check timed out"},
		{store.StatusPending, "rollback from 3"},
		{store.StatusSuperseded, ""},
	}
	for _, st := range steps {
		ok(t, "SetReleaseStatus(web, 1, "+string(st.status)+")", s.SetReleaseStatus(ctx, "web", 1, st.status, st.reason))
		got, err := s.GetRelease(ctx, "web", 1)
		ok(t, "GetRelease(web, 1)", err)
		want.Status, want.Reason = st.status, st.reason
		checkRelease(t, "GetRelease(web, 1) after SetReleaseStatus("+string(st.status)+")", got, want)
	}
}

func testSetReleaseStatusErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	want := newRelease(t, s, "web")
	tests := []struct {
		name   string
		app    string
		number int
		status store.Status
		kind   errkind.Kind
		msg    string
	}{
		{"live", "web", 1, store.StatusLive, errkind.Invalid, "Promote"},
		{"unknown status", "web", 1, "weird", errkind.Invalid, "weird"},
		{"empty status", "web", 1, "", errkind.Invalid, "status"},
		{"missing release", "web", 7, store.StatusFailed, errkind.NotFound, `release 7 of "web" not found`},
		{"missing app", "nope", 1, store.StatusFailed, errkind.NotFound, `app "nope" not found`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.SetReleaseStatus(ctx, tc.app, tc.number, tc.status, "changed")
			wantErr(t, "SetReleaseStatus("+tc.name+")", err, tc.kind, tc.msg)
		})
	}
	got, err := s.GetRelease(ctx, "web", 1)
	ok(t, "GetRelease(web, 1)", err)
	checkRelease(t, "GetRelease(web, 1) after refused SetReleaseStatus calls", got, want)
}
