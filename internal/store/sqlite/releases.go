package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"noops/internal/errkind"
	"noops/internal/store"
)

const releaseCols = `app, number, image, source_digest, buildpack, config, env, created, status, reason`

func scanRelease(s scanner) (store.Release, error) {
	var r store.Release
	var config sql.NullString
	var env string
	var created int64
	if err := s.Scan(&r.App, &r.Number, &r.Image, &r.SourceDigest, &r.Buildpack,
		&config, &env, &created, &r.Status, &r.Reason); err != nil {
		return store.Release{}, err
	}
	if config.Valid && config.String != "" {
		r.Config = json.RawMessage(config.String)
	}
	if err := json.Unmarshal([]byte(env), &r.Env); err != nil {
		return store.Release{}, fmt.Errorf("decoding env of release %d of %q: %w", r.Number, r.App, err)
	}
	if len(r.Env) == 0 {
		r.Env = nil
	}
	r.Created = fromNanos(created)
	return r, nil
}

func releaseNotFound(app string, n int) error {
	return errkind.Errorf(errkind.NotFound, "release %d of %q not found", n, app)
}

// missingRelease tells why release n of app was not found: the app is
// missing, or only the release.
func missingRelease(ctx context.Context, q queryer, app string, n int) error {
	if err := appExists(ctx, q, app); err != nil {
		return err
	}
	return releaseNotFound(app, n)
}

// checkStatus refuses a status that is not one of store's.
func checkStatus(s store.Status) error {
	switch s {
	case store.StatusPending, store.StatusLive, store.StatusSuperseded, store.StatusFailed:
		return nil
	}
	return errkind.Errorf(errkind.Invalid, "unknown release status %q", s)
}

// CreateRelease records a new release under the app's next number.
func (db *DB) CreateRelease(ctx context.Context, r store.Release) (store.Release, error) {
	if err := checkAppName(r.App); err != nil {
		return store.Release{}, err
	}
	if r.Status == "" {
		r.Status = store.StatusPending
	}
	if err := checkStatus(r.Status); err != nil {
		return store.Release{}, fmt.Errorf("creating a release of %q: %w", r.App, err)
	}
	if r.Status != store.StatusPending && r.Status != store.StatusFailed {
		return store.Release{}, errkind.Errorf(errkind.Invalid,
			"creating a release of %q: a new release is pending or failed, not %s (Promote makes a release live)", r.App, r.Status)
	}
	if r.Image == "" {
		return store.Release{}, errkind.Errorf(errkind.Invalid, "creating a release of %q: no image", r.App)
	}
	var config any // NULL when empty
	if len(r.Config) > 0 {
		if !json.Valid(r.Config) {
			return store.Release{}, errkind.Errorf(errkind.Invalid, "creating a release of %q: config is not valid JSON", r.App)
		}
		config = string(r.Config)
	}
	env := []byte("{}")
	if len(r.Env) > 0 {
		var err error
		if env, err = json.Marshal(r.Env); err != nil {
			return store.Release{}, fmt.Errorf("encoding env of a release of %q: %w", r.App, err)
		}
	}
	created, err := nanos(r.Created, "creation time")
	if err != nil {
		return store.Release{}, fmt.Errorf("creating a release of %q: %w", r.App, err)
	}
	err = db.write(ctx, func(tx *sql.Tx) error {
		// Taking the number and inserting are one transaction; the
		// counter lives on the app, so a failed release keeps its number.
		err := tx.QueryRowContext(ctx,
			`UPDATE apps SET next_release = next_release + 1 WHERE name = ? RETURNING next_release - 1`,
			r.App).Scan(&r.Number)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return appNotFound(r.App)
		case err != nil:
			return fmt.Errorf("numbering a release of %q: %w", r.App, err)
		}
		sbom := r.SBOM
		if sbom == nil {
			sbom = []byte{}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO releases (`+releaseCols+`, sbom) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.App, r.Number, r.Image, r.SourceDigest, r.Buildpack, config, string(env), created, string(r.Status), r.Reason, sbom)
		if err != nil {
			return fmt.Errorf("recording release %d of %q: %w", r.Number, r.App, err)
		}
		return nil
	})
	if err != nil {
		return store.Release{}, err
	}
	if len(r.Config) == 0 {
		r.Config = nil
	}
	if len(r.Env) == 0 {
		r.Env = nil
	}
	r.Created = fromNanos(created)
	return r, nil
}

// GetRelease returns release number of app.
func (db *DB) GetRelease(ctx context.Context, app string, number int) (store.Release, error) {
	r, err := scanRelease(db.r.QueryRowContext(ctx,
		`SELECT `+releaseCols+` FROM releases WHERE app = ? AND number = ?`, app, number))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Release{}, missingRelease(ctx, db.r, app, number)
	case err != nil:
		return store.Release{}, fmt.Errorf("reading release %d of %q: %w", number, app, err)
	}
	return r, nil
}

// ListReleases returns the releases of app, newest first.
func (db *DB) ListReleases(ctx context.Context, app string) ([]store.Release, error) {
	rels, err := queryAll(ctx, db.r, scanRelease,
		`SELECT `+releaseCols+` FROM releases WHERE app = ? ORDER BY number DESC`, app)
	if err != nil {
		return nil, fmt.Errorf("listing releases of %q: %w", app, err)
	}
	if len(rels) == 0 {
		if err := appExists(ctx, db.r, app); err != nil {
			return nil, err
		}
	}
	return rels, nil
}

// SetReleaseStatus changes the status and reason of a release; it cannot
// make one live (see Promote).
func (db *DB) SetReleaseStatus(ctx context.Context, app string, number int, s store.Status, reason string) error {
	if err := checkStatus(s); err != nil {
		return fmt.Errorf("setting the status of release %d of %q: %w", number, app, err)
	}
	if s == store.StatusLive {
		return errkind.Errorf(errkind.Invalid, "setting the status of release %d of %q: only Promote makes a release live", number, app)
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE releases SET status = ?, reason = ? WHERE app = ? AND number = ?`,
			string(s), reason, app, number)
		if err != nil {
			return fmt.Errorf("setting the status of release %d of %q: %w", number, app, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("setting the status of release %d of %q: %w", number, app, err)
		}
		if n == 0 {
			return missingRelease(ctx, tx, app, number)
		}
		return nil
	})
}

// Promote makes a release live, supersedes the one it replaces and records
// it on the app, all in one transaction.
func (db *DB) Promote(ctx context.Context, app string, number, replicas int, reason string) (store.App, error) {
	if err := checkReplicas(app, replicas); err != nil {
		return store.App{}, err
	}
	var a store.App
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE releases SET status = 'live', reason = ? WHERE app = ? AND number = ?`,
			reason, app, number)
		if err != nil {
			return fmt.Errorf("promoting release %d of %q: %w", number, app, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("promoting release %d of %q: %w", number, app, err)
		} else if n == 0 {
			return missingRelease(ctx, tx, app, number)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE releases SET status = 'superseded' WHERE app = ? AND status = 'live' AND number <> ?`,
			app, number); err != nil {
			return fmt.Errorf("superseding the live release of %q: %w", app, err)
		}
		a, err = scanApp(tx.QueryRowContext(ctx,
			`UPDATE apps SET release = ?, replicas = ? WHERE name = ? RETURNING `+appCols, number, replicas, app))
		if err != nil {
			return fmt.Errorf("recording release %d as live on %q: %w", number, app, err)
		}
		return nil
	})
	if err != nil {
		return store.App{}, err
	}
	return a, nil
}

// ReleaseSBOM returns the inventory recorded with a release (nil when it
// has none).
func (db *DB) ReleaseSBOM(ctx context.Context, app string, number int) ([]byte, error) {
	var b []byte
	err := db.r.QueryRowContext(ctx, `SELECT sbom FROM releases WHERE app = ? AND number = ?`, app, number).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, missingRelease(ctx, db.r, app, number)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the SBOM of release %d of %q: %w", number, app, err)
	}
	if len(b) == 0 {
		return nil, nil
	}
	return b, nil
}

// DeleteReleases removes old releases of app in one transaction, refusing
// the whole call when one of them is live, pending or still has sandbox
// records. The app's release counter is not touched, so numbers are never
// given again; the immutability trigger is not involved (it guards
// updates, and a deleted release is gone, not changed).
func (db *DB) DeleteReleases(ctx context.Context, app string, numbers []int) error {
	if err := checkAppName(app); err != nil {
		return err
	}
	nums := slices.Clone(numbers)
	slices.Sort(nums)
	nums = slices.Compact(nums)
	return db.write(ctx, func(tx *sql.Tx) error {
		a, err := getApp(ctx, tx, app)
		if err != nil {
			return err
		}
		for _, n := range nums {
			if err := deletable(ctx, tx, a, n); err != nil {
				return err
			}
		}
		for _, n := range nums {
			if _, err := tx.ExecContext(ctx, `DELETE FROM releases WHERE app = ? AND number = ?`, app, n); err != nil {
				return fmt.Errorf("deleting release %d of %q: %w", n, app, err)
			}
		}
		return nil
	})
}

// deletable says why release n of app a may not be deleted, or nil.
func deletable(ctx context.Context, tx *sql.Tx, a store.App, n int) error {
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM releases WHERE app = ? AND number = ?`, a.Name, n).Scan(&status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("deleting releases of %q: %w", a.Name, releaseNotFound(a.Name, n))
	case err != nil:
		return fmt.Errorf("deleting release %d of %q: %w", n, a.Name, err)
	}
	switch {
	case n == a.Release || store.Status(status) == store.StatusLive:
		return errkind.Errorf(errkind.Conflict, "deleting release %d of %q: it is the live release", n, a.Name)
	case store.Status(status) == store.StatusPending:
		return errkind.Errorf(errkind.Conflict, "deleting release %d of %q: it is pending (a rollout is using it)", n, a.Name)
	}
	var boxes int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sandboxes WHERE app = ? AND release = ?`, a.Name, n).Scan(&boxes); err != nil {
		return fmt.Errorf("deleting release %d of %q: %w", n, a.Name, err)
	}
	if boxes > 0 {
		return errkind.Errorf(errkind.Conflict, "deleting release %d of %q: it still has sandboxes (%d)", n, a.Name, boxes)
	}
	return nil
}
