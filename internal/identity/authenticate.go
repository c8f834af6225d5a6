package identity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
)

// The factors a sign-in can prove.
const (
	FactorPassword = "password"
	FactorTOTP     = "totp"
	FactorPasskey  = "passkey"
)

// Login is a sign-in attempt.
type Login struct {
	User     string
	Password string
	Code     string // TOTP code; needed when the user has TOTP
	Addr     string // client IP address, for throttling and habits
}

// Auth is a successful sign-in: who, and what they proved.
type Auth struct {
	User    store.User
	Factors []string
	Time    time.Time
}

// HasSecondFactor reports whether the sign-in proved more than a password.
func (a Auth) HasSecondFactor() bool { return SecondFactor(a.Factors) }

// SecondFactor reports whether factors hold more than a password.
func SecondFactor(factors []string) bool {
	for _, f := range factors {
		if f == FactorTOTP || f == FactorPasskey {
			return true
		}
	}
	return false
}

// ErrCodeNeeded is returned (wrapped, errkind.Unauthenticated) when the
// password was right and the user has TOTP but gave no code: ask for it.
var ErrCodeNeeded = errors.New("a one-time code from the authenticator app is needed")

// errWrong is the one message for an unknown user and a wrong password, so
// that sign-in does not tell which names exist.
var errWrong = errors.New("wrong user name or password")

// Authenticate checks a sign-in: the password, then the TOTP code when the
// user has one. Attempts are throttled per address; consecutive failures
// lock the account for a while; a code is accepted once (a replayed code is
// refused). Every failure is counted and reported to OnFailure. Errors are
// Unauthenticated (wrong or missing credentials), TooMany (throttled or
// locked) or Permission (a disabled account, said only after a right
// password).
func (s *Service) Authenticate(ctx context.Context, l Login) (Auth, error) {
	now := s.cfg.Now()
	if ok, wait := s.throttle.allow(l.Addr, now); !ok {
		s.failed(l, "throttled")
		return Auth{}, errkind.WithHint(errkind.TooMany, fmt.Errorf("too many sign-in attempts from %s", l.Addr),
			fmt.Sprintf("wait %s and try again", wait.Round(time.Second)))
	}
	u, err := s.st.GetUser(ctx, l.User)
	if errkind.Is(err, errkind.NotFound) {
		VerifyPassword(dummyHash, l.Password) // the same cost as a wrong password
		s.failed(l, "unknown user")
		return Auth{}, errkind.E(errkind.Unauthenticated, errWrong)
	}
	if err != nil {
		return Auth{}, err
	}
	if now.Before(u.LockedUntil) {
		s.failed(l, "locked")
		return Auth{}, errkind.WithHint(errkind.TooMany, fmt.Errorf("%s is locked after %d failed sign-ins", u.Name, u.FailedLogins),
			fmt.Sprintf("try again after %s, or ask an admin to reset the password", u.LockedUntil.UTC().Format(time.TimeOnly+" MST")))
	}
	ok, stale, err := VerifyPassword(u.PasswordHash, l.Password)
	if err != nil {
		return Auth{}, fmt.Errorf("checking the password of %s: %w", u.Name, err)
	}
	if !ok {
		return Auth{}, s.wrong(ctx, l, "wrong password", errkind.E(errkind.Unauthenticated, errWrong))
	}
	if u.Disabled {
		s.failed(l, "disabled")
		return Auth{}, errkind.WithHint(errkind.Permission, fmt.Errorf("%s is disabled", u.Name), "ask an admin: noops users enable "+u.Name)
	}
	factors := []string{FactorPassword}
	var step int64 = -1
	if hasTOTP(u) {
		if l.Code == "" {
			return Auth{}, errkind.E(errkind.Unauthenticated, ErrCodeNeeded)
		}
		if step, err = matchTOTP(u.TOTPSecret, l.Code, now); err != nil {
			return Auth{}, err
		}
		switch {
		case step < 0:
			return Auth{}, s.wrong(ctx, l, "wrong code", errkind.WithHint(errkind.Unauthenticated, errors.New("wrong one-time code"),
				"type the 6 digits the authenticator app shows now, and check the device's clock"))
		case step <= u.TOTPLastStep:
			return Auth{}, s.wrong(ctx, l, "replayed code", errkind.WithHint(errkind.Unauthenticated, errors.New("this one-time code was already used"),
				"wait for the next code (every 30 seconds) and use that"))
		}
		factors = append(factors, FactorTOTP)
	}
	var rehash string
	if stale {
		rehash, _ = HashPassword(l.Password) // best effort: the old hash still works
	}
	u, err = s.updateUser(ctx, u.Name, func(u *store.User) error {
		u.FailedLogins, u.LockedUntil, u.LastLogin = 0, time.Time{}, now
		if step > u.TOTPLastStep {
			u.TOTPLastStep = step
		} else if step >= 0 {
			return errkind.E(errkind.Unauthenticated, errors.New("this one-time code was already used")) // raced with another sign-in
		}
		if rehash != "" {
			u.PasswordHash = rehash
		}
		u.Habits = learn(u.Habits, l.Addr, now)
		return nil
	})
	if err != nil {
		return Auth{}, err
	}
	return Auth{User: u, Factors: factors, Time: now}, nil
}

// wrong counts a failure against the account, locks it when there were
// too many, and returns err.
func (s *Service) wrong(ctx context.Context, l Login, reason string, err error) error {
	now := s.cfg.Now()
	_, uerr := s.updateUser(ctx, l.User, func(u *store.User) error {
		if !u.LockedUntil.IsZero() && !now.Before(u.LockedUntil) {
			u.FailedLogins, u.LockedUntil = 0, time.Time{} // a lock that ended starts the count again
		}
		u.FailedLogins++
		u.LastFailure = now
		if u.FailedLogins >= s.cfg.LockAfter {
			u.LockedUntil = now.Add(s.cfg.LockFor)
		}
		return nil
	})
	if uerr != nil {
		s.log.Warn("counting a failed sign-in", "user", l.User, "err", uerr)
	}
	s.failed(l, reason)
	return err
}

func (s *Service) failed(l Login, reason string) {
	s.log.Info("sign-in refused", "user", l.User, "addr", l.Addr, "reason", reason)
	if s.cfg.OnFailure != nil {
		s.cfg.OnFailure(l.Addr, l.User, reason)
	}
}
