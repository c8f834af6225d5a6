package access_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"noops/internal/access"
	"noops/internal/identity"
	"noops/internal/identity/ca"
	"noops/internal/spec"
	"noops/internal/store"
	"noops/internal/store/sqlite"
)

const pw = "correct horse battery"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	acc *access.Access
	id  *identity.Service
	st  *sqlite.DB
	clk *clock
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c, err := ca.Open(t.TempDir(), clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	id := identity.New(identity.Config{Domain: "example.test", Issuer: c, Now: clk.Now}, st)
	acc := access.New(access.Config{Identity: id, Audit: st, Now: clk.Now})
	if err := acc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acc.Stop(context.Background()) })
	if _, err := id.AddUser(context.Background(), "alice", pw, []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	return &fixture{acc: acc, id: id, st: st, clk: clk}
}

// setApp gives app a live release with access section acc.
func (f *fixture) setApp(t *testing.T, app string, acc spec.Access, src string) {
	t.Helper()
	m := spec.Manifest{Access: acc}
	m.Default()
	cfg, _ := json.Marshal(spec.ConfigOf(&m, src))
	if err := f.acc.SetRelease(store.Release{App: app, Number: 1, Config: cfg}); err != nil {
		t.Fatal(err)
	}
}

// do runs one request through Admit; it returns the recorder and whether
// the request was let through.
func (f *fixture) do(t *testing.T, method, app, target string, hdr http.Header, body string) (*httptest.ResponseRecorder, bool, *http.Request) {
	t.Helper()
	r := httptest.NewRequest(method, "https://"+app+".example.test"+target, strings.NewReader(body))
	r.TLS = &tls.ConnectionState{}
	r.RemoteAddr = "192.0.2.7:5555"
	for k, v := range hdr {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	ok := f.acc.Admit(w, r, app)
	return w, ok, r
}

func (f *fixture) login(t *testing.T, app string, step bool) string {
	t.Helper()
	form := url.Values{"user": {"alice"}, "password": {pw}, "rd": {"/x"}}
	if step {
		form.Set("step", "1")
	}
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"https://" + app + ".example.test"}}
	w, ok, _ := f.do(t, "POST", app, "/.noops/login", hdr, form.Encode())
	if ok || w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/x" {
		t.Fatalf("login: %d %v Location %q\n%s", w.Code, ok, w.Header().Get("Location"), w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == access.CookieName {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

func TestAdmitDeniesByDefault(t *testing.T) {
	f := newFixture(t)
	w, ok, _ := f.do(t, "GET", "ghost", "/", nil, "")
	if ok || w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "no access policy") {
		t.Errorf("app without a release: %d %v %q, want 403", w.Code, ok, w.Body)
	}
	f.setApp(t, "open", spec.Access{Policy: "public"}, "")
	if _, ok, _ := f.do(t, "GET", "open", "/", nil, ""); !ok {
		t.Error("public app refused an anonymous request")
	}
	f.acc.RemoveApp("open")
	if _, ok, _ := f.do(t, "GET", "open", "/", nil, ""); ok {
		t.Error("a removed app still admits requests")
	}
}

func TestAdmitStripsForgedHeaders(t *testing.T) {
	f := newFixture(t)
	f.setApp(t, "open", spec.Access{Policy: "public"}, "")
	_, ok, r := f.do(t, "GET", "open", "/", http.Header{access.HeaderUser: {"root"}, access.HeaderTrust: {"100"}}, "")
	if !ok || r.Header.Get(access.HeaderUser) != "" || r.Header.Get(access.HeaderTrust) != "" {
		t.Errorf("forged identity headers reached the app: %v", r.Header)
	}
}

func TestLoginRefusesCrossSitePost(t *testing.T) {
	f := newFixture(t)
	f.setApp(t, "app", spec.Access{Policy: "authenticated"}, "")
	form := url.Values{"user": {"alice"}, "password": {pw}}
	for _, origin := range []string{"", "https://evil.example", "http://app.example.test"} {
		hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		w, _, _ := f.do(t, "POST", "app", "/.noops/login", hdr, form.Encode())
		if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
			t.Errorf("sign-in posted from %q: %d cookies %v, want 403 and none", origin, w.Code, w.Result().Cookies())
		}
	}
}

func TestLoginRedirectStaysOnHost(t *testing.T) {
	f := newFixture(t)
	f.setApp(t, "app", spec.Access{Policy: "authenticated"}, "")
	for _, rd := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example", "/.noops/logout"} {
		form := url.Values{"user": {"alice"}, "password": {pw}, "rd": {rd}}
		hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"https://app.example.test"}}
		w, _, _ := f.do(t, "POST", "app", "/.noops/login", hdr, form.Encode())
		if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || loc != "/" {
			t.Errorf("rd=%q: %d Location %q, want 303 to /", rd, w.Code, loc)
		}
	}
}

func TestStepUp(t *testing.T) {
	f := newFixture(t)
	f.setApp(t, "app", spec.Access{Policy: "authenticated", Routes: []spec.AccessRoute{{Path: "/admin", Reauth: spec.Duration(5 * time.Minute)}}}, "")
	cookie := f.login(t, "app", false)
	if _, ok, r := f.do(t, "GET", "app", "/admin", http.Header{"Cookie": {cookie}}, ""); !ok || r.Header.Get(access.HeaderUser) != "alice" {
		t.Fatalf("fresh session on /admin refused")
	}
	f.clk.Advance(10 * time.Minute)
	if _, ok, _ := f.do(t, "GET", "app", "/", http.Header{"Cookie": {cookie}}, ""); !ok {
		t.Error("an old session was refused where no step-up is asked")
	}
	w, ok, _ := f.do(t, "GET", "app", "/admin", http.Header{"Cookie": {cookie}, "Accept": {"text/html"}}, "")
	if ok || w.Code != http.StatusFound || !strings.Contains(w.Header().Get("Location"), "step=1") {
		t.Fatalf("old session on /admin: %d %v %q, want a step-up redirect", w.Code, ok, w.Header().Get("Location"))
	}
	w, ok, _ = f.do(t, "GET", "app", "/admin", http.Header{"Cookie": {cookie}}, "")
	if ok || w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "within the last 5m") {
		t.Errorf("old session on /admin from an API client: %d %q, want 401 naming the 5m", w.Code, w.Body)
	}
	// Signing in again on the same session (step-up) opens /admin again.
	form := url.Values{"user": {"alice"}, "password": {pw}, "rd": {"/admin"}, "step": {"1"}}
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {"https://app.example.test"}, "Cookie": {cookie}}
	if w, _, _ := f.do(t, "POST", "app", "/.noops/login", hdr, form.Encode()); w.Code != http.StatusSeeOther {
		t.Fatalf("step-up sign-in: %d", w.Code)
	}
	if _, ok, _ := f.do(t, "GET", "app", "/admin", http.Header{"Cookie": {cookie}}, ""); !ok {
		t.Error("/admin still refused after the step-up")
	}
}

func TestSessionRenewsWhileUsed(t *testing.T) {
	f := newFixture(t)
	f.setApp(t, "app", spec.Access{Policy: "authenticated"}, "")
	cookie := f.login(t, "app", false)
	// Used every few hours, the session outlives the 12 h idle limit many
	// times over, and the cookie is sent again when renewed.
	renewed := 0
	for i := 0; i < 10; i++ {
		f.clk.Advance(5 * time.Hour)
		w, ok, _ := f.do(t, "GET", "app", "/", http.Header{"Cookie": {cookie}}, "")
		if !ok {
			t.Fatalf("after %d×5h of use the session was dropped: %d %q", i+1, w.Code, w.Body)
		}
		if len(w.Result().Cookies()) > 0 {
			renewed++
		}
	}
	if renewed == 0 {
		t.Error("the cookie was never sent again while the session was renewed")
	}
	// Unused for longer than the idle limit, it ends.
	f.clk.Advance(13 * time.Hour)
	if w, ok, _ := f.do(t, "GET", "app", "/", http.Header{"Cookie": {cookie}}, ""); ok || w.Code != http.StatusUnauthorized {
		t.Errorf("idle session: %d %v, want 401", w.Code, ok)
	}
}

func TestDenialsAreAudited(t *testing.T) {
	f := newFixture(t)
	f.setApp(t, "app", spec.Access{Policy: "authenticated", MinTrust: 20}, "")
	cookie := f.login(t, "app", false)
	w, ok, _ := f.do(t, "GET", "app", "/secret", http.Header{"Cookie": {cookie}}, "")
	if ok || w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "trust 10") {
		t.Fatalf("password-only session: %d %q, want 403 with trust 10", w.Code, w.Body)
	}
	f.acc.Stop(context.Background()) // flushes the queue
	entries, err := f.st.ListAudit(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.Action == "deny GET /secret" && e.Actor == "user:alice" && strings.Contains(e.Detail, "trust 10") {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit record of the refusal in %+v", entries)
	}
	if c := store.VerifyAudit(entries); c.BrokenAt != 0 {
		t.Errorf("audit chain broken: %+v", c)
	}
}

func TestSessionStaysWithItsApp(t *testing.T) {
	f := newFixture(t)
	f.setApp(t, "shop", spec.Access{Policy: "authenticated"}, "")
	f.setApp(t, "blog", spec.Access{Policy: "authenticated"}, "")
	cookie := f.login(t, "shop", false)
	_, ok, r := f.do(t, "GET", "shop", "/", http.Header{"Cookie": {cookie + "; theme=dark"}, access.HeaderWorkload: {"billing"}}, "")
	if !ok {
		t.Fatal("shop refused its own session")
	}
	if got := r.Header.Get("Cookie"); got != "theme=dark" {
		t.Errorf("the app saw Cookie %q, want only theme=dark: the session token must not reach it", got)
	}
	if got := r.Header.Get(access.HeaderWorkload); got != "" {
		t.Errorf("a forged %s reached the app: %q", access.HeaderWorkload, got)
	}
	// An app that saw the token anyway (or a user who copies it) cannot
	// use it on another app.
	w, ok, _ := f.do(t, "GET", "blog", "/", http.Header{"Cookie": {cookie}}, "")
	if ok || w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "another app") {
		t.Errorf("shop's session on blog: %d %v %q, want 401 saying it belongs to another app", w.Code, ok, w.Body)
	}
}

func TestPasskeyNeedsSecondFactorSession(t *testing.T) {
	f := newFixture(t)
	f.setApp(t, "app", spec.Access{Policy: "authenticated"}, "")
	cookie := f.login(t, "app", false) // password only
	hdr := http.Header{"Cookie": {cookie}, "Origin": {"https://app.example.test"}, "Content-Type": {"application/json"}}
	w, _, _ := f.do(t, "POST", "app", "/.noops/passkey/register/begin", hdr, "{}")
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "second factor") {
		t.Errorf("passkey registration from a password-only session: %d %q, want 403", w.Code, w.Body)
	}
	// Sign-in ceremonies start without a session, from the same origin only.
	w, _, _ = f.do(t, "POST", "app", "/.noops/passkey/login/begin", http.Header{"Origin": {"https://app.example.test"}}, "{}")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"challenge"`) || !strings.Contains(w.Body.String(), `"userVerification": "required"`) && !strings.Contains(w.Body.String(), `"userVerification":"required"`) {
		t.Errorf("passkey sign-in begin: %d %q, want options with a challenge and required user verification", w.Code, w.Body)
	}
	w, _, _ = f.do(t, "POST", "app", "/.noops/passkey/login/begin", http.Header{"Origin": {"https://evil.example"}}, "{}")
	if w.Code != http.StatusForbidden {
		t.Errorf("cross-site passkey begin: %d, want 403", w.Code)
	}
}

// TestDeviceCountsWhatItProved checks that a device signed in with a
// password alone does not gain the second factor its user enrols later.
func TestDeviceCountsWhatItProved(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	chain := f.device(t) // signed in with the password alone
	en, err := f.id.EnrollTOTP(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := identity.TOTPCode(en.Secret, f.clk.Now())
	if err := f.id.ConfirmTOTP(ctx, "alice", code); err != nil {
		t.Fatal(err)
	}
	f.setApp(t, "app", spec.Access{Policy: "authenticated", MinTrust: 30}, "")
	r := httptest.NewRequest("GET", "https://app.example.test/", nil)
	r.TLS = &tls.ConnectionState{PeerCertificates: chain}
	r.RemoteAddr = "192.0.2.7:5555"
	w := httptest.NewRecorder()
	if f.acc.Admit(w, r, "app") || w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "trust 20") {
		t.Errorf("password-only device after TOTP enrolment: %d %q, want 403 with trust 20", w.Code, w.Body)
	}
}

// device signs a device of alice in with her password and returns the
// chain it presents.
func (f *fixture) device(t testing.TB) []*x509.Certificate {
	t.Helper()
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	auth, err := f.id.Authenticate(ctx, identity.Login{User: "alice", Password: pw, Addr: "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := f.id.Enroll(ctx, auth, "laptop", csr)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(cert.Leaf)
	inter, _ := x509.ParseCertificate(cert.Chain)
	return []*x509.Certificate{leaf, inter}
}
