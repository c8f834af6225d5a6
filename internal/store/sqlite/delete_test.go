package sqlite

import (
	"strings"
	"testing"

	"noops/internal/store"
)

// TestSchemaRefusesAfterDelete checks that deleting old releases leaves
// the schema's rules in force: the remaining releases stay immutable and
// the counter cannot go back to a deleted number.
func TestSchemaRefusesAfterDelete(t *testing.T) {
	db := seeded(t)
	ctx := t.Context()
	for range 2 {
		if _, err := db.CreateRelease(ctx, store.Release{App: "web", Image: "sha256:y"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SetReleaseStatus(ctx, "web", 3, store.StatusFailed, "crashed"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteReleases(ctx, "web", []int{3}); err != nil {
		t.Fatalf("DeleteReleases(web, [3]): %v", err)
	}
	for _, q := range []struct{ sql, msg string }{
		{`UPDATE releases SET image = 'sha256:evil'`, "immutable"},
		{`UPDATE releases SET number = 3 WHERE number = 2`, "immutable"},
		{`UPDATE apps SET next_release = 3`, "never reused"},
	} {
		if _, err := db.w.Exec(q.sql); err == nil || !strings.Contains(err.Error(), q.msg) {
			t.Errorf("%s after DeleteReleases = %v, want it refused (%q)", q.sql, err, q.msg)
		}
	}
	r, err := db.CreateRelease(ctx, store.Release{App: "web", Image: "sha256:z"})
	if err != nil || r.Number != 4 {
		t.Errorf("CreateRelease after deleting release 3 = %d, %v; want number 4", r.Number, err)
	}
}
