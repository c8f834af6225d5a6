package sqlite

import (
	"context"
	"fmt"

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

// ListEvents returns up to limit events of app ("" for all) with Seq >
// since, oldest first.
func (db *DB) ListEvents(ctx context.Context, app string, since int64, limit int) ([]store.Event, error) {
	q := `SELECT ` + eventCols + ` FROM events WHERE seq > ? AND (? = '' OR app = ?) ORDER BY seq LIMIT ?`
	events, err := queryAll(ctx, db.r, scanEvent, q, since, app, app, auditLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("reading events after %d: %w", since, err)
	}
	return events, nil
}
