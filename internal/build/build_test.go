package build

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
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
	"noops/internal/sbom"
)

// scriptpack is a real, tiny buildpack: it recognises a file named marker,
// copies the source's "run" script into the app layer and, with deps set,
// makes a cached launch layer keyed by the marker file's contents.
type scriptpack struct {
	name, marker string
	stack        string
	deps         bool
	provides     []string
	requires     []string
	proc         string // process type it declares; "" means web
	built        *int   // counts how often the deps layer was really built
}

func (s scriptpack) Name() string    { return s.name }
func (s scriptpack) Expects() string { return s.marker + " (" + s.name + ")" }

func (s scriptpack) Detect(src string) (Detection, error) {
	_, err := os.Stat(filepath.Join(src, s.marker))
	return Detection{Pass: err == nil, Reason: s.marker, Stack: s.stack, Provides: s.provides, Requires: s.requires}, nil
}

func (s scriptpack) Build(ctx context.Context, bc *Context) error {
	if s.deps {
		lock, err := os.ReadFile(filepath.Join(bc.Src, s.marker))
		if err != nil {
			return err
		}
		l, err := bc.Layer("deps", LayerSpec{Launch: true, Cache: true, Build: true, Target: "/app/deps",
			Metadata: map[string]string{"lock": string(lock)}})
		if err != nil {
			return err
		}
		if !l.Reused {
			if s.built != nil {
				*s.built++
			}
			if err := os.WriteFile(filepath.Join(l.Path, "dep.txt"), lock, 0o644); err != nil {
				return err
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(bc.Src, "run"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bc.App, "run"), b, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bc.App, "data.txt"), []byte("data"), 0o600); err != nil {
		return err
	}
	io.WriteString(bc.Log, "copied run\n")
	typ := s.proc
	if typ == "" {
		typ = "web"
	}
	bc.SetProcess(typ, Process{Command: []string{"/app/run", "--serve"}, Env: map[string]string{"MODE": "prod"}})
	return nil
}

// testStacks is a real Stacks: every stack's run image is the host-file
// base layer with a PATH and a stack label, and no stack has a build image.
type testStacks struct{}

var runImage = sync.OnceValues(func() (v1.Image, error) {
	base, err := image.BaseLayer(image.BaseOptions{})
	if err != nil {
		return nil, err
	}
	return image.Assemble(v1.Config{Env: []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"},
		Labels: map[string]string{"dev.noops.stack.kind": "run"}}, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), base)
})

func (testStacks) RunImage(_ context.Context, name string) (RunImage, error) {
	img, err := runImage()
	return RunImage{Stack: name, Image: img, OS: sbom.OS{ID: "debian", VersionID: "12", Arch: "amd64"},
		Packages: []sbom.Component{{Kind: "os", Ecosystem: "deb", Name: "tzdata", Version: "2025a"}}}, err
}

func (testStacks) BuildLayers(context.Context, string) ([]string, error) {
	return nil, errkind.Errorf(errkind.NotFound, "no build image in tests")
}

// reg registers bps in a registry of their own and returns a request that
// detects them as the order says (default: each alone, in the given order).
func reg(bps ...Buildpack) *registry {
	r := &registry{}
	for _, bp := range bps {
		r.add(bp)
	}
	return r
}

func alone(names ...string) []Group {
	var order []Group
	for _, n := range names {
		order = append(order, Group{{Buildpack: n}})
	}
	return order
}

func request(t *testing.T, src string, order []Group) Request {
	t.Helper()
	return Request{App: "hello", Src: src, Cache: t.TempDir(), Port: 8080, Stacks: testStacks{}, Order: order,
		Now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func source(t *testing.T, files map[string]string) string {
	t.Helper()
	src := t.TempDir()
	if files == nil {
		files = map[string]string{"Scriptfile": "v1", "run": "#!/bin/sh\necho hi\n"}
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func TestBuildExportsImage(t *testing.T) {
	t.Parallel()
	src := source(t, nil)
	req := request(t, src, alone("script"))
	var log bytes.Buffer
	var stages []string
	req.Log, req.Stage = &log, func(s string) { stages = append(stages, s) }
	res, err := buildWith(t.Context(), req, reg(scriptpack{name: "script", marker: "Scriptfile", stack: "node", deps: true}))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	if res.Buildpack != "script" || res.Stack != "node" {
		t.Errorf("Buildpack, Stack = %q, %q; want script, node", res.Buildpack, res.Stack)
	}
	if got := strings.Join(stages, ","); got != "detect,restore,build,export" {
		t.Errorf("stages = %s, want detect,restore,build,export", got)
	}
	if want, _ := SourceDigest(src); res.SourceDigest != want {
		t.Errorf("SourceDigest = %q, want %q", res.SourceDigest, want)
	}
	if err := validate.Image(res.Image); err != nil {
		t.Errorf("image does not validate: %v", err)
	}
	for _, want := range []string{"script: Scriptfile", "copied run", "detect: script on stack node", "export: 2 layers"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log = %q, want it to contain %q", log.String(), want)
		}
	}
	cf, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	run, _ := runImage()
	runDigest, _ := run.Digest()
	c := cf.Config
	for _, tc := range []struct{ name, got, want string }{
		{"user", c.User, "65532:65532"},
		{"entrypoint", strings.Join(c.Entrypoint, " "), "/app/run --serve"},
		{"working dir", c.WorkingDir, "/app"},
		{"env", strings.Join(c.Env, " "), "PATH=/app:/usr/bin:/bin LANG=C.UTF-8 MODE=prod PORT=8080"},
		{"app label", c.Labels[LabelApp], "hello"},
		{"buildpack label", c.Labels[LabelBuildpack], "script"},
		{"source label", c.Labels[LabelSourceDigest], res.SourceDigest},
		{"time label", c.Labels[LabelBuildTime], "2026-01-02T03:04:05Z"},
		{"stack label", c.Labels[LabelStack], "node"},
		{"base layers label", c.Labels[LabelBaseLayers], "1"},
		{"base image label", c.Labels[LabelBaseImage], runDigest.String()},
		{"run image label kept", c.Labels["dev.noops.stack.kind"], "run"},
		{"processes label", c.Labels[LabelProcesses], `{"web":{"Command":["/app/run","--serve"],"WorkingDir":"","Env":{"MODE":"prod"}}}`},
		{"created", cf.Created.UTC().Format(time.RFC3339), "2026-01-02T03:04:05Z"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	layers, _ := res.Image.Layers()
	if len(layers) != 3 {
		t.Fatalf("image has %d layers, want run image + deps + app", len(layers))
	}
	runLayers, _ := run.Layers()
	if got, _ := layers[0].Digest(); true {
		if want, _ := runLayers[0].Digest(); got != want {
			t.Errorf("bottom layer %s, want the run image's %s", got, want)
		}
	}
	if modes := layerModes(t, layers[1]); modes["app/deps/dep.txt"] != 0o644 {
		t.Errorf("deps layer = %v, want app/deps/dep.txt", modes)
	}
	modes := layerModes(t, layers[2])
	for name, want := range map[string]int64{"app": 0o755, "app/run": 0o755, "app/data.txt": 0o644} {
		if got, ok := modes[name]; !ok || got != want {
			t.Errorf("app layer %s: mode %o (present %v), want %o owned by root", name, got, ok, want)
		}
	}
	if res.Inventory.App != "hello" || res.Inventory.Stack != "node" || len(res.Inventory.Components) != 1 {
		t.Errorf("inventory = %+v, want the run image's package for app hello on node", res.Inventory)
	}
	if err := res.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(req.Cache, ".build-*")); len(left) != 0 {
		t.Errorf("build left %v in the cache after Close", left)
	}
}

// layerModes returns the modes of a layer's entries, failing on any not owned by root.
func layerModes(t *testing.T, l v1.Layer) map[string]int64 {
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
			t.Errorf("layer entry %s owned by %d:%d, want root", h.Name, h.Uid, h.Gid)
		}
		modes[strings.TrimSuffix(h.Name, "/")] = h.Mode
	}
}

func TestBuildReusesUnchangedLayers(t *testing.T) {
	t.Parallel()
	built := 0
	r := reg(scriptpack{name: "script", marker: "Scriptfile", deps: true, built: &built})
	src := source(t, nil)
	req := request(t, src, alone("script"))
	layerDigest := func(res Result) v1.Hash {
		ls, _ := res.Image.Layers()
		d, _ := ls[1].Digest()
		return d
	}
	first, err := buildWith(t.Context(), req, r)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	req.Log = &log
	second, err := buildWith(t.Context(), req, r)
	if err != nil {
		t.Fatal(err)
	}
	if built != 1 || layerDigest(first) != layerDigest(second) || !strings.Contains(log.String(), "reused layer script/deps") {
		t.Errorf("unchanged rebuild: deps built %d times, digests %s and %s, log %q; want built once, the same digest, reuse logged",
			built, layerDigest(first), layerDigest(second), log.String())
	}
	if err := os.WriteFile(filepath.Join(src, "Scriptfile"), []byte("v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := buildWith(t.Context(), req, r)
	if err != nil {
		t.Fatal(err)
	}
	if built != 2 || layerDigest(third) == layerDigest(first) {
		t.Errorf("after the lock changed: deps built %d times, digest %s (was %s); want rebuilt", built, layerDigest(third), layerDigest(first))
	}
}

// failing fails its build after filling its cached layer.
type failing struct{ scriptpack }

func (f failing) Build(ctx context.Context, bc *Context) error {
	l, err := bc.Layer("deps", LayerSpec{Cache: true, Metadata: map[string]string{"v": "1"}})
	if err != nil {
		return err
	}
	if l.Reused {
		return errors.New("a layer of a failed build was reused")
	}
	os.WriteFile(filepath.Join(l.Path, "half"), []byte("x"), 0o644)
	return errkind.Errorf(errkind.Invalid, "npm ci failed")
}

func TestFailedBuildLeavesNoReusableLayer(t *testing.T) {
	t.Parallel()
	r := reg(failing{scriptpack{name: "script", marker: "Scriptfile"}})
	req := request(t, source(t, nil), alone("script"))
	for i := 0; i < 2; i++ {
		_, err := buildWith(t.Context(), req, r)
		if err == nil || !strings.Contains(err.Error(), "npm ci failed") {
			t.Fatalf("build %d = %v, want the buildpack's failure (not a reuse)", i+1, err)
		}
	}
}

func TestGroups(t *testing.T) {
	t.Parallel()
	lang := scriptpack{name: "lang", marker: "Langfile", stack: "node", provides: []string{"node"}}
	procs := scriptpack{name: "procs", marker: "Procfile", requires: []string{"node"}, proc: "worker"}
	orphan := scriptpack{name: "orphan", marker: "Procfile", requires: []string{"python"}}
	other := scriptpack{name: "other", marker: "Otherfile", stack: "python"}
	order := []Group{
		{{Buildpack: "lang"}, {Buildpack: "orphan", Optional: true}, {Buildpack: "procs", Optional: true}},
		{{Buildpack: "other"}},
		{{Buildpack: "unregistered"}},
	}
	r := reg(lang, procs, orphan, other)
	tests := []struct {
		name, want, stack string
		files             []string
	}{
		{"optional member joins when it detects", "lang+procs", "node", []string{"Langfile", "Procfile"}},
		{"optional member left out", "lang", "node", []string{"Langfile"}},
		{"second group", "other", "python", []string{"Otherfile", "Procfile"}},
		{"first group wins", "lang", "node", []string{"Langfile", "Otherfile"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{"run": "x"}
			for _, f := range tc.files {
				files[f] = "x"
			}
			res, err := buildWith(t.Context(), request(t, source(t, files), order), r)
			if err != nil {
				t.Fatal(err)
			}
			if res.Buildpack != tc.want || res.Stack != tc.stack {
				t.Errorf("built by %s on %s, want %s on %s", res.Buildpack, res.Stack, tc.want, tc.stack)
			}
			if tc.want == "lang+procs" {
				cf, _ := res.Image.ConfigFile()
				var procs map[string]Process
				if err := json.Unmarshal([]byte(cf.Config.Labels[LabelProcesses]), &procs); err != nil || len(procs) != 2 {
					t.Errorf("processes = %v (%v), want web from lang and worker from procs", procs, err)
				}
			}
		})
	}
}

func TestBuildRecognisesNothing(t *testing.T) {
	t.Parallel()
	r := reg(scriptpack{name: "golang", marker: "go.mod"}, scriptpack{name: "node", marker: "package.json"}, scriptpack{name: "static", marker: "index.html"})
	_, err := buildWith(t.Context(), request(t, source(t, map[string]string{"notes.txt": "x"}), alone("golang", "node", "static")), r)
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
	r := reg(scriptpack{name: "script", marker: "Scriptfile"})
	for _, tc := range []struct {
		name   string
		change func(*Request)
	}{
		{"no port", func(r *Request) { r.Port = 0 }},
		{"no stacks", func(r *Request) { r.Stacks = nil }},
		{"no source", func(r *Request) { r.Src = filepath.Join(r.Cache, "missing") }},
		{"no cache", func(r *Request) { r.Cache = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request(t, source(t, nil), alone("script"))
			tc.change(&req)
			if _, err := buildWith(t.Context(), req, r); err == nil {
				t.Error("build succeeded")
			}
		})
	}
}

// declares is a buildpack that declares exactly the given processes.
type declares struct {
	scriptpack
	procs map[string]Process
}

func (d declares) Build(_ context.Context, bc *Context) error {
	for t, p := range d.procs {
		bc.SetProcess(t, p)
	}
	return nil
}

func TestBuildChecksProcesses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		procs map[string]Process
		want  string
	}{
		{"none", nil, "found nothing to run"},
		{"unknown type", map[string]Process{"web": {Command: []string{"a"}}, "clock": {Command: []string{"b"}}}, `process type "clock"`},
		{"empty command", map[string]Process{"web": {}}, "has no command"},
		{"relative path", map[string]Process{"web": {Command: []string{"bin/app"}}}, "must be a name on PATH or an absolute path"},
		{"only release", map[string]Process{"release": {Command: []string{"migrate"}}}, "neither a web nor a worker"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := reg(declares{scriptpack{name: "d", marker: "Scriptfile"}, tc.procs})
			_, err := buildWith(t.Context(), request(t, source(t, nil), alone("d")), r)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("build = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	r := reg(declares{scriptpack{name: "d", marker: "Scriptfile"}, map[string]Process{"worker": {Command: []string{"node", "w.js"}}}})
	res, err := buildWith(t.Context(), request(t, source(t, nil), alone("d")), r)
	if err != nil {
		t.Fatalf("a worker-only app: %v", err)
	}
	cf, _ := res.Image.ConfigFile()
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "node w.js" {
		t.Errorf("worker-only entrypoint = %q, want the worker's command", got)
	}
}

func TestLayerNamesAndTargets(t *testing.T) {
	t.Parallel()
	bc := &Context{bp: "x", layers: &layerSet{cache: t.TempDir(), work: t.TempDir()}}
	for _, tc := range []struct {
		name  string
		layer string
		spec  LayerSpec
	}{
		{"bad name", "../up", LayerSpec{}},
		{"relative target", "a", LayerSpec{Launch: true, Target: "app/x"}},
		{"root target", "b", LayerSpec{Launch: true, Target: "/"}},
		{"unclean target", "c", LayerSpec{Launch: true, Target: "/app/../etc"}},
	} {
		if _, err := bc.Layer(tc.layer, tc.spec); err == nil {
			t.Errorf("%s: Layer(%q, %+v) succeeded", tc.name, tc.layer, tc.spec)
		}
	}
	if _, err := bc.Layer("ok", LayerSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Layer("ok", LayerSpec{}); err == nil {
		t.Error("asking for one layer twice succeeded")
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	t.Parallel()
	r := reg(scriptpack{name: "golang", marker: "go.mod"})
	defer func() {
		if recover() == nil {
			t.Error("registering golang twice did not panic")
		}
	}()
	r.add(scriptpack{name: "golang", marker: "other"})
}
