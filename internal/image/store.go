// Package image keeps app images in an OCI image layout on disk, builds the
// base layer every app image starts from, and unpacks image layers into
// folders that sandboxes use as overlayfs lower layers.
package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"noops/internal/errkind"
)

// RefAnnotation names an image in the layout's index.json.
const RefAnnotation = "org.opencontainers.image.ref.name"

// tmpPrefix starts the names of files and folders being written; Open
// removes those a crash left behind.
const tmpPrefix = ".tmp-"

// Store is an OCI image layout in a folder, with the unpacked layers of
// its images in the layers sub-folder. Its methods are safe for concurrent
// use; one process at a time may use a folder.
type Store struct {
	dir    string
	layers string
	path   layout.Path

	indexMu sync.Mutex // serialises updates of index.json

	// gcMu is held for reading by Put and Resolve and for writing by GC
	// (gc.go), so that a collection never sees half of a Put, nor
	// removes a blob that a Put found present and skipped.
	gcMu sync.RWMutex

	locksMu sync.Mutex
	locks   map[v1.Hash]chan struct{} // per layer diffID, held while unpacking

	baseMu sync.Mutex
	base   v1.Layer

	unpacked atomic.Int64 // layers unpacked since Open, for tests
}

// Open opens the image store in dir, creating an empty layout when there is
// none, and removes what an interrupted write left behind.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir, layers: filepath.Join(dir, "layers"), locks: map[v1.Hash]chan struct{}{}}
	if err := os.MkdirAll(s.layers, 0o700); err != nil {
		return nil, fmt.Errorf("opening image store %s: %w", dir, err)
	}
	p, err := layout.FromPath(dir)
	if errors.Is(err, fs.ErrNotExist) {
		p, err = layout.Write(dir, empty.Index)
	}
	if err != nil {
		return nil, fmt.Errorf("opening image store %s: %w", dir, err)
	}
	s.path = p
	if _, err := s.index(); err != nil {
		return nil, err
	}
	for _, d := range []string{s.layers, filepath.Join(dir, "blobs", "sha256"), dir} {
		if err := removeTemps(d); err != nil {
			return nil, fmt.Errorf("opening image store %s: %w", dir, err)
		}
	}
	return s, nil
}

func removeTemps(dir string) error {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) index() (*v1.IndexManifest, error) {
	ii, err := s.path.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading image index: %w", err)
	}
	m, err := ii.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading image index: %w", err)
	}
	return m, nil
}

// Put writes img into the store, if it is not there yet, and names it ref,
// replacing the image that ref named before. It returns img's digest.
func (s *Store) Put(img v1.Image, ref string) (v1.Hash, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	var none v1.Hash
	if ref == "" {
		return none, errkind.Errorf(errkind.Invalid, "storing image: empty reference")
	}
	d, err := img.Digest()
	if err != nil {
		return none, fmt.Errorf("storing image %s: %w", ref, err)
	}
	if err := s.writeImage(img); err != nil {
		return none, fmt.Errorf("storing image %s: %w", ref, err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return none, fmt.Errorf("storing image %s: %w", ref, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return none, fmt.Errorf("storing image %s: %w", ref, err)
	}
	desc := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: d, Annotations: map[string]string{RefAnnotation: ref}}
	if err := s.name(desc, ref); err != nil {
		return none, fmt.Errorf("naming image %s: %w", ref, err)
	}
	return d, nil
}

func (s *Store) writeImage(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		if err := s.writeBlob(d, l.Compressed); err != nil {
			return fmt.Errorf("writing layer %s: %w", d, err)
		}
	}
	for _, b := range []struct {
		digest func() (v1.Hash, error)
		raw    func() ([]byte, error)
	}{{img.ConfigName, img.RawConfigFile}, {img.Digest, img.RawManifest}} {
		d, err := b.digest()
		if err != nil {
			return err
		}
		open := func() (io.ReadCloser, error) {
			raw, err := b.raw()
			return io.NopCloser(bytes.NewReader(raw)), err
		}
		if err := s.writeBlob(d, open); err != nil {
			return fmt.Errorf("writing blob %s: %w", d, err)
		}
	}
	return nil
}

// writeBlob stores the blob with digest d, unless it is there already:
// written to a temporary file, checked against d, synced, then renamed, so
// that a blob in the layout is always whole.
func (s *Store) writeBlob(d v1.Hash, open func() (io.ReadCloser, error)) error {
	dir := filepath.Join(s.dir, "blobs", d.Algorithm)
	final := filepath.Join(dir, d.Hex)
	if _, err := os.Stat(final); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, tmpPrefix)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	got, _, err := v1.SHA256(io.TeeReader(rc, f))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got != d {
		return fmt.Errorf("content has digest %s", got)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), final)
}

// name records desc in index.json under ref, replacing what ref named.
func (s *Store) name(desc v1.Descriptor, ref string) error {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	idx, err := s.index()
	if err != nil {
		return err
	}
	kept := idx.Manifests[:0:0]
	for _, m := range idx.Manifests {
		if m.Annotations[RefAnnotation] != ref {
			kept = append(kept, m)
			continue
		}
		if m.Digest == desc.Digest {
			return nil // already named so
		}
	}
	idx.Manifests = append(kept, desc)
	if idx.MediaType == "" {
		idx.MediaType = types.OCIImageIndex
	}
	raw, err := json.MarshalIndent(idx, "", "   ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, "index.json"), raw)
}

func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), tmpPrefix)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// Resolve returns the digest of the image named ref, and whether there is one.
func (s *Store) Resolve(ref string) (v1.Hash, bool, error) {
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	idx, err := s.index()
	if err != nil {
		return v1.Hash{}, false, err
	}
	for _, m := range idx.Manifests {
		if m.Annotations[RefAnnotation] == ref {
			return m.Digest, true, nil
		}
	}
	return v1.Hash{}, false, nil
}

// Get returns the image with manifest digest d, named or not: an image
// whose name moved on to a newer one stays readable, so that a rollback to
// it works. A missing image is errkind.NotFound.
func (s *Store) Get(d v1.Hash) (v1.Image, error) {
	raw, err := s.path.Bytes(d)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errkind.Errorf(errkind.NotFound, "image %s is not in the image store", d)
	}
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", d, err)
	}
	if got, _, err := v1.SHA256(bytes.NewReader(raw)); err != nil || got != d {
		return nil, fmt.Errorf("reading image %s: the stored manifest is corrupt (digest %s)", d, got)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", d, err)
	}
	if !m.MediaType.IsImage() && m.MediaType != "" {
		return nil, errkind.Errorf(errkind.NotFound, "%s is a %s, not an image", d, m.MediaType)
	}
	img, err := partial.CompressedToImage(&storedImage{path: s.path, raw: raw, m: m})
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", d, err)
	}
	return img, nil
}

// storedImage is an image read from the layout's blobs by its manifest.
type storedImage struct {
	path layout.Path
	raw  []byte
	m    *v1.Manifest
}

func (i *storedImage) MediaType() (types.MediaType, error) {
	if i.m.MediaType == "" {
		return types.OCIManifestSchema1, nil
	}
	return i.m.MediaType, nil
}

func (i *storedImage) RawManifest() ([]byte, error)   { return i.raw, nil }
func (i *storedImage) RawConfigFile() ([]byte, error) { return i.path.Bytes(i.m.Config.Digest) }

func (i *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.m.Config.Digest {
		return &storedBlob{path: i.path, desc: i.m.Config}, nil
	}
	for _, desc := range i.m.Layers {
		if desc.Digest == h {
			return &storedBlob{path: i.path, desc: desc}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in the image", h)
}

type storedBlob struct {
	path layout.Path
	desc v1.Descriptor
}

func (b *storedBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *storedBlob) Compressed() (io.ReadCloser, error)  { return b.path.Blob(b.desc.Digest) }
func (b *storedBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *storedBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }
func (b *storedBlob) Descriptor() (*v1.Descriptor, error) { return &b.desc, nil }

// Base returns the base layer for new images, built from the host's files
// the first time it is asked for.
func (s *Store) Base() (v1.Layer, error) {
	s.baseMu.Lock()
	defer s.baseMu.Unlock()
	if s.base != nil {
		return s.base, nil
	}
	l, err := BaseLayer(BaseOptions{})
	if err != nil {
		return nil, err
	}
	s.base = l
	return l, nil
}
