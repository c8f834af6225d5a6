package unpack

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"regexp"
	"strings"
)

// errBudget stops a copy when a spool's limit is reached.
var errBudget = errors.New("unpack budget reached")

// Which limit a spool enforces, for the warning when it is hit.
const (
	budgetRatio = "ratio"
	budgetTotal = "total"
)

// blob is the content of one node, in memory or in a temporary file.
type blob struct {
	ra   io.ReaderAt
	size int64
	mem  int64    // bytes of memory held, counted in walker.mem
	file *os.File // set when the content was spilled to disk
}

// spool receives the bytes a step produces. It hashes them, keeps the
// statistics the scoring needs, scans them for the flag pattern and, when
// store is set, keeps them: in memory while the walk's memory budget lasts,
// then in a temporary file. It refuses bytes past limit with errBudget.
type spool struct {
	w       *walker
	store   bool
	counted bool   // bytes count against Options.MaxTotal
	limit   int64  // bytes accepted at most
	budget  string // which budget limit stands for
	n       int64
	buf     []byte
	file    *os.File
	sum     hash.Hash
	st      stats
	flags   *flagScanner
	err     error // storage failure; the spool takes no more bytes
}

func (w *walker) newSpool(limit int64, budget string) *spool {
	return &spool{w: w, store: true, counted: true, limit: limit, budget: budget,
		sum: sha256.New(), flags: newFlagScanner(w.opt.Flag)}
}

func (s *spool) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	short := false
	if room := s.limit - s.n; int64(len(p)) > room {
		p, short = p[:max(room, 0)], true
	}
	if len(p) > 0 {
		if s.store {
			if err := s.save(p); err != nil {
				s.err = err
				return 0, err
			}
		}
		s.sum.Write(p)
		s.st.add(p)
		s.flags.Write(p)
		s.n += int64(len(p))
		if s.counted {
			s.w.total += int64(len(p))
		}
	}
	if short {
		return len(p), errBudget
	}
	return len(p), nil
}

// hint reserves memory for an expected size (from an archive header,
// say), within the spool's limit and the walk's memory budget.
func (s *spool) hint(size int64) {
	size = min(size, s.limit, s.w.opt.MaxMemory-s.w.mem, maxHint)
	if size > int64(cap(s.buf)) && s.file == nil && s.n == 0 {
		s.buf = make([]byte, 0, size)
		s.w.mem += size
	}
}

// maxHint caps what hint reserves, since headers can lie.
const maxHint = 64 << 20

// save keeps p, moving the content to a temporary file when memory runs out.
func (s *spool) save(p []byte) error {
	if s.file == nil && len(s.buf)+len(p) > cap(s.buf) && s.w.mem+int64(len(s.buf)+len(p)-cap(s.buf)) > s.w.opt.MaxMemory {
		f, err := s.w.tempFile()
		if err != nil {
			return err
		}
		if _, err := f.Write(s.buf); err != nil {
			return fmt.Errorf("writing temporary file %s: %w", f.Name(), err)
		}
		s.w.mem -= int64(cap(s.buf))
		s.buf, s.file = nil, f
	}
	if s.file != nil {
		if _, err := s.file.Write(p); err != nil {
			return fmt.Errorf("writing temporary file %s: %w", s.file.Name(), err)
		}
		return nil
	}
	if need := len(s.buf) + len(p); need > cap(s.buf) {
		grown := max(need, 2*cap(s.buf), 4096)
		if s.w.mem+int64(grown-cap(s.buf)) > s.w.opt.MaxMemory {
			grown = need
		}
		nb := make([]byte, len(s.buf), grown)
		copy(nb, s.buf)
		s.w.mem += int64(grown - cap(s.buf))
		s.buf = nb
	}
	s.buf = append(s.buf, p...)
	return nil
}

// blob hands the kept content over; the spool must not be written after.
func (s *spool) blob() *blob {
	s.flags.flush()
	if s.file != nil {
		return &blob{ra: s.file, size: s.n, file: s.file}
	}
	return &blob{ra: bytes.NewReader(s.buf), size: s.n, mem: int64(cap(s.buf))}
}

// release frees a blob's memory or temporary file.
func (w *walker) release(b *blob) {
	if b == nil {
		return
	}
	w.mem -= b.mem
	b.mem = 0
	if b.file != nil {
		b.file.Close()
		os.Remove(b.file.Name())
		b.file = nil
	}
	b.ra, b.size = bytes.NewReader(nil), 0
}

// stats are byte statistics gathered in one pass: a histogram, the bytes
// in well-formed multi-byte UTF-8 sequences, and, in the first u16Len
// bytes, the (printable, NUL) pairs at even offsets that mark UTF-16LE
// text.
type stats struct {
	n    int64
	hist [256]int64
	utf8 int64
	u16  int64
	need int // UTF-8 continuation bytes still expected
	run  int // bytes of the current UTF-8 sequence so far
	odd  bool
	prev byte
}

func (s *stats) add(p []byte) {
	if s.n < u16Len {
		odd, prev := s.odd, s.prev
		for _, b := range p[:min(int64(len(p)), u16Len-s.n)] {
			if odd && b == 0 && textByte(prev) {
				s.u16++
			}
			prev, odd = b, !odd
		}
		s.odd, s.prev = odd, prev
	}
	h := &s.hist
	need, run := s.need, s.run
	var multi int64
	for _, b := range p {
		h[b]++
		if b < 0x80 {
			need = 0
			continue
		}
		if need > 0 && b&0xC0 == 0x80 {
			run++
			if need--; need == 0 {
				multi += int64(run)
			}
			continue
		}
		switch {
		case b >= 0xC2 && b <= 0xDF:
			need, run = 1, 1
		case b >= 0xE0 && b <= 0xEF:
			need, run = 2, 1
		case b >= 0xF0 && b <= 0xF4:
			need, run = 3, 1
		default:
			need = 0
		}
	}
	s.need, s.run = need, run
	s.utf8 += multi
	s.n += int64(len(p))
}

// u16Len is how much of the content the UTF-16LE count looks at.
const u16Len = 64 << 10

// textByte reports printable ASCII and the whitespace of text.
func textByte(b byte) bool { return b >= 0x20 && b < 0x7f || b == '\t' || b == '\n' || b == '\r' }

// printable is the share of bytes that read as text: printable ASCII,
// tab, CR, LF and well-formed UTF-8, or, for UTF-16LE text, the printable
// pairs. Empty content scores 0.
func (s *stats) printable() float64 {
	if s.n == 0 {
		return 0
	}
	var t int64
	for b := 0x20; b < 0x7f; b++ {
		t += s.hist[b]
	}
	t += s.hist['\t'] + s.hist['\n'] + s.hist['\r'] + s.utf8
	return max(float64(t)/float64(s.n), float64(2*s.u16)/float64(min(s.n, u16Len)))
}

// count sums the histogram over the bytes of set.
func (s *stats) count(set string) int64 {
	var t int64
	for i := 0; i < len(set); i++ {
		t += s.hist[set[i]]
	}
	return t
}

// Flag matching bounds: a match is found when it is at most flagOverlap
// bytes long; at most maxFlags distinct matches of at most maxFlagLen
// bytes are kept per object.
const (
	flagWindow  = 256 << 10
	flagOverlap = 4 << 10
	maxFlags    = 32
	maxFlagLen  = 512
)

// flagScanner finds the flag pattern in a stream: it scans windows that
// overlap by flagOverlap bytes and keeps each match once.
type flagScanner struct {
	re    *regexp.Regexp
	buf   []byte
	base  int64 // stream offset of buf[0]
	next  int64 // stream offset before which matches were already taken
	seen  map[string]bool
	found []string
	more  bool // matches beyond maxFlags were dropped
}

func newFlagScanner(re *regexp.Regexp) *flagScanner {
	if re == nil {
		return nil
	}
	return &flagScanner{re: re, seen: map[string]bool{}}
}

func (f *flagScanner) Write(p []byte) {
	if f == nil || f.more {
		return
	}
	for len(p) > 0 {
		k := min(len(p), flagWindow+flagOverlap-len(f.buf))
		f.buf = append(f.buf, p[:k]...)
		p = p[k:]
		if len(f.buf) == flagWindow+flagOverlap {
			f.scan(false)
		}
	}
}

// scan takes the matches that start in the window; unless final, those
// starting in the overlap wait for the next window.
func (f *flagScanner) scan(final bool) {
	limit := len(f.buf)
	if !final {
		limit -= flagOverlap
	}
	for _, m := range f.re.FindAllIndex(f.buf, -1) {
		at := f.base + int64(m[0])
		if m[0] >= limit {
			break
		}
		if at < f.next || m[1] == m[0] {
			continue
		}
		f.next = f.base + int64(m[1])
		f.add(f.buf[m[0]:m[1]])
	}
	n := copy(f.buf, f.buf[limit:])
	f.buf = f.buf[:n]
	f.base += int64(limit)
	f.next = max(f.next, f.base)
}

func (f *flagScanner) add(m []byte) {
	s := strings.ToValidUTF8(cut(string(m), maxFlagLen), "\uFFFD")
	if f.seen[s] {
		return
	}
	if len(f.found) == maxFlags {
		f.more = true
		return
	}
	f.seen[s] = true
	f.found = append(f.found, s)
}

// flush scans what is left; call it once, at the end of the stream.
func (f *flagScanner) flush() {
	if f == nil || f.more {
		return
	}
	f.scan(true)
	f.buf = nil
}

// result is the matches in stream order.
func (f *flagScanner) result() []string {
	if f == nil {
		return nil
	}
	return f.found
}

// tempFile creates a file in the walk's private temporary directory.
func (w *walker) tempFile() (*os.File, error) {
	if w.tmpdir == "" {
		dir, err := os.MkdirTemp(w.opt.TempDir, "noops-unpack-")
		if err != nil {
			return nil, fmt.Errorf("creating temporary directory: %w", err)
		}
		w.tmpdir = dir
	}
	f, err := os.CreateTemp(w.tmpdir, "obj-")
	if err != nil {
		return nil, fmt.Errorf("creating temporary file: %w", err)
	}
	w.files = append(w.files, f)
	return f, nil
}

// cleanup closes and removes every temporary file of the walk.
func (w *walker) cleanup() error {
	for _, f := range w.files {
		f.Close()
	}
	w.files = nil
	if w.tmpdir == "" {
		return nil
	}
	dir := w.tmpdir
	w.tmpdir = ""
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing temporary directory %s: %w", dir, err)
	}
	return nil
}
