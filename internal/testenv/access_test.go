package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"noops/internal/apiclient"
	"noops/internal/apitype"
	"noops/internal/identity"
	"noops/internal/store"
)

// guardedApp copies hello-go with an access section.
func guardedApp(t *testing.T, app, access string) string {
	t.Helper()
	dir := copyApp(t)
	manifest := "name: " + app + "\nrun:\n  health: /healthz\n  memory: 64Mi\n" + access
	if err := os.WriteFile(filepath.Join(dir, "noops.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// call makes one request to app through the gateway, without following
// redirects, with an optional cookie and client certificate.
func call(t *testing.T, e *Env, method, app, path string, hdr http.Header, body io.Reader, cert *tls.Certificate) (*http.Response, string) {
	t.Helper()
	cfg := &tls.Config{RootCAs: e.Roots, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	addr := e.HTTPS
	cl := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{TLSClientConfig: cfg, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}},
	}
	req, err := http.NewRequest(method, e.URL(app, path), body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// browserLogin signs in through the app's sign-in form and returns the
// session cookie.
func browserLogin(t *testing.T, e *Env, app, user, password, code string) string {
	t.Helper()
	form := url.Values{"user": {user}, "password": {password}, "code": {code}, "rd": {"/"}}
	origin := strings.TrimSuffix(e.URL(app, "/"), "/")
	resp, body := call(t, e, http.MethodPost, app, "/.noops/login",
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {origin}}, strings.NewReader(form.Encode()), nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in of %s: status %d, want 303\n%s", user, resp.StatusCode, body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-noops-session" {
			if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("session cookie %+v is not Secure, HttpOnly, SameSite=Lax", c)
			}
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("sign-in of %s set no session cookie", user)
	return ""
}

func TestZeroTrust(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const ttl = 6 * time.Second
	e := Start(t, Options{DeviceCertTTL: ttl})
	ctx := context.Background()
	dir := guardedApp(t, "guarded", "access:\n  policy: authenticated\n  min_trust: 20\n  routes:\n    - { path: /admin, min_trust: 30 }\n")
	deployOK(t, e, dir, "guarded")

	// Nobody signed in: a browser is sent to the sign-in page, an API
	// client gets 401.
	resp, _ := call(t, e, "GET", "guarded", "/", http.Header{"Accept": {"text/html"}}, nil, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/.noops/login?rd=%2F") {
		t.Errorf("anonymous browser: %d Location %q, want 302 to /.noops/login?rd=%%2F", resp.StatusCode, loc)
	}
	resp, body := call(t, e, "GET", "guarded", "/", nil, nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "sign in") {
		t.Errorf("anonymous API client: %d %q, want 401 saying to sign in", resp.StatusCode, body)
	}
	resp, body = call(t, e, "GET", "guarded", "/.noops/login", nil, nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<form method="post" action="/.noops/login"`) {
		t.Errorf("sign-in page: %d, want 200 with the form\n%s", resp.StatusCode, body)
	}

	const pw = "correct horse battery"
	if _, err := e.Client.AddUser(ctx, apitype.UserRequest{Name: "alice", Password: pw, Roles: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	// A wrong password sets no cookie.
	form := url.Values{"user": {"alice"}, "password": {"wrong password!"}, "rd": {"/"}}
	origin := strings.TrimSuffix(e.URL("guarded", "/"), "/")
	resp, body = call(t, e, "POST", "guarded", "/.noops/login", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {origin}},
		strings.NewReader(form.Encode()), nil)
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 || !strings.Contains(body, "wrong user name or password") {
		t.Errorf("wrong password: %d cookies %v, want 401 and none\n%s", resp.StatusCode, resp.Cookies(), body)
	}

	// Password only: trust 10, below the app's 20.
	cookie := browserLogin(t, e, "guarded", "alice", pw, "")
	resp, body = call(t, e, "GET", "guarded", "/", http.Header{"Cookie": {cookie}}, nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "trust 10") || !strings.Contains(body, "20") || !strings.Contains(body, "second_factor") {
		t.Errorf("password only: %d %q, want 403 naming trust 10, the minimum 20 and the missing second factor", resp.StatusCode, body)
	}

	// With TOTP: trust 20 opens the app but not /admin (30).
	en, err := e.Client.EnrollTOTP(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	code, _ := identity.TOTPCode(en.Secret, now)
	if err := e.Client.ConfirmTOTP(ctx, "alice", code); err != nil {
		t.Fatal(err)
	}
	if resp, _ := call(t, e, "GET", "guarded", "/", http.Header{"Cookie": {cookie}}, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the password-only session after TOTP enrolment: %d, want 403", resp.StatusCode)
	}
	next, _ := identity.TOTPCode(en.Secret, now.Add(30*time.Second)) // the confirmed code is spent
	cookie = browserLogin(t, e, "guarded", "alice", pw, next)
	resp, body = call(t, e, "GET", "guarded", "/", http.Header{"Cookie": {cookie}}, nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("password and TOTP: %d %q, want 200 from the app", resp.StatusCode, body)
	}
	resp, body = call(t, e, "GET", "guarded", "/admin", http.Header{"Cookie": {cookie}}, nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "/admin") || !strings.Contains(body, "30") {
		t.Errorf("/admin with trust 20: %d %q, want 403 naming the route and 30", resp.StatusCode, body)
	}
	// Replaying the code that just signed in is refused.
	form = url.Values{"user": {"alice"}, "password": {pw}, "code": {next}, "rd": {"/"}}
	resp, body = call(t, e, "POST", "guarded", "/.noops/login", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {origin}},
		strings.NewReader(form.Encode()), nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "already used") {
		t.Errorf("replayed TOTP code: %d, want 401 saying it was used\n%s", resp.StatusCode, body)
	}

	// A device: password, TOTP and a client certificate make trust 30.
	_, port, _ := net.SplitHostPort(e.HTTPS)
	base := "https://api." + e.Domain + ":" + port
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	anon, err := apiclient.NewRemote(base, apiclient.Remote{Roots: e.Roots, Connect: e.HTTPS})
	if err != nil {
		t.Fatal(err)
	}
	// Each sign-in spends a TOTP time step and only the next one is
	// accepted ahead of the clock: the devices belong to other users.
	bobCode := totpUser(t, e, "bob", pw)
	dc, err := anon.Login(ctx, apitype.LoginRequest{User: "bob", Password: pw, Code: bobCode, Device: "laptop", CSR: csr})
	if err != nil {
		t.Fatalf("device login: %v", err)
	}
	if !strings.HasPrefix(dc.SPIFFEID, "spiffe://"+e.Domain+"/user/bob/device/") {
		t.Errorf("SPIFFE ID %q", dc.SPIFFEID)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	cert, err := tls.X509KeyPair([]byte(dc.CertPEM), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}))
	if err != nil {
		t.Fatal(err)
	}
	resp, body = call(t, e, "GET", "guarded", "/admin", nil, nil, &cert)
	if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
		t.Errorf("/admin with a device certificate: %d %q, want the app's answer", resp.StatusCode, body)
	}
	remote, err := apiclient.NewRemote(base, apiclient.Remote{Cert: &cert, Roots: e.Roots, Connect: e.HTTPS})
	if err != nil {
		t.Fatal(err)
	}
	who, err := remote.WhoAmI(ctx)
	if err != nil || who.User != "bob" || who.Trust != 30 || who.Via != "mTLS" {
		t.Errorf("remote whoami = %+v, %v; want bob with trust 30 over mTLS", who, err)
	}
	if _, err := remote.Apps(ctx); err != nil {
		t.Errorf("remote apps as an admin with trust 30: %v", err)
	}
	if _, err := anon.Apps(ctx); apiclient.Kind(err).String() != "unauthenticated" {
		t.Errorf("remote apps without a certificate: %v, want unauthenticated", err)
	}

	// The certificate expires: refused with the reason.
	time.Sleep(time.Until(dc.Expires) + 500*time.Millisecond)
	resp, body = call(t, e, "GET", "guarded", "/", nil, nil, &cert)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Errorf("expired certificate: %d %q, want 401 saying it expired", resp.StatusCode, body)
	}

	// A revoked device is refused on its next request.
	csr2, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	carolCode := totpUser(t, e, "carol", pw)
	dc2, err := anon.Login(ctx, apitype.LoginRequest{User: "carol", Password: pw, Code: carolCode, Device: "phone", CSR: csr2})
	if err != nil {
		t.Fatalf("second device login: %v", err)
	}
	cert2, _ := tls.X509KeyPair([]byte(dc2.CertPEM), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}))
	if resp, _ := call(t, e, "GET", "guarded", "/", nil, nil, &cert2); resp.StatusCode != http.StatusOK {
		t.Fatalf("second device before revocation: %d, want 200", resp.StatusCode)
	}
	if _, err := e.Client.Revoke(ctx, dc2.Device.ID, "lost"); err != nil {
		t.Fatal(err)
	}
	resp, body = call(t, e, "GET", "guarded", "/", nil, nil, &cert2)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "revoked") {
		t.Errorf("revoked device: %d %q, want 403 saying it was revoked", resp.StatusCode, body)
	}

	// Every refusal is in the audit log, and the log's chain is intact.
	entries, err := e.Client.Audit(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	denies := 0
	for _, en := range entries {
		if strings.HasPrefix(en.Action, "deny ") && strings.Contains(en.Target, "guarded") {
			denies++
		}
	}
	if denies < 5 {
		t.Errorf("%d refusals of guarded in the audit log, want at least 5", denies)
	}
	chain := make([]store.AuditEntry, len(entries))
	for i, en := range entries {
		chain[i] = store.AuditEntry{Seq: en.Seq, Time: en.Time, Actor: en.Actor, Action: en.Action, Target: en.Target, Status: en.Status, Detail: en.Detail, Hash: en.Hash}
	}
	if c := store.VerifyAudit(chain); c.BrokenAt != 0 || c.Unhashed != 0 || c.Entries != len(entries) {
		t.Errorf("the audit log's chain read over the API: %+v, want %d intact entries", c, len(entries))
	}
}

// totpUser adds an admin with TOTP and returns a code good for the next
// sign-in.
func totpUser(t *testing.T, e *Env, name, pw string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := e.Client.AddUser(ctx, apitype.UserRequest{Name: name, Password: pw, Roles: []string{"admin"}}); err != nil {
		t.Fatal(err)
	}
	en, err := e.Client.EnrollTOTP(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	code, _ := identity.TOTPCode(en.Secret, now)
	if err := e.Client.ConfirmTOTP(ctx, name, code); err != nil {
		t.Fatal(err)
	}
	next, _ := identity.TOTPCode(en.Secret, now.Add(30*time.Second))
	return next
}

// TestPublicAndForgedHeaders checks that an explicitly public app is served
// to anyone and that clients cannot forge the identity headers.
func TestPublicAndForgedHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := Start(t, Options{})
	dir := guardedApp(t, "open", "access: { policy: public }\n")
	edit(t, dir, "main.go", `	mux.HandleFunc("GET /healthz",`, `	mux.HandleFunc("GET /who", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "user=%q", r.Header.Get("X-Noops-User"))
	})
	mux.HandleFunc("GET /healthz",`)
	deployOK(t, e, dir, "open")
	resp, body := call(t, e, "GET", "open", "/who", http.Header{"X-Noops-User": {"admin"}}, nil, nil)
	if resp.StatusCode != http.StatusOK || body != `user=""` {
		t.Errorf("public app with a forged X-Noops-User: %d %q, want 200 user=\"\"", resp.StatusCode, body)
	}
	// The WAF is on by default (block, paranoia 1): a SQL injection is
	// refused with the rule named, and audited.
	resp, body = call(t, e, "GET", "open", "/who?id=1%27%20OR%20%271%27%3D%271", nil, nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "web application firewall") || !strings.Contains(body, "942") {
		t.Errorf("SQL injection to a default app: %d %q, want a 403 from the WAF naming a 942 rule", resp.StatusCode, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := e.Client.Audit(context.Background(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(entries, func(a apitype.AuditEntry) bool {
			return a.Action == "security waf_block" && a.Target == "app:open" && strings.Contains(a.Detail, resp.Header.Get("X-Request-Id"))
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no security waf_block entry in the audit log")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
