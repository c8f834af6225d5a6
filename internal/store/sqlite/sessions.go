package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"noops/internal/errkind"
	"noops/internal/store"
)

// A session's columns: the keys, which never change, then the rest, which
// UpdateSession rewrites.
const (
	sessionKeyCols  = `id, user, created`
	sessionDataCols = `auth_time, factors, expires, last_seen, addr`
	sessionCols     = sessionKeyCols + `, ` + sessionDataCols
)

func scanSession(s scanner) (store.Session, error) {
	var ss store.Session
	var created, expires int64
	var authTime, lastSeen sql.NullInt64
	var factors string
	if err := s.Scan(&ss.ID, &ss.User, &created, &authTime, &factors, &expires, &lastSeen, &ss.Addr); err != nil {
		return store.Session{}, err
	}
	var err error
	if ss.Factors, err = decodeList(factors); err != nil {
		return store.Session{}, fmt.Errorf("decoding factors of session %q: %w", ss.ID, err)
	}
	ss.Created, ss.Expires = fromNanos(created), fromNanos(expires)
	ss.AuthTime, ss.LastSeen = fromOptNanos(authTime), fromOptNanos(lastSeen)
	return ss, nil
}

// sessionValues checks s and returns it as the values of sessionCols, in
// order. A zero Created is now; a session must expire.
func sessionValues(s store.Session) ([]any, error) {
	if s.ID == "" {
		return nil, errkind.Errorf(errkind.Invalid, "no session id")
	}
	if err := checkUserName(s.User); err != nil {
		return nil, err
	}
	if s.Expires.IsZero() {
		return nil, errkind.Errorf(errkind.Invalid, "no expiry time")
	}
	factors, err := encodeList("factor", s.Factors)
	if err != nil {
		return nil, err
	}
	created, err := nanos(s.Created, "creation time")
	if err != nil {
		return nil, err
	}
	authTime, err := optNanos(s.AuthTime, "authentication time")
	if err != nil {
		return nil, err
	}
	expires, err := nanos(s.Expires, "expiry time")
	if err != nil {
		return nil, err
	}
	lastSeen, err := optNanos(s.LastSeen, "last seen time")
	if err != nil {
		return nil, err
	}
	return []any{s.ID, s.User, created, authTime, factors, expires, lastSeen, s.Addr}, nil
}

func sessionNotFound(id string) error {
	return errkind.Errorf(errkind.NotFound, "session %q not found", id)
}

// CreateSession records a session of an existing user.
func (db *DB) CreateSession(ctx context.Context, s store.Session) (store.Session, error) {
	vals, err := sessionValues(s)
	if err != nil {
		return store.Session{}, fmt.Errorf("recording session %q of %q: %w", s.ID, s.User, err)
	}
	var out store.Session
	err = db.write(ctx, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, s.User); err != nil {
			return fmt.Errorf("recording session %q: %w", s.ID, err)
		}
		var err error
		out, err = scanSession(tx.QueryRowContext(ctx,
			`INSERT INTO sessions (`+sessionCols+`) VALUES (`+placeholders(len(vals))+`) RETURNING `+sessionCols, vals...))
		switch {
		case sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return errkind.Errorf(errkind.Conflict, "session %q already exists", s.ID)
		case err != nil:
			return fmt.Errorf("recording session %q of %q: %w", s.ID, s.User, err)
		}
		return nil
	})
	if err != nil {
		return store.Session{}, err
	}
	return out, nil
}

// GetSession returns the session with the given ID.
func (db *DB) GetSession(ctx context.Context, id string) (store.Session, error) {
	return getSession(ctx, db.r, id)
}

func getSession(ctx context.Context, q queryer, id string) (store.Session, error) {
	s, err := scanSession(q.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Session{}, sessionNotFound(id)
	case err != nil:
		return store.Session{}, fmt.Errorf("reading session %q: %w", id, err)
	}
	return s, nil
}

// UpdateSession reads a session, lets edit change it and writes it back,
// in one write transaction; an error from edit is returned as it is.
func (db *DB) UpdateSession(ctx context.Context, id string, edit func(*store.Session) error) (store.Session, error) {
	var out store.Session
	err := db.write(ctx, func(tx *sql.Tx) error {
		s, err := getSession(ctx, tx, id)
		if err != nil {
			return err
		}
		user, created := s.User, s.Created
		if err := edit(&s); err != nil {
			return err
		}
		switch {
		case s.ID != id:
			return errkind.Errorf(errkind.Invalid, "updating session %q: its id cannot change (to %q)", id, s.ID)
		case s.User != user:
			return errkind.Errorf(errkind.Invalid, "updating session %q: it cannot move from user %q to %q", id, user, s.User)
		case !s.Created.Equal(created):
			return errkind.Errorf(errkind.Invalid, "updating session %q: its creation time cannot change", id)
		}
		vals, err := sessionValues(s)
		if err != nil {
			return fmt.Errorf("updating session %q: %w", id, err)
		}
		out, err = scanSession(tx.QueryRowContext(ctx,
			`UPDATE sessions SET `+assignments(sessionDataCols)+` WHERE id = ? RETURNING `+sessionCols,
			append(vals[3:], id)...))
		if err != nil {
			return fmt.Errorf("updating session %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return store.Session{}, err
	}
	return out, nil
}

// DeleteSession ends a session; an unknown ID is not an error.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	if id == "" {
		return errkind.Errorf(errkind.Invalid, "deleting a session: no id")
	}
	if _, err := db.w.ExecContext(ctx, `DELETE FROM sessions WHERE id = ?`, id); err != nil {
		return fmt.Errorf("deleting session %q: %w", id, err)
	}
	return nil
}

// DeleteSessions ends every session of user and returns how many there
// were; a user without sessions (or an unknown one) has none to end.
func (db *DB) DeleteSessions(ctx context.Context, user string) (int, error) {
	if err := checkUserName(user); err != nil {
		return 0, fmt.Errorf("deleting sessions: %w", err)
	}
	return db.deleteSessions(ctx, fmt.Sprintf("deleting the sessions of %q", user), `DELETE FROM sessions WHERE user = ?`, user)
}

// PruneSessions removes the sessions that expired before t.
func (db *DB) PruneSessions(ctx context.Context, t time.Time) (int, error) {
	if t.IsZero() {
		return 0, errkind.Errorf(errkind.Invalid, "pruning sessions: no time given")
	}
	n, err := nanos(t, "time")
	if err != nil {
		return 0, fmt.Errorf("pruning sessions: %w", err)
	}
	return db.deleteSessions(ctx, "pruning sessions", `DELETE FROM sessions WHERE expires < ?`, n)
}

// deleteSessions runs a DELETE on sessions and returns how many rows it
// removed; doing names it for errors.
func (db *DB) deleteSessions(ctx context.Context, doing, query string, args ...any) (int, error) {
	res, err := db.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", doing, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", doing, err)
	}
	return int(n), nil
}
