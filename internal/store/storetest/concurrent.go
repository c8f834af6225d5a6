package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"noops/internal/store"
)

// testConcurrentCreateRelease creates releases of two apps from many
// goroutines at once: each app's numbers must come out unique and
// consecutive from 1.
func testConcurrentCreateRelease(t *testing.T, s store.Store) {
	ctx := t.Context()
	const perApp = 40
	apps := []string{"a", "b"}
	for _, name := range apps {
		newApp(t, s, name)
	}
	var (
		mu  sync.Mutex
		got = map[string][]int{}
		wg  sync.WaitGroup
	)
	for i := range perApp {
		for _, name := range apps {
			wg.Go(func() {
				r, err := s.CreateRelease(ctx, store.Release{App: name, Image: digest, Reason: fmt.Sprintf("deploy %d", i)})
				if err != nil {
					t.Errorf("CreateRelease(%s) #%d: %v", name, i, err)
					return
				}
				mu.Lock()
				got[name] = append(got[name], r.Number)
				mu.Unlock()
			})
		}
	}
	wg.Wait()

	want := make([]int, perApp)
	for i := range want {
		want[i] = i + 1
	}
	for _, name := range apps {
		nums := got[name]
		slices.Sort(nums)
		if !slices.Equal(nums, want) {
			t.Errorf("numbers given to concurrent releases of %s = %v, want 1 to %d once each", name, nums, perApp)
		}
		rels, err := s.ListReleases(ctx, name)
		ok(t, "ListReleases("+name+")", err)
		listed := numbers(rels)
		slices.Reverse(listed)
		if !slices.Equal(listed, want) {
			t.Errorf("ListReleases(%s) = %v, want %d releases newest first", name, numbers(rels), perApp)
		}
	}
}

// testConcurrentWrites mixes every kind of write and some reads from many
// goroutines; none may fail (no "database is locked").
func testConcurrentWrites(t *testing.T, s store.Store) {
	ctx := t.Context()
	const workers = 32
	newApp(t, s, "web")
	newRelease(t, s, "web")
	newRelease(t, s, "web")
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			id := fmt.Sprintf("web-1-%03d", i)
			check := func(call string, err error) {
				if err != nil {
					t.Errorf("worker %d: %s: %v", i, call, err)
				}
			}
			_, err := s.AppendAudit(ctx, store.AuditEntry{Actor: "uid:0", Action: "POST /v1/apps/{app}/scale", Target: "app:web", Status: 200})
			check("AppendAudit", err)
			check("PutSandbox", s.PutSandbox(ctx, store.Sandbox{ID: id, App: "web", Release: 1, State: "starting"}))
			_, err = s.SetReplicas(ctx, "web", i)
			check("SetReplicas", err)
			check("PutSandbox again", s.PutSandbox(ctx, store.Sandbox{ID: id, App: "web", Release: 2, State: "healthy"}))
			_, err = s.Promote(ctx, "web", 1+i%2, i, "deploy")
			check("Promote", err)
			_, err = s.GetApp(ctx, "web")
			check("GetApp", err)
			_, err = s.ListSandboxes(ctx, "")
			check("ListSandboxes", err)
			_, err = s.ListAudit(ctx, 0, 0)
			check("ListAudit", err)
		})
	}
	wg.Wait()

	log, err := s.ListAudit(ctx, 0, 0)
	ok(t, "ListAudit", err)
	seen := map[int64]bool{}
	for _, e := range log {
		seen[e.Seq] = true
	}
	if len(log) != workers || len(seen) != workers {
		t.Errorf("ListAudit after %d concurrent appends = %d entries with %d distinct Seq, want %d", workers, len(log), len(seen), workers)
	}
	boxes, err := s.ListSandboxes(ctx, "web")
	ok(t, "ListSandboxes(web)", err)
	if len(boxes) != workers {
		t.Errorf("ListSandboxes(web) after %d concurrent puts = %d sandboxes, want %d", workers, len(boxes), workers)
	}
	for _, b := range boxes {
		if b.Release != 2 || b.State != "healthy" {
			t.Errorf("sandbox %s = release %d %s, want release 2 healthy (the second put)", b.ID, b.Release, b.State)
		}
	}
	st := statuses(t, s, "web")
	if lives := countLive(st); lives != 1 {
		t.Errorf("statuses after concurrent Promote calls = %v, want exactly one live", st)
	}
}

func countLive(st map[int]store.Status) int {
	n := 0
	for _, s := range st {
		if s == store.StatusLive {
			n++
		}
	}
	return n
}
