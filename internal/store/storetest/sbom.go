package storetest

import (
	"bytes"
	"context"
	"testing"

	"noops/internal/errkind"
	"noops/internal/store"
)

// testReleaseSBOM: the inventory given to CreateRelease comes back from
// ReleaseSBOM (and only from there), a release without one gives nil, and
// a status change leaves it alone.
func testReleaseSBOM(t *testing.T, s store.Store) {
	ctx := context.Background()
	newApp(t, s, "web")
	inv := []byte(`{"version":1,"components":[{"name":"tzdata"}]}`)
	with, err := s.CreateRelease(ctx, store.Release{App: "web", Image: digest, Created: t0, SBOM: inv})
	ok(t, "CreateRelease with an SBOM", err)
	without := newRelease(t, s, "web")

	got, err := s.ReleaseSBOM(ctx, "web", with.Number)
	ok(t, "ReleaseSBOM", err)
	if !bytes.Equal(got, inv) {
		t.Errorf("ReleaseSBOM(web, %d) = %q, want %q", with.Number, got, inv)
	}
	got, err = s.ReleaseSBOM(ctx, "web", without.Number)
	ok(t, "ReleaseSBOM of a release without one", err)
	if got != nil {
		t.Errorf("ReleaseSBOM(web, %d) = %q, want nil", without.Number, got)
	}
	r, err := s.GetRelease(ctx, "web", with.Number)
	ok(t, "GetRelease", err)
	if r.SBOM != nil {
		t.Errorf("GetRelease returned the SBOM (%d bytes), want it left out", len(r.SBOM))
	}
	ok(t, "SetReleaseStatus", s.SetReleaseStatus(ctx, "web", with.Number, store.StatusFailed, "test"))
	if got, _ := s.ReleaseSBOM(ctx, "web", with.Number); !bytes.Equal(got, inv) {
		t.Errorf("after a status change ReleaseSBOM = %q, want it unchanged", got)
	}
	_, err = s.ReleaseSBOM(ctx, "web", 99)
	wantErr(t, "ReleaseSBOM of a missing release", err, errkind.NotFound, "release 99")
	_, err = s.ReleaseSBOM(ctx, "nope", 1)
	wantErr(t, "ReleaseSBOM of a missing app", err, errkind.NotFound, "nope")
}
