package golang

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"noops/internal/build"
	"noops/internal/build/buildtest"
	"noops/internal/errkind"
)

// sharedCache is one app cache for the tests that do not study caching, so
// that the standard library compiles once per test run.
var sharedCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "noops-golang-cache-")
	if err != nil {
		panic(err)
	}
	sharedCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const helloMain = `package main

import "fmt"

var msg = "hello from noops"

func main() { fmt.Println(msg) }
`

// module writes a Go module of files (name → content) and returns its folder.
func module(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func request(t *testing.T, src, cache string, log io.Writer) build.Request {
	t.Helper()
	return build.Request{App: "hello", Src: src, Cache: cache, Port: 8080, Stacks: buildtest.Stacks{}, Log: log,
		Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// binary extracts the file at name from the image's app layer, checks
// that it is a root-owned executable, and returns where it put it.
func binary(t *testing.T, img v1.Image, name string) string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("image has %d layers (%v), want base + app", len(layers), err)
	}
	rc, err := layers[1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("app layer has no %s", name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") != strings.TrimPrefix(name, "/") {
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: type %c mode %o owner %d:%d, want a 0755 file owned by root", name, h.Typeflag, h.Mode, h.Uid, h.Gid)
		}
		p := filepath.Join(t.TempDir(), filepath.Base(name))
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func runBinary(t *testing.T, p string) string {
	t.Helper()
	out, err := exec.Command(p).CombinedOutput()
	if err != nil {
		t.Fatalf("running the built binary: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestBuildHello(t *testing.T) {
	t.Parallel()
	src := module(t, map[string]string{"go.mod": "module example.com/hello\n\ngo 1.22\n", "main.go": helloMain})
	var log bytes.Buffer
	res, err := build.Build(t.Context(), request(t, src, sharedCache, &log))
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	if res.Buildpack != "golang" {
		t.Errorf("Buildpack = %q, want golang", res.Buildpack)
	}
	if err := validate.Image(res.Image); err != nil {
		t.Errorf("image does not validate: %v", err)
	}
	cf, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || strings.Join(cf.Config.Entrypoint, " ") != "/app/hello" ||
		cf.Config.Labels[build.LabelBuildpack] != "golang" || cf.Config.Labels[build.LabelSourceDigest] != res.SourceDigest {
		t.Errorf("config: user %q entrypoint %v labels %v", cf.Config.User, cf.Config.Entrypoint, cf.Config.Labels)
	}
	if got := runBinary(t, binary(t, res.Image, "app/hello")); got != "hello from noops" {
		t.Errorf("the built binary prints %q", got)
	}
	if !strings.Contains(log.String(), "detect: golang on stack static") || !strings.Contains(log.String(), "go build") {
		t.Errorf("log = %q, want detection and the go build command", log.String())
	}
	if entries, _ := os.ReadDir(src); len(entries) != 2 {
		t.Errorf("the build wrote into the source folder: %v", entries)
	}
}

func TestBuildCmdMainWithBuildEnv(t *testing.T) {
	t.Parallel()
	src := module(t, map[string]string{
		"go.mod":             "module example.com/shop/v2 // the shop\n\ngo 1.22\n",
		"shop.go":            "package shop\n\nconst Name = \"shop\"\n",
		"cmd/server/main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/shop/v2\"\n)\n\nvar tag = \"plain\"\n\nfunc main() { fmt.Println(shop.Name, tag) }\n",
		"cmd/server/tag.go":  "//go:build noopsdemo\n\npackage main\n\nfunc init() { tag = \"tagged\" }\n",
		"cmd/README.md":      "not a package",
		"cmd/gen/gen.go":     "//go:build ignore\n\npackage main\n\nfunc main() {}\n",
	})
	var log bytes.Buffer
	req := request(t, src, sharedCache, &log)
	req.Env = map[string]string{"GOFLAGS": "-tags=noopsdemo", "CGO_ENABLED": "1"}
	res, err := build.Build(t.Context(), req)
	if err != nil {
		t.Fatalf("Build: %v\nlog:\n%s", err, log.String())
	}
	cf, _ := res.Image.ConfigFile()
	if strings.Join(cf.Config.Entrypoint, " ") != "/app/shop" {
		t.Errorf("entrypoint = %v, want /app/shop", cf.Config.Entrypoint)
	}
	if got := runBinary(t, binary(t, res.Image, "app/shop")); got != "shop tagged" {
		t.Errorf("the built binary prints %q, want build.env's GOFLAGS applied", got)
	}
	if !strings.Contains(log.String(), "CGO_ENABLED=1: ignored") {
		t.Errorf("log does not say that CGO_ENABLED=1 was ignored:\n%s", log.String())
	}
}

// files lists the regular files under dir.
func files(t *testing.T, dir string) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			got[p] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestBuildIsIncremental is not parallel: it runs before the parallel
// tests, so that no other build adds to the shared cache while it watches
// it, and it warms that cache for them.
func TestBuildIsIncremental(t *testing.T) {
	cache := sharedCache
	src := module(t, map[string]string{"go.mod": "module example.com/hello\n\ngo 1.22\n", "main.go": helloMain})
	first, err := build.Build(t.Context(), request(t, src, cache, io.Discard))
	if err != nil {
		t.Fatalf("first build: %v", err)
	}
	gocache := filepath.Join(cache, "go-build")
	before := files(t, gocache)
	if len(before) < 10 {
		t.Fatalf("GOCACHE %s holds %d files after a build, want the compiled packages", gocache, len(before))
	}
	second, err := build.Build(t.Context(), request(t, module(t, map[string]string{"go.mod": "module example.com/hello\n\ngo 1.22\n", "main.go": helloMain}), cache, io.Discard))
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	after := files(t, gocache)
	for p := range after {
		if !before[p] && filepath.Base(p) != "trim.txt" {
			t.Errorf("the second build of unchanged source compiled %s again", p)
		}
	}
	d1, _ := first.Image.Digest()
	d2, _ := second.Image.Digest()
	if d1 != d2 {
		t.Errorf("two builds of the same source gave images %s and %s, want the same", d1, d2)
	}
}

func TestBuildCompileError(t *testing.T) {
	t.Parallel()
	src := module(t, map[string]string{"go.mod": "module example.com/broken\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() { undefinedThing() }\n"})
	var log bytes.Buffer
	_, err := build.Build(t.Context(), request(t, src, sharedCache, &log))
	if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "undefined: undefinedThing") {
		t.Fatalf("Build of broken code = %v, want Invalid with the compiler's message", err)
	}
	if !strings.Contains(log.String(), "undefined: undefinedThing") {
		t.Errorf("the compiler's output did not reach the log:\n%s", log.String())
	}
}

func TestBuildCancelled(t *testing.T) {
	t.Parallel()
	cache := t.TempDir() // cold: compiling the standard library takes seconds
	src := module(t, map[string]string{"go.mod": "module example.com/hello\n\ngo 1.22\n",
		"main.go": "package main\n\nimport \"net/http\"\n\nfunc main() { http.ListenAndServe(\":8080\", nil) }\n"})
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	_, err := build.Build(ctx, request(t, src, cache, io.Discard))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Build with an expiring context = %v, want context.DeadlineExceeded", err)
	}
	if left, _ := filepath.Glob(filepath.Join(cache, ".build-*")); len(left) != 0 {
		t.Errorf("a cancelled build left %v", left)
	}
}

func TestToolchainMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	b := &Buildpack{fallback: filepath.Join(t.TempDir(), "go")}
	_, err := b.toolchain()
	if !errkind.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), "Go toolchain not found") || errkind.HintOf(err) == "" {
		t.Errorf("toolchain() = %v, want Unavailable with a hint", err)
	}
	if got, err := (&Buildpack{}).toolchain(); err != nil || got != "/usr/local/go/bin/go" {
		t.Errorf("toolchain() without go in PATH = %q, %v; want /usr/local/go/bin/go", got, err)
	}
}
