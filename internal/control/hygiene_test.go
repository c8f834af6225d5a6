package control

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"noops/internal/errkind"
	"noops/internal/image"
	"noops/internal/store"
	"noops/internal/store/sqlite"
	"noops/internal/testenv/need"
)

// world is real state for Hygiene: the SQLite store and the image store
// in a data folder, and a plane without runtime, stacks or builder.
type world struct {
	t      *testing.T
	data   string
	st     *sqlite.DB
	images *image.Store
	plane  *Plane
	layers map[string]v1.Layer
}

func newWorld(t *testing.T, now func() time.Time) *world {
	t.Helper()
	data := t.TempDir()
	st, err := sqlite.Open(filepath.Join(data, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	images, err := image.Open(filepath.Join(data, "images"))
	if err != nil {
		t.Fatal(err)
	}
	p := New(Config{Data: data, Domain: "localhost", Now: now}, st, images, nil, nil, nil)
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return &world{t: t, data: data, st: st, images: images, plane: p, layers: map[string]v1.Layer{}}
}

// layer returns the layer called name, one file that says its name.
func (w *world) layer(name string) v1.Layer {
	w.t.Helper()
	if l, ok := w.layers[name]; ok {
		return l
	}
	dir := w.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("layer "+name), 0o644); err != nil {
		w.t.Fatal(err)
	}
	l, err := image.LayerFromDir(dir, "app")
	if err != nil {
		w.t.Fatal(err)
	}
	w.layers[name] = l
	return l
}

// put stores an image of the named layers under ref, with an SBOM file
// beside it as a build keeps one.
func (w *world) put(ref string, layers ...string) v1.Hash {
	w.t.Helper()
	ls := make([]v1.Layer, len(layers))
	for i, n := range layers {
		ls[i] = w.layer(n)
	}
	img, err := image.Assemble(v1.Config{User: image.NonRootUser, Labels: map[string]string{"ref": ref}}, time.Unix(0, 0), ls...)
	if err != nil {
		w.t.Fatal(err)
	}
	d, err := w.images.Put(img, ref)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.plane.writeSBOM(d, []byte(`{"image":"`+d.String()+`"}`)); err != nil {
		w.t.Fatal(err)
	}
	return d
}

func (w *world) app(name string) {
	w.t.Helper()
	if _, err := w.st.CreateApp(w.t.Context(), store.App{Name: name, Replicas: 1}); err != nil {
		w.t.Fatal(err)
	}
}

// release records a release of app with image d, promotes it unless
// status says otherwise, and returns its number.
func (w *world) release(app string, d v1.Hash, status store.Status) int {
	w.t.Helper()
	ctx := w.t.Context()
	r, err := w.st.CreateRelease(ctx, store.Release{App: app, Image: d.String(), Config: json.RawMessage(`{"port":8080}`), Reason: "deploy"})
	if err != nil {
		w.t.Fatal(err)
	}
	switch status {
	case store.StatusLive:
		_, err = w.st.Promote(ctx, app, r.Number, 1, "deploy")
	case store.StatusPending:
	default:
		err = w.st.SetReleaseStatus(ctx, app, r.Number, status, "")
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return r.Number
}

func (w *world) sandbox(app string, release int, state string) {
	w.t.Helper()
	id := fmt.Sprintf("%s-%d-%s", app, release, state)
	if err := w.st.PutSandbox(w.t.Context(), store.Sandbox{ID: id, App: app, Release: release, State: state}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) unpack(d v1.Hash) []string {
	w.t.Helper()
	dirs, err := w.images.Unpack(w.t.Context(), d)
	if err != nil {
		w.t.Fatalf("Unpack(%s): %v", d, err)
	}
	return dirs
}

func (w *world) releaseNumbers(app string) []int {
	w.t.Helper()
	rels, err := w.st.ListReleases(w.t.Context(), app)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []int
	for _, r := range rels {
		out = append(out, r.Number)
	}
	return out
}

// checkWhole checks that image d is in the store, every blob it names is
// there with its digest, and its SBOM is kept.
func (w *world) checkWhole(what string, d v1.Hash) {
	w.t.Helper()
	img, err := w.images.Get(d)
	if err != nil {
		w.t.Errorf("%s: image %s: %v", what, d, err)
		return
	}
	if err := validate.Image(img); err != nil {
		w.t.Errorf("%s: image %s does not validate: %v", what, d, err)
	}
	if _, err := os.Stat(w.plane.sbomPath(d)); err != nil {
		w.t.Errorf("%s: the SBOM of image %s: %v", what, d, err)
	}
}

func (w *world) checkGone(what string, d v1.Hash) {
	w.t.Helper()
	if _, err := w.images.Get(d); !errkind.Is(err, errkind.NotFound) {
		w.t.Errorf("%s: Get(%s) = %v, want NotFound", what, d, err)
	}
	if _, err := os.Stat(w.plane.sbomPath(d)); !os.IsNotExist(err) {
		w.t.Errorf("%s: the SBOM of image %s is still there (%v)", what, d, err)
	}
}

func (w *world) checkDirs(what string, dirs []string) {
	w.t.Helper()
	for _, dir := range dirs {
		if _, err := os.Stat(dir); err != nil {
			w.t.Errorf("%s: unpacked layer %s: %v", what, filepath.Base(dir), err)
		}
	}
}

// afterGrace is a clock past the grace period of everything written now.
func afterGrace() time.Time { return time.Now().Add(image.DefaultGrace + time.Minute) }

// TestHygieneNeverRemovesWhatAKeptReleaseUses is the image store's promise:
// GC never removes a blob referenced by a kept release. web has twelve
// releases sharing layers; the live one is the oldest (rolled back to).
func TestHygieneNeverRemovesWhatAKeptReleaseUses(t *testing.T) {
	t.Parallel()
	need.Root(t) // unpacking sets owners
	w := newWorld(t, afterGrace)
	ctx := t.Context()
	w.app("web")

	// Each release's image: a run image layer all share, one of two
	// dependency layers, and its own app layer. Releases 4 and 9 are
	// "env set" releases that reuse the image before them; release 10 a
	// rebase.
	imgs := map[int]v1.Hash{}
	for n := 1; n <= 12; n++ {
		deps := "deps-1"
		if n > 6 {
			deps = "deps-2"
		}
		switch n {
		case 4, 9:
			imgs[n] = imgs[n-1]
		case 10:
			imgs[n] = w.put("noops.rebase/web:0123456789abcdef", "run-2", deps, "app-8")
		default:
			imgs[n] = w.put(fmt.Sprintf("noops.build/web:key%02d", n), "run-1", deps, fmt.Sprintf("app-%d", n))
		}
		status := store.StatusLive
		if n == 11 {
			status = store.StatusFailed
		}
		if got := w.release("web", imgs[n], status); got != n {
			t.Fatalf("release number %d, want %d", got, n)
		}
	}
	// Roll back to release 1: live, and older than the ten newest.
	if _, err := w.st.Promote(ctx, "web", 1, 2, "rollback from 12"); err != nil {
		t.Fatal(err)
	}
	w.sandbox("web", 1, "healthy")
	w.sandbox("web", 12, "stopping") // draining after the rollback
	liveDirs := w.unpack(imgs[1])
	drainingDirs := w.unpack(imgs[12])
	oldDirs := w.unpack(imgs[2]) // release 2 ran once

	// The stacks' images, current and older, and what a deleted app
	// left behind.
	runCurrent := w.put("noops.stack/static/run:current", "run-2")
	runOld := w.put("noops.stack/static/run:sha256-0ld", "run-1")
	goneImage := w.put("noops.build/gone:key01", "run-1", "deps-gone", "app-gone")
	goneDirs := w.unpack(goneImage)
	for _, app := range []string{"web", "gone"} {
		if err := os.MkdirAll(filepath.Join(w.data, "cache", app, "layers"), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	rep, err := w.plane.Hygiene(ctx)
	if err != nil {
		t.Fatalf("Hygiene: %v", err)
	}

	// Release 1 is live, so only release 2 is beyond the newest ten.
	if want := map[string][]int{"web": {2}}; !maps.EqualFunc(rep.Releases, want, slices.Equal) {
		t.Errorf("Hygiene deleted releases %v, want %v", rep.Releases, want)
	}
	if got, want := w.releaseNumbers("web"), []int{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 1}; !slices.Equal(got, want) {
		t.Errorf("releases of web after Hygiene = %v, want %v", got, want)
	}
	// The promise: every kept release's image is whole, with its SBOM.
	for _, n := range []int{1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12} {
		w.checkWhole(fmt.Sprintf("release %d", n), imgs[n])
	}
	w.checkDirs("the live release", liveDirs)
	w.checkDirs("the draining release", drainingDirs)
	w.checkWhole("the stack's current run image", runCurrent)
	w.checkWhole("the stack's older run image", runOld)
	// Release 2's image and the deleted app's went, with what only they
	// used, and their build references.
	w.checkGone("release 2's image", imgs[2])
	w.checkGone("the deleted app's image", goneImage)
	for i, dir := range oldDirs {
		shared := i < 2 // run-1 and deps-1, which release 1 has too
		if _, err := os.Stat(dir); (err == nil) != shared {
			t.Errorf("release 2's unpacked layer %d: exists = %v, want %v", i, err == nil, shared)
		}
	}
	if _, err := os.Stat(goneDirs[2]); !os.IsNotExist(err) {
		t.Errorf("the deleted app's own unpacked layer: %v, want it removed", err)
	}
	for ref, want := range map[string]bool{
		"noops.build/web:key01": true, "noops.build/web:key02": false, "noops.build/web:key12": true,
		"noops.rebase/web:0123456789abcdef": true, "noops.build/gone:key01": false,
		"noops.stack/static/run:current": true, "noops.stack/static/run:sha256-0ld": true,
	} {
		if _, found, err := w.images.Resolve(ref); err != nil || found != want {
			t.Errorf("Resolve(%s) after Hygiene = %v, %v; want found %v", ref, found, err, want)
		}
	}
	if rep.Images.Refs != 2 || len(rep.Images.Images) != 2 || rep.SBOMs != 2 || len(rep.Images.Missing) != 0 {
		t.Errorf("Hygiene image report = %+v, %d SBOMs; want 2 references, 2 images and their SBOMs removed", rep.Images, rep.SBOMs)
	}
	if !slices.Equal(rep.Caches.Removed, []string{"gone"}) {
		t.Errorf("Hygiene removed build caches %v, want the deleted app's", rep.Caches.Removed)
	}
	if _, err := os.Stat(filepath.Join(w.data, "cache", "web")); err != nil {
		t.Errorf("web's build cache: %v", err)
	}

	// A second run has nothing to do; numbers go on.
	again, err := w.plane.Hygiene(ctx)
	if err != nil {
		t.Fatalf("Hygiene again: %v", err)
	}
	if len(again.Releases) != 0 || again.Images.Refs != 0 || again.Images.Blobs != 0 || again.Images.Layers != 0 || len(again.Caches.Removed) != 0 {
		t.Errorf("second Hygiene = %+v, want nothing done", again)
	}
	if n := w.release("web", imgs[12], store.StatusFailed); n != 13 {
		t.Errorf("next release of web = %d, want 13", n)
	}
}

// TestHygieneReleaseRules deletes beyond the newest two, around what must
// stay: the live release, a pending one, one with sandboxes, and every
// release of an app that is busy.
func TestHygieneReleaseRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t, afterGrace)
	ctx := t.Context()
	w.app("web")
	w.app("busy")
	d := w.put("noops.build/web:k", "run-1", "app-web")
	for _, st := range []store.Status{store.StatusFailed, store.StatusLive, store.StatusSuperseded, store.StatusPending,
		store.StatusSuperseded, store.StatusSuperseded, store.StatusSuperseded} {
		w.release("web", d, st)
	}
	// 1 failed, 2 live (the oldest kept), 3 superseded with a sandbox
	// still recorded, 4 pending (left by a crash), 5 to 7 superseded.
	w.sandbox("web", 3, "stopping")
	busyImage := w.put("noops.build/busy:k1", "run-1", "app-busy-1")
	building := w.put("noops.build/busy:k2", "run-1", "app-busy-2") // built, release not recorded yet
	for range 4 {
		w.release("busy", busyImage, store.StatusSuperseded)
	}
	if err := os.MkdirAll(filepath.Join(w.data, "cache", "busy"), 0o755); err != nil {
		t.Fatal(err)
	}
	done, err := w.plane.claim("busy", "a deploy")
	if err != nil {
		t.Fatal(err)
	}

	rep, err := w.plane.HygieneWith(ctx, HygieneOptions{KeepReleases: 2, BuildCacheMax: 1})
	done()
	if err != nil {
		t.Fatalf("HygieneWith: %v", err)
	}
	if want := map[string][]int{"web": {5, 1}}; !maps.EqualFunc(rep.Releases, want, slices.Equal) {
		t.Errorf("Hygiene deleted %v, want %v", rep.Releases, want)
	}
	if got, want := w.releaseNumbers("web"), []int{7, 6, 4, 3, 2}; !slices.Equal(got, want) {
		t.Errorf("releases of web = %v, want %v (newest two, pending 4, 3 with a sandbox, live 2)", got, want)
	}
	if got := w.releaseNumbers("busy"); len(got) != 4 {
		t.Errorf("releases of busy = %v, want all 4 kept while a deploy is in progress", got)
	}
	if rep.Skipped["busy"] != "a deploy is in progress" {
		t.Errorf("Skipped = %v, want busy named", rep.Skipped)
	}
	// What the busy app's deploy may be using stays: its build
	// references, and its cache, whatever the cap.
	w.checkWhole("the busy app's image being released", building)
	if !slices.Equal(rep.Caches.Busy, []string{"busy"}) {
		t.Errorf("Caches = %+v, want busy's cache kept for its build", rep.Caches)
	}
	if _, err := os.Stat(filepath.Join(w.data, "cache", "busy")); err != nil {
		t.Errorf("busy's build cache: %v", err)
	}

	// Once the deploy is over, an unrecorded build is collected.
	rep, err = w.plane.HygieneWith(ctx, HygieneOptions{KeepReleases: 2})
	if err != nil {
		t.Fatal(err)
	}
	w.checkGone("a build no release records", building)
	w.checkWhole("busy's releases' image", busyImage)
}

// TestHygieneGrace: an image put within the grace period stays even when
// nothing records it, as a deploy's does between Put and CreateRelease.
func TestHygieneGrace(t *testing.T) {
	t.Parallel()
	w := newWorld(t, time.Now)
	fresh := w.put("noops.build/new:k", "run-1", "app-new")
	rep, err := w.plane.Hygiene(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w.checkWhole("an image put just now", fresh)
	if rep.Images.Refs != 0 || rep.Images.Blobs != 0 {
		t.Errorf("Hygiene within the grace period = %+v, want nothing removed", rep.Images)
	}
}

func TestHygieneDoesNotOverlap(t *testing.T) {
	t.Parallel()
	w := newWorld(t, afterGrace)
	done, err := w.plane.claim(hygieneKey, "a cleanup")
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if _, err := w.plane.Hygiene(t.Context()); !errkind.Is(err, errkind.Conflict) {
		t.Errorf("Hygiene while another runs = %v, want a Conflict", err)
	}
}

func TestHygieneTrimsBuildCaches(t *testing.T) {
	t.Parallel()
	w := newWorld(t, afterGrace)
	base := time.Now().Add(-24 * time.Hour)
	for i, app := range []string{"a", "b", "c"} {
		w.app(app)
		dir := filepath.Join(w.data, "cache", app)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "data"), make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		used := base.Add(time.Duration(i) * time.Hour) // a least recently built
		if err := os.Chtimes(dir, used, used); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := w.plane.HygieneWith(t.Context(), HygieneOptions{BuildCacheMax: 5 << 19}) // 2.5 MiB
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Caches.Removed, []string{"a"}) {
		t.Errorf("trimming 3 MiB of caches to 2.5 MiB removed %v, want [a] (least recently built)", rep.Caches.Removed)
	}
	// Trimming held each app's claim only while moving its cache aside.
	if busy := w.plane.busyApps(); len(busy) != 0 {
		t.Errorf("claims left after Hygiene: %v", busy)
	}
}
