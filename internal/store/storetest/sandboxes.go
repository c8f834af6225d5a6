package storetest

import (
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
)

func testSandboxes(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	newApp(t, s, "api")
	newRelease(t, s, "web")
	newRelease(t, s, "web")
	newRelease(t, s, "api")

	boxes, err := s.ListSandboxes(ctx, "web")
	ok(t, "ListSandboxes(web) with none", err)
	if boxes == nil || len(boxes) != 0 {
		t.Errorf("ListSandboxes(web) with none = %#v, want an empty, non-nil list", boxes)
	}

	// Created a nanosecond apart, IDs in the opposite order: listing is by
	// creation.
	web1 := store.Sandbox{ID: "web-1-bbb", App: "web", Release: 1, State: "starting", Addr: "10.88.0.2:8080",
		Created: t0, Updated: t0}
	web2 := store.Sandbox{ID: "web-1-aaa", App: "web", Release: 1, State: "healthy", Addr: "10.88.0.3:8080",
		Restarts: 1, LastExit: "exit status 2", Created: t0.Add(1), Updated: t0.Add(time.Minute)}
	api1 := store.Sandbox{ID: "api-1-ccc", App: "api", Release: 1, State: "healthy", Addr: "10.88.0.4:8080",
		Created: t0.Add(-time.Second), Updated: t0}
	for _, b := range []store.Sandbox{web2, api1, web1} {
		ok(t, "PutSandbox("+b.ID+")", s.PutSandbox(ctx, b))
	}
	checkSandboxes(t, s, "web", web1, web2)
	checkSandboxes(t, s, "", api1, web1, web2)

	// Putting the same ID replaces the record.
	web1.Release, web1.State, web1.Restarts, web1.LastExit = 2, "crashloop", 5, "signal: killed"
	web1.Updated = t0.Add(time.Hour)
	ok(t, "PutSandbox(web-1-bbb) again", s.PutSandbox(ctx, web1))
	checkSandboxes(t, s, "web", web1, web2)

	ok(t, "DeleteSandbox(web-1-bbb)", s.DeleteSandbox(ctx, web1.ID))
	checkSandboxes(t, s, "web", web2)
	ok(t, "DeleteSandbox(web-1-bbb) again", s.DeleteSandbox(ctx, web1.ID))
	ok(t, "DeleteSandbox(unknown)", s.DeleteSandbox(ctx, "unknown"))
	checkSandboxes(t, s, "", api1, web2)

	// Zero times mean now.
	lo := time.Now()
	ok(t, "PutSandbox(zero times)", s.PutSandbox(ctx, store.Sandbox{ID: "api-1-ddd", App: "api", Release: 1, State: "starting"}))
	hi := time.Now()
	boxes, err = s.ListSandboxes(ctx, "api")
	ok(t, "ListSandboxes(api)", err)
	if len(boxes) != 2 || boxes[1].ID != "api-1-ddd" {
		t.Fatalf("ListSandboxes(api) = %+v, want api-1-ccc then api-1-ddd", boxes)
	}
	between(t, "Created of a sandbox put with a zero one", boxes[1].Created, lo, hi)
	between(t, "Updated of a sandbox put with a zero one", boxes[1].Updated, lo, hi)
}

// checkSandboxes checks that ListSandboxes(app) returns want, in order.
func checkSandboxes(t *testing.T, s store.Store, app string, want ...store.Sandbox) {
	t.Helper()
	call := "ListSandboxes(" + app + ")"
	got, err := s.ListSandboxes(t.Context(), app)
	ok(t, call, err)
	if len(got) != len(want) {
		var ids []string
		for _, b := range got {
			ids = append(ids, b.ID)
		}
		t.Fatalf("%s = %q, want %d sandboxes", call, ids, len(want))
	}
	for i := range want {
		checkSandbox(t, call+"["+want[i].ID+"]", got[i], want[i])
	}
}

func testSandboxErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	newApp(t, s, "web")
	newRelease(t, s, "web")
	good := store.Sandbox{ID: "web-1-aaa", App: "web", Release: 1, State: "starting", Created: t0, Updated: t0}
	with := func(f func(b *store.Sandbox)) store.Sandbox {
		b := good
		f(&b)
		return b
	}
	tests := []struct {
		name string
		b    store.Sandbox
		kind errkind.Kind
		msg  string
	}{
		{"no id", with(func(b *store.Sandbox) { b.ID = "" }), errkind.Invalid, "id"},
		{"no app", with(func(b *store.Sandbox) { b.App = "" }), errkind.Invalid, "name"},
		{"missing app", with(func(b *store.Sandbox) { b.App = "nope" }), errkind.NotFound, `app "nope" not found`},
		{"missing release", with(func(b *store.Sandbox) { b.Release = 9 }), errkind.NotFound, `release 9 of "web" not found`},
		{"negative restarts", with(func(b *store.Sandbox) { b.Restarts = -1 }), errkind.Invalid, "restarts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.PutSandbox(ctx, tc.b)
			wantErr(t, "PutSandbox("+tc.name+")", err, tc.kind, tc.msg)
		})
	}
	checkSandboxes(t, s, "")

	_, err := s.ListSandboxes(ctx, "nope")
	wantErr(t, "ListSandboxes(nope)", err, errkind.NotFound, `app "nope" not found`)
	err = s.DeleteSandbox(ctx, "")
	wantErr(t, `DeleteSandbox("")`, err, errkind.Invalid, "id")
}
