package storetest

import (
	"slices"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
)

func testApps(t *testing.T, s store.Store) {
	ctx := t.Context()
	apps, err := s.ListApps(ctx)
	ok(t, "ListApps() on an empty store", err)
	if apps == nil || len(apps) != 0 {
		t.Errorf("ListApps() on an empty store = %#v, want an empty, non-nil list", apps)
	}

	want := store.App{Name: "web", Created: t0, Replicas: 2}
	got, err := s.CreateApp(ctx, want)
	ok(t, "CreateApp(web)", err)
	checkApp(t, "CreateApp(web)", got, want)
	got, err = s.GetApp(ctx, "web")
	ok(t, "GetApp(web)", err)
	checkApp(t, "GetApp(web)", got, want)

	for _, name := range []string{"worker", "api"} {
		newApp(t, s, name)
	}
	apps, err = s.ListApps(ctx)
	ok(t, "ListApps()", err)
	var names []string
	for _, a := range apps {
		names = append(names, a.Name)
	}
	if want := []string{"api", "web", "worker"}; !slices.Equal(names, want) {
		t.Errorf("ListApps() names = %q, want %q (by name)", names, want)
	}

	_, err = s.GetApp(ctx, "nope")
	wantErr(t, "GetApp(nope)", err, errkind.NotFound, `app "nope" not found`)
}

func testCreateAppErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	tests := []struct {
		name string
		app  store.App
		kind errkind.Kind
		msg  string
	}{
		{"duplicate", store.App{Name: "web"}, errkind.Conflict, `app "web" already exists`},
		{"empty name", store.App{Name: ""}, errkind.Invalid, "name"},
		{"negative replicas", store.App{Name: "neg", Replicas: -1}, errkind.Invalid, "replicas"},
		{"live release", store.App{Name: "rel", Release: 3}, errkind.Invalid, "release"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateApp(ctx, tc.app)
			wantErr(t, "CreateApp("+tc.name+")", err, tc.kind, tc.msg)
		})
	}
	apps, err := s.ListApps(ctx)
	ok(t, "ListApps()", err)
	if len(apps) != 1 || apps[0].Replicas != 1 {
		t.Errorf("ListApps() after refused CreateApp calls = %+v, want only web with 1 replica", apps)
	}

	lo := time.Now()
	a, err := s.CreateApp(ctx, store.App{Name: "now"})
	hi := time.Now()
	ok(t, "CreateApp(now) with a zero Created", err)
	between(t, "CreateApp(now).Created", a.Created, lo, hi)
	if a.Release != 0 || a.Replicas != 0 {
		t.Errorf("CreateApp(now) = %+v, want Release 0 and Replicas 0", a)
	}
}

func testSetReplicas(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	for _, n := range []int{3, 0} {
		a, err := s.SetReplicas(ctx, "web", n)
		ok(t, "SetReplicas(web)", err)
		want := store.App{Name: "web", Created: t0, Replicas: n}
		checkApp(t, "SetReplicas(web)", a, want)
		a, err = s.GetApp(ctx, "web")
		ok(t, "GetApp(web)", err)
		checkApp(t, "GetApp(web) after SetReplicas", a, want)
	}

	_, err := s.SetReplicas(ctx, "web", -1)
	wantErr(t, "SetReplicas(web, -1)", err, errkind.Invalid, "replicas")
	_, err = s.SetReplicas(ctx, "nope", 1)
	wantErr(t, "SetReplicas(nope, 1)", err, errkind.NotFound, `app "nope" not found`)
	a, err := s.GetApp(ctx, "web")
	ok(t, "GetApp(web)", err)
	if a.Replicas != 0 {
		t.Errorf("GetApp(web).Replicas after a refused SetReplicas = %d, want 0", a.Replicas)
	}
}

func testDeleteApp(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, name := range []string{"doomed", "kept"} {
		newApp(t, s, name)
		r := newRelease(t, s, name)
		_, err := s.Promote(ctx, name, r.Number, 1, "deploy")
		ok(t, "Promote("+name+")", err)
		ok(t, "PutSandbox("+name+")", s.PutSandbox(ctx, store.Sandbox{ID: name + "-1", App: name, Release: r.Number,
			State: "healthy", Created: t0, Updated: t0}))
	}
	entry, err := s.AppendAudit(ctx, store.AuditEntry{Time: t0, Actor: "uid:0", Action: "DELETE /v1/apps/{app}", Target: "app:doomed", Status: 200})
	ok(t, "AppendAudit", err)

	ok(t, "DeleteApp(doomed)", s.DeleteApp(ctx, "doomed"))

	_, err = s.GetApp(ctx, "doomed")
	wantErr(t, "GetApp(doomed) after DeleteApp", err, errkind.NotFound, `app "doomed" not found`)
	_, err = s.GetRelease(ctx, "doomed", 1)
	wantErr(t, "GetRelease(doomed, 1) after DeleteApp", err, errkind.NotFound, `"doomed" not found`)
	_, err = s.ListReleases(ctx, "doomed")
	wantErr(t, "ListReleases(doomed) after DeleteApp", err, errkind.NotFound, `app "doomed" not found`)
	_, err = s.ListSandboxes(ctx, "doomed")
	wantErr(t, "ListSandboxes(doomed) after DeleteApp", err, errkind.NotFound, `app "doomed" not found`)

	boxes, err := s.ListSandboxes(ctx, "")
	ok(t, "ListSandboxes()", err)
	if len(boxes) != 1 || boxes[0].ID != "kept-1" {
		t.Errorf("ListSandboxes() after DeleteApp(doomed) = %+v, want only kept-1", boxes)
	}
	if rels, err := s.ListReleases(ctx, "kept"); err != nil || len(rels) != 1 || rels[0].Status != store.StatusLive {
		t.Errorf("ListReleases(kept) after DeleteApp(doomed) = %+v, %v; want its one live release", rels, err)
	}
	log, err := s.ListAudit(ctx, 0, 0)
	ok(t, "ListAudit", err)
	if len(log) != 1 {
		t.Fatalf("ListAudit after DeleteApp = %d entries, want the 1 written before", len(log))
	}
	checkAudit(t, "ListAudit()[0] after DeleteApp", log[0], entry)

	err = s.DeleteApp(ctx, "doomed")
	wantErr(t, "DeleteApp(doomed) again", err, errkind.NotFound, `app "doomed" not found`)
}

func testDeleteAppThenCreateAgain(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	newRelease(t, s, "web")
	newRelease(t, s, "web")
	ok(t, "DeleteApp(web)", s.DeleteApp(ctx, "web"))

	a := newApp(t, s, "web")
	if a.Release != 0 {
		t.Errorf("CreateApp(web) again .Release = %d, want 0", a.Release)
	}
	rels, err := s.ListReleases(ctx, "web")
	ok(t, "ListReleases(web)", err)
	if len(rels) != 0 {
		t.Errorf("ListReleases(web) of the new app = %v, want none", numbers(rels))
	}
	if r := newRelease(t, s, "web"); r.Number != 1 {
		t.Errorf("first release of the new app web is number %d, want 1", r.Number)
	}
}
