package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"noops/internal/errkind"
)

// A migration moves the schema from version i to i+1, where i is its index
// in migrations. Migrations are only ever appended: a released one is never
// edited, because databases in the field have already run it.
type migration struct {
	name string
	sql  string
}

// migrations is the schema's history. PRAGMA user_version holds how many
// of them a database has run.
//
// Times are INTEGER Unix nanoseconds (UTC); NULL is the zero time where a
// time may be unset (a user's LockedUntil, a device's Revoked). When a
// column is added to releases, add it to releases_immutable too.
var migrations = []migration{
	{name: "apps, releases, sandboxes, audit", sql: `
CREATE TABLE apps (
	name         TEXT PRIMARY KEY CHECK (name <> ''),
	created      INTEGER NOT NULL,
	release      INTEGER NOT NULL DEFAULT 0 CHECK (release >= 0),
	replicas     INTEGER NOT NULL DEFAULT 0 CHECK (replicas >= 0),
	next_release INTEGER NOT NULL DEFAULT 1 CHECK (next_release >= 1)
) STRICT;

CREATE TRIGGER apps_release_numbers_never_reused
BEFORE UPDATE OF next_release ON apps
WHEN NEW.next_release < OLD.next_release
BEGIN
	SELECT RAISE(ABORT, 'release numbers are never reused');
END;

CREATE TABLE releases (
	app           TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
	number        INTEGER NOT NULL CHECK (number >= 1),
	image         TEXT NOT NULL CHECK (image <> ''),
	source_digest TEXT NOT NULL,
	buildpack     TEXT NOT NULL,
	config        TEXT CHECK (config IS NULL OR json_valid(config)),
	env           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(env) AND json_type(env) = 'object'),
	created       INTEGER NOT NULL,
	status        TEXT NOT NULL CHECK (status IN ('pending', 'live', 'superseded', 'failed')),
	reason        TEXT NOT NULL,
	PRIMARY KEY (app, number)
) STRICT;

CREATE TRIGGER releases_immutable
BEFORE UPDATE OF app, number, image, source_digest, buildpack, config, env, created ON releases
BEGIN
	SELECT RAISE(ABORT, 'a release is immutable: only its status and reason may change');
END;

CREATE TABLE sandboxes (
	id        TEXT PRIMARY KEY CHECK (id <> ''),
	app       TEXT NOT NULL REFERENCES apps (name) ON DELETE CASCADE,
	release   INTEGER NOT NULL,
	state     TEXT NOT NULL,
	addr      TEXT NOT NULL,
	restarts  INTEGER NOT NULL CHECK (restarts >= 0),
	last_exit TEXT NOT NULL,
	created   INTEGER NOT NULL,
	updated   INTEGER NOT NULL,
	FOREIGN KEY (app, release) REFERENCES releases (app, number) ON DELETE CASCADE
) STRICT;

CREATE INDEX sandboxes_by_release ON sandboxes (app, release);
CREATE INDEX sandboxes_by_created ON sandboxes (created, id);

CREATE TABLE audit (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	time   INTEGER NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL CHECK (action <> ''),
	target TEXT NOT NULL,
	status INTEGER NOT NULL,
	detail TEXT NOT NULL
) STRICT;

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
	SELECT RAISE(ABORT, 'the audit log is append-only');
END;
`},
	{name: "release SBOMs", sql: `
ALTER TABLE releases ADD COLUMN sbom BLOB NOT NULL DEFAULT x'';

DROP TRIGGER releases_immutable;
CREATE TRIGGER releases_immutable
BEFORE UPDATE OF app, number, image, source_digest, buildpack, config, env, created, sbom ON releases
BEGIN
	SELECT RAISE(ABORT, 'a release is immutable: only its status and reason may change');
END;
`},
	{name: "events", sql: `
CREATE TABLE events (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	time    INTEGER NOT NULL,
	app     TEXT NOT NULL,
	kind    TEXT NOT NULL CHECK (kind <> ''),
	message TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_app ON events (app, seq);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
	SELECT RAISE(ABORT, 'events are append-only');
END;
`},
	{name: "users, devices, sessions, audit hash", sql: `
CREATE TABLE users (
	name           TEXT PRIMARY KEY CHECK (name <> ''),
	created        INTEGER NOT NULL,
	disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	roles          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(roles) AND json_type(roles) = 'array'),
	password_hash  TEXT NOT NULL,
	totp_secret    TEXT NOT NULL,
	totp_pending   INTEGER NOT NULL DEFAULT 0 CHECK (totp_pending IN (0, 1)),
	totp_last_step INTEGER NOT NULL DEFAULT 0,
	failed_logins  INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
	locked_until   INTEGER,
	last_failure   INTEGER,
	last_login     INTEGER,
	passkeys       TEXT CHECK (passkeys IS NULL OR json_valid(passkeys)),
	habits         TEXT CHECK (habits IS NULL OR json_valid(habits))
) STRICT;

CREATE TRIGGER users_no_delete BEFORE DELETE ON users
BEGIN
	SELECT RAISE(ABORT, 'users are never deleted, only disabled');
END;

CREATE TRIGGER users_keys_immutable BEFORE UPDATE OF name, created ON users
BEGIN
	SELECT RAISE(ABORT, 'a user''s name and creation time never change');
END;

CREATE TABLE devices (
	id            TEXT PRIMARY KEY CHECK (id <> ''),
	user          TEXT NOT NULL REFERENCES users (name),
	name          TEXT NOT NULL,
	key_hash      TEXT NOT NULL,
	created       INTEGER NOT NULL,
	last_seen     INTEGER,
	revoked       INTEGER,
	revoke_reason TEXT NOT NULL,
	cert_serial   TEXT NOT NULL,
	cert_expires  INTEGER,
	factors       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(factors) AND json_type(factors) = 'array')
) STRICT;

CREATE INDEX devices_by_user ON devices (user, created, id);
CREATE INDEX devices_by_created ON devices (created, id);

CREATE TRIGGER devices_keys_immutable BEFORE UPDATE OF id, user, created ON devices
BEGIN
	SELECT RAISE(ABORT, 'a device''s id, user and creation time never change');
END;

CREATE TABLE sessions (
	id        TEXT PRIMARY KEY CHECK (id <> ''),
	user      TEXT NOT NULL REFERENCES users (name),
	created   INTEGER NOT NULL,
	auth_time INTEGER,
	factors   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(factors) AND json_type(factors) = 'array'),
	expires   INTEGER NOT NULL,
	last_seen INTEGER,
	addr      TEXT NOT NULL
) STRICT;

CREATE INDEX sessions_by_user ON sessions (user);
CREATE INDEX sessions_by_expires ON sessions (expires);

CREATE TRIGGER sessions_keys_immutable BEFORE UPDATE OF id, user, created ON sessions
BEGIN
	SELECT RAISE(ABORT, 'a session''s id, user and creation time never change');
END;

ALTER TABLE audit ADD COLUMN hash TEXT NOT NULL DEFAULT '';
`},
	// TRIGGER and BY are SQL keywords: a ban's trigger is its cause and
	// By is banned_by. Until is expires.
	{name: "bans", sql: `
CREATE TABLE bans (
	prefix    TEXT PRIMARY KEY CHECK (prefix <> ''),
	reason    TEXT NOT NULL,
	cause     TEXT NOT NULL,
	banned_by TEXT NOT NULL,
	created   INTEGER NOT NULL,
	expires   INTEGER,
	offences  INTEGER NOT NULL CHECK (offences >= 0),
	lifted    INTEGER
) STRICT;
`},
}

// migrate runs the migrations of list that db has not run yet, each in its
// own transaction together with the version bump, so a failed one leaves
// the database at the version before it. name is the database's file name
// for messages.
func migrate(ctx context.Context, db *sql.DB, name string, list []migration) error {
	for {
		done, err := migrateOne(ctx, db, name, list)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne runs the next migration, if any, and reports whether the
// schema is now current. The version is read inside the (IMMEDIATE)
// transaction, so two processes opening the file at once do not both run
// a migration.
func migrateOne(ctx context.Context, db *sql.DB, name string, list []migration) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("beginning a migration: %w", err)
	}
	defer func() {
		if err != nil || done {
			_ = tx.Rollback()
		}
	}()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return false, fmt.Errorf("reading the schema version: %w", err)
	}
	switch {
	case v > len(list):
		return false, errkind.WithHint(errkind.Invalid,
			fmt.Errorf("%s is at schema version %d, this noops knows up to %d: upgrade noops", name, v, len(list)),
			"run the noops release that last used this data folder, or a newer one")
	case v == len(list):
		return true, nil
	}
	m := list[v]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("schema version %d (%s): %w", v+1, m.name, err)
	}
	// PRAGMA takes no parameters; v is an int.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
		return false, fmt.Errorf("recording schema version %d: %w", v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("committing schema version %d (%s): %w", v+1, m.name, err)
	}
	return false, nil
}
