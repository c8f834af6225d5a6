package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
)

// renewEvery is how often a session in use has its expiry pushed back.
const renewEvery = time.Minute

// StartSession opens a browser session for a sign-in and returns the token
// for the cookie. Only the token's hash is stored.
func (s *Service) StartSession(ctx context.Context, a Auth, addr string) (string, store.Session, error) {
	return s.StartSessionFor(ctx, a, addr, "")
}

// StartSessionFor opens a session valid only for audience (an app): the
// token is "<audience>.<random>", and since only the hash of the whole
// token is stored, a token cannot be moved to another audience by
// changing its prefix. SessionFor refuses a token of another audience.
func (s *Service) StartSessionFor(ctx context.Context, a Auth, addr, audience string) (string, store.Session, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", store.Session{}, fmt.Errorf("choosing a session token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	if audience != "" {
		token = audience + "." + token
	}
	now := s.cfg.Now()
	expires := now.Add(min(s.cfg.SessionIdle, s.cfg.SessionMax)) // never past SessionMax, as renewals
	sess, err := s.st.CreateSession(ctx, store.Session{ID: tokenID(token), User: a.User.Name, Created: now, AuthTime: a.Time,
		Factors: a.Factors, Expires: expires, LastSeen: now, Addr: addr})
	return token, sess, err
}

func tokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Session returns the session of a cookie token and its user. A session
// in use is renewed: its expiry moves to SessionIdle from now (at most
// once a minute, and never past SessionMax from its start), so it ends
// only when unused, not at one fixed time. renewed says the cookie should
// be sent again. An unknown or expired token, or a disabled user, is
// Unauthenticated.
func (s *Service) Session(ctx context.Context, token string) (sess store.Session, u store.User, renewed bool, err error) {
	return s.SessionFor(ctx, token, "")
}

// SessionFor is Session for a token of audience (StartSessionFor).
func (s *Service) SessionFor(ctx context.Context, token, audience string) (sess store.Session, u store.User, renewed bool, err error) {
	if audience != "" {
		rest, ok := strings.CutPrefix(token, audience+".")
		if !ok {
			return sess, u, false, errkind.Errorf(errkind.Unauthenticated, "the session cookie belongs to another app: sign in here")
		}
		if len(rest) != 43 {
			return sess, u, false, errkind.Errorf(errkind.Unauthenticated, "no session")
		}
	} else if len(token) != 43 {
		return sess, u, false, errkind.Errorf(errkind.Unauthenticated, "no session")
	}
	id := tokenID(token)
	sess, err = s.st.GetSession(ctx, id)
	if errkind.Is(err, errkind.NotFound) {
		return sess, u, false, errkind.Errorf(errkind.Unauthenticated, "the session ended: sign in again")
	}
	if err != nil {
		return sess, u, false, err
	}
	now := s.cfg.Now()
	if !now.Before(sess.Expires) {
		_ = s.st.DeleteSession(ctx, id)
		return sess, u, false, errkind.Errorf(errkind.Unauthenticated, "the session expired: sign in again")
	}
	if u, err = s.user(ctx, sess.User); err != nil {
		return sess, u, false, err
	}
	if u.Disabled {
		return sess, u, false, errkind.Errorf(errkind.Unauthenticated, "user %s is disabled", u.Name)
	}
	if now.Sub(sess.LastSeen) >= renewEvery {
		limit := sess.Created.Add(s.cfg.SessionMax)
		upd, err := s.st.UpdateSession(ctx, id, func(x *store.Session) error {
			x.LastSeen = now
			x.Expires = now.Add(s.cfg.SessionIdle)
			if x.Expires.After(limit) {
				x.Expires = limit
			}
			return nil
		})
		if err == nil {
			sess, renewed = upd, true
		}
	}
	return sess, u, renewed, nil
}

// StepUp records a fresh sign-in on an existing session (re-authentication
// that a route asked for): its auth time and factors are replaced.
func (s *Service) StepUp(ctx context.Context, token string, a Auth) (store.Session, error) {
	return s.st.UpdateSession(ctx, tokenID(token), func(x *store.Session) error {
		if x.User != a.User.Name {
			return errkind.Errorf(errkind.Permission, "the session belongs to another user: sign out first")
		}
		x.AuthTime, x.Factors = a.Time, a.Factors
		return nil
	})
}

// EndSession signs a session out.
func (s *Service) EndSession(ctx context.Context, token string) error {
	return s.st.DeleteSession(ctx, tokenID(token))
}

// Prune removes expired sessions.
func (s *Service) Prune(ctx context.Context) (int, error) {
	return s.st.PruneSessions(ctx, s.cfg.Now())
}
