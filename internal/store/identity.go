package store

import (
	"context"
	"encoding/json"
	"time"
)

// User is an account of the built-in identity store. Secret fields
// (PasswordHash, TOTPSecret) are never logged or sent over the API.
type User struct {
	Name     string
	Created  time.Time
	Disabled bool
	Roles    []string // sorted, no duplicates; "admin" administers the platform
	// PasswordHash is a PHC string ("$argon2id$v=19$m=…,t=…,p=…$salt$hash").
	PasswordHash string
	// TOTPSecret is the base32 TOTP secret; "" when not enrolled.
	// TOTPPending is set between enrolment and the first good code.
	TOTPSecret  string
	TOTPPending bool
	// TOTPLastStep is the time step of the last accepted code: a code of
	// that step or an earlier one is a replay.
	TOTPLastStep int64
	// FailedLogins counts wrong passwords and codes since the last good
	// sign-in; LockedUntil refuses sign-ins until then.
	FailedLogins int
	LockedUntil  time.Time
	LastFailure  time.Time // the last wrong password or code
	LastLogin    time.Time
	// Passkeys are the user's WebAuthn credentials and Habits what the
	// identity package learned of the user's networks and hours, both
	// JSON that only the identity package reads.
	Passkeys json.RawMessage
	Habits   json.RawMessage
}

// Device is a machine a user signed in from with `noops login`: its key
// stays on the device, the platform pins the key's hash and issues it
// short-lived client certificates.
type Device struct {
	ID           string
	User         string
	Name         string // the device's host name, as it said
	KeyHash      string // hex SHA-256 of the public key's SubjectPublicKeyInfo
	Created      time.Time
	LastSeen     time.Time
	Revoked      time.Time // zero while trusted
	RevokeReason string
	CertSerial   string // of the last certificate issued, hex
	CertExpires  time.Time
	// Factors are what the user proved when the device signed in
	// ("password", "totp"): its requests count them.
	Factors []string
}

// Session is a browser session. ID is the hex SHA-256 of the cookie's
// token: the token itself is never stored.
type Session struct {
	ID       string
	User     string
	Created  time.Time
	AuthTime time.Time // last time the user proved who they are (step-up renews it)
	Factors  []string  // "password", "totp", "passkey"
	Expires  time.Time // renewed while the session is in use
	LastSeen time.Time
	Addr     string // client address at sign-in
}

// Identities is the part of the store that keeps users, their devices and
// their browser sessions. Names and IDs must be non-empty (Invalid);
// CreateX of an existing one is a Conflict; a missing one is NotFound.
//
// UpdateX reads the record, calls edit on it and writes the result in one
// transaction; edit must not call the store. An error from edit is
// returned unchanged and nothing is written. Keys (Name, ID, User of a
// device or session) and Created cannot be changed by edit (Invalid).
type Identities interface {
	CreateUser(ctx context.Context, u User) (User, error)
	GetUser(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context) ([]User, error) // by name
	UpdateUser(ctx context.Context, name string, edit func(*User) error) (User, error)

	// CreateDevice records a device of an existing user (NotFound
	// otherwise).
	CreateDevice(ctx context.Context, d Device) (Device, error)
	GetDevice(ctx context.Context, id string) (Device, error)
	ListDevices(ctx context.Context, user string) ([]Device, error) // by creation; all users for ""
	UpdateDevice(ctx context.Context, id string, edit func(*Device) error) (Device, error)

	// CreateSession records a session of an existing user.
	CreateSession(ctx context.Context, s Session) (Session, error)
	GetSession(ctx context.Context, id string) (Session, error)
	UpdateSession(ctx context.Context, id string, edit func(*Session) error) (Session, error)
	DeleteSession(ctx context.Context, id string) error // an unknown ID is not an error
	// DeleteSessions removes every session of user; it returns how many.
	DeleteSessions(ctx context.Context, user string) (int, error)
	// PruneSessions removes the sessions that expired before t.
	PruneSessions(ctx context.Context, t time.Time) (int, error)
}
