package forensics

import (
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
	"sync"
	"syscall"
	"unicode/utf8"

	"noops/internal/errkind"
)

// copyBuffers hold the buffers files are written through: large, for
// few system calls.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// errBudget says the output budget (Options.MaxOutput) is spent.
var errBudget = errors.New("the output budget is spent")

// output writes files under the output directory and nowhere else: every
// name goes through os.Root (which refuses "..", absolute names and
// symbolic links leading out) and is checked with filepath.Rel as well.
// Names are never reused: a taken name gets "~2", "~3" before its
// extension.
//
// It is safe for concurrent use. Names handed out by reserve are taken
// by no one else, so that objects written in parallel get the names they
// would get one by one.
type output struct {
	root  *os.Root
	dir   string // the output directory, absolute
	limit int64

	mu       sync.Mutex
	written  int64
	files    int
	reserved map[string]bool
	dirs     map[string]bool // directories known to exist
}

func openOutput(dir string, limit int64) (*output, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving the output directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, errkind.E(fileKind(err), fmt.Errorf("creating the output directory: %w", err))
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, errkind.E(fileKind(err), fmt.Errorf("opening the output directory: %w", err))
	}
	return &output{root: root, dir: abs, limit: limit, reserved: map[string]bool{}, dirs: map[string]bool{}}, nil
}

func (o *output) Close() error { return o.root.Close() }

// inside checks that rel is a local, slash-separated name under the
// output directory.
func (o *output) inside(rel string) error {
	native := filepath.FromSlash(rel)
	if !filepath.IsLocal(native) {
		return fmt.Errorf("%q is not a name inside the output directory", rel)
	}
	r, err := filepath.Rel(o.dir, filepath.Join(o.dir, native))
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%q leads out of the output directory", rel)
	}
	return nil
}

// mkdirs makes dir and its parents, mode 0755.
func (o *output) mkdirs(dir string) error {
	if dir == "." || dir == "" {
		return nil
	}
	if err := o.inside(dir); err != nil {
		return err
	}
	o.mu.Lock()
	known := o.dirs[dir]
	o.mu.Unlock()
	if known {
		return nil
	}
	// One level at a time, so that the directories made here, and only
	// they, are set to 0755 whatever the umask.
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		if err := o.mkdir(dir[:i]); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	fi, err := o.root.Stat(filepath.FromSlash(dir))
	if err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("creating %s: %w", dir, syscall.ENOTDIR)
	}
	o.mu.Lock()
	o.dirs[dir] = true
	o.mu.Unlock()
	return nil
}

// mkdir makes one directory, mode 0755.
func (o *output) mkdir(name string) error {
	if err := o.root.Mkdir(filepath.FromSlash(name), 0o755); err != nil {
		return err
	}
	return o.root.Chmod(filepath.FromSlash(name), 0o755)
}

// reserve returns the first variant of rel that no file has and no one
// reserved, and reserves it with the names of what is written beside
// it: rel.unpacked and rel.extracted.
func (o *output) reserve(rel string) string {
	rel = path.Clean(rel)
	o.mu.Lock()
	defer o.mu.Unlock()
	dir, base := path.Split(rel)
	for i := 1; ; i++ {
		name := path.Join(dir, variant(base, i))
		if o.inside(name) != nil {
			return name // refused when written
		}
		if o.reserved[name] {
			continue
		}
		if _, err := o.root.Lstat(filepath.FromSlash(name)); err == nil && i < 10000 {
			continue
		}
		for _, n := range []string{name, name + ".unpacked", name + ".extracted"} {
			o.reserved[n] = true
		}
		return name
	}
}

// taken reports whether name was reserved; a caller that reserved it
// passes mine for its first try.
func (o *output) taken(name string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.reserved[name]
}

// create makes a new file at rel, or at the first free variant of rel,
// with its parent directories; it returns the file and the name used.
// rel may be a name the caller reserved (mine). When a parent cannot be
// made (a file of that name is in the way) the name is flattened into
// its first directory that can be.
func (o *output) create(rel string, mine bool) (*os.File, string, error) {
	rel = path.Clean(rel)
	if err := o.inside(rel); err != nil {
		return nil, "", err
	}
	dir, base := path.Split(rel)
	dir = path.Clean(dir)
	if err := o.mkdirs(dir); err != nil {
		// A file is where a directory should be ("a" and "a/b" in one
		// archive): keep the entry, flattened one level up.
		parent, last := path.Split(dir)
		if !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, fs.ErrExist) {
			return nil, "", err
		}
		return o.create(path.Join(parent, last+"_"+base), false)
	}
	for i := 1; ; i++ {
		name := path.Join(dir, variant(base, i))
		if err := o.inside(name); err != nil {
			return nil, "", err
		}
		if !(mine && i == 1) && o.taken(name) {
			continue
		}
		f, err := o.root.OpenFile(filepath.FromSlash(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) && i < 10000 {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("creating %s: %w", name, err)
		}
		// The umask may have taken bits away; evidence files are 0644.
		if err := f.Chmod(0o644); err != nil {
			f.Close()
			return nil, "", fmt.Errorf("setting the mode of %s: %w", name, err)
		}
		o.mu.Lock()
		o.files++
		o.mu.Unlock()
		return f, name, nil
	}
}

// mkdirNew makes a new directory at rel or at its first free variant;
// rel may be reserved by the caller (x.unpacked for the owner of x).
func (o *output) mkdirNew(rel string) (string, error) {
	rel = path.Clean(rel)
	dir, base := path.Split(rel)
	if err := o.mkdirs(path.Clean(dir)); err != nil {
		return "", err
	}
	for i := 1; ; i++ {
		name := path.Join(dir, variant(base, i))
		if err := o.inside(name); err != nil {
			return "", err
		}
		if i > 1 && o.taken(name) {
			continue
		}
		err := o.mkdir(name)
		if errors.Is(err, fs.ErrExist) && i < 10000 {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("creating %s: %w", name, err)
		}
		return name, nil
	}
}

// write copies size bytes of r into a new file at rel (or a free
// variant) and returns the name used and the SHA-256 of what was
// written. A short source is not an error: the count says what was
// written.
func (o *output) write(rel string, mine bool, r io.Reader, size int64) (name, sum string, n int64, err error) {
	o.mu.Lock()
	if o.limit > 0 && o.written+size > o.limit {
		w := o.written
		o.mu.Unlock()
		return "", "", 0, fmt.Errorf("writing %s (%d bytes): %w (%d of %d bytes written)", rel, size, errBudget, w, o.limit)
	}
	o.written += size // given back below if less is written
	o.mu.Unlock()
	f, name, err := o.create(rel, mine)
	if err != nil {
		o.mu.Lock()
		o.written -= size
		o.mu.Unlock()
		return "", "", 0, err
	}
	h := sha256.New()
	buf := copyBuffers.Get().(*[]byte)
	n, err = io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(r, size), *buf)
	copyBuffers.Put(buf)
	o.mu.Lock()
	o.written += n - size
	o.mu.Unlock()
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing %s: %w", name, cerr)
	}
	if err != nil {
		return name, "", n, fmt.Errorf("writing %s: %w", name, err)
	}
	return name, hex.EncodeToString(h.Sum(nil)), n, nil
}

// writeFile writes a small file whole (the manifest, the summary),
// replacing what was there.
func (o *output) writeFile(rel string, data []byte) error {
	if err := o.inside(rel); err != nil {
		return err
	}
	f, err := o.root.OpenFile(filepath.FromSlash(rel), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("creating %s: %w", rel, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	return nil
}

// variant returns name for i == 1, else name with "~i" before its
// extension: "random.bin", "random~2.bin".
func variant(name string, i int) string {
	if i == 1 {
		return name
	}
	ext := path.Ext(name)
	if ext == name || len(ext) > 16 {
		ext = ""
	}
	return fmt.Sprintf("%s~%d%s", strings.TrimSuffix(name, ext), i, ext)
}

// maxNameBytes bounds a file name written for an object.
const maxNameBytes = 200

// safeName turns a name a protocol gave (untrusted: a RETR argument, a
// URL segment, an attachment's filename) into one path component: its
// last slash- or backslash-separated part, control characters and
// invalid UTF-8 replaced by '_', a leading dot kept only when more
// follows, cut to maxNameBytes. An empty result is fallback.
func safeName(name, fallback string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = strings.TrimRight(name, "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '_'
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if len(name) > maxNameBytes {
		cut := maxNameBytes
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
	}
	if name == "" || name == "." || name == ".." {
		return fallback
	}
	return name
}
