// Package source packs an app folder into the archive that `noops deploy`
// uploads (tar + gzip, honouring .gitignore and .noopsignore) and unpacks
// such an archive on the server with limits that a hostile client cannot
// get around (no path escapes, no devices, bounded size and file count).
package source

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	ignore "github.com/sabhiram/go-gitignore"
)

// IgnoreFiles are read from the folder's root, in this order.
var IgnoreFiles = []string{".gitignore", ".noopsignore"}

// alwaysIgnored never leaves the developer's machine.
var alwaysIgnored = []string{".git/", ".hg/", ".svn/", ".noops/", "noops-data/"}

// Stats describes a packed folder.
type Stats struct {
	Files   int
	Bytes   int64 // sum of file sizes before compression
	Skipped int   // entries left out by ignore rules
}

// Matcher decides what a pack leaves out.
type Matcher struct{ rules []*ignore.GitIgnore }

// LoadIgnore reads the ignore files at dir's root.
func LoadIgnore(dir string) (*Matcher, error) {
	m := &Matcher{rules: []*ignore.GitIgnore{ignore.CompileIgnoreLines(alwaysIgnored...)}}
	for _, name := range IgnoreFiles {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		m.rules = append(m.rules, ignore.CompileIgnoreLines(strings.Split(string(data), "\n")...))
	}
	return m, nil
}

// Ignored reports whether rel (slash-separated, relative to the root) is
// left out. Directories are matched with a trailing slash too, as git does.
func (m *Matcher) Ignored(rel string, dir bool) bool {
	for _, r := range m.rules {
		if r.MatchesPath(rel) || (dir && r.MatchesPath(rel+"/")) {
			return true
		}
	}
	return false
}

// Pack writes dir as a gzipped tar to w. Entries are sorted, owners and
// times are dropped, so the same tree packs the same way. Only regular
// files, folders and symlinks that stay inside the tree are packed.
func Pack(dir string, w io.Writer) (Stats, error) {
	var st Stats
	m, err := LoadIgnore(dir)
	if err != nil {
		return st, err
	}
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	err = walk(dir, "", m, &st, tw)
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	return st, err
}

func walk(root, rel string, m *Matcher, st *Stats, tw *tar.Writer) error {
	entries, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return fmt.Errorf("reading folder %s: %w", filepath.Join(root, rel), err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		name := filepath.ToSlash(filepath.Join(rel, e.Name()))
		if m.Ignored(name, e.IsDir()) {
			st.Skipped++
			continue
		}
		info, err := e.Info()
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		if err := add(root, name, info, st, tw); err != nil {
			return err
		}
		if info.IsDir() {
			if err := walk(root, name, m, st, tw); err != nil {
				return err
			}
		}
	}
	return nil
}

func add(root, name string, info fs.FileInfo, st *Stats, tw *tar.Writer) error {
	full := filepath.Join(root, name)
	h := &tar.Header{Name: name, Mode: int64(info.Mode().Perm()), Format: tar.FormatPAX}
	switch {
	case info.IsDir():
		h.Typeflag, h.Name = tar.TypeDir, name+"/"
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(full)
		if err != nil {
			return fmt.Errorf("reading link %s: %w", name, err)
		}
		if filepath.IsAbs(target) || !filepath.IsLocal(filepath.Join(filepath.Dir(name), target)) {
			st.Skipped++ // points outside the app: meaningless on the server
			return nil
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, target
	case info.Mode().IsRegular():
		h.Typeflag, h.Size = tar.TypeReg, info.Size()
	default:
		st.Skipped++ // sockets, devices, pipes
		return nil
	}
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("packing %s: %w", name, err)
	}
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(full)
	if err != nil {
		return fmt.Errorf("packing %s: %w", name, err)
	}
	defer f.Close()
	n, err := io.CopyN(tw, f, h.Size)
	if err != nil {
		return fmt.Errorf("packing %s (changed while packing?): %w", name, err)
	}
	st.Files++
	st.Bytes += n
	return nil
}
