package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"noops/internal/errkind"
	"noops/internal/testenv/need"
)

// gcLayer is a small layer with one file, different for each name.
func gcLayer(t *testing.T, name string) v1.Layer {
	t.Helper()
	return tarLayer(t, file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, body: "contents of " + name})
}

// gcImage is an image of layers whose config says name, so that images
// of the same layers differ.
func gcImage(t *testing.T, name string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := Assemble(v1.Config{User: NonRootUser, Labels: map[string]string{"name": name}}, epoch, layers...)
	if err != nil {
		t.Fatalf("Assemble(%s): %v", name, err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func diffIDOf(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	id, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func blobDigest(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// later is a clock past the grace period of everything written now.
func later() time.Time { return time.Now().Add(DefaultGrace + time.Minute) }

func runGC(t *testing.T, s *Store, r Roots, o GCOptions) GCReport {
	t.Helper()
	rep, err := s.GC(t.Context(), func(context.Context) (Roots, error) { return r, nil }, o)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	return rep
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func layerDir(s *Store, id v1.Hash) string { return filepath.Join(s.layers, id.Algorithm+"-"+id.Hex) }

func sortHashes(hs []v1.Hash) []v1.Hash {
	out := slices.Clone(hs)
	slices.SortFunc(out, func(a, b v1.Hash) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// checkKept checks that the image d is whole: it validates (every blob
// is there and has its digest) and, when it was unpacked into dirs,
// unpacking it again unpacks nothing: its layer folders are still there.
func checkKept(t *testing.T, s *Store, d v1.Hash, dirs []string) {
	t.Helper()
	img, err := s.Get(d)
	if err != nil {
		t.Errorf("Get(%s) after GC: %v, want the kept image", d, err)
		return
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("kept image %s does not validate after GC: %v", d, err)
	}
	if dirs == nil {
		return
	}
	before := s.unpacked.Load()
	got, err := s.Unpack(t.Context(), d)
	if err != nil {
		t.Errorf("Unpack(%s) after GC: %v", d, err)
		return
	}
	if !slices.Equal(got, dirs) {
		t.Errorf("Unpack(%s) after GC = %v, want %v", d, got, dirs)
	}
	if n := s.unpacked.Load() - before; n != 0 {
		t.Errorf("Unpack(%s) after GC unpacked %d layers again, want its folders kept", d, n)
	}
}

func TestGCKeepsWhatRootsUseAndRemovesTheRest(t *testing.T) {
	t.Parallel()
	need.Root(t) // unpacking sets owners
	s := openStore(t)
	l := map[string]v1.Layer{}
	for _, n := range []string{"shared", "ab", "b", "c", "d", "e", "f", "g"} {
		l[n] = gcLayer(t, n)
	}
	imgs := map[string]v1.Image{
		"a": gcImage(t, "a", l["shared"], l["ab"]),
		"b": gcImage(t, "b", l["shared"], l["ab"], l["b"]),
		"c": gcImage(t, "c", l["shared"], l["c"]),
		"d": gcImage(t, "d", l["d"]),
		"e": gcImage(t, "e", l["e"]),
		"f": gcImage(t, "f", l["shared"], l["f"]),
		"g": gcImage(t, "g", l["g"]),
	}
	refs := map[string]string{"a": "app:a", "b": "app:b", "c": "app:c", "d": "app:d", "e": "keep/e", "f": "app:f", "g": "app:f"}
	dirs := map[string][]string{}
	d := map[string]v1.Hash{}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} { // g takes app:f over from f
		d[n] = put(t, s, imgs[n], refs[n])
		var err error
		if dirs[n], err = s.Unpack(t.Context(), d[n]); err != nil {
			t.Fatalf("Unpack(%s): %v", n, err)
		}
	}

	// a and c are kept as a live release's would be, f (no longer named)
	// as an older release's, e by its reference.
	rep := runGC(t, s, Roots{Images: []v1.Hash{d["a"], d["c"], d["f"]}, Refs: func(ref string) bool { return strings.HasPrefix(ref, "keep/") }},
		GCOptions{Now: later})

	for _, n := range []string{"a", "c", "e", "f"} {
		checkKept(t, s, d[n], dirs[n])
	}
	for _, n := range []string{"b", "d", "g"} {
		if _, err := s.Get(d[n]); !errkind.Is(err, errkind.NotFound) {
			t.Errorf("Get(%s) after GC = %v, want NotFound", n, err)
		}
	}
	for _, n := range []string{"b", "d", "g"} { // layers no kept image has
		if exists(s.blobPath(blobDigest(t, l[n]))) {
			t.Errorf("blob of layer %s survived GC", n)
		}
		if exists(layerDir(s, diffIDOf(t, l[n]))) {
			t.Errorf("unpacked folder of layer %s survived GC", n)
		}
	}
	for ref, want := range map[string]bool{"app:a": true, "app:b": false, "app:c": true, "app:d": false, "keep/e": true, "app:f": false} {
		_, found, err := s.Resolve(ref)
		if err != nil || found != want {
			t.Errorf("Resolve(%s) after GC = found %v, %v; want found %v", ref, found, err, want)
		}
	}
	wantImages := sortHashes([]v1.Hash{d["b"], d["d"], d["g"]})
	if got := sortHashes(rep.Images); !slices.Equal(got, wantImages) {
		t.Errorf("GC removed images %v, want %v", got, wantImages)
	}
	// b, d and g: a manifest, a config and the layers only they have.
	if rep.Refs != 3 || rep.Blobs != 9 || rep.Layers != 3 || rep.Kept != 4 || rep.Young != 0 || len(rep.Missing) != 0 {
		t.Errorf("GC report = %+v, want 3 refs, 9 blobs, 3 layer folders removed, 4 images kept", rep)
	}
	if rep.BlobBytes <= 0 || rep.LayerBytes <= 0 || rep.Freed() != rep.BlobBytes+rep.LayerBytes {
		t.Errorf("GC report = %+v, want the bytes freed counted", rep)
	}
	checkLayout(t, s)

	// Nothing left to do: a second run removes nothing.
	again := runGC(t, s, Roots{Images: []v1.Hash{d["a"], d["c"], d["f"]}, Refs: func(ref string) bool { return strings.HasPrefix(ref, "keep/") }},
		GCOptions{Now: later})
	if again.Refs != 0 || again.Blobs != 0 || again.Layers != 0 || len(again.Images) != 0 {
		t.Errorf("second GC = %+v, want nothing removed", again)
	}
}

// checkLayout checks that index.json is whole, names only images the
// store has, and that no temporary file is left.
func checkLayout(t *testing.T, s *Store) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(s.dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatalf("index.json after GC: %v", err)
	}
	for _, m := range idx.Manifests {
		if !exists(s.blobPath(m.Digest)) {
			t.Errorf("index.json names %s (%s), whose manifest is gone", m.Digest, m.Annotations[RefAnnotation])
		}
	}
	for _, dir := range []string{s.dir, s.layers, filepath.Join(s.dir, "blobs", "sha256")} {
		des, _ := os.ReadDir(dir)
		for _, de := range des {
			if strings.HasPrefix(de.Name(), tmpPrefix) {
				t.Errorf("GC left %s in %s", de.Name(), dir)
			}
		}
	}
}

func TestGCGrace(t *testing.T) {
	t.Parallel()
	need.Root(t) // unpacking sets owners
	s := openStore(t)
	d := put(t, s, gcImage(t, "x", gcLayer(t, "x")), "app:x")
	dirs, err := s.Unpack(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	// Written just now: nothing goes, named or not, unpacked or not.
	rep := runGC(t, s, Roots{}, GCOptions{})
	if rep.Refs != 0 || rep.Blobs != 0 || rep.Layers != 0 {
		t.Errorf("GC of a store written just now = %+v, want nothing removed", rep)
	}
	if rep.Young != 0 { // the image is young, so it is kept whole
		t.Errorf("GC of a store written just now = %+v, want the young image kept with what it uses", rep)
	}
	checkKept(t, s, d, dirs)

	// A blob written just now that nothing uses stays too.
	stray := put(t, s, gcImage(t, "stray", gcLayer(t, "stray")), "app:stray")
	rep = runGC(t, s, Roots{Images: []v1.Hash{d}}, GCOptions{Grace: time.Hour})
	if _, found, _ := s.Resolve("app:stray"); !found {
		t.Error("GC removed the reference of an image put just now")
	}
	checkKept(t, s, stray, nil)

	// Past the grace period they go.
	rep = runGC(t, s, Roots{}, GCOptions{Grace: time.Minute, Now: func() time.Time { return time.Now().Add(2 * time.Minute) }})
	if rep.Refs != 2 || rep.Layers != 1 || len(rep.Images) != 2 {
		t.Errorf("GC past the grace period = %+v, want both images and the unpacked layer folder removed", rep)
	}
	if _, err := s.Get(d); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Get after GC past the grace period = %v, want NotFound", err)
	}
	if des, _ := os.ReadDir(filepath.Join(s.dir, "blobs", "sha256")); len(des) != 0 {
		t.Errorf("blobs left after collecting everything: %d", len(des))
	}
}

func TestGCMissingRoot(t *testing.T) {
	t.Parallel()
	need.Root(t) // unpacking sets owners
	s := openStore(t)
	gone := put(t, s, gcImage(t, "gone", gcLayer(t, "gone")), "app:gone")
	if _, err := s.Unpack(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	missing := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	rep := runGC(t, s, Roots{Images: []v1.Hash{missing}}, GCOptions{Now: later})
	if !slices.Equal(rep.Missing, []v1.Hash{missing}) {
		t.Errorf("GC with a root the store lacks: Missing = %v, want [%s]", rep.Missing, missing)
	}
	// Blobs nothing uses go, but the layer folders stay: the missing
	// image might be what a running sandbox was made from.
	if len(rep.Images) != 1 || rep.Layers != 0 {
		t.Errorf("GC with a missing root = %+v, want the unused image removed and no layer folder", rep)
	}
	if des, _ := os.ReadDir(s.layers); len(des) != 1 {
		t.Errorf("layer folders after GC with a missing root: %d, want 1", len(des))
	}

	// A reference whose image is gone is only reported.
	if err := os.Remove(s.blobPath(gone)); !os.IsNotExist(err) && err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, Manifests: []v1.Descriptor{{MediaType: "application/vnd.oci.image.manifest.v1+json",
		Digest: gone, Size: 1, Annotations: map[string]string{RefAnnotation: "keep/dangling"}}}})
	if err := writeFileAtomic(filepath.Join(s.dir, "index.json"), raw); err != nil {
		t.Fatal(err)
	}
	rep = runGC(t, s, Roots{Refs: func(ref string) bool { return ref == "keep/dangling" }}, GCOptions{Now: later})
	if !slices.Equal(rep.Missing, []v1.Hash{gone}) || rep.Layers != 1 {
		t.Errorf("GC with a dangling kept reference = %+v, want it reported missing and the unused layer folder removed", rep)
	}
}

func TestGCRootsErrorRemovesNothing(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	d := put(t, s, gcImage(t, "x", gcLayer(t, "x")), "app:x")
	_, err := s.GC(t.Context(), func(context.Context) (Roots, error) { return Roots{}, fmt.Errorf("store unavailable") },
		GCOptions{Now: later})
	if err == nil || !strings.Contains(err.Error(), "store unavailable") {
		t.Errorf("GC with failing roots = %v, want its error", err)
	}
	checkKept(t, s, d, nil)
}

// TestGCConcurrentPut puts images whose layers an unnamed old image also
// has, while collections run that keep only the new images: a Put that
// finds a blob present and skips it must never lose it to GC.
func TestGCConcurrentPut(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	shared := []v1.Layer{gcLayer(t, "s1"), gcLayer(t, "s2")}
	put(t, s, gcImage(t, "old", shared...), "old:x")
	const n = 40
	imgs := make([]v1.Image, n)
	for i := range imgs {
		imgs[i] = gcImage(t, fmt.Sprint(i), append(slices.Clone(shared), gcLayer(t, fmt.Sprint("own", i)))...)
	}
	keepNew := func(context.Context) (Roots, error) {
		return Roots{Refs: func(ref string) bool { return strings.HasPrefix(ref, "new:") }}, nil
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, img := range imgs {
			if _, err := s.Put(img, fmt.Sprint("new:", i)); err != nil {
				t.Errorf("Put(new:%d): %v", i, err)
			}
		}
	})
	wg.Go(func() {
		for range n {
			if _, err := s.GC(t.Context(), keepNew, GCOptions{Grace: -1}); err != nil {
				t.Errorf("GC: %v", err)
			}
		}
	})
	wg.Wait()
	for i := range imgs {
		d, found, err := s.Resolve(fmt.Sprint("new:", i))
		if err != nil || !found {
			t.Fatalf("Resolve(new:%d) = %v, %v", i, found, err)
		}
		checkKept(t, s, d, nil)
	}
}

func TestGCCancelled(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	d := put(t, s, gcImage(t, "x", gcLayer(t, "x")), "app:x")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.GC(ctx, func(ctx context.Context) (Roots, error) { return Roots{}, nil }, GCOptions{Now: later}); err == nil {
		t.Error("GC with a cancelled context = nil error")
	}
	if _, err := s.Get(d); err != nil {
		t.Errorf("Get after a cancelled GC = %v, want the image kept", err)
	}
}
