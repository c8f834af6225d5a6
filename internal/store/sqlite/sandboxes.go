package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"noops/internal/errkind"
	"noops/internal/store"
)

const sandboxCols = `id, app, release, state, addr, restarts, last_exit, created, updated`

func scanSandbox(s scanner) (store.Sandbox, error) {
	var b store.Sandbox
	var created, updated int64
	if err := s.Scan(&b.ID, &b.App, &b.Release, &b.State, &b.Addr, &b.Restarts, &b.LastExit,
		&created, &updated); err != nil {
		return store.Sandbox{}, err
	}
	b.Created, b.Updated = fromNanos(created), fromNanos(updated)
	return b, nil
}

// ListSandboxes returns the sandboxes of app, or of every app when app is
// "", in the order they were created.
func (db *DB) ListSandboxes(ctx context.Context, app string) ([]store.Sandbox, error) {
	if app == "" {
		all, err := queryAll(ctx, db.r, scanSandbox, `SELECT `+sandboxCols+` FROM sandboxes ORDER BY created, id`)
		if err != nil {
			return nil, fmt.Errorf("listing sandboxes: %w", err)
		}
		return all, nil
	}
	boxes, err := queryAll(ctx, db.r, scanSandbox,
		`SELECT `+sandboxCols+` FROM sandboxes WHERE app = ? ORDER BY created, id`, app)
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes of %q: %w", app, err)
	}
	if len(boxes) == 0 {
		if err := appExists(ctx, db.r, app); err != nil {
			return nil, err
		}
	}
	return boxes, nil
}

// PutSandbox records a sandbox, replacing the record with the same ID.
func (db *DB) PutSandbox(ctx context.Context, s store.Sandbox) error {
	if s.ID == "" {
		return errkind.Errorf(errkind.Invalid, "recording a sandbox of %q: no id", s.App)
	}
	if err := checkAppName(s.App); err != nil {
		return fmt.Errorf("recording sandbox %q: %w", s.ID, err)
	}
	if s.Restarts < 0 {
		return errkind.Errorf(errkind.Invalid, "recording sandbox %q: restarts must not be negative, got %d", s.ID, s.Restarts)
	}
	created, err := nanos(s.Created, "creation time")
	if err != nil {
		return fmt.Errorf("recording sandbox %q: %w", s.ID, err)
	}
	updated, err := nanos(s.Updated, "update time")
	if err != nil {
		return fmt.Errorf("recording sandbox %q: %w", s.ID, err)
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM releases WHERE app = ? AND number = ?`, s.App, s.Release).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("recording sandbox %q: %w", s.ID, missingRelease(ctx, tx, s.App, s.Release))
		case err != nil:
			return fmt.Errorf("recording sandbox %q: %w", s.ID, err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO sandboxes (`+sandboxCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET app = excluded.app, release = excluded.release, state = excluded.state,
				addr = excluded.addr, restarts = excluded.restarts, last_exit = excluded.last_exit,
				created = excluded.created, updated = excluded.updated`,
			s.ID, s.App, s.Release, s.State, s.Addr, s.Restarts, s.LastExit, created, updated)
		if err != nil {
			return fmt.Errorf("recording sandbox %q: %w", s.ID, err)
		}
		return nil
	})
}

// DeleteSandbox forgets a sandbox; an unknown ID is not an error.
func (db *DB) DeleteSandbox(ctx context.Context, id string) error {
	if id == "" {
		return errkind.Errorf(errkind.Invalid, "deleting a sandbox: no id")
	}
	if _, err := db.w.ExecContext(ctx, `DELETE FROM sandboxes WHERE id = ?`, id); err != nil {
		return fmt.Errorf("deleting sandbox %q: %w", id, err)
	}
	return nil
}
