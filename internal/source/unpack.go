package source

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"noops/internal/errkind"
)

// Limits bound what an upload may unpack to.
type Limits struct {
	Bytes int64 // total size of files (default 1 GiB)
	Files int   // number of entries (default 100000)
}

func (l *Limits) defaults() {
	if l.Bytes == 0 {
		l.Bytes = 1 << 30
	}
	if l.Files == 0 {
		l.Files = 100000
	}
}

// Unpack extracts a packed app from r into dir, which must exist and be
// empty. Anything a pack would not produce (absolute or escaping paths,
// links out of the tree, devices, hard links, too much data) is refused as
// errkind.Invalid; a truncated archive is refused too. On error dir may
// hold part of the tree: the caller removes it.
func Unpack(r io.Reader, dir string, lim Limits) (Stats, error) {
	lim.defaults()
	var st Stats
	gz, err := gzip.NewReader(r)
	if err != nil {
		return st, invalid("the upload is not a gzipped archive: %v", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, readErr(err)
		}
		if st.Files++; st.Files > lim.Files {
			return st, invalid("the upload has more than %d entries", lim.Files)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if !filepath.IsLocal(name) || strings.Contains(h.Name, "\\") {
			return st, invalid("the upload has an unsafe path %q", h.Name)
		}
		target := filepath.Join(dir, name)
		if err := insideNoLinks(dir, filepath.Dir(target)); err != nil {
			return st, err
		}
		mode := os.FileMode(h.Mode).Perm() &^ 0o022
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, mode|0o700); err != nil {
				return st, fmt.Errorf("unpacking %s: %w", name, err)
			}
		case tar.TypeReg:
			if st.Bytes += h.Size; st.Bytes > lim.Bytes {
				return st, invalid("the upload unpacks to more than %d bytes", lim.Bytes)
			}
			if err := writeFile(target, tr, h.Size, mode|0o600); err != nil {
				return st, err
			}
		case tar.TypeSymlink:
			if filepath.IsAbs(h.Linkname) || !filepath.IsLocal(filepath.Join(filepath.Dir(name), h.Linkname)) {
				return st, invalid("the upload has a link %q that points outside the app (%q)", h.Name, h.Linkname)
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return st, fmt.Errorf("unpacking %s: %w", name, err)
			}
		default:
			return st, invalid("the upload has %q of a type that apps may not contain (%c)", h.Name, h.Typeflag)
		}
	}
	// The gzip trailer is checked only when the stream is read to its end.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return st, readErr(err)
	}
	return st, nil
}

func writeFile(target string, r io.Reader, size int64, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("unpacking %s: %w", target, err)
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return invalid("the upload has %s twice or over a link: %v", filepath.Base(target), err)
	}
	_, err = io.CopyN(f, r, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return readErr(err)
	}
	return nil
}

// insideNoLinks checks that no folder between root and dir is a symlink,
// so that a link in the archive cannot redirect later entries.
func insideNoLinks(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return invalid("the upload has a path outside the app")
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." {
			continue
		}
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("checking %s: %w", cur, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return invalid("the upload writes through the link %s", rel)
		}
	}
	return nil
}

func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, tar.ErrHeader) || errors.Is(err, gzip.ErrHeader) {
		return invalid("the upload is incomplete or corrupt (%v); nothing was changed", err)
	}
	return fmt.Errorf("unpacking upload: %w", err)
}

func invalid(format string, args ...any) error {
	return errkind.Errorf(errkind.Invalid, format, args...)
}
