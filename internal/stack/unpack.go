package stack

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
)

// file is one entry of a stack layer: a header with a clean relative name
// and, for a regular file, where its contents are.
type file struct {
	hdr  tar.Header
	pkg  string // the package that ships it; "" for files noops writes
	data []byte // contents of a file noops writes
	// contents of a package's file, in its package's spool
	spool *os.File
	off   int64
}

// contents opens a reader of f's contents.
func (f *file) contents() io.Reader {
	if f.spool == nil {
		return bytes.NewReader(f.data)
	}
	return io.NewSectionReader(f.spool, f.off, f.hdr.Size)
}

// unpacked is one package's data, ready to merge.
type unpacked struct {
	pkg     Package
	control Paragraph // its control file
	files   []*file
	spool   *os.File // the contents of its regular files, end to end
}

// mergedUsr maps the top-level folders that a merged-/usr system links
// into /usr; bookworm's packages still ship files under them.
var mergedUsr = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// cleanName turns a name from a package's data into a clean relative name
// in the merged-/usr tree ("" for the root), refusing names that leave it.
func cleanName(name string) (string, error) {
	s := strings.TrimPrefix(name, "./")
	for _, e := range strings.Split(s, "/") {
		if e == ".." {
			return "", fmt.Errorf("entry %q leaves the root", name)
		}
	}
	n := strings.TrimPrefix(path.Clean("/"+s), "/")
	if n == "" {
		return "", nil
	}
	top, _, _ := strings.Cut(n, "/")
	for _, m := range mergedUsr {
		if top == m {
			return "usr/" + n, nil
		}
	}
	return n, nil
}

// unpackedFormat names the layout of the unpacked cache; bump it when
// what an entry holds changes (keepFile, cleanName, the header fields).
const unpackedFormat = "v1"

// unpackedCache holds each package's data as stack layers use it, keyed
// by the SHA-256 of its .deb file: a folder with its control file, an
// index of its entries and their contents end to end. A folder is renamed
// into place when whole, so that only the first build of a package runs
// dpkg-deb on it.
type unpackedCache struct{ dir string }

// entry is one file in an unpacked cache index.
type entry struct {
	Name     string `json:"n"`
	Type     byte   `json:"t"`
	Mode     int64  `json:"m"`
	UID      int    `json:"u,omitempty"`
	GID      int    `json:"g,omitempty"`
	Linkname string `json:"l,omitempty"`
	Size     int64  `json:"s,omitempty"`
	Offset   int64  `json:"o,omitempty"`
}

// unpackAll returns the unpacked data of every package of pkgs, unpacking
// those not in the cache from their files in debs, in parallel.
func (c unpackedCache) unpackAll(ctx context.Context, pkgs []Package, debs debCache) ([]*unpacked, error) {
	out := make([]*unpacked, len(pkgs))
	errs := make([]error, len(pkgs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(max(4, runtime.GOMAXPROCS(0)), len(pkgs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				out[i], errs[i] = c.get(ctx, pkgs[i], debs.path(pkgs[i]))
			}
		}()
	}
	for i := range pkgs {
		work <- i
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(out)
		return nil, err
	}
	return out, nil
}

func closeAll(parts []*unpacked) {
	for _, u := range parts {
		if u != nil && u.spool != nil {
			u.spool.Close()
		}
	}
}

func (c unpackedCache) path(p Package) string {
	return filepath.Join(c.dir, unpackedFormat, p.SHA256)
}

// get returns p's unpacked data, unpacking deb into the cache first when
// it is not there.
func (c unpackedCache) get(ctx context.Context, p Package, deb string) (*unpacked, error) {
	dir := c.path(p)
	u, err := c.load(p, dir)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		// Damaged: unpack it again.
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("unpacking %s: %w", p.Name, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("unpacking %s: %w", p.Name, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), tmpPrefix+p.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("unpacking %s: %w", p.Name, err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := unpackDeb(ctx, p, deb, tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) && !isNotEmpty(err) {
		return nil, fmt.Errorf("unpacking %s: %w", p.Name, err)
	}
	return c.load(p, dir)
}

func isNotEmpty(err error) bool {
	var le *os.LinkError
	return errors.As(err, &le) && errors.Is(le.Err, syscall.ENOTEMPTY)
}

// load reads p's unpacked data from dir; fs.ErrNotExist when it is not
// there.
func (c unpackedCache) load(p Package, dir string) (*unpacked, error) {
	idx, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	ctl, err := os.ReadFile(filepath.Join(dir, "control"))
	if err != nil {
		return nil, err
	}
	var entries []entry
	if err := json.Unmarshal(idx, &entries); err != nil {
		return nil, fmt.Errorf("reading unpacked %s %s: %w", p.Name, p.Version, err)
	}
	control, err := parseOne(ctl)
	if err != nil {
		return nil, fmt.Errorf("reading unpacked %s %s: %w", p.Name, p.Version, err)
	}
	spool, err := os.Open(filepath.Join(dir, "data"))
	if err != nil {
		return nil, err
	}
	u := &unpacked{pkg: p, control: control, spool: spool, files: make([]*file, len(entries))}
	for i, e := range entries {
		u.files[i] = &file{pkg: p.Name, spool: spool, off: e.Offset, hdr: tar.Header{
			Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Uid: e.UID, Gid: e.GID, Linkname: e.Linkname, Size: e.Size,
		}}
	}
	return u, nil
}

// parseOne parses a control file of exactly one paragraph.
func parseOne(b []byte) (Paragraph, error) {
	var control Paragraph
	err := ParseControl(bytes.NewReader(b), func(q Paragraph) error {
		if control != nil {
			return errors.New("more than one paragraph")
		}
		control = q
		return nil
	})
	if err == nil && control == nil {
		err = errors.New("no paragraph")
	}
	return control, err
}

// unpackDeb writes the control file, the kept entries and their contents
// of the package file deb into the folder dir.
func unpackDeb(ctx context.Context, p Package, deb, dir string) error {
	var ctl bytes.Buffer
	if err := dpkgDeb(ctx, &ctl, "--field", deb); err != nil {
		return fmt.Errorf("reading the control file of %s: %w", p.Name, err)
	}
	control, err := parseOne(ctl.Bytes())
	if err == nil && (control.Get("Package") != p.Name || control.Get("Version") != p.Version) {
		err = fmt.Errorf("the file is %s %s", control.Get("Package"), control.Get("Version"))
	}
	if err != nil {
		return fmt.Errorf("reading the control file of %s %s: %w", p.Name, p.Version, err)
	}
	data, err := os.Create(filepath.Join(dir, "data"))
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", p.Name, err)
	}
	defer data.Close()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := dpkgDeb(ctx, pw, "--fsys-tarfile", deb)
		pw.CloseWithError(err)
		done <- err
	}()
	entries, err := readData(pr, p.Name, data)
	if err == nil {
		_, err = io.Copy(io.Discard, pr) // the tar's end padding
	}
	pr.CloseWithError(errors.New("stopped reading"))
	if runErr := <-done; runErr != nil && err == nil {
		err = runErr
	}
	if err == nil {
		err = data.Sync()
	}
	if err != nil {
		return fmt.Errorf("unpacking %s %s: %w", p.Name, p.Version, err)
	}
	idx, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"control": []byte(control.String()), "index.json": idx} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("unpacking %s: %w", p.Name, err)
		}
	}
	return nil
}

// readData reads a package's data tar, keeping the entries images keep
// and writing the contents of their regular files to data.
func readData(r io.Reader, pkg string, data io.Writer) ([]entry, error) {
	tr := tar.NewReader(r)
	var out []entry
	var off int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		name, err := cleanName(h.Name)
		if err != nil {
			return nil, err
		}
		if name == "" || !keepFile(pkg, name) {
			continue
		}
		e := entry{Name: name, Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid}
		switch h.Typeflag {
		case tar.TypeDir:
		case tar.TypeReg, tar.TypeRegA:
			e.Type = tar.TypeReg
			e.Mode &^= 0o6000 // no set-user-ID or set-group-ID programs
			n, err := io.Copy(data, tr)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", name, err)
			}
			if n != h.Size {
				return nil, fmt.Errorf("reading %s: %d bytes of %d", name, n, h.Size)
			}
			e.Size, e.Offset = n, off
			off += n
		case tar.TypeSymlink:
			e.Linkname = h.Linkname
		case tar.TypeLink:
			target, err := cleanName(h.Linkname)
			if err != nil || target == "" {
				return nil, fmt.Errorf("hard link %s to %q: outside the package", name, h.Linkname)
			}
			e.Linkname = target
		default:
			return nil, fmt.Errorf("%s is of type %q, which stack images may not contain", name, h.Typeflag)
		}
		out = append(out, e)
	}
}

// dpkgDeb runs dpkg-deb with args, writing its output to w.
func dpkgDeb(ctx context.Context, w io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "dpkg-deb", args...)
	cmd.Stdout = w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s := strings.TrimSpace(stderr.String()); s != "" {
			return fmt.Errorf("dpkg-deb %s %s: %w: %s", args[0], filepath.Base(args[len(args)-1]), err, tail(s, 1000))
		}
		return fmt.Errorf("dpkg-deb %s %s: %w", args[0], filepath.Base(args[len(args)-1]), err)
	}
	return nil
}
