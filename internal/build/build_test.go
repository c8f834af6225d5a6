package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"noops/internal/errkind"
	"noops/internal/image"
)

// scriptpack is a real, tiny buildpack: it recognises a file named
// marker and copies the source's "run" script into the launch layer.
type scriptpack struct {
	name, marker string
	priority     int
}

func (s scriptpack) Name() string    { return s.name }
func (s scriptpack) Expects() string { return s.marker + " (" + s.name + ")" }
func (s scriptpack) Priority() int   { return s.priority }

func (s scriptpack) Detect(src string) (Detection, error) {
	_, err := os.Stat(filepath.Join(src, s.marker))
	return Detection{Pass: err == nil, Reason: s.marker}, nil
}

func (s scriptpack) Build(ctx context.Context, bc *Context) error {
	b, err := os.ReadFile(filepath.Join(bc.Src, "run"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bc.Layer, "run"), b, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bc.Layer, "data.txt"), []byte("data"), 0o600); err != nil {
		return err
	}
	io.WriteString(bc.Log, "copied run\n")
	bc.Process = Process{Command: []string{"/app/run", "--serve"}, Env: map[string]string{"MODE": "prod"}}
	return nil
}

var base = sync.OnceValues(func() (v1.Layer, error) { return image.BaseLayer(image.BaseOptions{}) })

func request(t *testing.T, src string) Request {
	t.Helper()
	b, err := base()
	if err != nil {
		t.Fatal(err)
	}
	return Request{App: "hello", Src: src, Cache: t.TempDir(), Port: 8080, Base: b,
		Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func scriptSource(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	for name, body := range map[string]string{"Scriptfile": "", "run": "#!/bin/sh\necho hi\n"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func TestBuildExportsImage(t *testing.T) {
	t.Parallel()
	src := scriptSource(t)
	req := request(t, src)
	var log bytes.Buffer
	req.Log = &log
	bps := []Buildpack{scriptpack{"other", "Otherfile", 10}, scriptpack{"script", "Scriptfile", 20}}
	res, err := run(t.Context(), req, bps)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if res.Buildpack != "script" {
		t.Errorf("Buildpack = %q, want script", res.Buildpack)
	}
	if want, _ := SourceDigest(src); res.SourceDigest != want {
		t.Errorf("SourceDigest = %q, want %q", res.SourceDigest, want)
	}
	if err := validate.Image(res.Image); err != nil {
		t.Errorf("image does not validate: %v", err)
	}
	if !strings.Contains(log.String(), "detected script (Scriptfile)") || !strings.Contains(log.String(), "copied run") {
		t.Errorf("log = %q, want detection and the buildpack's output", log.String())
	}
	cf, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	for _, tc := range []struct{ name, got, want string }{
		{"user", c.User, "65532:65532"},
		{"entrypoint", strings.Join(c.Entrypoint, " "), "/app/run --serve"},
		{"working dir", c.WorkingDir, "/app"},
		{"env", strings.Join(c.Env, " "), "PATH=/usr/local/bin:/usr/bin:/bin PORT=8080 MODE=prod"},
		{"app label", c.Labels[LabelApp], "hello"},
		{"buildpack label", c.Labels[LabelBuildpack], "script"},
		{"source label", c.Labels[LabelSourceDigest], res.SourceDigest},
		{"time label", c.Labels[LabelBuildTime], "2026-01-02T03:04:05Z"},
		{"created", cf.Created.UTC().Format(time.RFC3339), "2026-01-02T03:04:05Z"},
		{"os", cf.OS, "linux"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("ExposedPorts = %v, want 8080/tcp", c.ExposedPorts)
	}
	layers, _ := res.Image.Layers()
	if len(layers) != 2 {
		t.Fatalf("image has %d layers, want base + app", len(layers))
	}
	if bd, _ := layers[0].Digest(); true {
		if want, _ := req.Base.Digest(); bd != want {
			t.Errorf("bottom layer %s, want the base %s", bd, want)
		}
	}
	modes := appLayer(t, layers[1])
	for name, want := range map[string]int64{"app": 0o755, "app/run": 0o755, "app/data.txt": 0o644} {
		if got, ok := modes[name]; !ok || got != want {
			t.Errorf("app layer %s: mode %o (present %v), want %o owned by root", name, got, ok, want)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(req.Cache, ".build-*")); len(left) != 0 {
		t.Errorf("build left %v in the cache", left)
	}
}

// appLayer returns the modes of a layer's entries, failing on any not owned by root.
func appLayer(t *testing.T, l v1.Layer) map[string]int64 {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	modes := map[string]int64{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return modes
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("app layer %s owned by %d:%d, want root", h.Name, h.Uid, h.Gid)
		}
		modes[strings.TrimSuffix(h.Name, "/")] = h.Mode
	}
}

func TestBuildIsReproducible(t *testing.T) {
	t.Parallel()
	bps := []Buildpack{scriptpack{"script", "Scriptfile", 10}}
	a, err := run(t.Context(), request(t, scriptSource(t)), bps)
	if err != nil {
		t.Fatal(err)
	}
	b, err := run(t.Context(), request(t, scriptSource(t)), bps)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Image.Digest()
	db, _ := b.Image.Digest()
	if da != db {
		t.Errorf("the same source built twice gave %s and %s", da, db)
	}
}

func TestBuildDetection(t *testing.T) {
	t.Parallel()
	bps := []Buildpack{scriptpack{"late", "Scriptfile", 50}, scriptpack{"early", "Scriptfile", 10}}
	r := &registry{}
	for _, bp := range bps {
		r.add(bp)
	}
	res, err := run(t.Context(), request(t, scriptSource(t)), r.list())
	if err != nil {
		t.Fatal(err)
	}
	if res.Buildpack != "early" {
		t.Errorf("two buildpacks pass: %s won, want the one with the lower priority", res.Buildpack)
	}
}

func TestBuildRecognisesNothing(t *testing.T) {
	t.Parallel()
	bps := []Buildpack{scriptpack{"golang", "go.mod", 10}, scriptpack{"node", "package.json", 10}, scriptpack{"static", "index.html", 90}}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := run(t.Context(), request(t, src), bps)
	if !errkind.Is(err, errkind.Invalid) {
		t.Fatalf("build of an unrecognised folder = %v, want Invalid", err)
	}
	want := "no recognised app in the upload: expected go.mod (golang), package.json (node) or index.html (static)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
}

func TestBuildRefusesBadRequests(t *testing.T) {
	t.Parallel()
	bps := []Buildpack{scriptpack{"script", "Scriptfile", 10}}
	for _, tc := range []struct {
		name   string
		change func(*Request)
	}{
		{"no port", func(r *Request) { r.Port = 0 }},
		{"no base", func(r *Request) { r.Base = nil }},
		{"no source", func(r *Request) { r.Src = filepath.Join(r.Cache, "missing") }},
		{"no cache", func(r *Request) { r.Cache = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request(t, scriptSource(t))
			tc.change(&req)
			if _, err := run(t.Context(), req, bps); err == nil {
				t.Error("build succeeded")
			}
		})
	}
}

func TestBuildNeedsAProcess(t *testing.T) {
	t.Parallel()
	_, err := run(t.Context(), request(t, scriptSource(t)), []Buildpack{noProcess{}})
	if err == nil || !strings.Contains(err.Error(), "no process") {
		t.Errorf("build whose buildpack declares no process = %v", err)
	}
}

type noProcess struct{ scriptpack }

func (noProcess) Name() string                          { return "none" }
func (noProcess) Detect(string) (Detection, error)      { return Detection{Pass: true}, nil }
func (noProcess) Build(context.Context, *Context) error { return nil }

func TestRegisterDuplicatePanics(t *testing.T) {
	t.Parallel()
	r := &registry{}
	r.add(scriptpack{"golang", "go.mod", 10})
	defer func() {
		if recover() == nil {
			t.Error("registering golang twice did not panic")
		}
	}()
	r.add(scriptpack{"golang", "other", 20})
}
