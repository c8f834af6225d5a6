package build

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"noops/internal/errkind"
)

// SourceDigest returns "sha256:<hex>" naming the tree at dir: its relative
// paths, kinds of file, executable bits, link targets and file contents.
// Modification times, other permission bits and where dir is do not count.
func SourceDigest(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		// Each entry is "<kind> <path>\x00<content>\x00": paths and link
		// targets cannot hold NUL, and contents are fixed-size hashes.
		switch t := d.Type(); {
		case t.IsDir():
			fmt.Fprintf(h, "d %s\x00\x00", rel)
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			kind := "f"
			if fi.Mode()&0o111 != 0 {
				kind = "x"
			}
			sum, err := fileSum(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s %s\x00%s\x00", kind, rel, sum)
		case t&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "l %s\x00%s\x00", rel, target)
		default:
			return errkind.Errorf(errkind.Invalid, "%s is a %v, which an app's source may not contain", rel, t)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hashing source: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func fileSum(p string) (string, error) {
	f, err := os.Open(p)
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
