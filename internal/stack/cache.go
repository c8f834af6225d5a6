package stack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"noops/internal/errkind"
)

// debCache is a folder of .deb files named as in the archive's pool. A
// file is renamed into it only after its SHA-256 matched the index entry
// it was downloaded for, and it is checked again before each use. Several
// processes may share one cache.
type debCache struct{ dir string }

func (c debCache) path(p Package) string {
	return filepath.Join(c.dir, debName(p))
}

// debName is the cache's name for p's file: the pool file's name, or the
// conventional name when the archive gave none.
func debName(p Package) string {
	if b := path.Base(p.Filename); strings.HasSuffix(b, ".deb") && b != "." && b != "/" {
		return b
	}
	v := p.Version
	if _, rest, ok := strings.Cut(v, ":"); ok {
		v = rest
	}
	return p.Name + "_" + v + "_" + p.Arch + ".deb"
}

// cached reports whether p's file is in the cache with the right digest.
// A file with the wrong digest is removed.
func (c debCache) cached(p Package) (bool, error) {
	f := c.path(p)
	sum, err := fileSHA256(f)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking %s: %w", f, err)
	}
	if sum == p.SHA256 {
		return true, nil
	}
	if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("removing corrupt %s: %w", f, err)
	}
	return false, nil
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// removeStaleTemps removes download folders older than a day: those of
// crashed runs. Younger ones may belong to another process sharing the
// cache.
func (c debCache) removeStaleTemps(now time.Time) error {
	des, err := os.ReadDir(c.dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), tmpPrefix) {
			continue
		}
		fi, err := de.Info()
		if err == nil && now.Sub(fi.ModTime()) > 24*time.Hour {
			if err := os.RemoveAll(filepath.Join(c.dir, de.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// missing lists the packages of pkgs whose files are not in the cache.
func (c debCache) missing(pkgs []Package) ([]Package, error) {
	var out []Package
	for _, p := range pkgs {
		ok, err := c.cached(p)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// fetch downloads the packages missing from the cache with `apt-get
// download` into a temporary folder, checks each file against its
// SHA-256 and renames it into the cache; a file that matches no package
// is deleted with the folder. What was downloaded whole is kept even
// when apt fails on another package. The caller holds the lists.
func (a *apt) fetch(ctx context.Context, c debCache, missing []Package) error {
	if len(missing) == 0 {
		return nil
	}
	tmp, err := os.MkdirTemp(c.dir, tmpPrefix+"download-")
	if err != nil {
		return fmt.Errorf("downloading packages: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("downloading packages: %w", err)
	}
	args := []string{"-q", "download"}
	for _, p := range missing {
		args = append(args, p.Name+"="+p.Version)
	}
	runErr := a.run(ctx, tmp, io.Discard, "apt-get", args...)
	bySum, err := digests(tmp)
	if err != nil {
		return fmt.Errorf("downloading packages: %w", err)
	}
	var notFound []Package
	for _, p := range missing {
		f, ok := bySum[p.SHA256]
		if !ok {
			notFound = append(notFound, p)
			continue
		}
		delete(bySum, p.SHA256)
		if err := os.Rename(f, c.path(p)); err != nil {
			return fmt.Errorf("downloading %s: %w", p.Name, err)
		}
	}
	if runErr != nil {
		return errkind.WithHint(errkind.Unavailable, fmt.Errorf("downloading %d packages: %w", len(missing), runErr),
			"check that the package archive is reachable; `noops stack update` refreshes the package lists")
	}
	for _, p := range notFound {
		for _, f := range bySum {
			if strings.HasPrefix(filepath.Base(f), p.Name+"_") {
				return errkind.Errorf(errkind.Unavailable,
					"downloading %s %s: the file has another SHA-256 than the package index's %s, and was deleted", p.Name, p.Version, p.SHA256)
			}
		}
		return errkind.Errorf(errkind.Unavailable, "downloading %s %s: apt-get download wrote no file for it", p.Name, p.Version)
	}
	return nil
}

// digests maps the SHA-256 of each .deb file in dir to its path.
func digests(dir string) (map[string]string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, de := range des {
		if !de.Type().IsRegular() || !strings.HasSuffix(de.Name(), ".deb") {
			continue
		}
		f := filepath.Join(dir, de.Name())
		sum, err := fileSHA256(f)
		if err != nil {
			return nil, err
		}
		out[sum] = f
	}
	return out, nil
}

// pruneUnpacked removes from the unpacked cache the packages that no lock
// pins any more, unless a build is using the cache right now (the next
// build or update prunes then). The .deb files stay: they are the cache
// that makes an older lock buildable offline.
func (m *Manager) pruneUnpacked() {
	if !m.unpackMu.TryLock() {
		return
	}
	defer m.unpackMu.Unlock()
	keep := map[string]bool{}
	for _, d := range definitions {
		for _, kind := range kinds(d) {
			l, err := readLock(m.dir, d.name, kind)
			if errkind.Is(err, errkind.NotFound) {
				continue
			}
			if err != nil {
				m.log.Warn("not pruning unpacked packages", "err", err)
				return
			}
			for _, p := range l.Packages {
				keep[p.SHA256] = true
			}
		}
	}
	removeAllBut := func(dir string, keep func(string) bool) {
		des, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.log.Warn("pruning unpacked packages", "err", err)
		}
		for _, de := range des {
			if keep(de.Name()) {
				continue
			}
			if err := os.RemoveAll(filepath.Join(dir, de.Name())); err != nil {
				m.log.Warn("pruning unpacked packages", "err", err)
			}
		}
	}
	removeAllBut(m.unpacked.dir, func(n string) bool { return n == unpackedFormat })
	removeAllBut(filepath.Join(m.unpacked.dir, unpackedFormat), func(n string) bool { return keep[n] })
}
