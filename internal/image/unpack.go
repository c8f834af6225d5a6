package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Unpack makes sure every layer of the image with digest d is unpacked and
// returns their folders, bottom layer first, ready to be overlayfs lower
// folders. A layer is unpacked once, into a folder named after its diffID
// and shared by every image and sandbox that uses it; it is unpacked into
// a temporary folder that is renamed into place only when whole.
func (s *Store) Unpack(ctx context.Context, d v1.Hash) ([]string, error) {
	img, err := s.Get(d)
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("unpacking image %s: %w", d, err)
	}
	dirs := make([]string, 0, len(layers))
	for _, l := range layers {
		dir, err := s.unpackLayer(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("unpacking image %s: %w", d, err)
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}

func (s *Store) unpackLayer(ctx context.Context, l v1.Layer) (string, error) {
	id, err := l.DiffID()
	if err != nil {
		return "", fmt.Errorf("reading layer diffID: %w", err)
	}
	if id.Algorithm != "sha256" || len(id.Hex) != sha256.Size*2 {
		return "", fmt.Errorf("unpacking layer %s: unsupported digest", id)
	}
	final := filepath.Join(s.layers, id.Algorithm+"-"+id.Hex)
	unlock, err := s.lock(ctx, id)
	if err != nil {
		return "", fmt.Errorf("unpacking layer %s: %w", id, err)
	}
	defer unlock()
	if _, err := os.Lstat(final); err == nil {
		return final, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("unpacking layer %s: %w", id, err)
	}
	tmp, err := os.MkdirTemp(s.layers, tmpPrefix+id.Hex[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("unpacking layer %s: %w", id, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("unpacking layer %s: %w", id, err)
	}
	if err := extractLayer(ctx, l, id, tmp); err != nil {
		return "", fmt.Errorf("unpacking layer %s: %w", id, err)
	}
	if err := syncFS(tmp); err != nil {
		return "", fmt.Errorf("unpacking layer %s: %w", id, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("unpacking layer %s: %w", id, err)
	}
	s.unpacked.Add(1)
	return final, nil
}

// extractLayer unpacks l into dir and checks that what it read has the
// layer's diffID.
func extractLayer(ctx context.Context, l v1.Layer, id v1.Hash, dir string) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	r := io.TeeReader(rc, h)
	if err := extract(ctx, r, dir); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, r); err != nil { // the tar's padding
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != id.Hex {
		return fmt.Errorf("the layer's contents have diffID sha256:%s", got)
	}
	return nil
}

// syncFS flushes the file system holding dir, so that a layer folder that
// survives a crash is whole.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// lock takes the lock of layer id, waiting for whoever holds it, and
// returns its release.
func (s *Store) lock(ctx context.Context, id v1.Hash) (func(), error) {
	s.locksMu.Lock()
	ch, ok := s.locks[id]
	if !ok {
		ch = make(chan struct{}, 1)
		s.locks[id] = ch
	}
	s.locksMu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
