package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
)

// The identity records follow the store's rules for empty values: empty
// Roles and Factors read back as nil, as an empty Env does, and empty
// Passkeys and Habits as nil, as an empty Config does. Created, when zero,
// is now; every other time stays zero when zero (a user never locked, a
// device never revoked).

// errEdit is what the edit functions of the Update tests return to abort.
var errEdit = errors.New("edit refused")

// ana is a user with every field set, roles unsorted and repeated.
func ana() store.User {
	return store.User{Name: "ana", Created: t0, Roles: []string{"dev", "admin", "dev"},
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", TOTPSecret: "JBSWY3DPEHPK3PXP", TOTPPending: true,
		TOTPLastStep: 58000000, FailedLogins: 2, LockedUntil: t0.Add(time.Minute), LastFailure: t0.Add(-time.Minute), LastLogin: t0.Add(-time.Hour),
		Passkeys: json.RawMessage(`[{"id":"AQID","alg":-7}]`), Habits: json.RawMessage(`{"nets":["192.0.2.0/24"]}`)}
}

func newUser(t *testing.T, s store.Store, name string) store.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), store.User{Name: name, Created: t0, PasswordHash: "$argon2id$x"})
	ok(t, "CreateUser("+name+")", err)
	return u
}

func checkUser(t *testing.T, call string, got, want store.User) {
	t.Helper()
	g, w := got, want
	for _, u := range []*store.User{&g, &w} {
		u.Created, u.LockedUntil, u.LastFailure, u.LastLogin = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		u.Passkeys, u.Habits = nil, nil
	}
	if !reflect.DeepEqual(g, w) { // Roles too: nil and empty differ
		t.Errorf("%s = %+v, want %+v", call, g, w)
	}
	if !sameJSON(got.Passkeys, want.Passkeys) || !sameJSON(got.Habits, want.Habits) {
		t.Errorf("%s Passkeys, Habits = %s, %s; want %s, %s", call, got.Passkeys, got.Habits, want.Passkeys, want.Habits)
	}
	sameTime(t, call+".Created", got.Created, want.Created)
	sameTime(t, call+".LockedUntil", got.LockedUntil, want.LockedUntil)
	sameTime(t, call+".LastFailure", got.LastFailure, want.LastFailure)
	sameTime(t, call+".LastLogin", got.LastLogin, want.LastLogin)
}

func checkDevice(t *testing.T, call string, got, want store.Device) {
	t.Helper()
	g, w := got, want
	for _, d := range []*store.Device{&g, &w} {
		d.Created, d.LastSeen, d.Revoked, d.CertExpires = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		d.Factors = nil
	}
	if !slices.Equal(got.Factors, want.Factors) {
		t.Errorf("%s.Factors = %q, want %q", call, got.Factors, want.Factors)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %+v, want %+v", call, g, w)
	}
	sameTime(t, call+".Created", got.Created, want.Created)
	sameTime(t, call+".LastSeen", got.LastSeen, want.LastSeen)
	sameTime(t, call+".Revoked", got.Revoked, want.Revoked)
	sameTime(t, call+".CertExpires", got.CertExpires, want.CertExpires)
}

func checkSession(t *testing.T, call string, got, want store.Session) {
	t.Helper()
	g, w := got, want
	for _, ss := range []*store.Session{&g, &w} {
		ss.Created, ss.AuthTime, ss.Expires, ss.LastSeen = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	}
	if !reflect.DeepEqual(g, w) { // Factors too: nil and empty differ
		t.Errorf("%s = %+v, want %+v", call, g, w)
	}
	sameTime(t, call+".Created", got.Created, want.Created)
	sameTime(t, call+".AuthTime", got.AuthTime, want.AuthTime)
	sameTime(t, call+".Expires", got.Expires, want.Expires)
	sameTime(t, call+".LastSeen", got.LastSeen, want.LastSeen)
}

func testUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	users, err := s.ListUsers(ctx)
	ok(t, "ListUsers() with none", err)
	if users == nil || len(users) != 0 {
		t.Errorf("ListUsers() with none = %#v, want an empty, non-nil list", users)
	}

	// Roles are kept sorted and without duplicates.
	want := ana()
	want.Roles = []string{"admin", "dev"}
	got, err := s.CreateUser(ctx, ana())
	ok(t, "CreateUser(ana)", err)
	checkUser(t, "CreateUser(ana)", got, want)
	got, err = s.GetUser(ctx, "ana")
	ok(t, "GetUser(ana)", err)
	checkUser(t, "GetUser(ana)", got, want)

	lo := time.Now()
	bob, err := s.CreateUser(ctx, store.User{Name: "bob", Roles: []string{}, Passkeys: json.RawMessage{}})
	hi := time.Now()
	ok(t, "CreateUser(bob) with defaults", err)
	between(t, "CreateUser(bob).Created", bob.Created, lo, hi)
	wantBob := store.User{Name: "bob", Created: bob.Created}
	checkUser(t, "CreateUser(bob)", bob, wantBob)
	got, err = s.GetUser(ctx, "bob")
	ok(t, "GetUser(bob)", err)
	checkUser(t, "GetUser(bob)", got, wantBob)
	if got.Roles != nil || got.Passkeys != nil || got.Habits != nil {
		t.Errorf("GetUser(bob) Roles, Passkeys, Habits = %#v, %#v, %#v; want nil for empty ones", got.Roles, got.Passkeys, got.Habits)
	}

	newUser(t, s, "al")
	users, err = s.ListUsers(ctx)
	ok(t, "ListUsers()", err)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if fmt.Sprint(names) != "[al ana bob]" {
		t.Errorf("ListUsers() names = %q, want [al ana bob] (by name)", names)
	}
	checkUser(t, "ListUsers()[ana]", users[1], want)

	_, err = s.GetUser(ctx, "nope")
	wantErr(t, "GetUser(nope)", err, errkind.NotFound, `user "nope" not found`)
}

func testCreateUserErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	want := newUser(t, s, "ana")
	with := func(f func(u *store.User)) store.User {
		u := store.User{Name: "new", Created: t0}
		f(&u)
		return u
	}
	tests := []struct {
		name string
		u    store.User
		kind errkind.Kind
		msg  string
	}{
		{"duplicate", with(func(u *store.User) { u.Name = "ana" }), errkind.Conflict, `user "ana" already exists`},
		{"empty name", with(func(u *store.User) { u.Name = "" }), errkind.Invalid, "name"},
		{"negative failed logins", with(func(u *store.User) { u.FailedLogins = -1 }), errkind.Invalid, "failed logins"},
		{"empty role", with(func(u *store.User) { u.Roles = []string{"admin", ""} }), errkind.Invalid, "role"},
		{"passkeys not JSON", with(func(u *store.User) { u.Passkeys = json.RawMessage(`[`) }), errkind.Invalid, "passkeys"},
		{"habits not JSON", with(func(u *store.User) { u.Habits = json.RawMessage(`nope`) }), errkind.Invalid, "habits"},
		{"time out of range", with(func(u *store.User) { u.LockedUntil = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) }),
			errkind.Invalid, "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateUser(ctx, tc.u)
			wantErr(t, "CreateUser("+tc.name+")", err, tc.kind, tc.msg)
		})
	}
	users, err := s.ListUsers(ctx)
	ok(t, "ListUsers()", err)
	if len(users) != 1 {
		t.Fatalf("ListUsers() after refused CreateUser calls = %+v, want only ana", users)
	}
	checkUser(t, "ListUsers()[0] after refused CreateUser calls", users[0], want)
}

func testUpdateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.CreateUser(ctx, ana())
	ok(t, "CreateUser(ana)", err)
	want := ana()
	want.Roles = []string{"admin", "dev"}

	// edit sees the record as stored and its changes are kept.
	got, err := s.UpdateUser(ctx, "ana", func(u *store.User) error {
		checkUser(t, "the user given to edit", *u, want)
		u.Disabled, u.TOTPSecret, u.TOTPPending, u.TOTPLastStep = true, "", false, 58000001
		u.FailedLogins, u.LockedUntil, u.LastLogin = 0, time.Time{}, t0.Add(time.Hour)
		u.Roles = append(u.Roles, "ops", "admin")
		u.Passkeys, u.Habits = nil, json.RawMessage(`{"hours":[9,17]}`)
		return nil
	})
	ok(t, "UpdateUser(ana)", err)
	want.Disabled, want.TOTPSecret, want.TOTPPending, want.TOTPLastStep = true, "", false, 58000001
	want.FailedLogins, want.LockedUntil, want.LastLogin = 0, time.Time{}, t0.Add(time.Hour)
	want.Roles = []string{"admin", "dev", "ops"}
	want.Passkeys, want.Habits = nil, json.RawMessage(`{"hours":[9,17]}`)
	checkUser(t, "UpdateUser(ana)", got, want)
	got, err = s.GetUser(ctx, "ana")
	ok(t, "GetUser(ana) after UpdateUser", err)
	checkUser(t, "GetUser(ana) after UpdateUser", got, want)

	// Refused edits write nothing, not even the other changes they made.
	tests := []struct {
		name string
		edit func(u *store.User) error
		kind errkind.Kind
		msg  string
	}{
		{"rename", func(u *store.User) error { u.Disabled = false; u.Name = "eve"; return nil }, errkind.Invalid, "renamed"},
		{"new created", func(u *store.User) error { u.Disabled = false; u.Created = t0.Add(1); return nil },
			errkind.Invalid, "creation time"},
		{"negative failed logins", func(u *store.User) error { u.Disabled = false; u.FailedLogins = -1; return nil },
			errkind.Invalid, "failed logins"},
		{"passkeys not JSON", func(u *store.User) error { u.Disabled = false; u.Passkeys = json.RawMessage(`{`); return nil },
			errkind.Invalid, "passkeys"},
		{"empty role", func(u *store.User) error { u.Disabled = false; u.Roles = []string{""}; return nil }, errkind.Invalid, "role"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.UpdateUser(ctx, "ana", tc.edit)
			wantErr(t, "UpdateUser(ana, "+tc.name+")", err, tc.kind, tc.msg)
		})
	}
	_, err = s.UpdateUser(ctx, "ana", func(u *store.User) error {
		u.Disabled, u.FailedLogins = false, 99
		return errEdit
	})
	if err != errEdit {
		t.Errorf("UpdateUser(ana) with a failing edit = %v, want the edit's error unchanged", err)
	}
	got, err = s.GetUser(ctx, "ana")
	ok(t, "GetUser(ana) after refused updates", err)
	checkUser(t, "GetUser(ana) after refused updates", got, want)
	if _, err := s.GetUser(ctx, "eve"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("GetUser(eve) after a refused rename = %v, want NotFound", err)
	}

	called := false
	_, err = s.UpdateUser(ctx, "nope", func(*store.User) error { called = true; return nil })
	wantErr(t, "UpdateUser(nope)", err, errkind.NotFound, `user "nope" not found`)
	if called {
		t.Errorf("UpdateUser(nope) called edit, want it not called for a missing user")
	}

	// Emptied roles read back as nil.
	got, err = s.UpdateUser(ctx, "ana", func(u *store.User) error { u.Roles = []string{}; return nil })
	ok(t, "UpdateUser(ana) emptying the roles", err)
	if got.Roles != nil {
		t.Errorf("UpdateUser(ana) emptying the roles .Roles = %#v, want nil", got.Roles)
	}
}

// testConcurrentUpdateUser increments a counter from many goroutines: no
// update may be lost.
func testConcurrentUpdateUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	newUser(t, s, "ana")
	const workers = 20
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			_, err := s.UpdateUser(ctx, "ana", func(u *store.User) error {
				u.FailedLogins++
				return nil
			})
			if err != nil {
				t.Errorf("UpdateUser(ana) #%d: %v", i, err)
			}
		})
	}
	wg.Wait()
	u, err := s.GetUser(ctx, "ana")
	ok(t, "GetUser(ana)", err)
	if u.FailedLogins != workers {
		t.Errorf("FailedLogins after %d concurrent increments = %d, want %d", workers, u.FailedLogins, workers)
	}
}

func testDevices(t *testing.T, s store.Store) {
	ctx := t.Context()
	newUser(t, s, "ana")
	newUser(t, s, "bob")
	for _, user := range []string{"", "ana"} {
		devices, err := s.ListDevices(ctx, user)
		ok(t, "ListDevices("+user+") with none", err)
		if devices == nil || len(devices) != 0 {
			t.Errorf("ListDevices(%s) with none = %#v, want an empty, non-nil list", user, devices)
		}
	}

	// Created a nanosecond apart, IDs in the opposite order: listing is by
	// creation.
	laptop := store.Device{ID: "dev-b", User: "ana", Name: "laptop", KeyHash: "ab12", Created: t0,
		LastSeen: t0.Add(time.Minute), CertSerial: "01", CertExpires: t0.Add(24 * time.Hour)}
	phone := store.Device{ID: "dev-a", User: "ana", Name: "phone", KeyHash: "cd34", Created: t0.Add(1),
		Revoked: t0.Add(time.Hour), RevokeReason: "lost"}
	desk := store.Device{ID: "dev-c", User: "bob", Name: "desk", KeyHash: "ef56", Created: t0.Add(-time.Second)}
	for _, d := range []store.Device{phone, desk, laptop} {
		got, err := s.CreateDevice(ctx, d)
		ok(t, "CreateDevice("+d.ID+")", err)
		checkDevice(t, "CreateDevice("+d.ID+")", got, d)
	}
	got, err := s.GetDevice(ctx, "dev-a")
	ok(t, "GetDevice(dev-a)", err)
	checkDevice(t, "GetDevice(dev-a)", got, phone)
	checkDevices(t, s, "ana", laptop, phone)
	checkDevices(t, s, "", desk, laptop, phone)

	lo := time.Now()
	d, err := s.CreateDevice(ctx, store.Device{ID: "dev-d", User: "bob", KeyHash: "0000"})
	hi := time.Now()
	ok(t, "CreateDevice(dev-d) with zero times", err)
	between(t, "CreateDevice(dev-d).Created", d.Created, lo, hi)
	checkDevice(t, "CreateDevice(dev-d)", d, store.Device{ID: "dev-d", User: "bob", KeyHash: "0000", Created: d.Created})

	_, err = s.GetDevice(ctx, "nope")
	wantErr(t, "GetDevice(nope)", err, errkind.NotFound, `device "nope" not found`)
	_, err = s.ListDevices(ctx, "nope")
	wantErr(t, "ListDevices(nope)", err, errkind.NotFound, `user "nope" not found`)
}

// checkDevices checks that ListDevices(user) returns want, in order.
func checkDevices(t *testing.T, s store.Store, user string, want ...store.Device) {
	t.Helper()
	call := "ListDevices(" + user + ")"
	got, err := s.ListDevices(t.Context(), user)
	ok(t, call, err)
	if len(got) != len(want) {
		t.Fatalf("%s = %+v, want %d devices", call, got, len(want))
	}
	for i := range want {
		checkDevice(t, call+"["+want[i].ID+"]", got[i], want[i])
	}
}

func testDeviceErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	newUser(t, s, "ana")
	good := store.Device{ID: "dev-a", User: "ana", KeyHash: "ab12", Created: t0}
	_, err := s.CreateDevice(ctx, good)
	ok(t, "CreateDevice(dev-a)", err)
	with := func(f func(d *store.Device)) store.Device {
		d := good
		d.ID = "dev-new"
		f(&d)
		return d
	}
	tests := []struct {
		name string
		d    store.Device
		kind errkind.Kind
		msg  string
	}{
		{"duplicate", with(func(d *store.Device) { d.ID = "dev-a"; d.Name = "other" }), errkind.Conflict, `device "dev-a" already exists`},
		{"no id", with(func(d *store.Device) { d.ID = "" }), errkind.Invalid, "id"},
		{"no user", with(func(d *store.Device) { d.User = "" }), errkind.Invalid, "name"},
		{"unknown user", with(func(d *store.Device) { d.User = "nope" }), errkind.NotFound, `user "nope" not found`},
		{"time out of range", with(func(d *store.Device) { d.CertExpires = time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC) }),
			errkind.Invalid, "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateDevice(ctx, tc.d)
			wantErr(t, "CreateDevice("+tc.name+")", err, tc.kind, tc.msg)
		})
	}
	checkDevices(t, s, "", good)
}

func testUpdateDevice(t *testing.T, s store.Store) {
	ctx := t.Context()
	newUser(t, s, "ana")
	newUser(t, s, "bob")
	want := store.Device{ID: "dev-a", User: "ana", Name: "laptop", KeyHash: "ab12", Created: t0}
	_, err := s.CreateDevice(ctx, want)
	ok(t, "CreateDevice(dev-a)", err)

	got, err := s.UpdateDevice(ctx, "dev-a", func(d *store.Device) error {
		checkDevice(t, "the device given to edit", *d, want)
		d.LastSeen, d.CertSerial, d.CertExpires = t0.Add(time.Minute), "0a", t0.Add(time.Hour)
		d.Revoked, d.RevokeReason = t0.Add(2*time.Minute), "stolen"
		return nil
	})
	ok(t, "UpdateDevice(dev-a)", err)
	want.LastSeen, want.CertSerial, want.CertExpires = t0.Add(time.Minute), "0a", t0.Add(time.Hour)
	want.Revoked, want.RevokeReason = t0.Add(2*time.Minute), "stolen"
	checkDevice(t, "UpdateDevice(dev-a)", got, want)
	got, err = s.GetDevice(ctx, "dev-a")
	ok(t, "GetDevice(dev-a) after UpdateDevice", err)
	checkDevice(t, "GetDevice(dev-a) after UpdateDevice", got, want)

	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		edit func(d *store.Device) error
		kind errkind.Kind
		msg  string
	}{
		{"new id", func(d *store.Device) error { d.Name = "x"; d.ID = "dev-z"; return nil }, errkind.Invalid, "id"},
		{"new user", func(d *store.Device) error { d.Name = "x"; d.User = "bob"; return nil }, errkind.Invalid, "user"},
		{"new created", func(d *store.Device) error { d.Name = "x"; d.Created = time.Time{}; return nil },
			errkind.Invalid, "creation time"},
		{"time out of range", func(d *store.Device) error { d.Name = "x"; d.LastSeen = far; return nil }, errkind.Invalid, "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.UpdateDevice(ctx, "dev-a", tc.edit)
			wantErr(t, "UpdateDevice(dev-a, "+tc.name+")", err, tc.kind, tc.msg)
		})
	}
	_, err = s.UpdateDevice(ctx, "dev-a", func(d *store.Device) error { d.Name = "x"; return errEdit })
	if err != errEdit {
		t.Errorf("UpdateDevice(dev-a) with a failing edit = %v, want the edit's error unchanged", err)
	}
	checkDevices(t, s, "ana", want)
	checkDevices(t, s, "bob")

	_, err = s.UpdateDevice(ctx, "nope", func(*store.Device) error { return nil })
	wantErr(t, "UpdateDevice(nope)", err, errkind.NotFound, `device "nope" not found`)
}

func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	newUser(t, s, "ana")
	want := store.Session{ID: "5e55", User: "ana", Created: t0, AuthTime: t0.Add(time.Second),
		Factors: []string{"password", "totp"}, Expires: t0.Add(12 * time.Hour), LastSeen: t0.Add(time.Minute), Addr: "192.0.2.7"}
	got, err := s.CreateSession(ctx, want)
	ok(t, "CreateSession(5e55)", err)
	checkSession(t, "CreateSession(5e55)", got, want)
	got, err = s.GetSession(ctx, "5e55")
	ok(t, "GetSession(5e55)", err)
	checkSession(t, "GetSession(5e55)", got, want)

	lo := time.Now()
	bare, err := s.CreateSession(ctx, store.Session{ID: "ba4e", User: "ana", Factors: []string{}, Expires: t0})
	hi := time.Now()
	ok(t, "CreateSession(ba4e) with defaults", err)
	between(t, "CreateSession(ba4e).Created", bare.Created, lo, hi)
	wantBare := store.Session{ID: "ba4e", User: "ana", Created: bare.Created, Expires: t0}
	checkSession(t, "CreateSession(ba4e)", bare, wantBare)
	got, err = s.GetSession(ctx, "ba4e")
	ok(t, "GetSession(ba4e)", err)
	checkSession(t, "GetSession(ba4e)", got, wantBare)

	_, err = s.GetSession(ctx, "nope")
	wantErr(t, "GetSession(nope)", err, errkind.NotFound, `session "nope" not found`)

	good := store.Session{ID: "new", User: "ana", Expires: t0}
	with := func(f func(ss *store.Session)) store.Session {
		ss := good
		f(&ss)
		return ss
	}
	tests := []struct {
		name string
		ss   store.Session
		kind errkind.Kind
		msg  string
	}{
		{"duplicate", with(func(ss *store.Session) { ss.ID = "5e55" }), errkind.Conflict, `session "5e55" already exists`},
		{"no id", with(func(ss *store.Session) { ss.ID = "" }), errkind.Invalid, "id"},
		{"no user", with(func(ss *store.Session) { ss.User = "" }), errkind.Invalid, "name"},
		{"unknown user", with(func(ss *store.Session) { ss.User = "nope" }), errkind.NotFound, `user "nope" not found`},
		{"no expiry", with(func(ss *store.Session) { ss.Expires = time.Time{} }), errkind.Invalid, "expiry"},
		{"empty factor", with(func(ss *store.Session) { ss.Factors = []string{"password", ""} }), errkind.Invalid, "factor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateSession(ctx, tc.ss)
			wantErr(t, "CreateSession("+tc.name+")", err, tc.kind, tc.msg)
		})
	}
	got, err = s.GetSession(ctx, "5e55")
	ok(t, "GetSession(5e55) after refused CreateSession calls", err)
	checkSession(t, "GetSession(5e55) after refused CreateSession calls", got, want)
	_, err = s.GetSession(ctx, "new")
	wantErr(t, "GetSession(new) after refused CreateSession calls", err, errkind.NotFound, `session "new" not found`)
}

func testUpdateSession(t *testing.T, s store.Store) {
	ctx := t.Context()
	newUser(t, s, "ana")
	newUser(t, s, "bob")
	want := store.Session{ID: "5e55", User: "ana", Created: t0, AuthTime: t0, Factors: []string{"password"},
		Expires: t0.Add(time.Hour), Addr: "192.0.2.7"}
	_, err := s.CreateSession(ctx, want)
	ok(t, "CreateSession(5e55)", err)

	// A step-up: a second factor, a new authentication time, renewed.
	got, err := s.UpdateSession(ctx, "5e55", func(ss *store.Session) error {
		checkSession(t, "the session given to edit", *ss, want)
		ss.Factors = append(ss.Factors, "totp")
		ss.AuthTime, ss.Expires, ss.LastSeen = t0.Add(time.Minute), t0.Add(2*time.Hour), t0.Add(time.Minute)
		return nil
	})
	ok(t, "UpdateSession(5e55)", err)
	want.Factors = []string{"password", "totp"}
	want.AuthTime, want.Expires, want.LastSeen = t0.Add(time.Minute), t0.Add(2*time.Hour), t0.Add(time.Minute)
	checkSession(t, "UpdateSession(5e55)", got, want)
	got, err = s.GetSession(ctx, "5e55")
	ok(t, "GetSession(5e55) after UpdateSession", err)
	checkSession(t, "GetSession(5e55) after UpdateSession", got, want)

	tests := []struct {
		name string
		edit func(ss *store.Session) error
		kind errkind.Kind
		msg  string
	}{
		{"new id", func(ss *store.Session) error { ss.Addr = "x"; ss.ID = "0ther"; return nil }, errkind.Invalid, "id"},
		{"new user", func(ss *store.Session) error { ss.Addr = "x"; ss.User = "bob"; return nil }, errkind.Invalid, "user"},
		{"new created", func(ss *store.Session) error { ss.Addr = "x"; ss.Created = t0.Add(-1); return nil },
			errkind.Invalid, "creation time"},
		{"no expiry", func(ss *store.Session) error { ss.Addr = "x"; ss.Expires = time.Time{}; return nil }, errkind.Invalid, "expiry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.UpdateSession(ctx, "5e55", tc.edit)
			wantErr(t, "UpdateSession(5e55, "+tc.name+")", err, tc.kind, tc.msg)
		})
	}
	_, err = s.UpdateSession(ctx, "5e55", func(ss *store.Session) error { ss.Addr = "x"; return errEdit })
	if err != errEdit {
		t.Errorf("UpdateSession(5e55) with a failing edit = %v, want the edit's error unchanged", err)
	}
	got, err = s.GetSession(ctx, "5e55")
	ok(t, "GetSession(5e55) after refused updates", err)
	checkSession(t, "GetSession(5e55) after refused updates", got, want)
	n, err := s.DeleteSessions(ctx, "bob")
	ok(t, "DeleteSessions(bob)", err)
	if n != 0 {
		t.Errorf("DeleteSessions(bob) after a refused move to bob = %d, want 0", n)
	}

	_, err = s.UpdateSession(ctx, "nope", func(*store.Session) error { return nil })
	wantErr(t, "UpdateSession(nope)", err, errkind.NotFound, `session "nope" not found`)

	got, err = s.UpdateSession(ctx, "5e55", func(ss *store.Session) error { ss.Factors = nil; return nil })
	ok(t, "UpdateSession(5e55) emptying the factors", err)
	if got.Factors != nil {
		t.Errorf("UpdateSession(5e55) emptying the factors .Factors = %#v, want nil", got.Factors)
	}
}

func testDeleteSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	newUser(t, s, "ana")
	newUser(t, s, "bob")
	// Sessions of ana expire 1ns before, at and 1ns after t0; bob's later.
	for i, user := range []string{"ana", "ana", "ana", "bob", "bob"} {
		_, err := s.CreateSession(ctx, store.Session{ID: fmt.Sprintf("s%d", i), User: user, Created: t0.Add(-time.Hour),
			Expires: t0.Add(time.Duration(i - 1))})
		ok(t, fmt.Sprintf("CreateSession(s%d)", i), err)
	}
	exists := func(id string) bool {
		_, err := s.GetSession(ctx, id)
		if err != nil && !errkind.Is(err, errkind.NotFound) {
			t.Fatalf("GetSession(%s): %v", id, err)
		}
		return err == nil
	}
	checkLeft := func(call string, want ...string) {
		t.Helper()
		var left []string
		for i := range 5 {
			if id := fmt.Sprintf("s%d", i); exists(id) {
				left = append(left, id)
			}
		}
		if fmt.Sprint(left) != fmt.Sprint(want) {
			t.Errorf("sessions after %s = %v, want %v", call, left, want)
		}
	}

	n, err := s.PruneSessions(ctx, t0)
	ok(t, "PruneSessions(t0)", err)
	if n != 1 {
		t.Errorf("PruneSessions(t0) = %d, want 1 (only the session that expired before t0)", n)
	}
	checkLeft("PruneSessions(t0)", "s1", "s2", "s3", "s4")
	n, err = s.PruneSessions(ctx, t0)
	ok(t, "PruneSessions(t0) again", err)
	if n != 0 {
		t.Errorf("PruneSessions(t0) again = %d, want 0", n)
	}
	_, err = s.PruneSessions(ctx, time.Time{})
	wantErr(t, "PruneSessions(zero time)", err, errkind.Invalid, "time")

	ok(t, "DeleteSession(s3)", s.DeleteSession(ctx, "s3"))
	ok(t, "DeleteSession(s3) again", s.DeleteSession(ctx, "s3"))
	ok(t, "DeleteSession(unknown)", s.DeleteSession(ctx, "unknown"))
	wantErr(t, `DeleteSession("")`, s.DeleteSession(ctx, ""), errkind.Invalid, "id")
	checkLeft("DeleteSession(s3)", "s1", "s2", "s4")

	n, err = s.DeleteSessions(ctx, "ana")
	ok(t, "DeleteSessions(ana)", err)
	if n != 2 {
		t.Errorf("DeleteSessions(ana) = %d, want 2", n)
	}
	checkLeft("DeleteSessions(ana)", "s4")
	for _, user := range []string{"ana", "nope"} {
		n, err = s.DeleteSessions(ctx, user)
		ok(t, "DeleteSessions("+user+") with none", err)
		if n != 0 {
			t.Errorf("DeleteSessions(%s) with none = %d, want 0", user, n)
		}
	}
	_, err = s.DeleteSessions(ctx, "")
	wantErr(t, `DeleteSessions("")`, err, errkind.Invalid, "name")
	if _, err := s.GetUser(ctx, "ana"); err != nil {
		t.Errorf("GetUser(ana) after DeleteSessions(ana) = %v, want the user kept", err)
	}
}
