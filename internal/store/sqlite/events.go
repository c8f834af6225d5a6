package sqlite

import (
	"context"
	"fmt"
	"strings"

	"noops/internal/errkind"
	"noops/internal/store"
)

const eventCols = `seq, time, app, kind, message`

func scanEvent(s scanner) (store.Event, error) {
	var e store.Event
	var t int64
	if err := s.Scan(&e.Seq, &t, &e.App, &e.Kind, &e.Message); err != nil {
		return store.Event{}, err
	}
	e.Time = fromNanos(t)
	return e, nil
}

// AppendEvent appends an event and returns it with its sequence number
// (and its time, now when e.Time is zero).
func (db *DB) AppendEvent(ctx context.Context, e store.Event) (store.Event, error) {
	if e.Kind == "" {
		return store.Event{}, errkind.Errorf(errkind.Invalid, "recording an event: it has no kind")
	}
	t, err := nanos(e.Time, "time")
	if err != nil {
		return store.Event{}, fmt.Errorf("recording a %s event: %w", e.Kind, err)
	}
	out, err := scanEvent(db.w.QueryRowContext(ctx,
		`INSERT INTO events (time, app, kind, message) VALUES (?, ?, ?, ?) RETURNING `+eventCols,
		t, e.App, e.Kind, e.Message))
	if err != nil {
		return store.Event{}, fmt.Errorf("recording a %s event: %w", e.Kind, err)
	}
	return out, nil
}

// ListEvents returns up to q.Limit events that match q, oldest first.
func (db *DB) ListEvents(ctx context.Context, q store.EventQuery) ([]store.Event, error) {
	var from, to int64 = 0, 1<<63 - 1
	var err error
	if !q.From.IsZero() {
		if from, err = nanos(q.From, "from"); err != nil {
			return nil, err
		}
	}
	if !q.To.IsZero() {
		if to, err = nanos(q.To, "to"); err != nil {
			return nil, err
		}
	}
	sql := `SELECT ` + eventCols + ` FROM events WHERE seq > ? AND (? = '' OR app = ?) AND time >= ? AND time < ?`
	args := []any{q.Since, q.App, q.App, from, to}
	if len(q.Kinds) > 0 {
		sql += ` AND kind IN (?` + strings.Repeat(`, ?`, len(q.Kinds)-1) + `)`
		for _, k := range q.Kinds {
			args = append(args, k)
		}
	}
	sql += ` ORDER BY seq LIMIT ?`
	args = append(args, auditLimit(q.Limit))
	events, err := queryAll(ctx, db.r, scanEvent, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("reading events after %d: %w", q.Since, err)
	}
	return events, nil
}
