package access

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"noops/internal/errkind"
	"noops/internal/identity"
	"noops/internal/store"
)

// CookieName is the session cookie. The __Host- prefix makes browsers
// accept it only Secure, for this host alone, on path /.
const CookieName = "__Host-noops-session"

// serveOwn serves the access layer's own pages under Prefix.
func (a *Access) serveOwn(w http.ResponseWriter, r *http.Request, app string) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case Prefix + "login":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			a.page(w, http.StatusOK, pageData{Title: "Sign in", App: app, Login: true, RD: safeRD(r.URL.Query().Get("rd")),
				Step: r.URL.Query().Get("step") != ""})
		case http.MethodPost:
			a.login(w, r, app)
		default:
			http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		}
	case Prefix + "logout":
		if r.Method != http.MethodPost || !sameOrigin(r) {
			http.Error(w, "sign out with a POST from this site", http.StatusMethodNotAllowed)
			return
		}
		if ck, err := r.Cookie(CookieName); err == nil {
			_ = a.id.EndSession(r.Context(), ck.Value)
		}
		http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
	case Prefix + "whoami":
		a.whoami(w, r, app)
	default:
		if !a.servePasskey(w, r, app) {
			http.NotFound(w, r)
		}
	}
}

// login checks a submitted sign-in form.
func (a *Access) login(w http.ResponseWriter, r *http.Request, app string) {
	if !sameOrigin(r) {
		a.refuse(w, r, app, nil, http.StatusForbidden, "the sign-in form was posted from another site")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form is malformed or too large", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	rd := safeRD(f.Get("rd"))
	data := pageData{Title: "Sign in", App: app, Login: true, RD: rd, User: f.Get("user"), Step: f.Get("step") != ""}
	auth, err := a.id.Authenticate(r.Context(), identity.Login{User: f.Get("user"), Password: f.Get("password"), Code: f.Get("code"), Addr: clientAddr(r).String()})
	if err != nil {
		status := http.StatusUnauthorized
		switch {
		case errors.Is(err, identity.ErrCodeNeeded):
			data.Message = "Enter the one-time code your authenticator app shows, with your password."
		case errkind.Is(err, errkind.TooMany):
			status = http.StatusTooManyRequests
			data.Message = err.Error() + ": " + errkind.HintOf(err)
		case errkind.Is(err, errkind.Unauthenticated), errkind.Is(err, errkind.Permission):
			data.Message = err.Error()
		default:
			a.log.Error("signing in", "app", app, "err", err)
			status, data.Message = http.StatusInternalServerError, "the platform could not check the sign-in; try again"
		}
		if !errors.Is(err, identity.ErrCodeNeeded) {
			a.audit(store.AuditEntry{Time: a.cfg.Now(), Actor: "anonymous " + clientAddr(r).String(), Action: "deny sign-in", Target: "app:" + app,
				Status: status, Detail: "user " + f.Get("user") + ": " + err.Error()})
		}
		a.page(w, status, data)
		return
	}
	if ck, err := r.Cookie(CookieName); err == nil && data.Step {
		if _, err := a.id.StepUp(r.Context(), ck.Value, auth); err == nil {
			http.Redirect(w, r, rd, http.StatusSeeOther)
			return
		}
	}
	token, _, err := a.id.StartSessionFor(r.Context(), auth, clientAddr(r).String(), app)
	if err != nil {
		a.log.Error("starting a session", "app", app, "err", err)
		a.page(w, http.StatusInternalServerError, pageData{Title: "Sign in", App: app, Login: true, RD: rd, Message: "the platform could not start a session; try again"})
		return
	}
	a.setCookie(w, token)
	http.Redirect(w, r, rd, http.StatusSeeOther)
}

func (a *Access) setCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: "/", MaxAge: int(identity.DefaultSessionMax.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// whoami shows the caller's identity and the trust of this request.
func (a *Access) whoami(w http.ResponseWriter, r *http.Request, app string) {
	c := new(who)
	if err := a.identify(r.Context(), r, app, c); err != nil {
		a.unauthenticated(w, r, app, err)
		return
	}
	score := a.cfg.Weights.Score(a.signals(c, r, a.cfg.Now()))
	out := map[string]any{"user": c.user.Name, "roles": c.user.Roles, "trust": score.Total, "signals": score.String()}
	if c.device {
		out["device"], out["spiffe_id"], out["cert_expires"] = c.dev.Device.ID, c.dev.ID, c.dev.Expires
	}
	if c.session != nil {
		out["session_expires"], out["factors"] = c.session.Expires, c.session.Factors
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// sameOrigin accepts a POST whose Origin (or, without one, Referer) is
// this very host over HTTPS: the sign-in and sign-out forms are not
// cross-site targets.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	u, err := url.Parse(o)
	return err == nil && u.Scheme == "https" && strings.EqualFold(u.Host, r.Host)
}

// safeRD keeps a redirect target on this host: a path, never "//host".
func safeRD(rd string) string {
	if !strings.HasPrefix(rd, "/") || strings.HasPrefix(rd, "//") || strings.HasPrefix(rd, "/\\") ||
		strings.HasPrefix(rd, Prefix) && rd != Prefix+"passkeys" {
		return "/"
	}
	return rd
}

type pageData struct {
	Title, Message, App, RD, User string
	Count                         string // passkeys
	Login, Step, Passkeys         bool
}

func (a *Access) page(w http.ResponseWriter, status int, d pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}} · {{.App}}</title>
<style>body{font:16px system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem;color:#222}
input{display:block;width:100%;padding:.5rem;margin:.25rem 0 1rem;box-sizing:border-box}
button{padding:.5rem 1.5rem}.msg{padding:.75rem;background:#fff3f3;border:1px solid #e0b4b4}</style></head>
<body><h1>{{.Title}}</h1>
{{if .Message}}<p class="msg" id="message">{{.Message}}</p>{{end}}
{{if .Login}}<p>{{if .Step}}This page asks you to sign in again.{{else}}Sign in to reach <b>{{.App}}</b>.{{end}}</p>
<form method="post" action="/.noops/login" id="login">
<input type="hidden" name="rd" value="{{.RD}}">{{if .Step}}<input type="hidden" name="step" value="1">{{end}}
<label>User <input name="user" id="user" autocomplete="username" value="{{.User}}" required></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
<label>One-time code, if you have one <input name="code" id="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}"></label>
<button type="submit" id="submit">Sign in</button></form>
<p>or <button type="button" id="passkey">Sign in with a passkey</button></p>{{end}}
{{if .Passkeys}}<p>Signed in as <b>{{.User}}</b>, with <span id="count">{{.Count}}</span> passkey(s).</p>
<p><button type="button" id="add-passkey">Add a passkey</button></p>{{end}}
<script src="/.noops/passkey.js"></script>
</body></html>`))
