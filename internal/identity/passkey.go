package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"noops/internal/errkind"
	"noops/internal/store"
)

// Passkeys are WebAuthn credentials. The relying party is the platform's
// domain, so one passkey signs in on every app host under it; each
// ceremony is bound to the origin (app host) it started on. Passkeys are
// discoverable and always ask the authenticator to verify the user (PIN or
// biometrics), so a passkey sign-in proves two factors.

// ceremonyTTL bounds a WebAuthn ceremony; ceremoniesMax bounds how many
// may be in progress (each is a few hundred bytes in memory).
const (
	ceremonyTTL   = 5 * time.Minute
	ceremoniesMax = 10000
)

// ceremonies holds the server side of WebAuthn ceremonies in progress.
type ceremonies struct {
	mu sync.Mutex
	m  map[string]ceremony
}

type ceremony struct {
	data    webauthn.SessionData
	user    string // registration: whose passkey; "" for a sign-in
	origin  string
	expires time.Time
}

// waUser is a user as go-webauthn sees it: the handle is the user name.
type waUser struct {
	u     store.User
	creds []webauthn.Credential
}

func (w waUser) WebAuthnID() []byte                         { return []byte(w.u.Name) }
func (w waUser) WebAuthnName() string                       { return w.u.Name }
func (w waUser) WebAuthnDisplayName() string                { return w.u.Name }
func (w waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

func passkeysOf(u store.User) ([]webauthn.Credential, error) {
	var creds []webauthn.Credential
	if len(u.Passkeys) > 0 {
		if err := json.Unmarshal(u.Passkeys, &creds); err != nil {
			return nil, fmt.Errorf("reading the passkeys of %s: %w", u.Name, err)
		}
	}
	return creds, nil
}

// relyingParty returns the WebAuthn relying party for ceremonies on origin
// ("https://app.example.test:8443").
func (s *Service) relyingParty(origin string) (*webauthn.WebAuthn, error) {
	w, err := webauthn.New(&webauthn.Config{RPDisplayName: "noops " + s.cfg.Domain, RPID: s.cfg.Domain, RPOrigins: []string{origin}})
	if err != nil {
		return nil, errkind.Errorf(errkind.Invalid, "passkeys on %s: %v", origin, err)
	}
	return w, nil
}

func (s *Service) remember1(c ceremony) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	now := s.cfg.Now()
	s.ceremonies.mu.Lock()
	defer s.ceremonies.mu.Unlock()
	if s.ceremonies.m == nil {
		s.ceremonies.m = map[string]ceremony{}
	}
	if len(s.ceremonies.m) >= ceremoniesMax {
		for k, v := range s.ceremonies.m {
			if now.After(v.expires) {
				delete(s.ceremonies.m, k)
			}
		}
		if len(s.ceremonies.m) >= ceremoniesMax {
			return "", errkind.Errorf(errkind.TooMany, "too many passkey ceremonies in progress; try again in a minute")
		}
	}
	c.expires = now.Add(ceremonyTTL)
	s.ceremonies.m[token] = c
	return token, nil
}

// take removes and returns a ceremony; an unknown or expired one is
// Unauthenticated.
func (s *Service) take(token, origin string) (ceremony, error) {
	s.ceremonies.mu.Lock()
	c, ok := s.ceremonies.m[token]
	delete(s.ceremonies.m, token)
	s.ceremonies.mu.Unlock()
	if !ok || s.cfg.Now().After(c.expires) || c.origin != origin {
		return c, errkind.Errorf(errkind.Unauthenticated, "the passkey ceremony expired or belongs to another page: start again")
	}
	return c, nil
}

// BeginPasskeyRegistration starts adding a passkey for a signed-in user on
// origin. It returns the options for navigator.credentials.create and a
// ceremony token for FinishPasskeyRegistration.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, name, origin string) (*protocol.CredentialCreation, string, error) {
	u, err := s.st.GetUser(ctx, name)
	if err != nil {
		return nil, "", err
	}
	creds, err := passkeysOf(u)
	if err != nil {
		return nil, "", err
	}
	rp, err := s.relyingParty(origin)
	if err != nil {
		return nil, "", err
	}
	exclude := make([]protocol.CredentialDescriptor, len(creds))
	for i, c := range creds {
		exclude[i] = c.Descriptor()
	}
	opts, data, err := rp.BeginRegistration(waUser{u, creds},
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationRequired}),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, "", fmt.Errorf("starting passkey registration: %w", err)
	}
	token, err := s.remember1(ceremony{data: *data, user: name, origin: origin})
	return opts, token, err
}

// FinishPasskeyRegistration checks the authenticator's answer (the body of
// r) and adds the passkey to the user.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, token, origin string, r *http.Request) error {
	c, err := s.take(token, origin)
	if err != nil {
		return err
	}
	rp, err := s.relyingParty(origin)
	if err != nil {
		return err
	}
	u, err := s.st.GetUser(ctx, c.user)
	if err != nil {
		return err
	}
	creds, err := passkeysOf(u)
	if err != nil {
		return err
	}
	cred, err := rp.FinishRegistration(waUser{u, creds}, c.data, r)
	if err != nil {
		return errkind.Errorf(errkind.Invalid, "the passkey was not accepted: %v", webauthnReason(err))
	}
	_, err = s.updateUser(ctx, c.user, func(u *store.User) error {
		cur, err := passkeysOf(*u)
		if err != nil {
			return err
		}
		b, err := json.Marshal(append(cur, *cred))
		if err != nil {
			return err
		}
		u.Passkeys = b
		return nil
	})
	return err
}

// BeginPasskeyLogin starts a sign-in with a discoverable passkey on origin.
func (s *Service) BeginPasskeyLogin(origin string) (*protocol.CredentialAssertion, string, error) {
	rp, err := s.relyingParty(origin)
	if err != nil {
		return nil, "", err
	}
	opts, data, err := rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, "", fmt.Errorf("starting passkey sign-in: %w", err)
	}
	token, err := s.remember1(ceremony{data: *data, origin: origin})
	return opts, token, err
}

// FinishPasskeyLogin checks the assertion in r's body. The passkey's user
// must exist and be enabled; the authenticator's counter is stored (a
// counter that went back means a cloned authenticator, refused). It is
// throttled per address like a password sign-in.
func (s *Service) FinishPasskeyLogin(ctx context.Context, token, origin, addr string, r *http.Request) (Auth, error) {
	now := s.cfg.Now()
	if ok, wait := s.throttle.allow(addr, now); !ok {
		s.failed(Login{Addr: addr}, "throttled")
		return Auth{}, errkind.WithHint(errkind.TooMany, fmt.Errorf("too many sign-in attempts from %s", addr), fmt.Sprintf("wait %s and try again", wait.Round(time.Second)))
	}
	c, err := s.take(token, origin)
	if err != nil {
		return Auth{}, err
	}
	rp, err := s.relyingParty(origin)
	if err != nil {
		return Auth{}, err
	}
	var found store.User
	handler := func(_, userHandle []byte) (webauthn.User, error) {
		u, err := s.st.GetUser(ctx, string(userHandle))
		if err != nil {
			return nil, errors.New("no such user")
		}
		creds, err := passkeysOf(u)
		if err != nil {
			return nil, err
		}
		found = u
		return waUser{u, creds}, nil
	}
	_, cred, err := rp.FinishPasskeyLogin(handler, c.data, r)
	if err != nil {
		refused := errkind.Errorf(errkind.Unauthenticated, "the passkey was not accepted: %v", webauthnReason(err))
		if found.Name != "" {
			return Auth{}, s.wrong(ctx, Login{User: found.Name, Addr: addr}, "passkey refused", refused)
		}
		s.failed(Login{Addr: addr}, "passkey refused")
		return Auth{}, refused
	}
	if cred.Authenticator.CloneWarning {
		return Auth{}, s.wrong(ctx, Login{User: found.Name, Addr: addr}, "cloned passkey", errkind.WithHint(errkind.Unauthenticated,
			errors.New("the passkey's signature counter went back: it may have been cloned"),
			"an admin removes the user's passkeys with noops users reset-passkeys "+found.Name+"; then add a new one"))
	}
	if found.Disabled {
		return Auth{}, errkind.Errorf(errkind.Permission, "%s is disabled", found.Name)
	}
	if now.Before(found.LockedUntil) {
		s.failed(Login{User: found.Name, Addr: addr}, "locked")
		return Auth{}, errkind.WithHint(errkind.TooMany, fmt.Errorf("%s is locked after %d failed sign-ins", found.Name, found.FailedLogins),
			fmt.Sprintf("try again after %s, or ask an admin to reset the password", found.LockedUntil.UTC().Format(time.TimeOnly+" MST")))
	}
	u, err := s.updateUser(ctx, found.Name, func(u *store.User) error {
		creds, err := passkeysOf(*u)
		if err != nil {
			return err
		}
		for i := range creds {
			if string(creds[i].ID) == string(cred.ID) {
				creds[i].Authenticator.SignCount = cred.Authenticator.SignCount
				creds[i].Flags = cred.Flags
			}
		}
		b, err := json.Marshal(creds)
		if err != nil {
			return err
		}
		u.Passkeys, u.FailedLogins, u.LockedUntil, u.LastLogin = b, 0, time.Time{}, now
		u.Habits = learn(u.Habits, addr, now)
		return nil
	})
	if err != nil {
		return Auth{}, err
	}
	return Auth{User: u, Factors: []string{FactorPasskey}, Time: now}, nil
}

// webauthnReason is the most useful text of a go-webauthn error.
func webauthnReason(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return pe.Details + ": " + pe.DevInfo
	}
	return err.Error()
}

// ResetPasskeys removes all of a user's passkeys (a lost or cloned
// authenticator).
func (s *Service) ResetPasskeys(ctx context.Context, name string) error {
	_, err := s.updateUser(ctx, name, func(u *store.User) error { u.Passkeys = nil; return nil })
	return err
}
