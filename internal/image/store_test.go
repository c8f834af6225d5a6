package image

import (
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"noops/internal/errkind"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "images"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func randomImage(t *testing.T, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(1024, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func put(t *testing.T, s *Store, img v1.Image, ref string) v1.Hash {
	t.Helper()
	d, err := s.Put(img, ref)
	if err != nil {
		t.Fatalf("Put(%s): %v", ref, err)
	}
	return d
}

func TestPutResolveGet(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	img := randomImage(t, 3)
	want, _ := img.Digest()
	d := put(t, s, img, "noops.build/hello:1")
	if d != want {
		t.Errorf("Put = %s, want the image's digest %s", d, want)
	}
	got, found, err := s.Resolve("noops.build/hello:1")
	if err != nil || !found || got != want {
		t.Errorf("Resolve = %s, %v, %v; want %s, true, nil", got, found, err, want)
	}
	back, err := s.Get(d)
	if err != nil {
		t.Fatalf("Get(%s): %v", d, err)
	}
	if err := validate.Image(back); err != nil {
		t.Errorf("stored image does not validate: %v", err)
	}
	if bd, _ := back.Digest(); bd != want {
		t.Errorf("Get(%s) has digest %s", want, bd)
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	a, b := randomImage(t, 1), randomImage(t, 1)
	da := put(t, s, a, "app:a")
	put(t, s, a, "app:a") // idempotent
	db := put(t, s, b, "app:b")
	for _, tc := range []struct {
		name, ref string
		want      v1.Hash
		found     bool
	}{
		{"first", "app:a", da, true},
		{"second", "app:b", db, true},
		{"missing", "app:c", v1.Hash{}, false},
		{"prefix is not a match", "app", v1.Hash{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, found, err := s.Resolve(tc.ref)
			if err != nil || found != tc.found || got != tc.want {
				t.Errorf("Resolve(%q) = %s, %v, %v; want %s, %v, nil", tc.ref, got, found, err, tc.want, tc.found)
			}
		})
	}
	idx, err := s.index()
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 {
		t.Errorf("index.json has %d images after putting one twice and another once, want 2", len(idx.Manifests))
	}
}

func TestPutSameRefReplaces(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	old := put(t, s, randomImage(t, 1), "app:latest")
	cur := put(t, s, randomImage(t, 1), "app:latest")
	if d, _, _ := s.Resolve("app:latest"); d != cur {
		t.Errorf("Resolve after replacing = %s, want %s", d, cur)
	}
	idx, err := s.index()
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != cur {
		t.Errorf("index.json = %+v, want only %s", idx.Manifests, cur)
	}
	// The replaced image stays readable: a rollback may need it.
	if _, err := s.Get(old); err != nil {
		t.Errorf("Get(replaced image): %v", err)
	}
}

func TestGetMissing(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	d := v1.Hash{Algorithm: "sha256", Hex: "0000000000000000000000000000000000000000000000000000000000000000"}
	if _, err := s.Get(d); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Get(missing) = %v, want a NotFound error", err)
	}
	if _, err := s.Unpack(t.Context(), d); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Unpack(missing) = %v, want a NotFound error", err)
	}
}

func TestOpenReopens(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "images")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := put(t, s, randomImage(t, 2), "app:1")
	stale := filepath.Join(dir, "layers", tmpPrefix+"crashed")
	if err := os.MkdirAll(filepath.Join(stale, "half"), 0o755); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	if got, found, err := s2.Resolve("app:1"); err != nil || !found || got != d {
		t.Errorf("Resolve after reopening = %s, %v, %v; want %s", got, found, err, d)
	}
	img, err := s2.Get(d)
	if err != nil {
		t.Fatalf("Get after reopening: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("image after reopening does not validate: %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("Open left a half-unpacked folder behind: %v", err)
	}
}

func TestOpenRefusesCorruptIndex(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil {
		t.Error("Open with a corrupt index.json succeeded")
	}
}

func TestStoreBaseIsMemoized(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	a, err := s.Base()
	if err != nil {
		t.Fatalf("Base: %v", err)
	}
	b, err := s.Base()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("Base built the layer twice")
	}
}
