package storetest

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"noops/internal/errkind"
	"noops/internal/store"
)

// oldReleases makes web with releases 1-6: 4 live, 1 and 2 superseded, 3
// superseded with a sandbox still recorded, 5 failed, 6 pending. other has
// a release 1 of its own.
func oldReleases(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	newApp(t, s, "web")
	newApp(t, s, "other")
	for range 6 {
		newRelease(t, s, "web")
	}
	newRelease(t, s, "other")
	for _, n := range []int{1, 2, 3, 4} {
		_, err := s.Promote(ctx, "web", n, 1, "deploy")
		ok(t, fmt.Sprintf("Promote(web, %d)", n), err)
	}
	ok(t, "SetReleaseStatus(web, 5, failed)", s.SetReleaseStatus(ctx, "web", 5, store.StatusFailed, "health check failed"))
	ok(t, "PutSandbox(web-3)", s.PutSandbox(ctx, store.Sandbox{ID: "web-3-aaa", App: "web", Release: 3, State: "stopping",
		Created: t0, Updated: t0}))
}

func releaseNumbers(t *testing.T, s store.Store, app string) []int {
	t.Helper()
	rels, err := s.ListReleases(t.Context(), app)
	ok(t, "ListReleases("+app+")", err)
	return numbers(rels)
}

func testDeleteReleases(t *testing.T, s store.Store) {
	ctx := t.Context()
	oldReleases(t, s)

	ok(t, "DeleteReleases(web, [5 1 2 1])", s.DeleteReleases(ctx, "web", []int{5, 1, 2, 1}))
	if got, want := releaseNumbers(t, s, "web"), []int{6, 4, 3}; !slices.Equal(got, want) {
		t.Errorf("ListReleases(web) after deleting 1, 2 and 5 = %v, want %v", got, want)
	}
	for _, n := range []int{1, 2, 5} {
		call := fmt.Sprintf("GetRelease(web, %d) after DeleteReleases", n)
		_, err := s.GetRelease(ctx, "web", n)
		wantErr(t, call, err, errkind.NotFound, fmt.Sprintf(`release %d of "web" not found`, n))
		_, err = s.ReleaseSBOM(ctx, "web", n)
		wantErr(t, fmt.Sprintf("ReleaseSBOM(web, %d) after DeleteReleases", n), err, errkind.NotFound, "not found")
	}
	// Another app's releases with the same numbers are not touched.
	if got := releaseNumbers(t, s, "other"); !slices.Equal(got, []int{1}) {
		t.Errorf("ListReleases(other) after deleting web's = %v, want [1]", got)
	}
	// The live release and the app record are as they were.
	a, err := s.GetApp(ctx, "web")
	ok(t, "GetApp(web)", err)
	checkApp(t, "GetApp(web) after DeleteReleases", a, store.App{Name: "web", Created: t0, Release: 4, Replicas: 1})

	// Numbers are never given again, not even the newest deleted one.
	ok(t, "SetReleaseStatus(web, 6, failed)", s.SetReleaseStatus(ctx, "web", 6, store.StatusFailed, "crashed"))
	ok(t, "DeleteReleases(web, [6])", s.DeleteReleases(ctx, "web", []int{6}))
	if r := newRelease(t, s, "web"); r.Number != 7 {
		t.Errorf("release of web after deleting 6 = number %d, want 7 (numbers are never reused)", r.Number)
	}

	// Once its sandbox is gone, release 3 may go too.
	ok(t, "DeleteSandbox(web-3-aaa)", s.DeleteSandbox(ctx, "web-3-aaa"))
	ok(t, "DeleteReleases(web, [3])", s.DeleteReleases(ctx, "web", []int{3}))
	if got, want := releaseNumbers(t, s, "web"), []int{7, 4}; !slices.Equal(got, want) {
		t.Errorf("ListReleases(web) after deleting 3 = %v, want %v", got, want)
	}

	// Nothing to delete is not an error and changes nothing.
	ok(t, "DeleteReleases(web, nil)", s.DeleteReleases(ctx, "web", nil))
	ok(t, "DeleteReleases(web, [])", s.DeleteReleases(ctx, "web", []int{}))
	if got, want := releaseNumbers(t, s, "web"), []int{7, 4}; !slices.Equal(got, want) {
		t.Errorf("ListReleases(web) after empty DeleteReleases = %v, want %v", got, want)
	}

	// The remaining releases are still immutable and promotable, and the
	// app can still be deleted.
	_, err = s.Promote(ctx, "web", 7, 2, "deploy")
	ok(t, "Promote(web, 7) after DeleteReleases", err)
	ok(t, "DeleteReleases(web, [4]) once superseded", s.DeleteReleases(ctx, "web", []int{4}))
	ok(t, "DeleteApp(web)", s.DeleteApp(ctx, "web"))
}

func testDeleteReleasesErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	oldReleases(t, s)
	tests := []struct {
		name    string
		app     string
		numbers []int
		kind    errkind.Kind
		msg     string
	}{
		{"live", "web", []int{4}, errkind.Conflict, "live"},
		{"pending", "web", []int{6}, errkind.Conflict, "pending"},
		{"sandboxes", "web", []int{3}, errkind.Conflict, "sandboxes"},
		{"missing release", "web", []int{9}, errkind.NotFound, `release 9 of "web" not found`},
		{"release zero", "web", []int{0}, errkind.NotFound, `release 0 of "web" not found`},
		{"missing app", "nope", []int{1}, errkind.NotFound, `app "nope" not found`},
		{"missing app, no numbers", "nope", nil, errkind.NotFound, `app "nope" not found`},
		{"empty app name", "", []int{1}, errkind.Invalid, "name"},
		// All or nothing: deletable releases listed with a refused one stay.
		{"live among old", "web", []int{1, 2, 4, 5}, errkind.Conflict, "live"},
		{"missing among old", "web", []int{1, 2, 5, 9}, errkind.NotFound, `release 9 of "web" not found`},
		{"sandboxes among old", "web", []int{1, 3}, errkind.Conflict, "sandboxes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.DeleteReleases(ctx, tc.app, tc.numbers)
			wantErr(t, fmt.Sprintf("DeleteReleases(%q, %v)", tc.app, tc.numbers), err, tc.kind, tc.msg)
		})
	}
	if got, want := releaseNumbers(t, s, "web"), []int{6, 5, 4, 3, 2, 1}; !slices.Equal(got, want) {
		t.Errorf("ListReleases(web) after refused DeleteReleases calls = %v, want %v", got, want)
	}
	want := map[int]store.Status{1: store.StatusSuperseded, 2: store.StatusSuperseded, 3: store.StatusSuperseded,
		4: store.StatusLive, 5: store.StatusFailed, 6: store.StatusPending}
	if got := statuses(t, s, "web"); !maps.Equal(got, want) {
		t.Errorf("statuses after refused DeleteReleases calls = %v, want %v", got, want)
	}
	a, err := s.GetApp(ctx, "web")
	ok(t, "GetApp(web)", err)
	checkApp(t, "GetApp(web) after refused DeleteReleases calls", a, store.App{Name: "web", Created: t0, Release: 4, Replicas: 1})
}

// testDeleteReleasesRacesSandboxes deletes a release while sandboxes of it
// are being recorded: a sandbox record of a deleted release must never
// exist, so for each pair exactly one of the two calls wins.
func testDeleteReleasesRacesSandboxes(t *testing.T, s store.Store) {
	ctx := t.Context()
	const rounds = 20
	newApp(t, s, "web")
	for range rounds {
		newRelease(t, s, "web")
	}
	for i := range rounds {
		ok(t, "SetReleaseStatus", s.SetReleaseStatus(ctx, "web", i+1, store.StatusSuperseded, ""))
	}
	var wg sync.WaitGroup
	delErr := make([]error, rounds)
	putErr := make([]error, rounds)
	for i := range rounds {
		n := i + 1
		wg.Go(func() { delErr[i] = s.DeleteReleases(ctx, "web", []int{n}) })
		wg.Go(func() {
			putErr[i] = s.PutSandbox(ctx, store.Sandbox{ID: fmt.Sprintf("web-%d", n), App: "web", Release: n, State: "starting"})
		})
	}
	wg.Wait()
	boxes, err := s.ListSandboxes(ctx, "web")
	ok(t, "ListSandboxes(web)", err)
	rels := statuses(t, s, "web")
	for _, b := range boxes {
		if _, ok := rels[b.Release]; !ok {
			t.Errorf("sandbox %s is recorded for release %d, which was deleted", b.ID, b.Release)
		}
	}
	for i := range rounds {
		n := i + 1
		switch {
		case delErr[i] == nil && putErr[i] == nil:
			t.Errorf("release %d: both DeleteReleases and PutSandbox succeeded", n)
		case delErr[i] != nil && putErr[i] != nil:
			t.Errorf("release %d: both failed: DeleteReleases = %v, PutSandbox = %v", n, delErr[i], putErr[i])
		case delErr[i] != nil && !errkind.Is(delErr[i], errkind.Conflict):
			t.Errorf("release %d: DeleteReleases = %v, want nil or a Conflict", n, delErr[i])
		case putErr[i] != nil && !errkind.Is(putErr[i], errkind.NotFound):
			t.Errorf("release %d: PutSandbox = %v, want nil or NotFound", n, putErr[i])
		}
	}
}
