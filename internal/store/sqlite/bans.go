package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"

	"noops/internal/errkind"
	"noops/internal/store"
)

const banCols = `prefix, reason, cause, banned_by, created, expires, offences, lifted`

func scanBan(s scanner) (store.Ban, error) {
	var b store.Ban
	var created int64
	var until, lifted sql.NullInt64
	if err := s.Scan(&b.Prefix, &b.Reason, &b.Trigger, &b.By, &created, &until, &b.Offences, &lifted); err != nil {
		return store.Ban{}, err
	}
	b.Created = fromNanos(created)
	b.Until, b.Lifted = fromOptNanos(until), fromOptNanos(lifted)
	return b, nil
}

// checkPrefix refuses a ban key that is not a canonical netip.Prefix
// string: one that does not parse, has host bits set or is written in
// another form than Prefix.String's.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return errkind.Errorf(errkind.Invalid, "no prefix")
	}
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return errkind.Errorf(errkind.Invalid, "prefix %q does not parse: %v", prefix, err)
	}
	if c := p.Masked().String(); c != prefix {
		return errkind.Errorf(errkind.Invalid, "prefix %q is not canonical: write it %q", prefix, c)
	}
	return nil
}

func banNotFound(prefix string) error {
	return errkind.Errorf(errkind.NotFound, "ban of %q not found", prefix)
}

// PutBan records a ban, replacing the record with the same prefix.
func (db *DB) PutBan(ctx context.Context, b store.Ban) error {
	if err := checkPrefix(b.Prefix); err != nil {
		return fmt.Errorf("recording a ban: %w", err)
	}
	if b.Offences < 0 {
		return errkind.Errorf(errkind.Invalid, "recording the ban of %s: offences must not be negative, got %d", b.Prefix, b.Offences)
	}
	created, err := nanos(b.Created, "creation time")
	if err != nil {
		return fmt.Errorf("recording the ban of %s: %w", b.Prefix, err)
	}
	until, err := optNanos(b.Until, "end time")
	if err != nil {
		return fmt.Errorf("recording the ban of %s: %w", b.Prefix, err)
	}
	lifted, err := optNanos(b.Lifted, "lift time")
	if err != nil {
		return fmt.Errorf("recording the ban of %s: %w", b.Prefix, err)
	}
	_, err = db.w.ExecContext(ctx, `INSERT INTO bans (`+banCols+`) VALUES (`+placeholders(8)+`)
		ON CONFLICT (prefix) DO UPDATE SET reason = excluded.reason, cause = excluded.cause,
			banned_by = excluded.banned_by, created = excluded.created, expires = excluded.expires,
			offences = excluded.offences, lifted = excluded.lifted`,
		b.Prefix, b.Reason, b.Trigger, b.By, created, until, b.Offences, lifted)
	if err != nil {
		return fmt.Errorf("recording the ban of %s: %w", b.Prefix, err)
	}
	return nil
}

// GetBan returns the record of the ban of prefix, active or lifted.
func (db *DB) GetBan(ctx context.Context, prefix string) (store.Ban, error) {
	if err := checkPrefix(prefix); err != nil {
		return store.Ban{}, fmt.Errorf("reading a ban: %w", err)
	}
	b, err := scanBan(db.r.QueryRowContext(ctx, `SELECT `+banCols+` FROM bans WHERE prefix = ?`, prefix))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Ban{}, banNotFound(prefix)
	case err != nil:
		return store.Ban{}, fmt.Errorf("reading the ban of %s: %w", prefix, err)
	}
	return b, nil
}

// ListBans returns every ban record, active and lifted, by prefix.
func (db *DB) ListBans(ctx context.Context) ([]store.Ban, error) {
	bans, err := queryAll(ctx, db.r, scanBan, `SELECT `+banCols+` FROM bans ORDER BY prefix`)
	if err != nil {
		return nil, fmt.Errorf("listing bans: %w", err)
	}
	return bans, nil
}

// DeleteBan forgets the record of the ban of prefix.
func (db *DB) DeleteBan(ctx context.Context, prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return fmt.Errorf("deleting a ban: %w", err)
	}
	res, err := db.w.ExecContext(ctx, `DELETE FROM bans WHERE prefix = ?`, prefix)
	if err != nil {
		return fmt.Errorf("deleting the ban of %s: %w", prefix, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("deleting the ban of %s: %w", prefix, err)
	}
	if n == 0 {
		return banNotFound(prefix)
	}
	return nil
}
