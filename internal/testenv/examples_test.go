package testenv

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	spdxjson "github.com/spdx/tools-golang/json"

	"noops/internal/build"
	"noops/internal/image"
	"noops/internal/stack"
)

// copyExample copies examples/NAME into a folder the test may change.
func copyExample(t *testing.T, name string) string {
	t.Helper()
	dst := t.TempDir()
	if _, err := copyTreeTo(Example(t, name), dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func copyTreeTo(src, dst string) (int, error) {
	n := 0
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		n++
		return os.WriteFile(target, b, 0o644)
	})
	return n, err
}

// imageOf returns the image of an app's release.
func imageOf(t *testing.T, e *Env, app string, number int) v1.Image {
	t.Helper()
	rel, err := e.Client.Releases(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rel {
		if r.Number == number {
			d, err := v1.NewHash(r.Image)
			if err != nil {
				t.Fatal(err)
			}
			img, err := e.App.Images().Get(d)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("%s has no release %d", app, number)
	return nil
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]v1.Hash, len(ls))
	for i, l := range ls {
		if out[i], err = l.Digest(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func baseLayers(t *testing.T, img v1.Image) int {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(cf.Config.Labels[build.LabelBaseLayers])
	if err != nil {
		t.Fatalf("image has no %s label: %v", build.LabelBaseLayers, cf.Config.Labels)
	}
	return n
}

// TestExamples deploys the Node.js, Python and static examples on their
// stacks (built from Debian packages), checks each serves over HTTPS, that
// an unchanged dependency layer is reused, the SBOMs, and a rebase.
func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds stacks from the Debian archive")
	}
	e := Start(t, Options{StartTimeout: 30 * time.Second})
	ctx := context.Background()

	for _, tc := range []struct{ app, dir, want string }{
		{"hello-static", "hello-static", "Hello from a static site on noops"},
		{"hello-node", "hello-node", "Hello from Node.js on noops"},
		{"hello-python", "hello-python", "Hello from Python on noops"},
	} {
		t.Run("deploys "+tc.app, func(t *testing.T) {
			n := deployOK(t, e, copyExample(t, tc.dir), tc.app)
			code, body := e.Get(t, tc.app, "/")
			if code != 200 || !strings.Contains(body, tc.want) {
				t.Fatalf("GET %s/ = %d %q, want 200 with %q", tc.app, code, body, tc.want)
			}
			if tc.app != "hello-static" && !strings.Contains(body, "Release <b>"+strconv.Itoa(n)+"</b>") {
				t.Errorf("GET %s/ = %q, want release %d", tc.app, body, n)
			}
		})
	}

	t.Run("a site with a build script is built with npm and served statically", func(t *testing.T) {
		dir := t.TempDir()
		files := map[string]string{
			"noops.yaml":        "access: { policy: public }\n",
			"package.json":      `{"name":"site","version":"1.0.0","private":true,"scripts":{"build":"node build.js"}}`,
			"package-lock.json": `{"name":"site","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"site","version":"1.0.0"}}}`,
			"build.js": `const fs = require('fs'); fs.mkdirSync('dist', {recursive: true});
fs.writeFileSync('dist/index.html', '<h1>built by npm run build on ' + process.version + '</h1>');`,
		}
		for n, b := range files {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, log, err := e.Deploy(t, dir, "site")
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, strings.Join(log, "\n"))
		}
		if code, body := e.Get(t, "site", "/"); code != 200 || !strings.Contains(body, "built by npm run build on v18") {
			t.Errorf("GET site/ = %d %q, want the page the build script wrote (with Debian's node 18)", code, body)
		}
		cf, _ := imageOf(t, e, "site", 1).ConfigFile()
		if cf.Config.Labels[build.LabelStack] != "static" {
			t.Errorf("the site runs on stack %q, want static (no node in its image)", cf.Config.Labels[build.LabelStack])
		}
	})

	t.Run("static site 404 page", func(t *testing.T) {
		if code, body := e.Get(t, "hello-static", "/no/such/page"); code != 404 || !strings.Contains(body, "not part of the site") {
			t.Errorf("GET missing page = %d %q, want the site's 404 page", code, body)
		}
	})

	t.Run("unchanged node dependencies reuse their layer", func(t *testing.T) {
		dir := copyExample(t, "hello-node")
		edit(t, dir, "server.js", "Hello from Node.js on noops", "Hello again from Node.js on noops")
		_, log, err := e.Deploy(t, dir, "hello-node")
		if err != nil {
			t.Fatalf("redeploy: %v\n%s", err, strings.Join(log, "\n"))
		}
		a, _ := e.Client.App(ctx, "hello-node")
		before, after := imageOf(t, e, "hello-node", a.Release-1), imageOf(t, e, "hello-node", a.Release)
		b, db, da := baseLayers(t, after), layerDigests(t, before), layerDigests(t, after)
		if len(db) != len(da) || len(da) != b+2 {
			t.Fatalf("layers before %d, after %d, want run image (%d) + node_modules + app", len(db), len(da), b)
		}
		if db[b] != da[b] {
			t.Errorf("node_modules layer %s became %s though package-lock.json did not change", db[b], da[b])
		}
		if db[b+1] == da[b+1] {
			t.Error("the app layer did not change though server.js did")
		}
		if !strings.Contains(strings.Join(log, "\n"), "lockfile unchanged, reusing") {
			t.Errorf("deploy log does not say the dependency layer was reused:\n%s", strings.Join(log, "\n"))
		}
		if _, body := e.Get(t, "hello-node", "/"); !strings.Contains(body, "Hello again") {
			t.Errorf("after redeploy body = %q", body)
		}
	})

	t.Run("bad builds keep the live release serving", func(t *testing.T) {
		tests := []struct {
			name, app, example string
			change             func(dir string)
			want               string
		}{
			{"lockfile out of sync", "hello-node", "hello-node", func(d string) {
				edit(t, d, "package.json", `"ms": "2.1.3"`, `"ms": "2.1.3", "left-pad": "1.3.0"`)
			}, "npm ci"},
			{"start script needs a shell", "hello-node", "hello-node", func(d string) {
				edit(t, d, "package.json", `"start": "node server.js"`, `"start": "NODE_ENV=x node server.js && echo done"`)
			}, "needs npm and a shell"},
			{"pip install fails", "hello-python", "hello-python", func(d string) {
				os.WriteFile(filepath.Join(d, "requirements.txt"), []byte("no-such-package-noops-test==0.0.1\n"), 0o644)
			}, "pip install"},
			{"Procfile with shell syntax", "hello-python", "hello-python", func(d string) {
				os.WriteFile(filepath.Join(d, "Procfile"), []byte("web: gunicorn app:app | tee log\n"), 0o644)
			}, "Procfile line 1"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before, _ := e.Client.App(ctx, tc.app)
				dir := copyExample(t, tc.example)
				tc.change(dir)
				_, log, err := e.Deploy(t, dir, tc.app)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("deploy = %v, want an error containing %q\n%s", err, tc.want, strings.Join(log, "\n"))
				}
				after, _ := e.Client.App(ctx, tc.app)
				if after.Release != before.Release {
					t.Errorf("live release %d -> %d after a failed build", before.Release, after.Release)
				}
				if code, _ := e.Get(t, tc.app, "/"); code != 200 {
					t.Errorf("%s answers %d after a failed build, want 200", tc.app, code)
				}
			})
		}
	})

	t.Run("SBOMs list OS packages and app dependencies", func(t *testing.T) {
		b, err := e.Client.SBOM(ctx, "hello-node", 0, "cyclonedx")
		if err != nil {
			t.Fatal(err)
		}
		var bom cdx.BOM
		if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
			t.Fatalf("CycloneDX SBOM does not decode: %v", err)
		}
		purls := map[string]bool{}
		for _, c := range *bom.Components {
			purls[strings.SplitN(c.PackageURL, "@", 2)[0]] = true
		}
		for _, want := range []string{"pkg:npm/ms", "pkg:deb/debian/nodejs", "pkg:deb/debian/tzdata", "pkg:deb/debian/libc6"} {
			if !purls[want] {
				t.Errorf("CycloneDX SBOM of hello-node lacks %s", want)
			}
		}
		b, err = e.Client.SBOM(ctx, "hello-python", 0, "spdx")
		if err != nil {
			t.Fatal(err)
		}
		doc, err := spdxjson.Read(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("SPDX SBOM does not decode: %v", err)
		}
		names := map[string]bool{}
		for _, p := range doc.Packages {
			names[p.PackageName] = true
		}
		for _, want := range []string{"hello-python", "python3.11", "python3-gunicorn", "ca-certificates"} {
			if !names[want] {
				t.Errorf("SPDX SBOM of hello-python lacks package %s", want)
			}
		}
	})

	t.Run("rebase swaps the run image and keeps the app layers", func(t *testing.T) {
		a, _ := e.Client.App(ctx, "hello-static")
		old := imageOf(t, e, "hello-static", a.Release)
		patchRunImage(t, e, "static")
		ev, err := e.Client.Rebase(ctx, "hello-static", false, nil)
		if err != nil {
			t.Fatalf("rebase: %v", err)
		}
		if ev.Rebase == nil || ev.Rebase.Unchanged || ev.Rebase.Release.Number <= a.Release {
			t.Fatalf("rebase = %+v, want a new release", ev.Rebase)
		}
		rebased := imageOf(t, e, "hello-static", ev.Rebase.Release.Number)
		ob, nb := baseLayers(t, old), baseLayers(t, rebased)
		od, nd := layerDigests(t, old), layerDigests(t, rebased)
		if nb != ob+1 {
			t.Fatalf("rebased image has %d run image layers, want %d (the patched run image)", nb, ob+1)
		}
		for i := range od[ob:] {
			if od[ob+i] != nd[nb+i] {
				t.Errorf("app layer %d changed in the rebase: %s -> %s", i, od[ob+i], nd[nb+i])
			}
		}
		if code, body := e.Get(t, "hello-static", "/"); code != 200 || !strings.Contains(body, "static site") {
			t.Errorf("rebased app answers %d %q", code, body)
		}
		sbs, _ := e.Client.Ps(ctx, "hello-static")
		for _, s := range sbs {
			if s.Release == ev.Rebase.Release.Number && s.Pid > 0 {
				if b, err := os.ReadFile("/proc/" + strconv.Itoa(s.Pid) + "/root/etc/noops-patch"); err != nil || string(b) != "patched\n" {
					t.Errorf("the rebased sandbox does not see the patched run image: %q, %v", b, err)
				}
			}
		}
		again, err := e.Client.Rebase(ctx, "hello-static", false, nil)
		if err != nil || again.Rebase == nil || !again.Rebase.Unchanged {
			t.Errorf("second rebase = %+v, %v; want nothing to do", again.Rebase, err)
		}
	})

	t.Run("rebase onto another architecture is refused", func(t *testing.T) {
		a, _ := e.Client.App(ctx, "hello-static")
		replaceRunImage(t, e, "static", func(img v1.Image) v1.Image {
			cf, _ := img.ConfigFile()
			cf = cf.DeepCopy()
			cf.Architecture = "riscv64"
			out, err := mutate.ConfigFile(img, cf)
			if err != nil {
				t.Fatal(err)
			}
			return out
		})
		_, err := e.Client.Rebase(ctx, "hello-static", true, nil)
		if err == nil || !strings.Contains(err.Error(), "cannot change the OS or architecture") {
			t.Fatalf("rebase onto riscv64 = %v, want a refusal", err)
		}
		if after, _ := e.Client.App(ctx, "hello-static"); after.Release != a.Release {
			t.Errorf("a refused rebase changed the live release %d -> %d", a.Release, after.Release)
		}
	})
}

// patchRunImage stands in for a stack update that changed the run image:
// the stack's run image gets one more layer (/etc/noops-patch).
func patchRunImage(t testing.TB, e *Env, name string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "noops-patch"), []byte("patched\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	patch, err := image.LayerFromDir(dir, "etc")
	if err != nil {
		t.Fatal(err)
	}
	replaceRunImage(t, e, name, func(img v1.Image) v1.Image {
		out, err := mutate.AppendLayers(img, patch)
		if err != nil {
			t.Fatal(err)
		}
		return out
	})
}

// replaceRunImage stores change(run image) under the ref of the stack's
// current lock, so that RunImage returns it as it would after an update.
func replaceRunImage(t testing.TB, e *Env, name string, change func(v1.Image) v1.Image) {
	t.Helper()
	ctx := context.Background()
	m := e.App.Stacks()
	img, lock, err := m.RunImage(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	patched := change(img)
	ld, err := lock.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref := "noops.stack/" + name + "/" + stack.KindRun + ":" + strings.Replace(ld, ":", "-", 1)
	if _, err := e.App.Images().Put(patched, ref); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := m.RunImage(ctx, name); got != nil {
		gd, _ := got.Digest()
		pd, _ := patched.Digest()
		if gd != pd {
			t.Fatalf("the stack still returns %s, not the patched %s: the stand-in for an update no longer works", gd, pd)
		}
	}
}
