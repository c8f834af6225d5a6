package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultGrace is how long GC leaves a blob, an image or an unpacked layer
// alone after it was written, whatever refers to it: a build or deploy in
// flight may have stored an image that it has not recorded anywhere yet.
const DefaultGrace = 10 * time.Minute

// Roots is what a collection keeps: the images with these manifest
// digests and the images that the references Refs accepts name, each with
// everything it uses (config, layer blobs, unpacked layer folders).
type Roots struct {
	Images []v1.Hash
	Refs   func(ref string) bool // nil accepts no reference
}

// GCOptions tune a collection.
type GCOptions struct {
	// Grace: what was written less than Grace ago stays, referenced or
	// not. 0 means DefaultGrace; a negative Grace keeps nothing for its
	// age (tests).
	Grace time.Duration
	Now   func() time.Time // nil: time.Now
}

// GCReport says what a collection did.
type GCReport struct {
	Kept       int       // images kept
	Refs       int       // references removed from the index
	Images     []v1.Hash // image manifests removed
	Blobs      int       // blobs removed: manifests, configs and layers
	BlobBytes  int64     // their size
	Layers     int       // unpacked layer folders removed
	LayerBytes int64     // the disk space they used
	Young      int       // unused blobs and layer folders left for being younger than the grace period
	// Missing are kept images the store does not have (or not their
	// config). When roots named one, GC cannot know which layer folders
	// it needs and leaves every layer folder alone.
	Missing []v1.Hash
}

// Freed is the disk space a collection gave back.
func (r GCReport) Freed() int64 { return r.BlobBytes + r.LayerBytes }

// GC removes what no kept image uses: index entries, blobs and unpacked
// layer folders. roots says what to keep; it is called once GC holds the
// store's lock, so that what it reads (releases, builds in progress) is
// ordered with the store's Put and Resolve calls. roots must not call the
// store's Put or Resolve: they wait for GC.
//
// What GC keeps: every image roots names, every image a reference that
// roots.Refs accepts names, every index entry whose manifest is younger
// than the grace period, and every blob and layer folder younger than it;
// with them, everything those images use. Everything else is removed: the
// other index entries, blobs and layer folders (layers/<diffID>).
//
// Concurrency: GC holds the store's collection lock for writing while it
// decides and removes, so no Put or Resolve runs meanwhile: a Put either
// finished before (its image is in the index, where roots or the grace
// period decide its fate) or starts after (and writes again any blob it
// needs, which it never does for a blob it finds). Unpack does not wait
// for GC; GC
// takes a layer's unpack lock before it moves that layer's folder away,
// and never moves a folder a kept image uses, so a caller that keeps the
// images of every running sandbox (and of every rollout in progress)
// never loses an overlay lower folder. Removing the moved folders, which
// may take a while, happens after the lock is released.
//
// Crash safety: index.json is rewritten atomically before any blob is
// removed, so the index never names a removed image; removing a blob is
// idempotent; a folder moved away but not yet removed has a temporary
// name, which Open removes.
func (s *Store) GC(ctx context.Context, roots func(context.Context) (Roots, error), o GCOptions) (GCReport, error) {
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var rep GCReport
	s.gcMu.Lock()
	doomed, err := s.collect(ctx, roots, o, &rep)
	s.gcMu.Unlock()
	for _, dir := range doomed {
		n, uerr := diskUsage(dir)
		if rerr := removeAll(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("removing unpacked layer %s: %w", filepath.Base(dir), rerr))
			continue
		}
		if uerr == nil {
			rep.LayerBytes += n
		}
		rep.Layers++
	}
	return rep, err
}

// collect does GC's work under the lock and returns the layer folders it
// moved away for removal.
func (s *Store) collect(ctx context.Context, roots func(context.Context) (Roots, error), o GCOptions, rep *GCReport) ([]string, error) {
	r, err := roots(ctx)
	if err != nil {
		return nil, fmt.Errorf("collecting image garbage: %w", err)
	}
	young := func(time.Time) bool { return false }
	if o.Grace > 0 {
		cutoff := o.Now().Add(-o.Grace)
		young = func(t time.Time) bool { return t.After(cutoff) }
	}

	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	idx, err := s.index()
	if err != nil {
		return nil, fmt.Errorf("collecting image garbage: %w", err)
	}
	live := map[v1.Hash]bool{}
	for _, d := range r.Images {
		live[d] = true
	}
	for _, m := range idx.Manifests {
		switch {
		case r.Refs != nil && r.Refs(m.Annotations[RefAnnotation]):
			live[m.Digest] = true
		case !live[m.Digest]:
			if fi, err := os.Lstat(s.blobPath(m.Digest)); err == nil && young(changed(fi)) {
				live[m.Digest] = true
			}
		}
	}
	rep.Kept = len(live)

	// The roots first: a root the store does not have fully may be what
	// a running sandbox was made from, so its layer folders are unknown
	// and none is removed. An index entry whose image is gone is only
	// reported: nothing can unpack it.
	mk := marker{s: s, blobs: map[v1.Hash]bool{}, diffIDs: map[v1.Hash]bool{}}
	rootSet := map[v1.Hash]bool{}
	for _, d := range r.Images {
		rootSet[d] = true
	}
	if err := mk.markAll(ctx, rootSet); err != nil {
		return nil, err
	}
	missingRoots := len(mk.missing)
	if err := mk.markAll(ctx, live); err != nil {
		return nil, err
	}
	rep.Missing = mk.missing

	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The index first: it must never name a removed image.
	kept := idx.Manifests[:0:0]
	for _, m := range idx.Manifests {
		if live[m.Digest] {
			kept = append(kept, m)
		}
	}
	if len(kept) < len(idx.Manifests) {
		rep.Refs = len(idx.Manifests) - len(kept)
		idx.Manifests = kept
		if err := s.writeIndex(idx); err != nil {
			return nil, fmt.Errorf("collecting image garbage: rewriting the index: %w", err)
		}
	}
	if err := s.sweepBlobs(ctx, mk.blobs, young, rep); err != nil {
		return nil, err
	}
	if missingRoots > 0 {
		return nil, nil
	}
	return s.sweepLayers(ctx, mk.diffIDs, young, rep)
}

func (s *Store) blobPath(d v1.Hash) string {
	return filepath.Join(s.dir, "blobs", d.Algorithm, d.Hex)
}

// writeIndex replaces index.json with idx, atomically.
func (s *Store) writeIndex(idx *v1.IndexManifest) error {
	if idx.MediaType == "" {
		idx.MediaType = types.OCIImageIndex
	}
	raw, err := json.MarshalIndent(idx, "", "   ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, "index.json"), raw)
}

// marker finds every blob and layer diffID that the images it marks use.
type marker struct {
	s       *Store
	blobs   map[v1.Hash]bool
	diffIDs map[v1.Hash]bool
	missing []v1.Hash
}

// manifestish is what an image manifest and an image index have that GC
// follows.
type manifestish struct {
	SchemaVersion int64           `json:"schemaVersion"`
	MediaType     types.MediaType `json:"mediaType"`
	Config        *v1.Descriptor  `json:"config"`
	Layers        []v1.Descriptor `json:"layers"`
	Manifests     []v1.Descriptor `json:"manifests"`
}

func (m *marker) markAll(ctx context.Context, set map[v1.Hash]bool) error {
	for _, d := range sortedHashes(set) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.mark(d, 0); err != nil {
			return fmt.Errorf("collecting image garbage: %w", err)
		}
	}
	return nil
}

// mark marks the manifest or index d and what it uses. A missing manifest
// or config is recorded in missing; any other failure to read one is an
// error, which stops the collection before anything is removed.
func (m *marker) mark(d v1.Hash, depth int) error {
	if m.blobs[d] {
		return nil
	}
	if depth > 8 {
		return fmt.Errorf("image index %s nests too deep", d)
	}
	m.blobs[d] = true
	raw, err := m.s.path.Bytes(d)
	if errors.Is(err, fs.ErrNotExist) {
		m.missing = append(m.missing, d)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading image %s: %w", d, err)
	}
	var mf manifestish
	if err := json.Unmarshal(raw, &mf); err != nil {
		return fmt.Errorf("reading image %s: %w", d, err)
	}
	for _, child := range mf.Manifests {
		if err := m.mark(child.Digest, depth+1); err != nil {
			return err
		}
	}
	for _, l := range mf.Layers {
		m.blobs[l.Digest] = true
	}
	if mf.Config == nil {
		return nil
	}
	m.blobs[mf.Config.Digest] = true
	raw, err = m.s.path.Bytes(mf.Config.Digest)
	if errors.Is(err, fs.ErrNotExist) {
		m.missing = append(m.missing, d)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the config of image %s: %w", d, err)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("reading the config of image %s: %w", d, err)
	}
	for _, id := range cf.RootFS.DiffIDs {
		m.diffIDs[id] = true
	}
	return nil
}

// sweepBlobs removes the blobs that are neither marked nor young.
func (s *Store) sweepBlobs(ctx context.Context, marked map[v1.Hash]bool, young func(time.Time) bool, rep *GCReport) error {
	root := filepath.Join(s.dir, "blobs")
	algs, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("collecting image garbage: %w", err)
	}
	for _, alg := range algs {
		if !alg.IsDir() || strings.HasPrefix(alg.Name(), tmpPrefix) {
			continue
		}
		dir := filepath.Join(root, alg.Name())
		des, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("collecting image garbage: %w", err)
		}
		for _, de := range des {
			if err := ctx.Err(); err != nil {
				return err
			}
			h, err := v1.NewHash(alg.Name() + ":" + de.Name())
			if err != nil || marked[h] || !de.Type().IsRegular() {
				continue // not a blob (a temporary file, say), or kept
			}
			path := filepath.Join(dir, de.Name())
			fi, err := os.Lstat(path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("collecting image garbage: %w", err)
			}
			if young(changed(fi)) {
				rep.Young++
				continue
			}
			isImage := isManifest(path, fi.Size())
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing blob %s: %w", h, err)
			}
			rep.Blobs++
			rep.BlobBytes += fi.Size()
			if isImage {
				rep.Images = append(rep.Images, h)
			}
		}
	}
	return nil
}

// isManifest reports whether the blob at path is an image manifest.
func isManifest(path string, size int64) bool {
	if size > 4<<20 {
		return false
	}
	raw, err := os.ReadFile(path)
	if err != nil || len(raw) == 0 || raw[0] != '{' {
		return false
	}
	var mf manifestish
	if json.Unmarshal(raw, &mf) != nil || mf.SchemaVersion != 2 || mf.Config == nil || mf.Config.Digest == (v1.Hash{}) {
		return false // an image config also has a "config"
	}
	return mf.MediaType == "" || mf.MediaType.IsImage()
}

// sweepLayers moves the layer folders that no kept image uses, and that
// are not young, to temporary names, and returns those.
func (s *Store) sweepLayers(ctx context.Context, used map[v1.Hash]bool, young func(time.Time) bool, rep *GCReport) ([]string, error) {
	des, err := os.ReadDir(s.layers)
	if err != nil {
		return nil, fmt.Errorf("collecting image garbage: %w", err)
	}
	var doomed []string
	for _, de := range des {
		hex, ok := strings.CutPrefix(de.Name(), "sha256-")
		if !ok || !de.IsDir() {
			continue // temporary folders of unpacks in progress, or not ours
		}
		id, err := v1.NewHash("sha256:" + hex)
		if err != nil || used[id] {
			continue
		}
		dir, err := s.takeLayer(ctx, id, young, rep)
		if err != nil {
			return doomed, err
		}
		if dir != "" {
			doomed = append(doomed, dir)
		}
	}
	return doomed, nil
}

// takeLayer moves layer id's folder to a temporary name, unless it is
// young, under the layer's unpack lock; it returns the new name, or "".
func (s *Store) takeLayer(ctx context.Context, id v1.Hash, young func(time.Time) bool, rep *GCReport) (string, error) {
	unlock, err := s.lock(ctx, id)
	if err != nil {
		return "", err
	}
	defer unlock()
	final := filepath.Join(s.layers, id.Algorithm+"-"+id.Hex)
	fi, err := os.Lstat(final)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("collecting unpacked layer %s: %w", id, err)
	}
	if young(changed(fi)) {
		rep.Young++
		return "", nil
	}
	away := filepath.Join(s.layers, fmt.Sprintf("%sgc-%s-%d", tmpPrefix, id.Hex[:12], time.Now().UnixNano()))
	if err := os.Rename(final, away); err != nil {
		return "", fmt.Errorf("collecting unpacked layer %s: %w", id, err)
	}
	return away, nil
}

// changed is when fi's file was last written or had its metadata changed:
// the later of its modification and status change times. An unpacked
// layer's folder gets the modification time its tar says, but its status
// change time is when it was unpacked (or renamed into place).
func changed(fi fs.FileInfo) time.Time {
	t := fi.ModTime()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if c := time.Unix(st.Ctim.Sec, st.Ctim.Nsec); c.After(t) {
			t = c
		}
	}
	return t
}

func sortedHashes(set map[v1.Hash]bool) []v1.Hash {
	out := make([]v1.Hash, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b v1.Hash) int { return strings.Compare(a.String(), b.String()) })
	return out
}
