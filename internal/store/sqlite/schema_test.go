package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
)

func userVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatalf("reading user_version: %v", err)
	}
	return v
}

func tables(t *testing.T, db *sql.DB) []string {
	t.Helper()
	var names []string
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatalf("listing tables: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

func TestMigrateFromEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // the second Open finds the schema current
		db, err := Open(path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		if v := userVersion(t, db.w); v != len(migrations) {
			t.Errorf("Open #%d: user_version = %d, want %d", i, v, len(migrations))
		}
		if got, want := strings.Join(tables(t, db.w), " "), "apps audit bans devices events releases sandboxes sessions users"; got != want {
			t.Errorf("Open #%d: tables = %s, want %s", i, got, want)
		}
		var mode string
		if err := db.w.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("Open #%d: journal_mode = %q, %v; want wal", i, mode, err)
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i, err)
		}
	}
}

func TestMigrateStepByStep(t *testing.T) {
	ctx := context.Background()
	w, err := openPool(filepath.Join(t.TempDir(), "test.db"), false, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Re-running v1 would fail (the table exists), so each step proves the
	// earlier ones ran exactly once.
	v1 := migration{"t", `CREATE TABLE t (a INTEGER) STRICT`}
	v2 := migration{"t.b", `ALTER TABLE t ADD COLUMN b TEXT`}
	bad := migration{"half", `CREATE TABLE u (x INTEGER); INSERT INTO nowhere VALUES (1)`}

	steps := []struct {
		name    string
		list    []migration
		wantErr bool
		want    int
		tables  string
	}{
		{"to v1", []migration{v1}, false, 1, "t"},
		{"v1 again", []migration{v1}, false, 1, "t"},
		{"to v2", []migration{v1, v2}, false, 2, "t"},
		{"failing v3 leaves v2", []migration{v1, v2, bad}, true, 2, "t"},
		{"newer than known", []migration{v1}, true, 2, "t"},
	}
	for _, st := range steps {
		err := migrate(ctx, w, "test.db", st.list)
		if (err != nil) != st.wantErr {
			t.Errorf("%s: migrate = %v, want error %v", st.name, err, st.wantErr)
		}
		if v := userVersion(t, w); v != st.want {
			t.Errorf("%s: user_version = %d, want %d", st.name, v, st.want)
		}
		if got := strings.Join(tables(t, w), " "); got != st.tables {
			t.Errorf("%s: tables = %q, want %q", st.name, got, st.tables)
		}
	}
	if _, err := w.Exec(`INSERT INTO t (a, b) VALUES (1, 'x')`); err != nil {
		t.Errorf("using the migrated table: %v", err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	newer := len(migrations) + 1
	if _, err := db.w.Exec(`PRAGMA user_version = ` + strconv.Itoa(newer)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db, err = Open(path)
	if err == nil {
		db.Close()
		t.Fatal("Open of a database from a newer noops = nil error, want one")
	}
	want := "state.db is at schema version " + strconv.Itoa(newer) + ", this noops knows up to " + strconv.Itoa(len(migrations)) + ": upgrade noops"
	if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), want) {
		t.Errorf("Open of a newer database = %v (kind %v), want Invalid %q", err, errkind.Of(err), want)
	}
	if errkind.HintOf(err) == "" {
		t.Errorf("Open of a newer database = %v, want a hint", err)
	}
}

// seeded opens a database with app web, a live release 1 and an audit
// entry, for the raw-SQL tests.
func seeded(t *testing.T) *DB {
	t.Helper()
	db := openTemp(t)
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()
	if _, err := db.CreateApp(ctx, store.App{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateRelease(ctx, store.Release{App: "web", Image: "sha256:x", Env: map[string]string{"K": "v"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AppendAudit(ctx, store.AuditEntry{Action: "deploy"}); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestSchemaRefuses issues raw SQL past the Go code: the schema itself
// must refuse to change a release, rewrite the audit log or reuse a
// release number.
func TestSchemaRefuses(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		msg  string
	}{
		{"release image", `UPDATE releases SET image = 'sha256:evil'`, "immutable"},
		{"release env", `UPDATE releases SET env = '{"K":"evil"}'`, "immutable"},
		{"release config", `UPDATE releases SET config = '{}'`, "immutable"},
		{"release number", `UPDATE releases SET number = 9`, "immutable"},
		{"release app", `UPDATE releases SET app = 'other'`, "immutable"},
		{"release created", `UPDATE releases SET created = 0`, "immutable"},
		{"release source", `UPDATE releases SET source_digest = 'x'`, "immutable"},
		{"release buildpack", `UPDATE releases SET buildpack = 'x'`, "immutable"},
		{"release sbom", `UPDATE releases SET sbom = x'00'`, "immutable"},
		{"release status value", `UPDATE releases SET status = 'gone'`, "CHECK"},
		{"audit update", `UPDATE audit SET detail = 'nothing happened'`, "append-only"},
		{"audit delete", `DELETE FROM audit`, "append-only"},
		{"audit replace", `INSERT OR REPLACE INTO audit (seq, time, actor, action, target, status, detail)
			VALUES (1, 0, '', 'rewritten', '', 0, '')`, "append-only"},
		{"release number reuse", `UPDATE apps SET next_release = 1`, "never reused"},
		{"writable schema", `PRAGMA writable_schema = 1; DELETE FROM sqlite_schema WHERE name = 'audit_no_delete'`, "may not be modified"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := seeded(t)
			_, err := db.w.Exec(tc.sql)
			if err == nil {
				t.Fatalf("%s = nil error, want the schema to refuse it", tc.sql)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s = %v, want an error mentioning %q", tc.sql, err, tc.msg)
			}
			// Nothing changed.
			r, gerr := db.GetRelease(t.Context(), "web", 1)
			if gerr != nil || r.Image != "sha256:x" || r.Env["K"] != "v" {
				t.Errorf("release 1 after %q = %+v, %v; want it unchanged", tc.sql, r, gerr)
			}
			log, lerr := db.ListAudit(t.Context(), 0, 0)
			if lerr != nil || len(log) != 1 || log[0].Action != "deploy" {
				t.Errorf("audit log after %q = %+v, %v; want the one entry unchanged", tc.sql, log, lerr)
			}
		})
	}
}

func TestSchemaAllowsStatusAndReason(t *testing.T) {
	db := seeded(t)
	if _, err := db.w.Exec(`UPDATE releases SET status = 'failed', reason = 'by hand'`); err != nil {
		t.Fatalf("updating status and reason: %v", err)
	}
	r, err := db.GetRelease(t.Context(), "web", 1)
	if err != nil || r.Status != store.StatusFailed || r.Reason != "by hand" {
		t.Errorf("release 1 = %+v, %v; want failed, \"by hand\"", r, err)
	}
}

func TestReadersCannotWrite(t *testing.T) {
	db := seeded(t)
	_, err := db.r.Exec(`INSERT INTO audit (time, actor, action, target, status, detail) VALUES (0, '', 'x', '', 0, '')`)
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("writing through the read pool = %v, want it refused", err)
	}
}

// TestMigrateAuditToChain opens a database of the version before the
// audit chain: its entries keep no hash, and the chain starts after them.
func TestMigrateAuditToChain(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	v := slices.IndexFunc(migrations, func(m migration) bool { return m.name == "users, devices, sessions, audit hash" })
	if v < 0 {
		t.Fatal("no migration adds the audit hash")
	}
	w, err := openPool(path, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, w, "state.db", migrations[:v]); err != nil {
		t.Fatalf("migrating to version %d: %v", v, err)
	}
	const legacy = 3
	for i := range legacy {
		if _, err := w.Exec(`INSERT INTO audit (time, actor, action, target, status, detail) VALUES (?, 'uid:0', 'POST /v1/apps', 'app:web', 201, '')`,
			int64(i)); err != nil {
			t.Fatalf("appending a version %d audit entry: %v", v, err)
		}
	}
	w.Close()

	db, err := Open(path)
	if err != nil {
		t.Fatalf("Open of a version %d database: %v", v, err)
	}
	defer db.Close()
	if got := userVersion(t, db.w); got != len(migrations) {
		t.Errorf("user_version after Open = %d, want %d", got, len(migrations))
	}
	old, err := db.ListAudit(ctx, 0, 0)
	if err != nil || len(old) != legacy {
		t.Fatalf("ListAudit after migrating = %+v, %v; want the %d old entries", old, err, legacy)
	}
	for _, e := range old {
		if e.Hash != "" {
			t.Errorf("old entry %d has hash %q after migrating, want none", e.Seq, e.Hash)
		}
	}
	for i := range 2 {
		e, err := db.AppendAudit(ctx, store.AuditEntry{Actor: "user:ana", Action: "POST /v1/users", Status: 201})
		if err != nil {
			t.Fatalf("AppendAudit #%d after migrating: %v", i, err)
		}
		if i == 0 && (e.Seq != legacy+1 || e.Hash != store.AuditHash("", e)) {
			t.Errorf("first entry after migrating = %+v, want Seq %d chained to \"\"", e, legacy+1)
		}
	}
	all, err := db.ListAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c := store.VerifyAudit(all); c.Entries != legacy+2 || c.Unhashed != legacy || c.BrokenAt != 0 {
		t.Errorf("VerifyAudit after migrating = %+v, want %d entries, %d unhashed, intact", c, legacy+2, legacy)
	}
	if _, err := db.CreateUser(ctx, store.User{Name: "ana"}); err != nil {
		t.Errorf("CreateUser after migrating: %v", err)
	}
}

// TestIdentitySchemaRefuses issues raw SQL past the Go code: the schema
// itself must keep users, refuse to change the keys of users, devices and
// sessions, and keep their JSON columns JSON.
func TestIdentitySchemaRefuses(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		msg  string
	}{
		{"user delete", `DELETE FROM users WHERE name = 'ana'`, "never deleted"},
		{"user replace", `INSERT OR REPLACE INTO users (name, created, password_hash, totp_secret) VALUES ('ana', 0, '', '')`,
			"never deleted"},
		{"user name", `UPDATE users SET name = 'eve' WHERE name = 'ana'`, "never change"},
		{"user created", `UPDATE users SET created = 0`, "never change"},
		{"user roles not JSON", `UPDATE users SET roles = 'admin'`, "CHECK"},
		{"user roles not a list", `UPDATE users SET roles = '{"admin":true}'`, "CHECK"},
		{"user passkeys not JSON", `UPDATE users SET passkeys = '['`, "CHECK"},
		{"user habits not JSON", `UPDATE users SET habits = '{'`, "CHECK"},
		{"user failed logins", `UPDATE users SET failed_logins = -1`, "CHECK"},
		{"user disabled", `UPDATE users SET disabled = 2`, "CHECK"},
		{"device id", `UPDATE devices SET id = 'other'`, "never change"},
		{"device user", `UPDATE devices SET user = 'bob'`, "never change"},
		{"device created", `UPDATE devices SET created = 0`, "never change"},
		{"device of no user", `INSERT INTO devices (id, user, name, key_hash, created, revoke_reason, cert_serial)
			VALUES ('d2', 'nope', '', '', 0, '', '')`, "FOREIGN KEY"},
		{"session id", `UPDATE sessions SET id = 'other'`, "never change"},
		{"session user", `UPDATE sessions SET user = 'bob'`, "never change"},
		{"session created", `UPDATE sessions SET created = 0`, "never change"},
		{"session factors not a list", `UPDATE sessions SET factors = '"totp"'`, "CHECK"},
		{"session of no user", `INSERT INTO sessions (id, user, created, expires, addr) VALUES ('s2', 'nope', 0, 0, '')`,
			"FOREIGN KEY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openTemp(t)
			t.Cleanup(func() { db.Close() })
			ctx := t.Context()
			u, err := db.CreateUser(ctx, store.User{Name: "ana", Roles: []string{"admin"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.CreateUser(ctx, store.User{Name: "bob"}); err != nil {
				t.Fatal(err)
			}
			d, err := db.CreateDevice(ctx, store.Device{ID: "d1", User: "ana", KeyHash: "ab12"})
			if err != nil {
				t.Fatal(err)
			}
			s, err := db.CreateSession(ctx, store.Session{ID: "s1", User: "ana", Expires: u.Created.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}

			_, err = db.w.Exec(tc.sql)
			if err == nil {
				t.Fatalf("%s = nil error, want the schema to refuse it", tc.sql)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s = %v, want an error mentioning %q", tc.sql, err, tc.msg)
			}
			// Nothing changed.
			if got, err := db.GetUser(ctx, "ana"); err != nil || !got.Created.Equal(u.Created) || !slices.Equal(got.Roles, u.Roles) {
				t.Errorf("user ana after %q = %+v, %v; want it unchanged", tc.sql, got, err)
			}
			if got, err := db.GetDevice(ctx, "d1"); err != nil || !reflect.DeepEqual(got, d) {
				t.Errorf("device d1 after %q = %+v, %v; want it unchanged", tc.sql, got, err)
			}
			if got, err := db.GetSession(ctx, "s1"); err != nil || got.User != s.User || !got.Created.Equal(s.Created) {
				t.Errorf("session s1 after %q = %+v, %v; want it unchanged", tc.sql, got, err)
			}
		})
	}
}
