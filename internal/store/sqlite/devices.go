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

// A device's columns: the keys, which never change, then the rest, which
// UpdateDevice rewrites.
const (
	deviceKeyCols  = `id, user, created`
	deviceDataCols = `name, key_hash, last_seen, revoked, revoke_reason, cert_serial, cert_expires, factors`
	deviceCols     = deviceKeyCols + `, ` + deviceDataCols
)

func scanDevice(s scanner) (store.Device, error) {
	var d store.Device
	var created int64
	var lastSeen, revoked, certExpires sql.NullInt64
	var factors string
	if err := s.Scan(&d.ID, &d.User, &created, &d.Name, &d.KeyHash, &lastSeen, &revoked, &d.RevokeReason,
		&d.CertSerial, &certExpires, &factors); err != nil {
		return store.Device{}, err
	}
	var err error
	if d.Factors, err = decodeList(factors); err != nil {
		return store.Device{}, fmt.Errorf("decoding factors of device %q: %w", d.ID, err)
	}
	d.Created = fromNanos(created)
	d.LastSeen, d.Revoked, d.CertExpires = fromOptNanos(lastSeen), fromOptNanos(revoked), fromOptNanos(certExpires)
	return d, nil
}

// deviceValues checks d and returns it as the values of deviceCols, in
// order. A zero Created is now; the other times stay unset when zero.
func deviceValues(d store.Device) ([]any, error) {
	if d.ID == "" {
		return nil, errkind.Errorf(errkind.Invalid, "no device id")
	}
	if err := checkUserName(d.User); err != nil {
		return nil, err
	}
	created, err := nanos(d.Created, "creation time")
	if err != nil {
		return nil, err
	}
	lastSeen, err := optNanos(d.LastSeen, "last seen time")
	if err != nil {
		return nil, err
	}
	revoked, err := optNanos(d.Revoked, "revocation time")
	if err != nil {
		return nil, err
	}
	certExpires, err := optNanos(d.CertExpires, "certificate expiry")
	if err != nil {
		return nil, err
	}
	factors, err := encodeList("factor", d.Factors)
	if err != nil {
		return nil, err
	}
	return []any{d.ID, d.User, created, d.Name, d.KeyHash, lastSeen, revoked, d.RevokeReason,
		d.CertSerial, certExpires, factors}, nil
}

func deviceNotFound(id string) error {
	return errkind.Errorf(errkind.NotFound, "device %q not found", id)
}

// CreateDevice records a device of an existing user.
func (db *DB) CreateDevice(ctx context.Context, d store.Device) (store.Device, error) {
	vals, err := deviceValues(d)
	if err != nil {
		return store.Device{}, fmt.Errorf("recording device %q of %q: %w", d.ID, d.User, err)
	}
	var out store.Device
	err = db.write(ctx, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, d.User); err != nil {
			return fmt.Errorf("recording device %q: %w", d.ID, err)
		}
		var err error
		out, err = scanDevice(tx.QueryRowContext(ctx,
			`INSERT INTO devices (`+deviceCols+`) VALUES (`+placeholders(len(vals))+`) RETURNING `+deviceCols, vals...))
		switch {
		case sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return errkind.Errorf(errkind.Conflict, "device %q already exists", d.ID)
		case err != nil:
			return fmt.Errorf("recording device %q of %q: %w", d.ID, d.User, err)
		}
		return nil
	})
	if err != nil {
		return store.Device{}, err
	}
	return out, nil
}

// GetDevice returns the device with the given ID.
func (db *DB) GetDevice(ctx context.Context, id string) (store.Device, error) {
	return getDevice(ctx, db.r, id)
}

func getDevice(ctx context.Context, q queryer, id string) (store.Device, error) {
	d, err := scanDevice(q.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.Device{}, deviceNotFound(id)
	case err != nil:
		return store.Device{}, fmt.Errorf("reading device %q: %w", id, err)
	}
	return d, nil
}

// ListDevices returns the devices of user, or of every user when user is
// "", in the order they were recorded; NotFound for a missing user.
func (db *DB) ListDevices(ctx context.Context, user string) ([]store.Device, error) {
	if user == "" {
		all, err := queryAll(ctx, db.r, scanDevice, `SELECT `+deviceCols+` FROM devices ORDER BY created, id`)
		if err != nil {
			return nil, fmt.Errorf("listing devices: %w", err)
		}
		return all, nil
	}
	devices, err := queryAll(ctx, db.r, scanDevice,
		`SELECT `+deviceCols+` FROM devices WHERE user = ? ORDER BY created, id`, user)
	if err != nil {
		return nil, fmt.Errorf("listing devices of %q: %w", user, err)
	}
	if len(devices) == 0 {
		if err := userExists(ctx, db.r, user); err != nil {
			return nil, err
		}
	}
	return devices, nil
}

// UpdateDevice reads a device, lets edit change it and writes it back, in
// one write transaction; an error from edit is returned as it is.
func (db *DB) UpdateDevice(ctx context.Context, id string, edit func(*store.Device) error) (store.Device, error) {
	var out store.Device
	err := db.write(ctx, func(tx *sql.Tx) error {
		d, err := getDevice(ctx, tx, id)
		if err != nil {
			return err
		}
		user, created := d.User, d.Created
		if err := edit(&d); err != nil {
			return err
		}
		switch {
		case d.ID != id:
			return errkind.Errorf(errkind.Invalid, "updating device %q: its id cannot change (to %q)", id, d.ID)
		case d.User != user:
			return errkind.Errorf(errkind.Invalid, "updating device %q: it cannot move from user %q to %q", id, user, d.User)
		case !d.Created.Equal(created):
			return errkind.Errorf(errkind.Invalid, "updating device %q: its creation time cannot change", id)
		}
		vals, err := deviceValues(d)
		if err != nil {
			return fmt.Errorf("updating device %q: %w", id, err)
		}
		out, err = scanDevice(tx.QueryRowContext(ctx,
			`UPDATE devices SET `+assignments(deviceDataCols)+` WHERE id = ? RETURNING `+deviceCols,
			append(vals[3:], id)...))
		if err != nil {
			return fmt.Errorf("updating device %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return store.Device{}, err
	}
	return out, nil
}
