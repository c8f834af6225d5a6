package build

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"noops/internal/errkind"
)

// CopyTree copies the tree at src into dst, leaving out the paths (relative
// to src) that skip names, and refusing links that leave the tree. It
// returns the number of files copied.
func CopyTree(src, dst string, skip func(rel string) bool) (int, error) {
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel != "." && skip(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(link) || strings.HasPrefix(filepath.Clean(filepath.Join(filepath.Dir(rel), link)), "..") {
				return errkind.Errorf(errkind.Invalid, "%s links outside the app (%s)", rel, link)
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			n++
			return CopyFile(p, target, 0o644)
		}
		return errkind.Errorf(errkind.Invalid, "%s is not a regular file, folder or link", rel)
	})
	if err != nil {
		return n, fmt.Errorf("copying %s: %w", filepath.Base(src), err)
	}
	return n, nil
}

// CopyFile copies src to the new file dst, executable (0755) when src is
// executable by its owner, else with mode.
func CopyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if fi, err := in.Stat(); err == nil && fi.Mode()&0o100 != 0 {
		mode = 0o755
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
