package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"noops/internal/errkind"
)

// OCI whiteouts, and how overlayfs spells them.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
)

// extract unpacks the layer tar r into dir as an overlayfs lower folder:
// owners, modes and times come from the headers, a whiteout becomes a 0/0
// character device and an opaque marker the opaque attribute of its folder.
// Entries that would land outside dir (absolute paths, "..", writing
// through a link) are refused as errkind.Invalid, and so are devices.
func extract(ctx context.Context, r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	var dirs []*tar.Header // folders get their times last: entries change them
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading layer: %w", err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, err := entryName(h.Name)
		if err != nil {
			return err
		}
		if err := checkParents(dir, name); err != nil {
			return err
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		base := path.Base(name)
		switch {
		case base == whiteoutOpaque:
			err = opaque(dir, path.Dir(name))
		case strings.HasPrefix(base, whiteoutPrefix):
			err = whiteout(dir, path.Dir(name), strings.TrimPrefix(base, whiteoutPrefix))
		default:
			err = extractEntry(tr, h, dir, name, target)
			if err == nil && h.Typeflag == tar.TypeDir {
				dirs = append(dirs, h)
			}
		}
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", h.Name, err)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		name, _ := entryName(dirs[i].Name)
		if err := setTimes(filepath.Join(dir, filepath.FromSlash(name)), dirs[i]); err != nil {
			return fmt.Errorf("unpacking %s: %w", dirs[i].Name, err)
		}
	}
	return nil
}

func unsafe(format string, args ...any) error {
	return errkind.Errorf(errkind.Invalid, "unsafe layer: "+format, args...)
}

// entryName returns the clean slash-separated path of a tar entry, or an
// error when it is absolute or climbs out with "..". The layer's root is ".".
func entryName(n string) (string, error) {
	if strings.HasPrefix(n, "/") {
		return "", unsafe("entry %q has an absolute path", n)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", unsafe("entry %q climbs out of the layer with ..", n)
		}
	}
	c := path.Clean(n)
	if c == "." || fs.ValidPath(c) {
		return c, nil
	}
	return "", unsafe("entry %q has an invalid path", n)
}

// checkParents refuses an entry whose parent folders include a link,
// since writing through it could land anywhere on the host.
func checkParents(dir, name string) error {
	cur := dir
	parts := strings.Split(name, "/")
	for _, part := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return unsafe("entry %q would be written through the link %s", name, part)
		}
		if !fi.IsDir() {
			return unsafe("entry %q is inside %s, which is not a folder", name, part)
		}
	}
	return nil
}

func extractEntry(tr *tar.Reader, h *tar.Header, dir, name, target string) error {
	if name == "." {
		if h.Typeflag != tar.TypeDir {
			return unsafe("the layer's root is not a folder")
		}
		return setOwnerMode(target, h)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	// A later entry replaces an earlier one of the same name, except that
	// a folder stays (with its contents) when the new entry is a folder.
	if fi, err := os.Lstat(target); err == nil && !(fi.IsDir() && h.Typeflag == tar.TypeDir) {
		if err := os.RemoveAll(target); err != nil {
			return err
		}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case tar.TypeReg, tar.TypeRegA:
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		// A link may point anywhere: it is resolved inside the sandbox's
		// root. Writing through it is what checkParents refuses.
		if err := os.Symlink(h.Linkname, target); err != nil {
			return err
		}
		if err := unix.Lchown(target, h.Uid, h.Gid); err != nil {
			return err
		}
		return setTimes(target, h)
	case tar.TypeLink:
		old, err := entryName(h.Linkname)
		if err != nil || old == "." {
			return unsafe("hard link %q points outside the layer (%q)", h.Name, h.Linkname)
		}
		if err := checkParents(dir, old); err != nil {
			return err
		}
		oldPath := filepath.Join(dir, filepath.FromSlash(old))
		fi, err := os.Lstat(oldPath)
		if err != nil {
			return unsafe("hard link %q points to %q, which is not earlier in the layer", h.Name, h.Linkname)
		}
		if fi.IsDir() {
			return unsafe("hard link %q points to the folder %q", h.Name, h.Linkname)
		}
		return os.Link(oldPath, target) // shares owner, mode and times
	case tar.TypeFifo:
		if err := unix.Mknod(target, unix.S_IFIFO|0o600, 0); err != nil {
			return err
		}
	case tar.TypeChar, tar.TypeBlock:
		return unsafe("entry %q is a device, which app images may not contain", h.Name)
	default:
		return unsafe("entry %q has a type noops does not unpack (%q)", h.Name, h.Typeflag)
	}
	if err := setOwnerMode(target, h); err != nil {
		return err
	}
	if h.Typeflag == tar.TypeDir {
		return nil
	}
	return setTimes(target, h)
}

// setOwnerMode sets owner then mode: chown clears the setuid and setgid bits.
func setOwnerMode(target string, h *tar.Header) error {
	if err := unix.Lchown(target, h.Uid, h.Gid); err != nil {
		return err
	}
	return unix.Chmod(target, uint32(h.Mode&0o7777))
}

func setTimes(target string, h *tar.Header) error {
	atime := h.AccessTime
	if atime.IsZero() {
		atime = h.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, target, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// whiteout hides parent/base of the layers below: overlayfs reads a 0/0 character
// device as "deleted".
func whiteout(dir, parent, base string) error {
	if base == "" || base == "." || base == ".." {
		return unsafe("whiteout of %q in %q", base, parent)
	}
	target := filepath.Join(dir, filepath.FromSlash(parent), base)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if err := os.RemoveAll(target); err != nil {
		return err
	}
	return unix.Mknod(target, unix.S_IFCHR, int(unix.Mkdev(0, 0)))
}

// opaque marks the folder name as hiding everything the layers below have in it.
func opaque(dir, name string) error {
	target := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	return unix.Lsetxattr(target, opaqueXattr, []byte("y"), 0)
}
