// Package sqlite is the embedded implementation of store.Store: one SQLite
// file (state.db, mode 0600) in WAL mode, through the pure-Go
// modernc.org/sqlite driver.
//
// Writes go through a single connection and every write transaction is
// BEGIN IMMEDIATE, so concurrent callers in this process queue in Go
// instead of failing with SQLITE_BUSY; a busy timeout covers a second
// process on the same file. Reads use a separate pool of read-only
// connections, which WAL lets run beside the writer. The schema is
// versioned (PRAGMA user_version) and migrated on Open; the rules that
// matter most are enforced by the schema itself, so no code path can
// break them: releases are immutable except for status and reason, the
// audit log is append-only, release numbers never go back, users are never
// deleted and no user, device or session changes its name, ID, user or
// creation time.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"

	"noops/internal/errkind"
	"noops/internal/store"
)

// busyTimeout is how long a statement waits for a lock held by another
// connection (another process, or a checkpoint) before failing.
const busyTimeout = 10 * time.Second

// DB is a store.Store kept in one SQLite file.
type DB struct {
	path string
	w    *sql.DB // one connection: every write, each in an IMMEDIATE transaction
	r    *sql.DB // read-only connections for reads outside a write

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*DB)(nil)

// Open opens the state database at path, creating it (mode 0600) when it
// does not exist, and migrates its schema to the newest version this code
// knows. A database written by a newer noops is refused (errkind.Invalid).
// The folder holding path must exist.
func Open(path string) (*DB, error) {
	if path == "" {
		return nil, errkind.Errorf(errkind.Invalid, "opening state database: no path given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("opening state database %s: %w", path, err)
	}
	// The driver splits its DSN at the first '?'.
	if strings.Contains(abs, "?") {
		return nil, errkind.Errorf(errkind.Invalid, "opening state database %s: the path may not contain '?'", abs)
	}
	if err := createPrivate(abs); err != nil {
		return nil, err
	}
	db := &DB{path: abs}
	if db.w, err = openPool(abs, false, 1); err != nil {
		return nil, err
	}
	ctx := context.Background()
	if err := migrate(ctx, db.w, filepath.Base(abs), migrations); err != nil {
		_ = db.w.Close()
		return nil, fmt.Errorf("migrating %s: %w", abs, err)
	}
	if db.r, err = openPool(abs, true, max(4, runtime.GOMAXPROCS(0))); err != nil {
		_ = db.w.Close()
		return nil, err
	}
	return db, nil
}

// createPrivate creates the database file with mode 0600 before SQLite
// opens it (SQLite gives its -wal and -shm files the same mode), and
// tightens the mode of an existing file.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("creating state database: %w", err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("making state database %s private: %w", path, err)
	}
	return nil
}

// openPool opens a pool of n connections to path. The writer pool turns on
// WAL, full fsync on commit and IMMEDIATE transactions; the reader pool is
// query-only.
func openPool(path string, readOnly bool, n int) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	q.Set("_foreign_keys", "1")
	q.Set("_defensive", "1") // no writable_schema or other ways to corrupt the file from SQL
	q.Set("_dqs", "0")       // "x" is an identifier, never a string
	// With recursive triggers, INSERT OR REPLACE fires the delete triggers
	// of the rows it replaces, so it cannot bypass append-only tables.
	q.Add("_pragma", "recursive_triggers(1)")
	if readOnly {
		q.Set("_query_only", "1")
	} else {
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "FULL")
		q.Set("_txlock", "immediate")
	}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening state database %s: %w", path, err)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening state database %s: %w", path, err)
	}
	return db, nil
}

// Close closes the database. Calling it again does nothing.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		// Readers first: the last connection to close checkpoints the WAL.
		rerr := db.r.Close()
		werr := db.w.Close()
		if err := errors.Join(rerr, werr); err != nil {
			db.closeErr = fmt.Errorf("closing state database %s: %w", db.path, err)
		}
	})
	return db.closeErr
}

// queryer is what both *sql.DB and *sql.Tx offer.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is what both *sql.Row and *sql.Rows offer.
type scanner interface{ Scan(dest ...any) error }

// write runs fn in a write transaction and commits it when fn succeeds.
// Inside fn, use tx only: the writer has one connection, which tx holds.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

// queryAll runs a query and scans every row with scan. The result is never
// nil.
func queryAll[T any](ctx context.Context, q queryer, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// sqliteCode returns the (extended) SQLite result code of err, or 0.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// The range of times that fit in int64 Unix nanoseconds.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos returns t as Unix nanoseconds (now when t is zero), the form every
// time is stored in. what names the time for an error.
func nanos(t time.Time, what string) (int64, error) {
	if t.IsZero() {
		t = time.Now()
	}
	if t.Before(minTime) || t.After(maxTime) {
		return 0, errkind.Errorf(errkind.Invalid, "%s %s is out of range (years 1678 to 2262)", what, t.Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// optNanos is nanos for a time that may be unset: the zero time is NULL
// instead of now.
func optNanos(t time.Time, what string) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	return nanos(t, what)
}

// fromOptNanos is the inverse of optNanos: NULL is the zero time.
func fromOptNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromNanos(n.Int64)
}

func appNotFound(name string) error {
	return errkind.Errorf(errkind.NotFound, "app %q not found", name)
}

// appExists returns nil if the app exists, a NotFound error if not.
func appExists(ctx context.Context, q queryer, name string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM apps WHERE name = ?`, name).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return appNotFound(name)
	case err != nil:
		return fmt.Errorf("looking up app %q: %w", name, err)
	}
	return nil
}
