package image

import (
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
)

// PruneOptions say how PruneDirs trims a folder of caches.
type PruneOptions struct {
	// Max is how many bytes the caches may use together.
	Max int64
	// Drop says which caches go whatever their size (those of deleted
	// apps); nil drops none.
	Drop func(name string) bool
	// Claim is asked just before a cache is removed; it refuses (false)
	// one in use, such as the build cache of an app being built. When it
	// accepts, release is called once the cache has been moved aside
	// (which is quick; removing it happens after). nil accepts all.
	Claim func(name string) (release func(), ok bool)
	// Memo is a file where PruneDirs remembers each cache's size with the
	// cache folder's modification time, so that a cache whose folder did
	// not change since is not walked again. "" walks every cache every
	// time.
	Memo string
}

// PruneReport says what PruneDirs found and did.
type PruneReport struct {
	Total   int64    // bytes the caches used before
	Removed []string // caches removed, in the order they were
	Freed   int64    // bytes they used
	Busy    []string // caches that were to go but Claim refused
}

// pruneTrash starts the names of caches moved aside for removal;
// PruneDirs removes those a crash left behind.
const pruneTrash = ".prune-"

// PruneDirs trims the caches in root, one sub-folder each, least recently
// used first, until together they use at most o.Max bytes of disk, and
// removes those o.Drop names whatever the total. A cache is used when its
// folder's own modification time changes, which every build does (it
// makes and removes its work folder there); sizes are disk usage, as du
// counts it. Names starting with "." are not caches. A missing root is
// empty. One PruneDirs at a time per root: the caller serialises them.
func PruneDirs(root string, o PruneOptions) (PruneReport, error) {
	var rep PruneReport
	des, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("pruning caches in %s: %w", root, err)
	}
	memo := readMemo(o.Memo)
	type cache struct {
		name string
		used time.Time
		size int64
	}
	var caches []cache
	next := dirMemo{}
	var errs []error
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(root, name)
		if strings.HasPrefix(name, pruneTrash) {
			if err := removeAll(path); err != nil {
				errs = append(errs, fmt.Errorf("removing %s: %w", path, err))
			}
			continue
		}
		if strings.HasPrefix(name, ".") || !de.IsDir() {
			continue
		}
		fi, err := os.Lstat(path)
		if err != nil {
			continue // removed meanwhile
		}
		c := cache{name: name, used: fi.ModTime()}
		if m, ok := memo[name]; ok && m.MTime == c.used.UnixNano() {
			c.size = m.Size
		} else if c.size, err = diskUsage(path); err != nil {
			errs = append(errs, fmt.Errorf("measuring %s: %w", path, err))
			continue
		}
		next[name] = memoEntry{MTime: c.used.UnixNano(), Size: c.size}
		caches = append(caches, c)
		rep.Total += c.size
	}
	slices.SortFunc(caches, func(a, b cache) int {
		if c := a.used.Compare(b.used); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	total := rep.Total
	remove := func(c cache) {
		release := func() {}
		if o.Claim != nil {
			var ok bool
			if release, ok = o.Claim(c.name); !ok {
				rep.Busy = append(rep.Busy, c.name)
				return
			}
		}
		away := filepath.Join(root, fmt.Sprintf("%s%s-%d", pruneTrash, c.name, time.Now().UnixNano()))
		err := os.Rename(filepath.Join(root, c.name), away)
		release()
		if err != nil {
			errs = append(errs, fmt.Errorf("removing cache %s: %w", c.name, err))
			return
		}
		delete(next, c.name)
		total -= c.size
		rep.Removed = append(rep.Removed, c.name)
		rep.Freed += c.size
		if err := removeAll(away); err != nil {
			errs = append(errs, fmt.Errorf("removing cache %s: %w", c.name, err))
		}
	}
	var rest []cache
	for _, c := range caches {
		if o.Drop != nil && o.Drop(c.name) {
			remove(c)
		} else {
			rest = append(rest, c)
		}
	}
	for _, c := range rest {
		if total <= o.Max {
			break
		}
		remove(c)
	}
	if o.Memo != "" && !memo.equal(next) {
		if err := writeMemo(o.Memo, next); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("pruning caches in %s: %w", root, err)
	}
	return rep, nil
}

type memoEntry struct {
	MTime int64 `json:"mtime"` // the folder's modification time, Unix nanoseconds
	Size  int64 `json:"size"`
}

type dirMemo map[string]memoEntry

func (m dirMemo) equal(o dirMemo) bool {
	if len(m) != len(o) {
		return false
	}
	for k, v := range m {
		if w, ok := o[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// readMemo reads a memo file; one missing or unreadable is empty (every
// cache is then measured again).
func readMemo(path string) dirMemo {
	m := dirMemo{}
	if path == "" {
		return m
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	if json.Unmarshal(b, &m) != nil {
		return dirMemo{}
	}
	return m
}

func writeMemo(path string, m dirMemo) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, b); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// diskUsage is the disk space the tree at dir uses, as du counts it
// (allocated blocks; hard links counted once). Entries removed while it
// walks are skipped.
func diskUsage(dir string) (int64, error) {
	var n int64
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			n += fi.Size()
			return nil
		}
		if st.Nlink > 1 && !fi.IsDir() {
			key := [2]uint64{uint64(st.Dev), uint64(st.Ino)}
			if seen[key] {
				return nil
			}
			seen[key] = true
		}
		n += int64(st.Blocks) * 512
		return nil
	})
	return n, err
}

// removeAll removes the tree at dir, making its folders writable first if
// that is what stops it (a non-root server removing read-only folders).
func removeAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
