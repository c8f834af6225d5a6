package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"noops/internal/errkind"
	"noops/internal/store"
)

const auditCols = `seq, time, actor, action, target, status, detail, hash`

func scanAudit(s scanner) (store.AuditEntry, error) {
	var e store.AuditEntry
	var t int64
	if err := s.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Target, &e.Status, &e.Detail, &e.Hash); err != nil {
		return store.AuditEntry{}, err
	}
	e.Time = fromNanos(t)
	return e, nil
}

// AppendAudit appends an entry to the audit log and returns it with its
// sequence number, its hash (store.AuditHash, chained to the last entry's)
// and its time, now when e.Time is zero.
func (db *DB) AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error) {
	if e.Action == "" {
		return store.AuditEntry{}, errkind.Errorf(errkind.Invalid, "appending to the audit log: the entry has no action")
	}
	t, err := nanos(e.Time, "time")
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("appending %q to the audit log: %w", e.Action, err)
	}
	var out store.AuditEntry
	err = db.write(ctx, func(tx *sql.Tx) error {
		// Reading the last entry and appending are one IMMEDIATE
		// transaction, so concurrent appends chain one after the other.
		// The log refuses deletes, so the last Seq is the largest ever
		// given and the next one is what AUTOINCREMENT would choose.
		var last int64
		var prev string
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("appending %q to the audit log: reading the last entry: %w", e.Action, err)
		}
		// The hash covers the entry as it reads back: UTC, to the nanosecond.
		e.Seq, e.Time = last+1, fromNanos(t)
		e.Hash = store.AuditHash(prev, e)
		out, err = scanAudit(tx.QueryRowContext(ctx,
			`INSERT INTO audit (`+auditCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+auditCols,
			e.Seq, t, e.Actor, e.Action, e.Target, e.Status, e.Detail, e.Hash))
		if err != nil {
			return fmt.Errorf("appending %q to the audit log: %w", e.Action, err)
		}
		return nil
	})
	if err != nil {
		return store.AuditEntry{}, err
	}
	return out, nil
}

// ListAudit returns up to limit entries with Seq > since, oldest first.
func (db *DB) ListAudit(ctx context.Context, since int64, limit int) ([]store.AuditEntry, error) {
	entries, err := queryAll(ctx, db.r, scanAudit,
		`SELECT `+auditCols+` FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, since, auditLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("reading the audit log after %d: %w", since, err)
	}
	return entries, nil
}

// auditLimit bounds the limit given to ListAudit.
func auditLimit(n int) int {
	switch {
	case n <= 0:
		return store.DefaultAuditLimit
	case n > store.MaxAuditLimit:
		return store.MaxAuditLimit
	}
	return n
}
