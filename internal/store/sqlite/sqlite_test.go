package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/store"
	"noops/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTemp(t)
	})
}

// openTemp opens a new database in a temporary folder. The caller closes
// it (storetest.Run does).
func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

func TestFileIsPrivate(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(path string) error
	}{
		{"new file", func(string) error { return nil }},
		{"existing empty file", func(p string) error { return os.WriteFile(p, nil, 0o644) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			if err := tc.prepare(path); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer db.Close()
			// A write makes SQLite create the -wal and -shm files.
			if _, err := db.CreateApp(t.Context(), store.App{Name: "web"}); err != nil {
				t.Fatalf("CreateApp: %v", err)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatalf("stat: %v", err)
				}
				if got := fi.Mode().Perm(); got != 0o600 {
					t.Errorf("mode of %s = %v, want -rw-------", filepath.Base(p), got)
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		kind errkind.Kind
		msg  string
	}{
		{"empty path", "", errkind.Invalid, "no path"},
		{"question mark", filepath.Join(dir, "state?.db"), errkind.Invalid, "'?'"},
		{"missing folder", filepath.Join(dir, "nope", "state.db"), errkind.Internal, "creating state database"},
		{"not a database", garbage, errkind.Internal, "not a database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(tc.path)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) = nil error, want one", tc.path)
			}
			if errkind.Of(err) != tc.kind || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Open(%q) = %v (kind %v), want kind %v mentioning %q", tc.path, err, errkind.Of(err), tc.kind, tc.msg)
			}
		})
	}
}

func TestReopenKeepsState(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	db, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := db.CreateApp(ctx, store.App{Name: "web", Created: created}); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	for range 2 {
		if _, err := db.CreateRelease(ctx, store.Release{App: "web", Image: "sha256:x"}); err != nil {
			t.Fatalf("CreateRelease: %v", err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}

	db, err = Open(path)
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	defer db.Close()
	a, err := db.GetApp(ctx, "web")
	if err != nil || !a.Created.Equal(created) {
		t.Errorf("GetApp(web) after reopening = %+v, %v; want it created at %v", a, err, created)
	}
	r, err := db.CreateRelease(ctx, store.Release{App: "web", Image: "sha256:x"})
	if err != nil || r.Number != 3 {
		t.Errorf("CreateRelease(web) after reopening = number %d, %v; want 3", r.Number, err)
	}
}

func TestOutOfRangeTime(t *testing.T) {
	db := openTemp(t)
	defer db.Close()
	_, err := db.CreateApp(t.Context(), store.App{Name: "web", Created: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)})
	if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("CreateApp with a time in 3000 = %v, want an Invalid out-of-range error", err)
	}
}

func TestAuditLimit(t *testing.T) {
	tests := []struct{ in, want int }{
		{-1, store.DefaultAuditLimit},
		{0, store.DefaultAuditLimit},
		{1, 1},
		{store.MaxAuditLimit, store.MaxAuditLimit},
		{store.MaxAuditLimit + 1, store.MaxAuditLimit},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.in), func(t *testing.T) {
			if got := auditLimit(tc.in); got != tc.want {
				t.Errorf("auditLimit(%d) = %d, want %d", tc.in, got, tc.want)
			}
		})
	}
}

// TestTwoHandlesOneFile writes through two DBs on the same file at once,
// as two processes would; the busy timeout must absorb the contention.
func TestTwoHandlesOneFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.db")
	var dbs [2]*DB
	for i := range dbs {
		db, err := Open(path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		defer db.Close()
		dbs[i] = db
	}
	if _, err := dbs[0].CreateApp(ctx, store.App{Name: "web"}); err != nil {
		t.Fatalf("CreateApp: %v", err)
	}
	if _, err := dbs[0].CreateRelease(ctx, store.Release{App: "web", Image: "sha256:x"}); err != nil {
		t.Fatalf("CreateRelease: %v", err)
	}
	const perHandle = 25
	var wg sync.WaitGroup
	for i, db := range dbs {
		for j := range perHandle {
			wg.Go(func() {
				if _, err := db.CreateRelease(ctx, store.Release{App: "web", Image: "sha256:x"}); err != nil {
					t.Errorf("handle %d: CreateRelease #%d: %v", i, j, err)
				}
				if _, err := db.AppendAudit(ctx, store.AuditEntry{Action: "test"}); err != nil {
					t.Errorf("handle %d: AppendAudit #%d: %v", i, j, err)
				}
				// PutSandbox reads before it writes: in a deferred
				// transaction that upgrade could fail at once with
				// SQLITE_BUSY when the other handle has committed since.
				id := fmt.Sprintf("web-%d-%d", i, j)
				if err := db.PutSandbox(ctx, store.Sandbox{ID: id, App: "web", Release: 1}); err != nil {
					t.Errorf("handle %d: PutSandbox #%d: %v", i, j, err)
				}
			})
		}
	}
	wg.Wait()
	rels, err := dbs[1].ListReleases(ctx, "web")
	if err != nil {
		t.Fatalf("ListReleases(web): %v", err)
	}
	if n := 2*perHandle + 1; len(rels) != n || rels[0].Number != n {
		t.Errorf("ListReleases(web) = %d releases, want %d numbered 1 to %d", len(rels), n, n)
	}
	boxes, err := dbs[0].ListSandboxes(ctx, "web")
	if err != nil || len(boxes) != 2*perHandle {
		t.Errorf("ListSandboxes(web) = %d sandboxes, %v; want %d", len(boxes), err, 2*perHandle)
	}
	// Each handle read the last hash in its own write transaction.
	log, err := dbs[1].ListAudit(ctx, 0, store.MaxAuditLimit)
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	if c := store.VerifyAudit(log); c.Entries != 2*perHandle || c.BrokenAt != 0 || c.Unhashed != 0 {
		t.Errorf("VerifyAudit of the log both handles appended to = %+v, want %d entries, intact", c, 2*perHandle)
	}
}
