package shield

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"noops/internal/gateway/ratelimit"
)

// The cookie challenge: a client over a challenge rule is sent back to the
// same address with a cookie that proves it keeps cookies (most floods do
// not). The cookie is bound to the client address, signed, and valid for
// ChallengeTTL; with it the client passes the challenge rules.
const (
	ChallengeCookie = "__Host-noops-challenge"
	ChallengeTTL    = 30 * time.Minute
	// challengeTries is how many challenges a client may ignore before
	// the event says it failed.
	challengeTries = 3
)

// challenge lets a request with a valid cookie through; otherwise it
// answers with the cookie and a redirect to try again (307 keeps the
// method and body), and reports a client that keeps ignoring it or
// forges the cookie.
func (s *Shield) challenge(w http.ResponseWriter, r *http.Request, app string, ip netip.Addr, v ratelimit.Verdict) bool {
	now := s.cfg.Now()
	c, err := r.Cookie(ChallengeCookie)
	if err == nil {
		if s.validToken(c.Value, ip, now) {
			s.chal.reset(ip)
			return true
		}
		s.challengeFailed(app, ip, "a forged, expired or borrowed challenge cookie")
	} else if n := s.chal.add(ip, now); n == challengeTries {
		s.challengeFailed(app, ip, fmt.Sprintf("%d challenges ignored (rule %q)", n, v.Rule.Name))
	}
	s.stats.Challenged.Add(1)
	http.SetCookie(w, &http.Cookie{Name: ChallengeCookie, Value: s.token(ip, now.Add(ChallengeTTL)), Path: "/",
		MaxAge: int(ChallengeTTL / time.Second), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	h := w.Header()
	h.Set("Location", r.URL.RequestURI())
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTemporaryRedirect)
	return false
}

func (s *Shield) challengeFailed(app string, ip netip.Addr, why string) {
	s.stats.ChallengeFailed.Add(1)
	s.emit(Event{Kind: KindChallengeFailed, App: app, Client: ip.String(), Detail: why})
	s.Strike(ip, "garbage", "challenge failed: "+why)
}

// token is expiry (8 bytes, unix seconds) then the first 16 bytes of
// HMAC-SHA256(key, address || expiry).
func (s *Shield) token(ip netip.Addr, exp time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(exp.Unix()))
	copy(b[8:], s.mac(ip, b[:8]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Shield) validToken(v string, ip netip.Addr, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) != 24 {
		return false
	}
	if int64(binary.BigEndian.Uint64(b[:8])) < now.Unix() {
		return false
	}
	return hmac.Equal(b[8:], s.mac(ip, b[:8]))
}

func (s *Shield) mac(ip netip.Addr, exp []byte) []byte {
	m := hmac.New(sha256.New, s.key[:])
	a := ip.As16()
	m.Write(a[:])
	m.Write(exp)
	return m.Sum(nil)[:16]
}
