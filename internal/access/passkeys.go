package access

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"strconv"

	"noops/internal/errkind"
	"noops/internal/identity"
	"noops/internal/store"
)

//go:embed passkey.js
var passkeyJS []byte

// servePasskey serves the passkey endpoints under Prefix; it reports
// whether path was one of them.
func (a *Access) servePasskey(w http.ResponseWriter, r *http.Request, app string) bool {
	origin := "https://" + r.Host
	switch r.URL.Path {
	case Prefix + "passkey.js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(passkeyJS)
	case Prefix + "passkeys":
		c := new(who)
		if err := a.identify(r.Context(), r, app, c); err != nil || c.session == nil {
			http.Redirect(w, r, loginURL(Prefix+"passkeys", false), http.StatusFound)
			return true
		}
		n := countJSON(c.user.Passkeys)
		a.page(w, http.StatusOK, pageData{Title: "Passkeys", App: app, User: c.user.Name, Passkeys: true, Count: n})
	case Prefix + "passkey/login/begin":
		if !a.ceremonyPost(w, r) {
			return true
		}
		opts, token, err := a.id.BeginPasskeyLogin(origin)
		a.ceremonyAnswer(w, map[string]any{"options": opts, "token": token}, err)
	case Prefix + "passkey/login/finish":
		if !a.ceremonyPost(w, r) {
			return true
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		auth, err := a.id.FinishPasskeyLogin(r.Context(), r.URL.Query().Get("token"), origin, clientAddr(r).String(), r)
		if err != nil {
			status := http.StatusUnauthorized
			if errkind.Is(err, errkind.Permission) {
				status = http.StatusForbidden
			} else if errkind.Is(err, errkind.TooMany) {
				status = http.StatusTooManyRequests
			}
			a.audit(store.AuditEntry{Time: a.cfg.Now(), Actor: "anonymous " + clientAddr(r).String(), Action: "deny passkey sign-in", Target: "app:" + app,
				Status: status, Detail: err.Error()})
			a.ceremonyAnswer(w, nil, err)
			return true
		}
		token, _, err := a.id.StartSessionFor(r.Context(), auth, clientAddr(r).String(), app)
		if err != nil {
			a.ceremonyAnswer(w, nil, err)
			return true
		}
		a.setCookie(w, token)
		a.ceremonyAnswer(w, map[string]any{"rd": safeRD(r.URL.Query().Get("rd"))}, nil)
	case Prefix + "passkey/register/begin", Prefix + "passkey/register/finish":
		if !a.ceremonyPost(w, r) {
			return true
		}
		c := new(who)
		if err := a.identify(r.Context(), r, app, c); err != nil || c.session == nil {
			a.ceremonyAnswer(w, nil, errkind.Errorf(errkind.Unauthenticated, "sign in first, then add a passkey"))
			return true
		}
		if !identity.SecondFactor(c.session.Factors) {
			// A stolen password alone must not mint a lasting second factor.
			a.ceremonyAnswer(w, nil, errkind.Errorf(errkind.Permission,
				"add a passkey from a session signed in with a second factor (a one-time code or another passkey)"))
			return true
		}
		if r.URL.Path == Prefix+"passkey/register/begin" {
			opts, token, err := a.id.BeginPasskeyRegistration(r.Context(), c.user.Name, origin)
			a.ceremonyAnswer(w, map[string]any{"options": opts, "token": token}, err)
			return true
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		err := a.id.FinishPasskeyRegistration(r.Context(), r.URL.Query().Get("token"), origin, r)
		if err == nil {
			a.audit(store.AuditEntry{Time: a.cfg.Now(), Actor: "user:" + c.user.Name, Action: "add passkey", Target: "user:" + c.user.Name, Status: http.StatusOK})
		}
		a.ceremonyAnswer(w, map[string]any{"ok": true}, err)
	default:
		return false
	}
	return true
}

// ceremonyPost accepts only same-origin POSTs.
func (a *Access) ceremonyPost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost || !sameOrigin(r) {
		a.ceremonyAnswer(w, nil, errkind.Errorf(errkind.Permission, "passkey ceremonies are same-origin POSTs"))
		return false
	}
	return true
}

func (a *Access) ceremonyAnswer(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		status := http.StatusBadRequest
		switch {
		case errkind.Is(err, errkind.Unauthenticated):
			status = http.StatusUnauthorized
		case errkind.Is(err, errkind.Permission):
			status = http.StatusForbidden
		case errkind.Is(err, errkind.TooMany):
			status = http.StatusTooManyRequests
		case errkind.Of(err) == errkind.Internal:
			a.log.Error("passkey ceremony", "err", err)
			status = http.StatusInternalServerError
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

func countJSON(raw []byte) string {
	var v []json.RawMessage
	if json.Unmarshal(raw, &v) != nil {
		return "0"
	}
	return strconv.Itoa(len(v))
}
