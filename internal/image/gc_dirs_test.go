package image

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// makeCache makes root/name holding size bytes in a nested file, last
// used at used.
func makeCache(t *testing.T, root, name string, size int, used time.Time) int64 {
	t.Helper()
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Join(dir, "layers", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "layers", "x", "data"), make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dir, used, used); err != nil {
		t.Fatal(err)
	}
	n, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPruneDirsLeastRecentlyUsedFirst(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	sizes := map[string]int64{}
	for i, name := range []string{"oldest", "old", "busy", "new", "newest"} {
		sizes[name] = makeCache(t, root, name, 64<<10*(i+1), base.Add(time.Duration(i)*time.Hour))
	}
	if err := os.WriteFile(filepath.Join(root, "not-a-cache"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, pruneTrash+"left-by-a-crash", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, n := range sizes {
		total += n
	}
	var claimed, released []string
	o := PruneOptions{
		Max: sizes["new"] + sizes["newest"],
		Claim: func(name string) (func(), bool) {
			if name == "busy" {
				return nil, false
			}
			claimed = append(claimed, name)
			return func() { released = append(released, name) }, true
		},
	}
	rep, err := PruneDirs(root, o)
	if err != nil {
		t.Fatalf("PruneDirs: %v", err)
	}
	if want := []string{"oldest", "old", "new"}; !slices.Equal(rep.Removed, want) {
		t.Errorf("PruneDirs removed %v, want %v (least recently used first, skipping the busy one)", rep.Removed, want)
	}
	if !slices.Equal(rep.Busy, []string{"busy"}) {
		t.Errorf("PruneDirs Busy = %v, want [busy]", rep.Busy)
	}
	if !slices.Equal(claimed, rep.Removed) || !slices.Equal(released, rep.Removed) {
		t.Errorf("claimed %v and released %v, want each removed cache claimed and released", claimed, released)
	}
	if rep.Total != total || rep.Freed != sizes["oldest"]+sizes["old"]+sizes["new"] {
		t.Errorf("PruneDirs report = %+v, want total %d and the removed ones' size freed", rep, total)
	}
	var left []string
	des, _ := os.ReadDir(root)
	for _, de := range des {
		left = append(left, de.Name())
	}
	if want := []string{"busy", "newest", "not-a-cache"}; !slices.Equal(left, want) {
		t.Errorf("left in the cache folder: %v, want %v", left, want)
	}

	// Under the cap, nothing goes.
	rep, err = PruneDirs(root, PruneOptions{Max: 1 << 40})
	if err != nil || len(rep.Removed) != 0 || rep.Total != sizes["busy"]+sizes["newest"] {
		t.Errorf("PruneDirs under the cap = %+v, %v; want nothing removed", rep, err)
	}
}

func TestPruneDirsDrop(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	now := time.Now()
	makeCache(t, root, "deleted-app", 1000, now)
	makeCache(t, root, "app", 1000, now.Add(-time.Hour))
	rep, err := PruneDirs(root, PruneOptions{Max: 1 << 40, Drop: func(name string) bool { return name == "deleted-app" }})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Removed, []string{"deleted-app"}) {
		t.Errorf("PruneDirs with Drop removed %v, want [deleted-app] whatever the cap", rep.Removed)
	}
	if !exists(filepath.Join(root, "app")) {
		t.Error("PruneDirs removed a cache under the cap")
	}
}

func TestPruneDirsMemo(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	memo := filepath.Join(root, ".sizes.json")
	used := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	first := makeCache(t, root, "app", 4096, used)
	rep, err := PruneDirs(root, PruneOptions{Max: 1 << 40, Memo: memo})
	if err != nil || rep.Total != first {
		t.Fatalf("PruneDirs = %+v, %v; want total %d", rep, err, first)
	}
	if !exists(memo) {
		t.Fatal("PruneDirs wrote no memo")
	}
	// A change deep inside that leaves the folder's time alone is not
	// seen: the remembered size is used, nothing is walked.
	if err := os.WriteFile(filepath.Join(root, "app", "layers", "x", "more"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = PruneDirs(root, PruneOptions{Max: 1 << 40, Memo: memo})
	if err != nil || rep.Total != first {
		t.Errorf("PruneDirs with an unchanged folder time = %+v, %v; want the remembered total %d", rep, err, first)
	}
	// A build changes the folder's time: measured again.
	if err := os.Chtimes(filepath.Join(root, "app"), used.Add(time.Hour), used.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rep, err = PruneDirs(root, PruneOptions{Max: 1 << 40, Memo: memo})
	if err != nil || rep.Total < first+1<<20 {
		t.Errorf("PruneDirs after the folder changed = %+v, %v; want it measured again (over %d)", rep, err, first+1<<20)
	}
	// A corrupt memo only costs a walk.
	if err := os.WriteFile(memo, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := PruneDirs(root, PruneOptions{Max: 1 << 40, Memo: memo}); err != nil || again.Total != rep.Total {
		t.Errorf("PruneDirs with a corrupt memo = %+v, %v; want total %d", again, err, rep.Total)
	}
}

func TestPruneDirsMissingRoot(t *testing.T) {
	t.Parallel()
	rep, err := PruneDirs(filepath.Join(t.TempDir(), "none"), PruneOptions{})
	if err != nil || rep.Total != 0 || len(rep.Removed) != 0 {
		t.Errorf("PruneDirs of a missing folder = %+v, %v; want an empty report", rep, err)
	}
}

func TestRemoveAllReadOnlyFolders(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "a", "b"), filepath.Join(dir, "a")} {
		if err := os.Chmod(d, 0o555); err != nil {
			t.Fatal(err)
		}
	}
	if err := removeAll(dir); err != nil {
		t.Fatalf("removeAll of read-only folders: %v", err)
	}
	if exists(dir) {
		t.Error("removeAll left the tree")
	}
}
