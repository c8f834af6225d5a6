package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

	"noops/internal/errkind"
	"noops/internal/store"
)

const appCols = `name, created, release, replicas`

func scanApp(s scanner) (store.App, error) {
	var a store.App
	var created int64
	if err := s.Scan(&a.Name, &created, &a.Release, &a.Replicas); err != nil {
		return store.App{}, err
	}
	a.Created = fromNanos(created)
	return a, nil
}

func checkAppName(name string) error {
	if name == "" {
		return errkind.Errorf(errkind.Invalid, "app name is empty")
	}
	return nil
}

func checkReplicas(app string, n int) error {
	if n < 0 {
		return errkind.Errorf(errkind.Invalid, "replicas of %q must not be negative, got %d", app, n)
	}
	return nil
}

// ListApps returns every app, by name.
func (db *DB) ListApps(ctx context.Context) ([]store.App, error) {
	apps, err := queryAll(ctx, db.r, scanApp, `SELECT `+appCols+` FROM apps ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing apps: %w", err)
	}
	return apps, nil
}

// GetApp returns the named app.
func (db *DB) GetApp(ctx context.Context, name string) (store.App, error) {
	return getApp(ctx, db.r, name)
}

func getApp(ctx context.Context, q queryer, name string) (store.App, error) {
	a, err := scanApp(q.QueryRowContext(ctx, `SELECT `+appCols+` FROM apps WHERE name = ?`, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.App{}, appNotFound(name)
	case err != nil:
		return store.App{}, fmt.Errorf("reading app %q: %w", name, err)
	}
	return a, nil
}

// CreateApp adds an app with no release.
func (db *DB) CreateApp(ctx context.Context, a store.App) (store.App, error) {
	if err := checkAppName(a.Name); err != nil {
		return store.App{}, err
	}
	if err := checkReplicas(a.Name, a.Replicas); err != nil {
		return store.App{}, err
	}
	if a.Release != 0 {
		return store.App{}, errkind.Errorf(errkind.Invalid, "creating app %q: a new app has no live release, got release %d", a.Name, a.Release)
	}
	created, err := nanos(a.Created, "creation time")
	if err != nil {
		return store.App{}, fmt.Errorf("creating app %q: %w", a.Name, err)
	}
	_, err = db.w.ExecContext(ctx, `INSERT INTO apps (name, created, release, replicas) VALUES (?, ?, 0, ?)`,
		a.Name, created, a.Replicas)
	switch {
	case sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return store.App{}, errkind.Errorf(errkind.Conflict, "app %q already exists", a.Name)
	case err != nil:
		return store.App{}, fmt.Errorf("creating app %q: %w", a.Name, err)
	}
	a.Created = fromNanos(created)
	return a, nil
}

// SetReplicas records the desired replica count of an app.
func (db *DB) SetReplicas(ctx context.Context, name string, replicas int) (store.App, error) {
	if err := checkReplicas(name, replicas); err != nil {
		return store.App{}, err
	}
	a, err := scanApp(db.w.QueryRowContext(ctx,
		`UPDATE apps SET replicas = ? WHERE name = ? RETURNING `+appCols, replicas, name))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.App{}, appNotFound(name)
	case err != nil:
		return store.App{}, fmt.Errorf("setting replicas of %q: %w", name, err)
	}
	return a, nil
}

// DeleteApp removes an app with its releases and sandbox records; the
// audit log is not touched.
func (db *DB) DeleteApp(ctx context.Context, name string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		// The foreign keys cascade too; deleting explicitly does not
		// depend on PRAGMA foreign_keys being on.
		for _, q := range []string{
			`DELETE FROM sandboxes WHERE app = ?`,
			`DELETE FROM releases WHERE app = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return fmt.Errorf("deleting app %q: %w", name, err)
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM apps WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("deleting app %q: %w", name, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("deleting app %q: %w", name, err)
		}
		if n == 0 {
			return appNotFound(name)
		}
		return nil
	})
}
