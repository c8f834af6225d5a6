package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"noops/internal/apitype"
	"noops/internal/identity"
	"noops/internal/source"
	"noops/internal/testenv/need"
)

// TestBrowserPasskey adds a passkey in a real (headless) Chromium, through
// the real gateway, and then signs in with it alone. The authenticator is
// Chromium's virtual one, driven over the DevTools protocol: a platform
// authenticator (as a laptop's fingerprint reader) that keeps discoverable
// credentials and verifies its user, so the browser runs the very
// WebAuthn ceremonies a person's would, with nobody to touch it.
func TestBrowserPasskey(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	chromium := need.Chromium(t)
	e := Start(t, Options{})
	const app, user, pw = "guarded", "pia", "correct horse battery"
	deployWithin(t, e, guardedApp(t, app, "access:\n  policy: authenticated\n  min_trust: 20\n"), app, time.Minute)
	secret := enrolTOTP(t, e, user, pw)

	home := e.URL(app, "/")
	u, _ := url.Parse(home)
	ctx := startBrowser(t, e, chromium, u.Hostname(), 40*time.Second)
	step := stepper(t, ctx)
	api := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return c
	}

	if _, err := chromedp.Call(step(), webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("enabling WebAuthn in the tab: %v", err)
	}
	va, err := chromedp.Call(step(), webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Transport:                   webauthn.AuthenticatorTransportInternal,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		}})
	if err != nil {
		t.Fatalf("adding a virtual authenticator: %v", err)
	}

	// Sign in with password and TOTP, as in TestBrowserLoginWithTOTP.
	if _, err := chromedp.Run(step(), chromedp.NavigateResponse(home)); err != nil {
		t.Fatalf("opening %s: %v", home, err)
	}
	code, err := identity.TOTPCode(secret, time.Now().Add(30*time.Second)) // enrolTOTP spent this step
	if err != nil {
		t.Fatal(err)
	}
	if resp := submitSignIn(t, step(), user, pw, code); resp.Status != 200 || location(t, step()).Path != "/" {
		t.Fatalf("sign-in with password and TOTP ended on %s with status %d, want the app's / with 200", location(t, step()), resp.Status)
	}
	first := sessionCookie(t, step(), home)
	if first == nil {
		t.Fatal("signed in with password and TOTP, but the browser holds no session cookie")
	}

	// Add a passkey.
	passkeys := e.URL(app, "/.noops/passkeys")
	resp, err := chromedp.Run(step(), chromedp.NavigateResponse(passkeys))
	if err != nil {
		t.Fatalf("opening %s: %v", passkeys, err)
	}
	if resp.Status != 200 || location(t, step()).Path != "/.noops/passkeys" {
		t.Fatalf("opening %s ended on %s with status %d, want the passkeys page with 200", passkeys, location(t, step()), resp.Status)
	}
	if n := text(t, step(), "count"); n != "0" {
		t.Errorf("the passkeys page counts %q passkeys before any was added, want 0", n)
	}
	if err := chromedp.Do(step(), chromedp.Click(chromedp.ID("add-passkey")), chromedp.WaitVisible(chromedp.ID("message"))); err != nil {
		t.Fatalf("clicking #add-passkey and waiting for its message: %v", err)
	}
	if msg, n := text(t, step(), "message"), text(t, step(), "count"); msg != "Passkey added." || n != "1" {
		t.Fatalf("after #add-passkey the page says %q and counts %q passkeys, want \"Passkey added.\" and 1", msg, n)
	}
	creds, err := chromedp.Call(step(), webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: va.AuthenticatorID})
	if err != nil {
		t.Fatalf("listing the authenticator's credentials: %v", err)
	}
	if len(creds.Credentials) != 1 || !creds.Credentials[0].IsResidentCredential || creds.Credentials[0].RpID != e.Domain ||
		string(creds.Credentials[0].UserHandle) != user {
		t.Fatalf("the authenticator holds %s, want one discoverable credential of %s for relying party %s", describe(creds.Credentials), user, e.Domain)
	}
	users, err := e.Client.Users(api())
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(users, func(x apitype.User) bool { return x.Name == user }); i < 0 || users[i].Passkeys != 1 {
		t.Fatalf("the admin API lists %+v, want %s with 1 passkey", users, user)
	}

	// Forget the session: the app sends the browser to the sign-in page.
	if _, err := chromedp.Call(step(), network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatalf("clearing the browser's cookies: %v", err)
	}
	if c := sessionCookie(t, step(), home); c != nil {
		t.Fatalf("the browser still holds a session cookie after clearing cookies: %+v", c)
	}
	resp, err = chromedp.Run(step(), chromedp.NavigateResponse(home))
	if err != nil {
		t.Fatalf("opening %s: %v", home, err)
	}
	if loc := location(t, step()); resp.Status != 200 || loc.Path != "/.noops/login" || loc.Query().Get("rd") != "/" {
		t.Fatalf("visit to %s without cookies ended on %s with status %d, want the sign-in page with rd=/", home, loc, resp.Status)
	}
	since := lastAuditSeq(t, e, api())

	// Sign in with the passkey alone: one click, nothing typed.
	resp, err = chromedp.RunResponse(step(), chromedp.WaitVisible(chromedp.ID("passkey")), chromedp.Click(chromedp.ID("passkey")))
	if err != nil {
		msg, _ := chromedp.Run(step(), chromedp.Evaluate[string](`(document.getElementById("message") || {}).textContent || ""`))
		t.Fatalf("clicking #passkey led to no page: %v; the sign-in page says %q", err, msg)
	}
	if loc := location(t, step()); resp.Status != 200 || loc.Path != "/" {
		t.Fatalf("passkey sign-in ended on %s with status %d, want the app's / with 200", loc, resp.Status)
	}
	showsApp(t, step(), "after the passkey sign-in")
	switch c := sessionCookie(t, step(), home); {
	case c == nil:
		t.Fatal("signed in with a passkey, but the browser holds no session cookie")
	case c.Value == first.Value:
		t.Error("the passkey sign-in left the browser the session of the password sign-in, want a new one")
	}
	asserted, err := chromedp.Call(step(), webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: va.AuthenticatorID})
	if err != nil {
		t.Fatalf("listing the authenticator's credentials: %v", err)
	}
	if len(asserted.Credentials) != 1 || asserted.Credentials[0].SignCount <= creds.Credentials[0].SignCount {
		t.Errorf("the authenticator holds %s after the sign-in, want its one credential with a signature counter past %v",
			describe(asserted.Credentials), creds.Credentials[0].SignCount)
	}

	// The session is a passkey's: two factors in one.
	var me struct {
		User    string   `json:"user"`
		Trust   int      `json:"trust"`
		Signals string   `json:"signals"`
		Factors []string `json:"factors"`
	}
	raw, err := chromedp.Run(step(), chromedp.Evaluate[[]byte](
		`fetch("/.noops/whoami", {headers: {Accept: "application/json"}}).then(r => r.ok ? r.json() : r.text().then(t => Promise.reject(new Error(r.status + " " + t))))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetching /.noops/whoami in the browser: %v", err)
	}
	if err := json.Unmarshal(raw, &me); err != nil {
		t.Fatalf("decoding /.noops/whoami %s: %v", raw, err)
	}
	if me.User != user || me.Trust != 20 || !slices.Equal(me.Factors, []string{identity.FactorPasskey}) {
		t.Errorf("whoami after the passkey sign-in: %s, want user %s, trust 20 and factors [%s]", raw, user, identity.FactorPasskey)
	}

	// Nothing was refused on the way. The access layer writes audit
	// records in order, from a queue: once a later record is in the log,
	// so is any refusal of the passkey sign-in.
	const marker = "/.noops-test-audit-marker"
	if resp, _ := call(t, e, "GET", app, marker, http.Header{"Accept": {"text/html"}}, nil, nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("anonymous GET %s: %d, want 302 to the sign-in page", marker, resp.StatusCode)
	}
	var entries []apitype.AuditEntry
	waitFor(t, "the audit record of "+marker, 10*time.Second, func() bool {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if entries, err = e.Client.Audit(c, 0, 10000); err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(entries, func(en apitype.AuditEntry) bool { return strings.HasSuffix(en.Action, " "+marker) })
	})
	added := false
	for _, en := range entries {
		added = added || en.Action == "add passkey" && en.Actor == "user:"+user && en.Status == http.StatusOK
		if en.Seq <= since {
			continue
		}
		if en.Action == "deny passkey sign-in" || strings.HasPrefix(en.Action, "deny") && en.Status != http.StatusFound {
			t.Errorf("audit record %d during the passkey sign-in: %s by %s on %s, %d: %s", en.Seq, en.Action, en.Actor, en.Target, en.Status, en.Detail)
		}
	}
	if !added {
		t.Errorf("no audit record of %s adding a passkey", user)
	}
}

// deployWithin deploys dir as app, as deployOK does, and gives up after
// limit.
func deployWithin(t *testing.T, e *Env, dir, app string, limit time.Duration) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := source.Pack(dir, &buf); err != nil {
		t.Fatalf("packing %s: %v", dir, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var log []string
	if _, err := e.Client.Deploy(ctx, app, bytes.NewReader(buf.Bytes()), int64(buf.Len()), hex.EncodeToString(sum[:]),
		func(ev apitype.DeployEvent) { log = append(log, ev.Stage+ev.Line) }); err != nil {
		t.Fatalf("deploy %s: %v\nlog:\n%s", app, err, strings.Join(log, "\n"))
	}
}

// text returns the text of the element with id in the tab.
func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("reading #%s: %v", id, err)
	}
	return strings.TrimSpace(s)
}

// lastAuditSeq returns the sequence number of the newest audit record.
func lastAuditSeq(t *testing.T, e *Env, ctx context.Context) int64 {
	t.Helper()
	var last int64
	for {
		entries, err := e.Client.Audit(ctx, last, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 0 {
			return last
		}
		last = entries[len(entries)-1].Seq
	}
}

// describe lists a virtual authenticator's credentials for a message.
func describe(creds []*webauthn.Credential) string {
	var b strings.Builder
	b.WriteString("[")
	for i, c := range creds {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{rp %s, user %q, discoverable %v, counter %v}", c.RpID, c.UserHandle, c.IsResidentCredential, c.SignCount)
	}
	b.WriteString("]")
	return b.String()
}
