package identity_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"noops/internal/errkind"
	"noops/internal/identity"
)

func TestAddUserRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	tests := []struct {
		name     string
		user     string
		password string
		roles    []string
		want     errkind.Kind
	}{
		{"empty name", "", password, nil, errkind.Invalid},
		{"capitals", "Alice", password, nil, errkind.Invalid},
		{"starts with a digit", "1alice", password, nil, errkind.Invalid},
		{"slash", "al/ice", password, nil, errkind.Invalid},
		{"too long", strings.Repeat("a", 33), password, nil, errkind.Invalid},
		{"bad role", "bob", password, []string{"Admin"}, errkind.Invalid},
		{"short password", "bob", "123456789", nil, errkind.Invalid},
		{"exists", "alice", password, nil, errkind.Conflict},
	}
	for _, tc := range tests {
		u, err := e.svc.AddUser(context.Background(), tc.user, tc.password, tc.roles)
		if !errkind.Is(err, tc.want) {
			t.Errorf("%s: AddUser(%q, …, %q) = %+v, %v; want %v", tc.name, tc.user, tc.roles, u.Name, err, tc.want)
		}
	}
	u, err := e.svc.AddUser(context.Background(), "bob", password, []string{"viewer", "ops", "viewer"})
	if err != nil || !slices.Equal(u.Roles, []string{"ops", "viewer"}) {
		t.Errorf("AddUser(bob, roles viewer ops viewer) = %v, %v; want roles [ops viewer]", u.Roles, err)
	}
}

func TestSetRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice", "viewer")
	e.addUser(t, "bob")
	ctx := context.Background()
	u, err := e.svc.SetRoles(ctx, "alice", []string{"ops", "admin", "ops"})
	if err != nil || !slices.Equal(u.Roles, []string{"admin", "ops"}) {
		t.Errorf("SetRoles(alice, ops admin ops) = %v, %v; want [admin ops]", u.Roles, err)
	}
	_, err = e.svc.SetRoles(ctx, "alice", []string{"no spaces"})
	checkErr(t, "SetRoles(alice, \"no spaces\")", err, errkind.Invalid)
	_, err = e.svc.SetRoles(ctx, "carol", []string{"ops"})
	checkErr(t, "SetRoles(carol)", err, errkind.NotFound)
	// The roles a sign-in sees are the new ones.
	if a := e.signIn(t, "alice", ""); !slices.Equal(a.User.Roles, []string{"admin", "ops"}) {
		t.Errorf("Authenticate(alice).User.Roles = %v, want [admin ops]", a.User.Roles)
	}
	users, err := e.svc.Users(ctx)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if err != nil || !slices.Equal(names, []string{"alice", "bob"}) {
		t.Errorf("Users() = %v, %v; want alice, bob", names, err)
	}
	if e.svc.Domain() != domain {
		t.Errorf("Domain() = %q, want %q", e.svc.Domain(), domain)
	}
}
