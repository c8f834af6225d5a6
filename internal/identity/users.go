package identity

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
)

// The roles the platform itself gives meaning to; any other role is a
// group that policies may name.
const (
	RoleAdmin  = "admin"  // every API call
	RoleViewer = "viewer" // read-only API calls
)

var (
	userName = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,31}$`)
	roleName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
)

// ValidUserName checks a user name: it becomes part of SPIFFE IDs and
// Cedar entity IDs.
func ValidUserName(name string) error {
	if !userName.MatchString(name) {
		return errkind.Errorf(errkind.Invalid, "user name %q is not valid: use 1-32 lower-case letters, digits, '.', '_' and '-', starting with a letter", name)
	}
	return nil
}

func cleanRoles(roles []string) ([]string, error) {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if !roleName.MatchString(r) {
			return nil, errkind.Errorf(errkind.Invalid, "role %q is not valid: use 1-32 lower-case letters, digits and '-', starting with a letter", r)
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// AddUser creates a user with a password and roles.
func (s *Service) AddUser(ctx context.Context, name, password string, roles []string) (store.User, error) {
	if err := ValidUserName(name); err != nil {
		return store.User{}, err
	}
	roles, err := cleanRoles(roles)
	if err != nil {
		return store.User{}, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return store.User{}, err
	}
	u, err := s.st.CreateUser(ctx, store.User{Name: name, Created: s.cfg.Now(), Roles: roles, PasswordHash: hash})
	if err != nil {
		return u, err
	}
	s.remember(u)
	return u, nil
}

// Users lists the users.
func (s *Service) Users(ctx context.Context) ([]store.User, error) { return s.st.ListUsers(ctx) }

// User returns one user.
func (s *Service) User(ctx context.Context, name string) (store.User, error) {
	return s.st.GetUser(ctx, name)
}

// SetDisabled disables or enables a user. Disabling ends the user's
// sessions at once; their devices are refused until the user is enabled
// again.
func (s *Service) SetDisabled(ctx context.Context, name string, disabled bool) (store.User, error) {
	u, err := s.updateUser(ctx, name, func(u *store.User) error { u.Disabled = disabled; return nil })
	if err != nil {
		return u, err
	}
	if disabled {
		if _, err := s.st.DeleteSessions(ctx, name); err != nil {
			return u, fmt.Errorf("ending the sessions of %s: %w", name, err)
		}
		s.forgetCerts()
	}
	return u, nil
}

// SetRoles replaces a user's roles.
func (s *Service) SetRoles(ctx context.Context, name string, roles []string) (store.User, error) {
	roles, err := cleanRoles(roles)
	if err != nil {
		return store.User{}, err
	}
	return s.updateUser(ctx, name, func(u *store.User) error { u.Roles = roles; return nil })
}

// SetPassword replaces a user's password and clears a lockout.
func (s *Service) SetPassword(ctx context.Context, name, password string) (store.User, error) {
	hash, err := HashPassword(password)
	if err != nil {
		return store.User{}, err
	}
	return s.updateUser(ctx, name, func(u *store.User) error {
		u.PasswordHash, u.FailedLogins, u.LockedUntil = hash, 0, time.Time{}
		return nil
	})
}

// EnrollTOTP gives a user a new TOTP secret, pending until ConfirmTOTP
// sees a good code from it; until then sign-ins do not ask for codes.
func (s *Service) EnrollTOTP(ctx context.Context, name string) (Enrolment, error) {
	e, err := newTOTP("noops "+s.cfg.Domain, name)
	if err != nil {
		return e, err
	}
	_, err = s.updateUser(ctx, name, func(u *store.User) error {
		if hasTOTP(*u) {
			// A new enrolment would leave the account on password only
			// until it is confirmed.
			return errkind.WithHint(errkind.Conflict, fmt.Errorf("%s already has TOTP", name),
				"to enrol another authenticator, reset it first: noops users totp "+name+" --reset")
		}
		u.TOTPSecret, u.TOTPPending, u.TOTPLastStep = e.Secret, true, 0
		return nil
	})
	return e, err
}

// ResetTOTP removes a user's TOTP (a lost phone): sign-ins ask for a
// password only until a new enrolment is confirmed.
func (s *Service) ResetTOTP(ctx context.Context, name string) error {
	_, err := s.updateUser(ctx, name, func(u *store.User) error {
		u.TOTPSecret, u.TOTPPending, u.TOTPLastStep = "", false, 0
		return nil
	})
	return err
}

// ConfirmTOTP turns a pending TOTP enrolment on when code is right.
func (s *Service) ConfirmTOTP(ctx context.Context, name, code string) error {
	now := s.cfg.Now()
	_, err := s.updateUser(ctx, name, func(u *store.User) error {
		if u.TOTPSecret == "" {
			return errkind.WithHint(errkind.Invalid, fmt.Errorf("%s has no TOTP enrolment", name), "enrol first: noops users totp "+name)
		}
		step, err := matchTOTP(u.TOTPSecret, code, now)
		if err != nil {
			return err
		}
		if step < 0 {
			return errkind.WithHint(errkind.Invalid, errors.New("the code does not match"),
				"type the 6 digits the authenticator app shows now, and check the machine's clock")
		}
		if step <= u.TOTPLastStep {
			// A code of a step already used would move TOTPLastStep back
			// and let that step's code sign in a second time.
			return errkind.WithHint(errkind.Invalid, errors.New("this one-time code was already used"),
				"wait for the next code (every 30 seconds) and use that")
		}
		u.TOTPPending, u.TOTPLastStep = false, step
		return nil
	})
	return err
}

// hasTOTP reports whether sign-ins of u need a code.
func hasTOTP(u store.User) bool { return u.TOTPSecret != "" && !u.TOTPPending }
