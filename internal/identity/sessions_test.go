package identity_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/identity"
	"noops/internal/store"
)

func sessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// startSession signs name in and opens a session for it.
func (e *env) startSession(t *testing.T, name string) (string, store.Session) {
	t.Helper()
	a := e.signIn(t, name, "")
	token, sess, err := e.svc.StartSession(context.Background(), a, addr)
	if err != nil {
		t.Fatalf("StartSession(%s) = %v", name, err)
	}
	return token, sess
}

func TestStartSession(t *testing.T) {
	t.Parallel()
	const idle = 2 * time.Hour
	e := newEnv(t, identity.Config{SessionIdle: idle})
	e.addUser(t, "alice")
	ctx := context.Background()
	token, sess := e.startSession(t, "alice")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if len(token) != 43 || err != nil || len(raw) != 32 {
		t.Errorf("StartSession(alice) token = %q, want 32 random bytes in 43 base64url characters", token)
	}
	want := store.Session{ID: sessionID(token), User: "alice", Created: t0, AuthTime: t0, Factors: []string{identity.FactorPassword},
		Expires: t0.Add(idle), LastSeen: t0, Addr: addr}
	if !sameSession(sess, want) {
		t.Errorf("StartSession(alice) = %+v, want %+v", sess, want)
	}
	stored, err := e.st.GetSession(ctx, sessionID(token))
	if err != nil || !sameSession(stored, want) {
		t.Errorf("GetSession(sha256(token)) = %+v, %v; want %+v", stored, err, want)
	}
	_, err = e.st.GetSession(ctx, token)
	checkErr(t, "GetSession(token)", err, errkind.NotFound)

	token2, _ := e.startSession(t, "alice")
	if token2 == token {
		t.Errorf("two sessions have the same token %q", token)
	}
	s, u, renewed, err := e.svc.Session(ctx, token)
	if err != nil || s.ID != sessionID(token) || u.Name != "alice" || renewed {
		t.Errorf("Session(token) = %s of %s, renewed %v, %v; want alice's session, not renewed", s.ID, u.Name, renewed, err)
	}
}

// TestStartSessionHonoursMax checks that a session never outlives
// SessionMax, even when SessionIdle is longer.
func TestStartSessionHonoursMax(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{SessionIdle: 48 * time.Hour, SessionMax: 24 * time.Hour})
	e.addUser(t, "alice")
	_, sess := e.startSession(t, "alice")
	if !sess.Expires.Equal(t0.Add(24 * time.Hour)) {
		t.Errorf("StartSession(alice) with SessionIdle 48h, SessionMax 24h expires at %v, want %v", sess.Expires, t0.Add(24*time.Hour))
	}
}

func sameSession(a, b store.Session) bool {
	return a.ID == b.ID && a.User == b.User && a.Created.Equal(b.Created) && a.AuthTime.Equal(b.AuthTime) &&
		slices.Equal(a.Factors, b.Factors) && a.Expires.Equal(b.Expires) && a.LastSeen.Equal(b.LastSeen) && a.Addr == b.Addr
}

func TestSessionRenews(t *testing.T) {
	t.Parallel()
	const idle, maxAge = time.Hour, 3 * time.Hour
	e := newEnv(t, identity.Config{SessionIdle: idle, SessionMax: maxAge})
	e.addUser(t, "alice")
	token, _ := e.startSession(t, "alice")
	tests := []struct {
		name        string
		at          time.Duration // since t0
		wantRenewed bool
		wantExpires time.Duration // since t0
	}{
		{"used at once", 0, false, idle},
		{"used within the minute", 59 * time.Second, false, idle},
		{"used after a minute", time.Minute, true, time.Minute + idle},
		{"used again soon", time.Minute + 30*time.Second, false, time.Minute + idle},
		{"used 50 minutes later", 51 * time.Minute, true, 51*time.Minute + idle},
		{"and again", 100 * time.Minute, true, 100*time.Minute + idle},
		{"renewed up to the maximum", 150 * time.Minute, true, maxAge},
		{"a second before the maximum", maxAge - time.Second, true, maxAge},
	}
	for _, tc := range tests {
		e.clk.Set(t0.Add(tc.at))
		s, u, renewed, err := e.svc.Session(context.Background(), token)
		if err != nil || u.Name != "alice" || renewed != tc.wantRenewed || !s.Expires.Equal(t0.Add(tc.wantExpires)) {
			t.Errorf("%s: Session(token) at t0+%v = expires t0+%v, renewed %v, %v; want expires t0+%v, renewed %v",
				tc.name, tc.at, s.Expires.Sub(t0), renewed, err, tc.wantExpires, tc.wantRenewed)
		}
	}
	e.clk.Set(t0.Add(maxAge))
	_, _, _, err := e.svc.Session(context.Background(), token)
	checkErr(t, "Session(token) at SessionMax", err, errkind.Unauthenticated, "expired")
}

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{SessionIdle: time.Hour})
	e.addUser(t, "alice")
	ctx := context.Background()
	token, _ := e.startSession(t, "alice")
	e.clk.Advance(time.Hour - time.Second)
	if _, _, _, err := e.svc.Session(ctx, token); err != nil {
		t.Fatalf("Session(token) a second before it expires = %v, want success", err)
	}
	e.clk.Advance(time.Hour) // the use above renewed it
	_, _, _, err := e.svc.Session(ctx, token)
	checkErr(t, "Session(token) after it expired", err, errkind.Unauthenticated, "expired")
	_, err = e.st.GetSession(ctx, sessionID(token))
	checkErr(t, "GetSession of an expired session after Session", err, errkind.NotFound)
	_, _, _, err = e.svc.Session(ctx, token)
	checkErr(t, "Session(token) again", err, errkind.Unauthenticated, "ended")
}

func TestSessionRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	token, _ := e.startSession(t, "alice")
	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"short", token[:42]},
		{"long", token + "A"},
		{"unknown", strings.Repeat("A", 43)},
		{"the session's ID", sessionID(token)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _, _, err := e.svc.Session(context.Background(), tc.token)
			checkErr(t, "Session("+tc.token+")", err, errkind.Unauthenticated)
			if s.ID == sessionID(token) {
				t.Errorf("Session(%q) returned alice's session", tc.token)
			}
		})
	}
}

func TestSessionDisabledUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	e.addUser(t, "bob")
	ctx := context.Background()

	// Disabled behind the service's back: refused once its cache is old.
	token, _ := e.startSession(t, "alice")
	if _, _, _, err := e.svc.Session(ctx, token); err != nil {
		t.Fatalf("Session(alice's token) = %v", err)
	}
	if _, err := e.st.UpdateUser(ctx, "alice", func(u *store.User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	_, _, _, err := e.svc.Session(ctx, token)
	checkErr(t, "Session(token) of a disabled user", err, errkind.Unauthenticated, "disabled")

	// Disabled through the service: the sessions end at once.
	t1, _ := e.startSession(t, "bob")
	t2, _ := e.startSession(t, "bob")
	if _, err := e.svc.SetDisabled(ctx, "bob", true); err != nil {
		t.Fatalf("SetDisabled(bob) = %v", err)
	}
	for _, tok := range []string{t1, t2} {
		_, err := e.st.GetSession(ctx, sessionID(tok))
		checkErr(t, "GetSession(bob's session) after SetDisabled", err, errkind.NotFound)
		_, _, _, err = e.svc.Session(ctx, tok)
		checkErr(t, "Session(bob's token) after SetDisabled", err, errkind.Unauthenticated)
	}
	// Enabling again does not bring them back.
	if _, err := e.svc.SetDisabled(ctx, "bob", false); err != nil {
		t.Fatalf("SetDisabled(bob, false) = %v", err)
	}
	_, _, _, err = e.svc.Session(ctx, t1)
	checkErr(t, "Session(bob's token) after enabling bob", err, errkind.Unauthenticated)
}

func TestStepUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	bob := e.addUser(t, "bob")
	ctx := context.Background()
	token, _ := e.startSession(t, "alice")

	e.clk.Advance(10 * time.Minute)
	u, _ := e.svc.User(ctx, "alice")
	fresh := identity.Auth{User: u, Factors: []string{identity.FactorPassword, identity.FactorPasskey}, Time: e.clk.Now()}
	s, err := e.svc.StepUp(ctx, token, fresh)
	if err != nil || !s.AuthTime.Equal(fresh.Time) || !slices.Equal(s.Factors, fresh.Factors) || !s.Created.Equal(t0) {
		t.Errorf("StepUp(alice's session) = auth time %v, factors %v, %v; want %v, %v", s.AuthTime, s.Factors, err, fresh.Time, fresh.Factors)
	}

	other := identity.Auth{User: bob, Factors: []string{identity.FactorPassword}, Time: e.clk.Now().Add(time.Minute)}
	_, err = e.svc.StepUp(ctx, token, other)
	checkErr(t, "StepUp(alice's session, bob)", err, errkind.Permission, "another user")
	s, _, _, err = e.svc.Session(ctx, token)
	if err != nil || !s.AuthTime.Equal(fresh.Time) || !slices.Equal(s.Factors, fresh.Factors) {
		t.Errorf("after a refused StepUp, Session = auth time %v, factors %v, %v; want unchanged %v, %v", s.AuthTime, s.Factors, err, fresh.Time, fresh.Factors)
	}

	_, err = e.svc.StepUp(ctx, strings.Repeat("A", 43), fresh)
	checkErr(t, "StepUp(unknown token)", err, errkind.NotFound)
}

func TestEndSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	ctx := context.Background()
	token, _ := e.startSession(t, "alice")
	other, _ := e.startSession(t, "alice")
	if err := e.svc.EndSession(ctx, token); err != nil {
		t.Fatalf("EndSession = %v", err)
	}
	_, _, _, err := e.svc.Session(ctx, token)
	checkErr(t, "Session(token) after EndSession", err, errkind.Unauthenticated, "ended")
	if err := e.svc.EndSession(ctx, token); err != nil {
		t.Errorf("EndSession twice = %v, want nil", err)
	}
	if _, _, _, err := e.svc.Session(ctx, other); err != nil {
		t.Errorf("Session(another token of alice) after EndSession = %v, want success", err)
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{SessionIdle: time.Hour})
	e.addUser(t, "alice")
	ctx := context.Background()
	old, _ := e.startSession(t, "alice")
	e.clk.Advance(30 * time.Minute)
	young, _ := e.startSession(t, "alice")
	e.clk.Advance(31 * time.Minute)
	n, err := e.svc.Prune(ctx)
	if err != nil || n != 1 {
		t.Errorf("Prune = %d, %v; want 1", n, err)
	}
	_, err = e.st.GetSession(ctx, sessionID(old))
	checkErr(t, "GetSession(expired) after Prune", err, errkind.NotFound)
	if _, err := e.st.GetSession(ctx, sessionID(young)); err != nil {
		t.Errorf("GetSession(current) after Prune = %v, want it kept", err)
	}
}
