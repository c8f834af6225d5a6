package identity_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"noops/internal/errkind"
	"noops/internal/identity"
	"noops/internal/store"
)

func TestAuthenticateSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice", "admin")
	a := e.signIn(t, "alice", "")
	if a.User.Name != "alice" || !slices.Equal(a.User.Roles, []string{"admin"}) {
		t.Errorf("Authenticate(alice).User = %+v, want alice with role admin", a.User)
	}
	if !slices.Equal(a.Factors, []string{identity.FactorPassword}) || a.HasSecondFactor() {
		t.Errorf("Authenticate(alice).Factors = %v, want [password] and no second factor", a.Factors)
	}
	if !a.Time.Equal(t0) || !a.User.LastLogin.Equal(t0) {
		t.Errorf("Authenticate(alice) at %v: Time %v, LastLogin %v; want both %v", t0, a.Time, a.User.LastLogin, t0)
	}
	if got := e.reported(); len(got) != 0 {
		t.Errorf("after a good sign-in, OnFailure was told %v, want nothing", got)
	}
}

// TestAuthenticateHidesWhichUsersExist checks that an unknown user and a
// wrong password read the same.
func TestAuthenticateHidesWhichUsersExist(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	ctx := context.Background()
	tests := []struct {
		name string
		l    identity.Login
	}{
		{"unknown user", identity.Login{User: "mallory", Password: password, Addr: addr}},
		{"wrong password", identity.Login{User: "alice", Password: "not the password", Addr: addr}},
		{"empty password", identity.Login{User: "alice", Addr: addr}},
		{"empty user", identity.Login{Password: password, Addr: addr}},
		{"user name in capitals", identity.Login{User: "ALICE", Password: password, Addr: addr}},
	}
	for _, tc := range tests {
		_, err := e.svc.Authenticate(ctx, tc.l)
		if !errkind.Is(err, errkind.Unauthenticated) || err.Error() != "wrong user name or password" || errkind.HintOf(err) != "" {
			t.Errorf("%s: Authenticate(%q) = %v, want unauthenticated %q without a hint", tc.name, tc.l.User, err, "wrong user name or password")
		}
	}
}

func TestAuthenticateDisabledUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	ctx := context.Background()
	if _, err := e.svc.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatalf("SetDisabled(alice) = %v", err)
	}
	_, err := e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: "not the password", Addr: addr})
	checkErr(t, "Authenticate(alice, wrong password) of a disabled user", err, errkind.Unauthenticated, "wrong user name or password")

	_, err = e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: password, Addr: addr})
	checkErr(t, "Authenticate(alice, right password) of a disabled user", err, errkind.Permission, "disabled")
	if h := errkind.HintOf(err); !strings.Contains(h, "noops users enable alice") {
		t.Errorf("Authenticate(alice) of a disabled user has hint %q, want one naming noops users enable alice", h)
	}

	if _, err := e.svc.SetDisabled(ctx, "alice", false); err != nil {
		t.Fatalf("SetDisabled(alice, false) = %v", err)
	}
	e.signIn(t, "alice", "")
}

func TestAuthenticateTOTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{LockAfter: 100, AttemptsPerMinute: 100})
	e.addUser(t, "alice")
	secret := e.enrollTOTP(t, "alice") // with the code of t0
	ctx := context.Background()
	login := func(pw, code string) (identity.Auth, error) {
		return e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: pw, Code: code, Addr: addr})
	}

	// The password alone is not enough, and says a code is needed.
	_, err := login(password, "")
	checkErr(t, "Authenticate(alice) without a code", err, errkind.Unauthenticated)
	if !errors.Is(err, identity.ErrCodeNeeded) {
		t.Errorf("Authenticate(alice) without a code = %v, want ErrCodeNeeded", err)
	}
	// A code with a wrong password says nothing about the code.
	_, err = login("not the password", code(t, secret, e.clk.Now()))
	checkErr(t, "Authenticate(alice, wrong password, code)", err, errkind.Unauthenticated, "wrong user name or password")

	tests := []struct {
		name    string
		advance time.Duration
		code    func(now time.Time) string
		wantErr string // "" for success
	}{
		{"wrong code", 0, func(now time.Time) string { return wrongCode(t, secret, now) }, "wrong one-time code"},
		{"too short", 0, func(now time.Time) string { return code(t, secret, now)[:5] }, "wrong one-time code"},
		{"not digits", 0, func(time.Time) string { return "abcdef" }, "wrong one-time code"},
		{"the code that confirmed the enrolment", 10 * time.Second, func(now time.Time) string { return code(t, secret, now) }, "already used"},
		{"the next step's code", 30 * time.Second, func(now time.Time) string { return code(t, secret, now) }, ""},
		{"the same code again in its step", 10 * time.Second, func(now time.Time) string { return code(t, secret, now) }, "already used"},
		{"a code of the previous step, for clock drift", time.Minute, func(now time.Time) string { return code(t, secret, now.Add(-30*time.Second)) }, ""},
		{"an earlier code than the last one used", 0, func(now time.Time) string { return code(t, secret, now.Add(-60*time.Second)) }, "wrong one-time code"},
		{"the code of now after one of the previous step", 0, func(now time.Time) string { return code(t, secret, now) }, ""},
		{"a code of the next step, for clock drift", 5 * time.Minute, func(now time.Time) string { return code(t, secret, now.Add(30*time.Second)) }, ""},
		{"then the code of now is old", 0, func(now time.Time) string { return code(t, secret, now) }, "already used"},
		{"a code two steps ahead", time.Minute, func(now time.Time) string { return code(t, secret, now.Add(time.Minute)) }, "wrong one-time code"},
	}
	for _, tc := range tests {
		e.clk.Advance(tc.advance)
		c := tc.code(e.clk.Now())
		a, err := login(password, c)
		if tc.wantErr != "" {
			checkErr(t, fmt.Sprintf("%s: Authenticate(alice, %q)", tc.name, c), err, errkind.Unauthenticated, tc.wantErr)
			if errkind.HintOf(err) == "" {
				t.Errorf("%s: Authenticate(alice, %q) = %v without a hint, want one", tc.name, c, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Authenticate(alice, %q) = %v, want success", tc.name, c, err)
			continue
		}
		if !slices.Equal(a.Factors, []string{identity.FactorPassword, identity.FactorTOTP}) || !a.HasSecondFactor() {
			t.Errorf("%s: Authenticate(alice, %q).Factors = %v, want [password totp]", tc.name, c, a.Factors)
		}
	}

	var reasons []string
	for _, f := range e.reported() {
		reasons = append(reasons, f.reason)
	}
	want := []string{"wrong password", "wrong code", "wrong code", "wrong code", "replayed code", "replayed code", "wrong code", "replayed code", "wrong code"}
	if !slices.Equal(reasons, want) {
		t.Errorf("OnFailure was told %q, want %q", reasons, want)
	}
}

func TestEnrollTOTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	ctx := context.Background()

	err := e.svc.ConfirmTOTP(ctx, "alice", "123456")
	checkErr(t, "ConfirmTOTP(alice) before EnrollTOTP", err, errkind.Invalid, "no TOTP enrolment")

	en, err := e.svc.EnrollTOTP(ctx, "alice")
	if err != nil {
		t.Fatalf("EnrollTOTP(alice) = %v", err)
	}
	if !strings.HasPrefix(en.URI, "otpauth://totp/") || !strings.Contains(en.URI, "secret="+en.Secret) || len(en.Secret) < 16 {
		t.Errorf("EnrollTOTP(alice) = URI %q, secret %q; want an otpauth URI with the secret", en.URI, en.Secret)
	}
	if !bytes.HasPrefix(en.QR, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("EnrollTOTP(alice).QR starts with %q, want a PNG", en.QR[:min(8, len(en.QR))])
	}

	// Until confirmed, sign-ins do not ask for a code.
	if a := e.signIn(t, "alice", ""); a.HasSecondFactor() {
		t.Errorf("Authenticate(alice) with TOTP pending: factors %v, want the password only", a.Factors)
	}

	bad := wrongCode(t, en.Secret, e.clk.Now())
	err = e.svc.ConfirmTOTP(ctx, "alice", bad)
	checkErr(t, fmt.Sprintf("ConfirmTOTP(alice, %q)", bad), err, errkind.Invalid, "does not match")
	if u, _ := e.svc.User(ctx, "alice"); !u.TOTPPending {
		t.Errorf("after a wrong code, alice's TOTP pending = false, want true")
	}
	e.signIn(t, "alice", "")

	good := code(t, en.Secret, e.clk.Now())
	if err := e.svc.ConfirmTOTP(ctx, "alice", good); err != nil {
		t.Fatalf("ConfirmTOTP(alice, %q) = %v", good, err)
	}
	u, err := e.svc.User(ctx, "alice")
	if err != nil || u.TOTPPending || u.TOTPSecret != en.Secret {
		t.Errorf("after ConfirmTOTP, User(alice) = pending %v, secret set %v, %v; want on", u.TOTPPending, u.TOTPSecret == en.Secret, err)
	}
	_, err = e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: password, Addr: addr})
	if !errors.Is(err, identity.ErrCodeNeeded) {
		t.Errorf("Authenticate(alice) without a code after ConfirmTOTP = %v, want ErrCodeNeeded", err)
	}
	e.clk.Advance(30 * time.Second)
	if a := e.signIn(t, "alice", code(t, en.Secret, e.clk.Now())); !a.HasSecondFactor() {
		t.Errorf("Authenticate(alice, code).Factors = %v, want a second factor", a.Factors)
	}
}

// TestConfirmTOTPRefusesUsedCode checks that confirming again cannot make
// a code that was used to sign in valid a second time.
func TestConfirmTOTPRefusesUsedCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	secret := e.enrollTOTP(t, "alice")
	ctx := context.Background()
	e.clk.Advance(30 * time.Second)
	used := code(t, secret, e.clk.Now())
	e.signIn(t, "alice", used)

	prev := code(t, secret, e.clk.Now().Add(-30*time.Second))
	err := e.svc.ConfirmTOTP(ctx, "alice", prev)
	checkErr(t, fmt.Sprintf("ConfirmTOTP(alice, %q) with the code of a step already used", prev), err, errkind.Invalid, "already used")

	_, err = e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: password, Code: used, Addr: addr})
	checkErr(t, fmt.Sprintf("Authenticate(alice, %q) replayed", used), err, errkind.Unauthenticated, "already used")
}

func TestAuthenticateLockout(t *testing.T) {
	t.Parallel()
	const lockFor = 10 * time.Minute
	e := newEnv(t, identity.Config{LockAfter: 3, LockFor: lockFor, AttemptsPerMinute: 100})
	e.addUser(t, "alice")
	ctx := context.Background()
	wrong := identity.Login{User: "alice", Password: "not the password", Addr: addr}
	right := identity.Login{User: "alice", Password: password, Addr: addr}
	for i := range 3 {
		_, err := e.svc.Authenticate(ctx, wrong)
		checkErr(t, fmt.Sprintf("attempt %d: Authenticate(alice, wrong)", i+1), err, errkind.Unauthenticated, "wrong user name or password")
	}
	u, _ := e.svc.User(ctx, "alice")
	if u.FailedLogins != 3 || !u.LockedUntil.Equal(t0.Add(lockFor)) {
		t.Errorf("after 3 failures: FailedLogins %d, LockedUntil %v; want 3, %v", u.FailedLogins, u.LockedUntil, t0.Add(lockFor))
	}

	_, err := e.svc.Authenticate(ctx, right)
	checkErr(t, "Authenticate(alice, right) while locked", err, errkind.TooMany, "locked")
	if h := errkind.HintOf(err); !strings.Contains(h, "try again after "+t0.Add(lockFor).Format(time.TimeOnly)) {
		t.Errorf("Authenticate(alice) while locked has hint %q, want when to try again", h)
	}
	if got := e.reported(); len(got) == 0 || got[len(got)-1] != (failure{addr, "alice", "locked"}) {
		t.Errorf("OnFailure was told %v, want a locked failure last", got)
	}

	e.clk.Advance(lockFor - time.Second)
	_, err = e.svc.Authenticate(ctx, right)
	checkErr(t, "Authenticate(alice, right) a second before the lock ends", err, errkind.TooMany, "locked")

	e.clk.Advance(time.Second)
	a := e.signIn(t, "alice", "")
	if a.User.FailedLogins != 0 || !a.User.LockedUntil.IsZero() {
		t.Errorf("after the lock ended and a good sign-in: FailedLogins %d, LockedUntil %v; want 0, zero", a.User.FailedLogins, a.User.LockedUntil)
	}
}

func TestSetPasswordClearsLockout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{LockAfter: 2, AttemptsPerMinute: 100})
	e.addUser(t, "alice")
	ctx := context.Background()
	for range 2 {
		e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: "not the password", Addr: addr})
	}
	_, err := e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: password, Addr: addr})
	checkErr(t, "Authenticate(alice) after 2 failures", err, errkind.TooMany)

	_, err = e.svc.SetPassword(ctx, "alice", "short")
	checkErr(t, "SetPassword(alice, short)", err, errkind.Invalid)

	const newPassword = "a new and longer password"
	u, err := e.svc.SetPassword(ctx, "alice", newPassword)
	if err != nil {
		t.Fatalf("SetPassword(alice) = %v", err)
	}
	if u.FailedLogins != 0 || !u.LockedUntil.IsZero() {
		t.Errorf("SetPassword(alice) = FailedLogins %d, LockedUntil %v; want 0, zero", u.FailedLogins, u.LockedUntil)
	}
	_, err = e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: password, Addr: addr})
	checkErr(t, "Authenticate(alice, old password)", err, errkind.Unauthenticated)
	if _, err := e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: newPassword, Addr: addr}); err != nil {
		t.Errorf("Authenticate(alice, new password) = %v, want success", err)
	}
}

func TestAuthenticateResetsFailedLogins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{AttemptsPerMinute: 100})
	e.addUser(t, "alice")
	ctx := context.Background()
	for range 2 {
		e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: "not the password", Addr: addr})
	}
	if u, _ := e.svc.User(ctx, "alice"); u.FailedLogins != 2 {
		t.Errorf("after 2 failures FailedLogins = %d, want 2", u.FailedLogins)
	}
	e.clk.Advance(time.Minute)
	e.signIn(t, "alice", "")
	u, _ := e.svc.User(ctx, "alice")
	if u.FailedLogins != 0 || !u.LastLogin.Equal(t0.Add(time.Minute)) {
		t.Errorf("after a good sign-in: FailedLogins %d, LastLogin %v; want 0, %v", u.FailedLogins, u.LastLogin, t0.Add(time.Minute))
	}
	// Four more failures do not lock (the default is five in a row).
	for range 4 {
		e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: "not the password", Addr: "192.0.2.99"})
	}
	e.signIn(t, "alice", "")
}

func TestAuthenticateThrottle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{AttemptsPerMinute: 3})
	e.addUser(t, "alice")
	ctx := context.Background()
	const other = "198.51.100.7"
	for range 3 {
		e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: "not the password", Addr: addr})
	}
	// Even the right password is refused now, and not counted.
	_, err := e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: password, Addr: addr})
	checkErr(t, "Authenticate(alice) the 4th time in a minute", err, errkind.TooMany, "too many sign-in attempts from "+addr)
	if h := errkind.HintOf(err); h != "wait 20s and try again" {
		t.Errorf("Authenticate(alice) throttled: hint %q, want %q", h, "wait 20s and try again")
	}
	if got := e.reported(); len(got) != 4 || got[3] != (failure{addr, "alice", "throttled"}) {
		t.Errorf("OnFailure was told %v, want 3 wrong passwords and a throttled attempt", got)
	}
	if u, _ := e.svc.User(ctx, "alice"); u.FailedLogins != 3 {
		t.Errorf("FailedLogins = %d, want 3 (a throttled attempt is not a wrong password)", u.FailedLogins)
	}

	// Another address has its own allowance.
	if _, err := e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: password, Addr: other}); err != nil {
		t.Errorf("Authenticate(alice) from %s = %v, want success", other, err)
	}

	e.clk.Advance(19 * time.Second)
	_, err = e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: password, Addr: addr})
	checkErr(t, "Authenticate(alice) 19s later", err, errkind.TooMany)
	e.clk.Advance(2 * time.Second)
	if _, err := e.svc.Authenticate(ctx, identity.Login{User: "alice", Password: password, Addr: addr}); err != nil {
		t.Errorf("Authenticate(alice) 21s later = %v, want success", err)
	}
}

func TestAuthenticateReportsFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{AttemptsPerMinute: 100})
	e.addUser(t, "alice")
	e.addUser(t, "bob")
	ctx := context.Background()
	if _, err := e.svc.SetDisabled(ctx, "bob", true); err != nil {
		t.Fatalf("SetDisabled(bob) = %v", err)
	}
	tests := []struct {
		name string
		l    identity.Login
		want failure
	}{
		{"unknown user", identity.Login{User: "mallory", Password: password, Addr: "192.0.2.1"}, failure{"192.0.2.1", "mallory", "unknown user"}},
		{"wrong password", identity.Login{User: "alice", Password: "not the password", Addr: "192.0.2.2"}, failure{"192.0.2.2", "alice", "wrong password"}},
		{"disabled", identity.Login{User: "bob", Password: password, Addr: "2001:db8::1"}, failure{"2001:db8::1", "bob", "disabled"}},
	}
	for _, tc := range tests {
		before := len(e.reported())
		if _, err := e.svc.Authenticate(ctx, tc.l); err == nil {
			t.Errorf("%s: Authenticate(%q) = nil error, want a failure", tc.name, tc.l.User)
		}
		got := e.reported()[before:]
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: Authenticate(%q) told OnFailure %v, want %v", tc.name, tc.l.User, got, tc.want)
		}
	}
}

func TestAuthenticateLearnsHabits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	var u store.User
	for i := range 5 {
		if i > 0 {
			e.clk.Advance(time.Minute)
		}
		now := e.clk.Now()
		if p := identity.PlaceOf(u.Habits, addr, now); p.UsualHours {
			t.Errorf("after %d sign-ins, PlaceOf(habits, %q, %v) = %+v, want hours not yet usual", i, addr, now, p)
		}
		u = e.signIn(t, "alice", "").User
	}
	// A network is known only a day after the first sign-in from it.
	now := e.clk.Now()
	if p := identity.PlaceOf(u.Habits, addr, now); p.KnownNetwork || p.NewLocation || !p.UsualHours {
		t.Errorf("right after signing in, PlaceOf(habits, %q, %v) = %+v, want usual hours and a network not yet known", addr, now, p)
	}
	later := t0.Add(24 * time.Hour)
	tests := []struct {
		name string
		addr string
		t    time.Time
		want identity.Place
	}{
		{"same address", addr, later, identity.Place{KnownNetwork: true, UsualHours: true}},
		{"same /24", "192.0.2.200", later, identity.Place{KnownNetwork: true, UsualHours: true}},
		{"another network", "198.51.100.7", later, identity.Place{NewLocation: true, UsualHours: true}},
		{"another hour", addr, later.Add(12 * time.Hour), identity.Place{KnownNetwork: true}},
	}
	for _, tc := range tests {
		if got := identity.PlaceOf(u.Habits, tc.addr, tc.t); got != tc.want {
			t.Errorf("%s: PlaceOf(habits, %q, %v) = %+v, want %+v", tc.name, tc.addr, tc.t, got, tc.want)
		}
	}
	// A failed sign-in teaches nothing.
	e.svc.Authenticate(context.Background(), identity.Login{User: "alice", Password: "not the password", Addr: "203.0.113.1"})
	stored, _ := e.svc.User(context.Background(), "alice")
	if p := identity.PlaceOf(stored.Habits, "203.0.113.1", later); !p.NewLocation {
		t.Errorf("after a failed sign-in from 203.0.113.1, PlaceOf = %+v, want a new location", p)
	}
}

// TestAuthenticateUpgradesStaleHash checks that a hash with older
// parameters is replaced at the next good sign-in.
func TestAuthenticateUpgradesStaleHash(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{})
	e.addUser(t, "alice")
	ctx := context.Background()
	salt := []byte("0123456789abcdef")
	old := fmt.Sprintf("$argon2id$v=%d$m=8192,t=1,p=1$%s$%s", argon2.Version,
		b64(salt), b64(argon2.IDKey([]byte(password), salt, 1, 8192, 1, 32)))
	if _, err := e.st.UpdateUser(ctx, "alice", func(u *store.User) error { u.PasswordHash = old; return nil }); err != nil {
		t.Fatalf("UpdateUser(alice) = %v", err)
	}
	e.signIn(t, "alice", "")
	u, _ := e.svc.User(ctx, "alice")
	if u.PasswordHash == old || !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("after signing in with a stale hash, the hash is %q, want one with the current parameters", u.PasswordHash)
	}
	if ok, stale, err := identity.VerifyPassword(u.PasswordHash, password); !ok || stale || err != nil {
		t.Errorf("VerifyPassword(new hash, password) = %v, %v, %v; want true, false, nil", ok, stale, err)
	}
	e.signIn(t, "alice", "")
}

// TestAuthenticateCodeOnceConcurrently checks that of several sign-ins
// racing with one code, exactly one gets in.
func TestAuthenticateCodeOnceConcurrently(t *testing.T) {
	t.Parallel()
	e := newEnv(t, identity.Config{LockAfter: 100, AttemptsPerMinute: 100})
	e.addUser(t, "alice")
	secret := e.enrollTOTP(t, "alice")
	e.clk.Advance(30 * time.Second)
	c := code(t, secret, e.clk.Now())
	const n = 6
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := e.svc.Authenticate(context.Background(), identity.Login{User: "alice", Password: password, Code: c, Addr: addr})
			errs <- err
		}()
	}
	ok := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case !errkind.Is(err, errkind.Unauthenticated) || !strings.Contains(err.Error(), "already used"):
			t.Errorf("Authenticate(alice, %q) racing = %v, want success or already used", c, err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent sign-ins with one code succeeded, want 1", ok, n)
	}
}
