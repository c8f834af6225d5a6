package access

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"noops/internal/errkind"
	"noops/internal/gateway/policy"
	"noops/internal/gateway/trust"
	"noops/internal/identity"
	"noops/internal/store"
)

// Headers the gateway sets on requests it lets through, after removing
// whatever the client sent under these names.
const (
	HeaderUser   = "X-Noops-User"
	HeaderRoles  = "X-Noops-Roles"
	HeaderDevice = "X-Noops-Device"
	HeaderTrust  = "X-Noops-Trust"
)

// Prefix is the path under every app host that the access layer serves
// itself (sign-in, sign-out, whoami).
const Prefix = "/.noops/"

// PlatformPrefix is the part of Prefix that the platform serves beside
// the app after the app's own policy admitted the request (asynchronous
// invocations' status).
const PlatformPrefix = Prefix + "invocations/"

// who is the authenticated caller of a request.
type who struct {
	user    store.User
	device  bool // the caller presented a device certificate: dev
	dev     identity.DeviceIdentity
	session *store.Session
	token   string // the session cookie's token, to renew it
	renewed bool
}

// Admit decides one request to app: it returns true when the request may
// go on to the app; otherwise it has written the answer (a sign-in page or
// redirect, 401 or 403 with the reason). It implements gateway.Guard.
func (a *Access) Admit(w http.ResponseWriter, r *http.Request, app string) bool {
	h := r.Header
	for _, k := range []string{HeaderUser, HeaderRoles, HeaderDevice, HeaderTrust, HeaderWorkload} {
		delete(h, k)
	}
	defer stripSession(h) // the app never sees the session token
	rule := (*a.apps.Load())[app]
	if rule == nil {
		a.refuse(w, r, app, nil, http.StatusForbidden, fmt.Sprintf("%s has no access policy yet: no release of it is live", app))
		return false
	}
	if rule.set.Public() {
		return true
	}
	if strings.HasPrefix(r.URL.Path, Prefix) && !strings.HasPrefix(r.URL.Path, PlatformPrefix) {
		a.serveOwn(w, r, app)
		return false
	}
	var c who // on the stack: one request, one caller
	if err := a.identify(r.Context(), r, app, &c); err != nil {
		a.unauthenticated(w, r, app, err)
		return false
	}
	now := a.cfg.Now()
	minTrust, reauth, route := rule.access.Rule(r.URL.Path)
	if reauth > 0 && c.session != nil && now.Sub(c.session.AuthTime) > reauth {
		a.stepUp(w, r, app, route, reauth)
		return false
	}
	in := a.signals(&c, r, now)
	score := a.cfg.Weights.Score(in)
	req := policy.Request{
		Principal: policy.Principal{Kind: "user", Name: c.user.Name, Roles: c.user.Roles},
		Action:    r.Method, App: app, Path: r.URL.Path, Trust: score,
		SourceIP: clientAddr(r), Time: now,
	}
	if c.device {
		req.MTLS, req.Device = c.dev.ID, c.dev.Device.ID
	}
	d := rule.set.Authorize(req)
	if !d.Allow {
		a.refuse(w, r, app, &c, http.StatusForbidden, d.Reason)
		a.log.Info("access denied", "app", app, "user", c.user.Name, "device", req.Device, "method", r.Method, "path", r.URL.Path,
			"trust", score.String(), "min_trust", minTrust, "reason", d.Reason, "policies", d.Policies)
		return false
	}
	if a.log.Enabled(r.Context(), debugLevel) {
		a.log.Log(r.Context(), debugLevel, "access allowed", "app", app, "user", c.user.Name, "device", req.Device, "method", r.Method,
			"path", r.URL.Path, "trust", score.String(), "reason", d.Reason, "policies", d.Policies)
	}
	if c.renewed {
		a.setCookie(w, c.token)
	}
	vals := make([]string, 4) // one allocation for the four headers
	vals[0], vals[1] = c.user.Name, strconv.Itoa(score.Total)
	h[HeaderUser], h[HeaderTrust] = vals[0:1:1], vals[1:2:2]
	if len(c.user.Roles) > 0 {
		vals[2] = strings.Join(c.user.Roles, ",")
		h[HeaderRoles] = vals[2:3:3]
	}
	if c.device {
		vals[3] = c.dev.Device.ID
		h[HeaderDevice] = vals[3:4:4]
	}
	return true
}

const debugLevel = -4

// failedLoginWindow is how long wrong guesses count against a session.
const failedLoginWindow = time.Hour

// identify finds the caller: a device certificate wins over a cookie.
// No credential at all is errkind.Unauthenticated with "no credentials".
func (a *Access) identify(ctx context.Context, r *http.Request, app string, c *who) error {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		d, err := a.id.VerifyDevice(ctx, r.TLS.PeerCertificates)
		if err != nil {
			return err
		}
		c.dev, c.user, c.device = d, d.User, true
		return nil
	}
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return errNoCredentials
	}
	sess, u, renewed, err := a.id.SessionFor(ctx, ck.Value, app)
	if err != nil {
		return err
	}
	c.user, c.session, c.token, c.renewed = u, &sess, ck.Value, renewed
	return nil
}

var errNoCredentials = errkind.Errorf(errkind.Unauthenticated, "sign in first: no session and no device certificate")

// signals gathers what the trust score is made of.
func (a *Access) signals(c *who, r *http.Request, now time.Time) trust.Input {
	addr := clientAddr(r)
	place := a.id.Place(c.user, addr, now)
	in := trust.Input{KnownNetwork: place.KnownNetwork, NewLocation: place.NewLocation, UsualHours: place.UsualHours}
	// Wrong guesses at the user's password in the last hour lower the
	// trust of browser sessions; a device proves its key on every
	// connection, and guesses from elsewhere must not lock it out.
	if !c.device && now.Sub(c.user.LastFailure) < failedLoginWindow {
		in.FailedLogins = c.user.FailedLogins
	}
	if a.cfg.WAFHits != nil {
		in.WAFHits = a.cfg.WAFHits(addr.String())
	}
	switch {
	case c.device:
		// A device counts what its user proved when it signed in, and
		// proves its key on every connection.
		in.DeviceCert = true
		in.Password = len(c.dev.Device.Factors) > 0
		in.SecondFactor = identity.SecondFactor(c.dev.Device.Factors)
		in.DeviceAge = now.Sub(c.dev.Device.Created)
	case c.session != nil:
		for _, f := range c.session.Factors {
			switch f {
			case identity.FactorPassword:
				in.Password = true
			case identity.FactorTOTP:
				in.SecondFactor = true
			case identity.FactorPasskey:
				// A passkey is a key the device holds, unlocked by a user
				// verification (PIN or biometrics): two factors.
				in.Password, in.SecondFactor = true, true
			}
		}
	}
	return in
}

// unauthenticated answers a request without (good) credentials: browsers
// go to the sign-in page, other clients get 401 with the reason.
func (a *Access) unauthenticated(w http.ResponseWriter, r *http.Request, app string, err error) {
	reason := err.Error()
	if hint := errkind.HintOf(err); hint != "" {
		reason += " (" + hint + ")"
	}
	if !errkind.Is(err, errkind.Unauthenticated) && !errkind.Is(err, errkind.Permission) {
		a.log.Error("identifying a caller", "app", app, "err", err)
		reason = "the platform could not check your credentials; try again"
	}
	if errkind.Is(err, errkind.Permission) {
		// Who it is is known, and no longer trusted (a revoked device, a
		// disabled user): signing in again in a browser would not help.
		a.refuse(w, r, app, nil, http.StatusForbidden, reason)
		return
	}
	if wantsHTML(r) && (r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
		a.audit(store.AuditEntry{Time: a.cfg.Now(), Actor: "anonymous " + clientAddr(r).String(), Action: "deny " + r.Method + " " + r.URL.Path,
			Target: "app:" + app, Status: http.StatusFound, Detail: reason})
		http.Redirect(w, r, loginURL(r.URL.RequestURI(), false), http.StatusFound)
		return
	}
	a.refuse(w, r, app, nil, http.StatusUnauthorized, reason)
}

func (a *Access) stepUp(w http.ResponseWriter, r *http.Request, app, route string, reauth time.Duration) {
	reason := fmt.Sprintf("route %s of %s asks for a sign-in within the last %s", route, app, reauth)
	if wantsHTML(r) {
		http.Redirect(w, r, loginURL(r.URL.RequestURI(), true), http.StatusFound)
		return
	}
	a.refuse(w, r, app, nil, http.StatusUnauthorized, reason)
}

func loginURL(rd string, step bool) string {
	q := url.Values{"rd": {rd}}
	if step {
		q.Set("step", "1")
	}
	return Prefix + "login?" + q.Encode()
}

func wantsHTML(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// refuse writes a 401 or 403 with the reason and audits it.
func (a *Access) refuse(w http.ResponseWriter, r *http.Request, app string, c *who, status int, reason string) {
	actor := "anonymous " + clientAddr(r).String()
	if c != nil {
		actor = "user:" + c.user.Name
		if c.device {
			actor += " device:" + c.dev.Device.ID
		}
	}
	a.audit(store.AuditEntry{Time: a.cfg.Now(), Actor: actor, Action: "deny " + r.Method + " " + r.URL.Path, Target: "app:" + app, Status: status, Detail: reason})
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		hdr.Set("WWW-Authenticate", `Noops realm="`+hostOnly(r.Host)+`", hint="noops login, or sign in at `+Prefix+`login"`)
	}
	if wantsHTML(r) {
		a.page(w, status, pageData{Title: http.StatusText(status), Message: reason, App: app})
		return
	}
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "%d %s: %s\n", status, http.StatusText(status), reason)
}

// stripSession removes the session cookie from the Cookie header, so that
// an app cannot replay its users' session tokens.
func stripSession(h http.Header) {
	lines := h["Cookie"]
	for i, line := range lines {
		if !strings.Contains(line, CookieName) {
			continue
		}
		parts := strings.Split(line, ";")
		kept := parts[:0]
		for _, p := range parts {
			if name, _, _ := strings.Cut(strings.TrimSpace(p), "="); name != CookieName {
				kept = append(kept, p)
			}
		}
		lines[i] = strings.TrimSpace(strings.Join(kept, ";"))
	}
	out := lines[:0]
	for _, l := range lines {
		if l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		delete(h, "Cookie")
	} else {
		h["Cookie"] = out
	}
}
