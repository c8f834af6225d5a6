package identity_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/identity"
	"noops/internal/identity/ca"
	"noops/internal/store"
	"noops/internal/store/sqlite"
)

// t0 is when every test starts: 5 seconds into a 30-second TOTP step, so
// that a few seconds later is still the same step.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	domain   = "example.test"
	password = "correct horse battery"
	addr     = "192.0.2.10"
)

// clock is a fake clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// failure is one call of Config.OnFailure.
type failure struct{ addr, user, reason string }

// env is an identity service over a real SQLite store and a real CA that
// share one fake clock.
type env struct {
	svc *identity.Service
	st  *sqlite.DB
	ca  *ca.CA
	clk *clock

	mu       sync.Mutex
	failures []failure
}

// newEnv opens a store and a CA in temporary folders and starts the
// service with cfg; Domain, Issuer, Now and OnFailure are filled in.
func newEnv(t *testing.T, cfg identity.Config) *env {
	t.Helper()
	e := &env{clk: &clock{t: t0}}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatalf("sqlite.Open = %v", err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := ca.Open(t.TempDir(), e.clk.Now)
	if err != nil {
		t.Fatalf("ca.Open = %v", err)
	}
	e.st, e.ca = st, c
	cfg.Domain, cfg.Issuer, cfg.Now = domain, c, e.clk.Now
	cfg.OnFailure = func(addr, user, reason string) {
		e.mu.Lock()
		e.failures = append(e.failures, failure{addr, user, reason})
		e.mu.Unlock()
	}
	e.svc = identity.New(cfg, st)
	return e
}

// reported returns the failures reported to OnFailure so far.
func (e *env) reported() []failure {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]failure(nil), e.failures...)
}

func (e *env) addUser(t *testing.T, name string, roles ...string) store.User {
	t.Helper()
	u, err := e.svc.AddUser(context.Background(), name, password, roles)
	if err != nil {
		t.Fatalf("AddUser(%q) = %v", name, err)
	}
	return u
}

// signIn signs name in with the right password (and code, when given).
func (e *env) signIn(t *testing.T, name, code string) identity.Auth {
	t.Helper()
	l := identity.Login{User: name, Password: password, Code: code, Addr: addr}
	a, err := e.svc.Authenticate(context.Background(), l)
	if err != nil {
		t.Fatalf("Authenticate(%q) = %v, want success", name, err)
	}
	return a
}

// enrollTOTP gives name a confirmed TOTP secret, confirmed with the code of
// now, and returns the secret.
func (e *env) enrollTOTP(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	en, err := e.svc.EnrollTOTP(ctx, name)
	if err != nil {
		t.Fatalf("EnrollTOTP(%q) = %v", name, err)
	}
	if err := e.svc.ConfirmTOTP(ctx, name, code(t, en.Secret, e.clk.Now())); err != nil {
		t.Fatalf("ConfirmTOTP(%q) = %v", name, err)
	}
	return en.Secret
}

// code returns the TOTP code of secret at at.
func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := identity.TOTPCode(secret, at)
	if err != nil {
		t.Fatalf("TOTPCode = %v", err)
	}
	return c
}

// wrongCode returns a well-formed code that is not secret's at any step
// near at.
func wrongCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	near := map[string]bool{}
	for d := -2; d <= 2; d++ {
		near[code(t, secret, at.Add(time.Duration(d)*30*time.Second))] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333", "444444", "555555"} {
		if !near[c] {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

func newP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating P-256 key: %v", err)
	}
	return k
}

// csr returns a PKCS #10 request signed by key.
func csr(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "laptop"}}, key)
	if err != nil {
		t.Fatalf("CreateCertificateRequest = %v", err)
	}
	return der
}

// chain parses a certificate and its intermediate as a client presents them.
func chain(t *testing.T, c identity.Certificate) []*x509.Certificate {
	t.Helper()
	return parseChain(t, c.Leaf, c.Chain)
}

func parseChain(t *testing.T, ders ...[]byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("ParseCertificate = %v", err)
		}
		out = append(out, c)
	}
	return out
}

// checkErr fails t unless err is of kind want and its message contains
// every one of msg (case-insensitively). what names the call.
func checkErr(t *testing.T, what string, err error, want errkind.Kind, msg ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s = nil error, want %v", what, want)
		return
	}
	if got := errkind.Of(err); got != want {
		t.Errorf("%s = %v (%v), want %v", what, err, got, want)
	}
	for _, m := range msg {
		if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(m)) {
			t.Errorf("%s = %q, want a message with %q", what, err, m)
		}
	}
}

func b64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }
