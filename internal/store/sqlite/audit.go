package sqlite

import (
	"context"
	"fmt"

	"noops/internal/errkind"
	"noops/internal/store"
)

const auditCols = `seq, time, actor, action, target, status, detail`

func scanAudit(s scanner) (store.AuditEntry, error) {
	var e store.AuditEntry
	var t int64
	if err := s.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Target, &e.Status, &e.Detail); err != nil {
		return store.AuditEntry{}, err
	}
	e.Time = fromNanos(t)
	return e, nil
}

// AppendAudit appends an entry to the audit log and returns it with its
// sequence number (and its time, now when e.Time is zero).
func (db *DB) AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error) {
	if e.Action == "" {
		return store.AuditEntry{}, errkind.Errorf(errkind.Invalid, "appending to the audit log: the entry has no action")
	}
	t, err := nanos(e.Time, "time")
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("appending %q to the audit log: %w", e.Action, err)
	}
	out, err := scanAudit(db.w.QueryRowContext(ctx,
		`INSERT INTO audit (time, actor, action, target, status, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING `+auditCols,
		t, e.Actor, e.Action, e.Target, e.Status, e.Detail))
	if err != nil {
		return store.AuditEntry{}, fmt.Errorf("appending %q to the audit log: %w", e.Action, err)
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
