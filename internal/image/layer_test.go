package image

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func writeTree(t *testing.T, dir string) {
	t.Helper()
	for name, mode := range map[string]os.FileMode{"bin/server": 0o700, "static/index.html": 0o600, "README": 0o664} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("bin/server", filepath.Join(dir, "run")); err != nil {
		t.Fatal(err)
	}
}

func TestLayerFromDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir)
	l, err := LayerFromDir(dir, "app")
	if err != nil {
		t.Fatalf("LayerFromDir: %v", err)
	}
	hs, bodies := entries(t, l)
	for _, tc := range []struct {
		name string
		typ  byte
		mode int64
	}{
		{"app", tar.TypeDir, 0o755},
		{"app/bin", tar.TypeDir, 0o755},
		{"app/bin/server", tar.TypeReg, 0o755},
		{"app/static/index.html", tar.TypeReg, 0o644},
		{"app/README", tar.TypeReg, 0o644},
		{"app/run", tar.TypeSymlink, 0o777},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hs[tc.name]
			if h == nil {
				t.Fatalf("layer has no %s; has %v", tc.name, hs)
			}
			if h.Typeflag != tc.typ || h.Mode != tc.mode || h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(epoch) {
				t.Errorf("%s: type %c mode %o owner %d:%d mtime %v; want %c %o 0:0 %v", tc.name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime, tc.typ, tc.mode, epoch)
			}
		})
	}
	if bodies["app/bin/server"] != "bin/server" || hs["app/run"].Linkname != "bin/server" {
		t.Errorf("contents: server %q, run -> %q", bodies["app/bin/server"], hs["app/run"].Linkname)
	}
	if len(hs) != 7 {
		t.Errorf("layer has %d entries, want 7", len(hs))
	}
}

func TestLayerFromDirIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a)
	writeTree(t, b)
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(b, "README"), later, later); err != nil {
		t.Fatal(err)
	}
	la, err := LayerFromDir(a, "app")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := LayerFromDir(b, "/app/")
	if err != nil {
		t.Fatal(err)
	}
	da, _ := la.Digest()
	db, _ := lb.Digest()
	if da != db {
		t.Errorf("same tree gave layers %s and %s", da, db)
	}
	if err := os.WriteFile(filepath.Join(b, "README"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	lc, _ := LayerFromDir(b, "app")
	if dc, _ := lc.Digest(); dc == da {
		t.Error("a changed file did not change the layer digest")
	}
}

func TestLayerFromDirRefusesRootAndPipes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := LayerFromDir(dir, "/"); err == nil {
		t.Error(`LayerFromDir(dir, "/") succeeded`)
	}
	if err := syscallMkfifo(filepath.Join(dir, "pipe")); err != nil {
		t.Fatal(err)
	}
	if _, err := LayerFromDir(dir, "app"); err == nil {
		t.Error("LayerFromDir of a folder with a pipe succeeded")
	}
}

func TestAssemble(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	base, err := BaseLayer(BaseOptions{Zoneinfo: fakeZoneinfo(t)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeTree(t, dir)
	app, err := LayerFromDir(dir, "app")
	if err != nil {
		t.Fatal(err)
	}
	img, err := Assemble(v1.Config{User: NonRootUser, Entrypoint: []string{"/app/run"}}, created, base, app)
	if err != nil {
		t.Fatalf("Assemble: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("assembled image does not validate: %v", err)
	}
	m, _ := img.Manifest()
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || len(m.Layers) != 2 {
		t.Fatalf("manifest: %s, config %s, %d layers", m.MediaType, m.Config.MediaType, len(m.Layers))
	}
	for _, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer media type %s, want %s", l.MediaType, types.OCILayer)
		}
	}
	cf, _ := img.ConfigFile()
	if cf.OS != "linux" || cf.Architecture == "" || !cf.Created.Equal(created) || cf.Config.User != NonRootUser || cf.Config.Entrypoint[0] != "/app/run" {
		t.Errorf("config: os %q arch %q created %v user %q entrypoint %v", cf.OS, cf.Architecture, cf.Created, cf.Config.User, cf.Config.Entrypoint)
	}
}
