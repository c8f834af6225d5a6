// Package identity is the platform's built-in identity store: users with
// argon2id passwords, TOTP second factors and WebAuthn passkeys, throttled
// and locked out on wrong guesses; devices that signed in with `noops
// login` and hold short-lived client certificates (X.509 SVIDs with a
// SPIFFE ID naming user and device); browser sessions that renew while in
// use. It also learns each user's usual networks and hours, which the trust
// score reads.
//
// Other identity sources (an OIDC provider per route) plug in as a
// Provider: something that turns a sign-in into an Auth.
package identity

import (
	"context"
	"crypto/x509"
	"log/slog"
	"sync"
	"time"

	"noops/internal/identity/ca"
	"noops/internal/store"
)

// Issuer signs identity certificates; *ca.CA is one.
type Issuer interface {
	IssueSVID(ca.SVID) (leaf, intermediate []byte, err error)
	RootPool() *x509.CertPool
}

// Config tunes the service. Zero values take the defaults.
type Config struct {
	Domain string // the trust domain of SPIFFE IDs: spiffe://<Domain>/...
	Issuer Issuer
	Now    func() time.Time
	Logger *slog.Logger

	DeviceCertTTL time.Duration // device certificates (default 1h)
	SessionIdle   time.Duration // a browser session unused this long ends (default 12h)
	SessionMax    time.Duration // and any session after this (default 30 days)

	LockAfter int           // consecutive failures that lock an account (default 5)
	LockFor   time.Duration // how long (default 15m)
	// AttemptsPerMinute bounds sign-in attempts per client address
	// (default 10, with a burst of as many).
	AttemptsPerMinute int
	// OnFailure is told of every failed sign-in (the ban list listens).
	OnFailure func(addr, user, reason string)
}

// Defaults.
const (
	DefaultDeviceCertTTL = time.Hour
	DefaultSessionIdle   = 12 * time.Hour
	DefaultSessionMax    = 30 * 24 * time.Hour
	DefaultLockAfter     = 5
	DefaultLockFor       = 15 * time.Minute
	DefaultAttempts      = 10
	// cacheFor is how long a user or device read from the store is
	// trusted without reading it again; changes made through this
	// service apply at once.
	cacheFor = 10 * time.Second
)

// Service is the identity store. Its methods are safe for concurrent use.
type Service struct {
	cfg Config
	st  store.Identities
	log *slog.Logger

	throttle   throttle
	ceremonies ceremonies // WebAuthn ceremonies in progress

	mu      sync.Mutex
	users   map[string]cached[store.User]
	devices map[string]cached[store.Device]
	certs   map[string]certEntry // by certificate DER: chains already verified
	habits  map[string]parsedHabits
}

type cached[T any] struct {
	v    T
	read time.Time
}

// New returns the identity service over st.
func New(cfg Config, st store.Identities) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.DeviceCertTTL, DefaultDeviceCertTTL)
	def(&cfg.SessionIdle, DefaultSessionIdle)
	def(&cfg.SessionMax, DefaultSessionMax)
	def(&cfg.LockFor, DefaultLockFor)
	if cfg.LockAfter <= 0 {
		cfg.LockAfter = DefaultLockAfter
	}
	if cfg.AttemptsPerMinute <= 0 {
		cfg.AttemptsPerMinute = DefaultAttempts
	}
	s := &Service{cfg: cfg, st: st, log: cfg.Logger,
		users: map[string]cached[store.User]{}, devices: map[string]cached[store.Device]{}, certs: map[string]certEntry{},
		habits: map[string]parsedHabits{}}
	s.throttle.init(cfg.AttemptsPerMinute)
	return s
}

// Domain returns the trust domain.
func (s *Service) Domain() string { return s.cfg.Domain }

// user reads a user through the cache.
func (s *Service) user(ctx context.Context, name string) (store.User, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	c, ok := s.users[name]
	s.mu.Unlock()
	if ok && now.Sub(c.read) < cacheFor {
		return c.v, nil
	}
	u, err := s.st.GetUser(ctx, name)
	if err != nil {
		return u, err
	}
	s.remember(u)
	return u, nil
}

func (s *Service) remember(u store.User) {
	s.mu.Lock()
	s.users[u.Name] = cached[store.User]{u, s.cfg.Now()}
	s.mu.Unlock()
}

func (s *Service) device(ctx context.Context, id string) (store.Device, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	c, ok := s.devices[id]
	s.mu.Unlock()
	if ok && now.Sub(c.read) < cacheFor {
		return c.v, nil
	}
	d, err := s.st.GetDevice(ctx, id)
	if err != nil {
		return d, err
	}
	s.rememberDevice(d)
	return d, nil
}

func (s *Service) rememberDevice(d store.Device) {
	s.mu.Lock()
	s.devices[d.ID] = cached[store.Device]{d, s.cfg.Now()}
	s.mu.Unlock()
}

// updateUser edits a user in the store and refreshes the cache.
func (s *Service) updateUser(ctx context.Context, name string, edit func(*store.User) error) (store.User, error) {
	u, err := s.st.UpdateUser(ctx, name, edit)
	if err != nil {
		return u, err
	}
	s.remember(u)
	return u, nil
}
