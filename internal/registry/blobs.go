package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// blobStore finds blobs: first among those uploaded and waiting for a
// manifest (staged), then in the image store's layout. A manifest push
// copies its blobs into the layout and removes the staged ones; looking in
// that order never misses a blob that moves meanwhile.
//
// It is ggcr's BlobHandler and BlobStatHandler for blob reads.
type blobStore struct {
	staged string // DIR/blobs/sha256
	layout string // the image store's folder
}

var (
	_ ggcr.BlobHandler     = (*blobStore)(nil)
	_ ggcr.BlobStatHandler = (*blobStore)(nil)
)

func (b *blobStore) stagedPath(h v1.Hash) string { return filepath.Join(b.staged, h.Hex) }

func (b *blobStore) layoutPath(h v1.Hash) string {
	return filepath.Join(b.layout, "blobs", h.Algorithm, h.Hex)
}

// paths returns where h may be, in lookup order; none for a digest that is
// not sha256 (no other kind is ever stored, and the hex is then checked).
func (b *blobStore) paths(h v1.Hash) []string {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 || strings.Trim(h.Hex, "0123456789abcdef") != "" {
		return nil
	}
	return []string{b.stagedPath(h), b.layoutPath(h)}
}

// size returns the size of blob h, or fs.ErrNotExist.
func (b *blobStore) size(h v1.Hash) (int64, error) {
	for _, p := range b.paths(h) {
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() {
			return fi.Size(), nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("looking for blob %s: %w", h, err)
		}
	}
	return 0, fs.ErrNotExist
}

// open opens blob h, or returns fs.ErrNotExist.
func (b *blobStore) open(h v1.Hash) (*os.File, error) {
	for _, p := range b.paths(h) {
		f, err := os.Open(p)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("opening blob %s: %w", h, err)
		}
	}
	return nil, fs.ErrNotExist
}

// Stat is ggcr's BlobStatHandler.
func (b *blobStore) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	n, err := b.size(h)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ggcr.ErrNotFound
	}
	return n, err
}

// Get is ggcr's BlobHandler. The *os.File it returns is an io.ReaderAt, so
// ranged reads seek rather than read what they skip.
func (b *blobStore) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	f, err := b.open(h)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ggcr.ErrNotFound
	}
	return f, err
}

// readLayout reads blob h from the layout (never a staged one), at most
// limit bytes; a bigger blob is fs.ErrNotExist to the caller, which reads
// manifests.
func (b *blobStore) readLayout(h v1.Hash, limit int64) ([]byte, error) {
	if b.paths(h) == nil {
		return nil, fs.ErrNotExist
	}
	f, err := os.Open(b.layoutPath(h))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, fs.ErrNotExist
	}
	return raw, nil
}

// inLayout reports whether blob h is in the image store.
func (b *blobStore) inLayout(h v1.Hash) bool {
	if b.paths(h) == nil {
		return false
	}
	fi, err := os.Stat(b.layoutPath(h))
	return err == nil && fi.Mode().IsRegular()
}

// stage moves a finished upload into the staged blobs, unless the blob is
// there or in the layout already.
func (b *blobStore) stage(file string, h v1.Hash) error {
	if _, err := b.size(h); err == nil {
		return os.Remove(file)
	}
	return os.Rename(file, b.stagedPath(h))
}

// unstage removes staged blobs that are in the layout now.
func (b *blobStore) unstage(hs []v1.Hash) {
	for _, h := range hs {
		if b.inLayout(h) {
			_ = os.Remove(b.stagedPath(h))
		}
	}
}

// prune removes staged blobs that are in the layout (a crash came between
// storing a manifest and unstaging), and those older than before, which no
// manifest named.
func (b *blobStore) prune(before time.Time) error {
	des, err := os.ReadDir(b.staged)
	if err != nil {
		return err
	}
	for _, de := range des {
		h, err := v1.NewHash("sha256:" + de.Name())
		if err != nil {
			if err := os.RemoveAll(filepath.Join(b.staged, de.Name())); err != nil {
				return err
			}
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		if b.inLayout(h) || fi.ModTime().Before(before) {
			if err := os.Remove(b.stagedPath(h)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}
