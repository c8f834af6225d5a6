package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"

	"noops/internal/errkind"
	"noops/internal/store"
)

// A user's columns: the keys, which never change, then the rest, which
// UpdateUser rewrites.
const (
	userKeyCols  = `name, created`
	userDataCols = `disabled, roles, password_hash, totp_secret, totp_pending, totp_last_step, failed_logins, locked_until, last_failure, last_login, passkeys, habits`
	userCols     = userKeyCols + `, ` + userDataCols
)

func scanUser(s scanner) (store.User, error) {
	var u store.User
	var created int64
	var roles string
	var lockedUntil, lastFailure, lastLogin sql.NullInt64
	var passkeys, habits sql.NullString
	if err := s.Scan(&u.Name, &created, &u.Disabled, &roles, &u.PasswordHash, &u.TOTPSecret, &u.TOTPPending,
		&u.TOTPLastStep, &u.FailedLogins, &lockedUntil, &lastFailure, &lastLogin, &passkeys, &habits); err != nil {
		return store.User{}, err
	}
	var err error
	if u.Roles, err = decodeList(roles); err != nil {
		return store.User{}, fmt.Errorf("decoding roles of user %q: %w", u.Name, err)
	}
	u.Created = fromNanos(created)
	u.LockedUntil, u.LastFailure, u.LastLogin = fromOptNanos(lockedUntil), fromOptNanos(lastFailure), fromOptNanos(lastLogin)
	u.Passkeys, u.Habits = fromRawJSON(passkeys), fromRawJSON(habits)
	return u, nil
}

// userValues checks u and returns it as the values of userCols, in order.
// Roles are stored sorted and without duplicates; a zero Created is now.
func userValues(u store.User) ([]any, error) {
	if err := checkUserName(u.Name); err != nil {
		return nil, err
	}
	if u.FailedLogins < 0 {
		return nil, errkind.Errorf(errkind.Invalid, "failed logins must not be negative, got %d", u.FailedLogins)
	}
	roles := slices.Clone(u.Roles)
	slices.Sort(roles)
	rolesJSON, err := encodeList("role", slices.Compact(roles))
	if err != nil {
		return nil, err
	}
	passkeys, err := rawJSON("passkeys", u.Passkeys)
	if err != nil {
		return nil, err
	}
	habits, err := rawJSON("habits", u.Habits)
	if err != nil {
		return nil, err
	}
	created, err := nanos(u.Created, "creation time")
	if err != nil {
		return nil, err
	}
	lockedUntil, err := optNanos(u.LockedUntil, "locked-until time")
	if err != nil {
		return nil, err
	}
	lastFailure, err := optNanos(u.LastFailure, "last failure time")
	if err != nil {
		return nil, err
	}
	lastLogin, err := optNanos(u.LastLogin, "last login time")
	if err != nil {
		return nil, err
	}
	return []any{u.Name, created, u.Disabled, rolesJSON, u.PasswordHash, u.TOTPSecret, u.TOTPPending,
		u.TOTPLastStep, u.FailedLogins, lockedUntil, lastFailure, lastLogin, passkeys, habits}, nil
}

func checkUserName(name string) error {
	if name == "" {
		return errkind.Errorf(errkind.Invalid, "user name is empty")
	}
	return nil
}

func userNotFound(name string) error {
	return errkind.Errorf(errkind.NotFound, "user %q not found", name)
}

// userExists returns nil if the user exists, a NotFound error if not.
func userExists(ctx context.Context, q queryer, name string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM users WHERE name = ?`, name).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return userNotFound(name)
	case err != nil:
		return fmt.Errorf("looking up user %q: %w", name, err)
	}
	return nil
}

// CreateUser adds a user.
func (db *DB) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	vals, err := userValues(u)
	if err != nil {
		return store.User{}, fmt.Errorf("creating user %q: %w", u.Name, err)
	}
	out, err := scanUser(db.w.QueryRowContext(ctx,
		`INSERT INTO users (`+userCols+`) VALUES (`+placeholders(len(vals))+`) RETURNING `+userCols, vals...))
	switch {
	case sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return store.User{}, errkind.Errorf(errkind.Conflict, "user %q already exists", u.Name)
	case err != nil:
		return store.User{}, fmt.Errorf("creating user %q: %w", u.Name, err)
	}
	return out, nil
}

// GetUser returns the named user.
func (db *DB) GetUser(ctx context.Context, name string) (store.User, error) {
	return getUser(ctx, db.r, name)
}

func getUser(ctx context.Context, q queryer, name string) (store.User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.User{}, userNotFound(name)
	case err != nil:
		return store.User{}, fmt.Errorf("reading user %q: %w", name, err)
	}
	return u, nil
}

// ListUsers returns every user, by name.
func (db *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	users, err := queryAll(ctx, db.r, scanUser, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return users, nil
}

// UpdateUser reads a user, lets edit change it and writes it back, in one
// write transaction; an error from edit is returned as it is.
func (db *DB) UpdateUser(ctx context.Context, name string, edit func(*store.User) error) (store.User, error) {
	var out store.User
	err := db.write(ctx, func(tx *sql.Tx) error {
		u, err := getUser(ctx, tx, name)
		if err != nil {
			return err
		}
		created := u.Created
		if err := edit(&u); err != nil {
			return err
		}
		switch {
		case u.Name != name:
			return errkind.Errorf(errkind.Invalid, "updating user %q: a user cannot be renamed (to %q)", name, u.Name)
		case !u.Created.Equal(created):
			return errkind.Errorf(errkind.Invalid, "updating user %q: its creation time cannot change", name)
		}
		vals, err := userValues(u)
		if err != nil {
			return fmt.Errorf("updating user %q: %w", name, err)
		}
		out, err = scanUser(tx.QueryRowContext(ctx,
			`UPDATE users SET `+assignments(userDataCols)+` WHERE name = ? RETURNING `+userCols,
			append(vals[2:], name)...))
		if err != nil {
			return fmt.Errorf("updating user %q: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return store.User{}, err
	}
	return out, nil
}

// encodeList returns list as a JSON array; what names an element for an
// error. Empty elements are refused.
func encodeList(what string, list []string) (string, error) {
	if len(list) == 0 {
		return "[]", nil
	}
	if slices.Contains(list, "") {
		return "", errkind.Errorf(errkind.Invalid, "empty %s in %q", what, list)
	}
	b, err := json.Marshal(list)
	if err != nil {
		return "", fmt.Errorf("encoding %ss: %w", what, err)
	}
	return string(b), nil
}

// decodeList is the inverse of encodeList; an empty list is nil, as an
// empty Env is.
func decodeList(s string) ([]string, error) {
	var list []string
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	return list, nil
}

// rawJSON returns b for a nullable JSON column: NULL when empty, Invalid
// when it is not JSON. what names it for the error.
func rawJSON(what string, b json.RawMessage) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, errkind.Errorf(errkind.Invalid, "%s are not valid JSON", what)
	}
	return string(b), nil
}

// fromRawJSON is the inverse of rawJSON: NULL reads back as nil.
func fromRawJSON(s sql.NullString) json.RawMessage {
	if !s.Valid || s.String == "" {
		return nil
	}
	return json.RawMessage(s.String)
}

// placeholders returns n comma-separated parameters: "?, ?, ?".
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// assignments turns a column list "a, b" into "a = ?, b = ?".
func assignments(cols string) string {
	return strings.ReplaceAll(cols, ",", " = ?,") + " = ?"
}
