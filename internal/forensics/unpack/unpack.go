package unpack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"time"
)

// Kinds: the step that produced a node. The root is KindFile; archive
// entries carry their archive's kind, decodings their encoding's.
const (
	KindFile            = "file"
	KindTar             = "tar"
	KindGzip            = "gzip"
	KindBzip2           = "bzip2"
	KindZip             = "zip"
	KindBase64          = "base64"
	KindBase32          = "base32"
	KindHex             = "hex"
	KindROT13           = "rot13"
	KindQuotedPrintable = "quoted-printable"
	KindUUEncode        = "uuencode"
)

// Option defaults.
const (
	DefaultMaxDepth     = 8
	DefaultMaxTotal     = 1 << 30
	DefaultMaxRatio     = 100
	DefaultMinExpansion = 1 << 20
	DefaultMaxEntries   = 10000
	DefaultMaxNodes     = 100000
	DefaultMaxMemory    = 256 << 20
)

// Options bound one Walk. A zero field takes its default.
type Options struct {
	// MaxDepth is the longest decode chain below the root (default 8).
	MaxDepth int
	// MaxTotal caps the bytes produced by all unpacking and decoding of
	// one object (default 1 GiB).
	MaxTotal int64
	// MaxRatio caps each step's output at MaxRatio times its input
	// (default 100), but never below MinExpansion.
	MaxRatio float64
	// MinExpansion is what any step may produce whatever MaxRatio says
	// (default 1 MiB): a 10 KiB gzip stops at 1 MiB, a 1 MiB one at 100 MiB.
	MinExpansion int64
	// MaxEntries caps the entries read from one archive (default 10000).
	MaxEntries int
	// MaxNodes caps the objects in the whole tree (default 100000).
	MaxNodes int
	// MaxMemory caps the content held in memory across the tree (default
	// 256 MiB); content beyond it goes to temporary files in TempDir.
	MaxMemory int64
	// TempDir is where a private temporary directory is made when needed
	// (default os.TempDir()).
	TempDir string
	// Flag, if set, is searched for in every object's content; a decoding
	// whose output matches it where its input did not is always kept.
	Flag *regexp.Regexp
}

func (o Options) withDefaults() Options {
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.MaxTotal <= 0 {
		o.MaxTotal = DefaultMaxTotal
	}
	if o.MaxRatio <= 0 || math.IsNaN(o.MaxRatio) {
		o.MaxRatio = DefaultMaxRatio
	}
	if o.MinExpansion <= 0 {
		o.MinExpansion = DefaultMinExpansion
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxNodes <= 0 {
		o.MaxNodes = DefaultMaxNodes
	}
	if o.MaxMemory <= 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	return o
}

// Node is one object: the root, an archive entry, a decompressed stream or
// a decoding, with what was found below it.
type Node struct {
	// Name is a relative slash-separated path safe to write under a
	// directory (see sanitize); Original is the name as the container
	// gave it.
	Name     string
	Original string
	// Kind is the step that produced the node (KindTar, KindBase64, ...);
	// Format is what its content is (FormatTar, FormatText, ...).
	Kind   string
	Format string
	// Chain is the decode chain from the root down to this node: the
	// root's name, then "kind:name" for archive entries, "gzip" or
	// "bzip2" for decompressed streams, "base64" for a whole-content
	// decoding and "base64@120" for one found at byte 120 of its parent.
	Chain   []string
	Depth   int
	Size    int64
	SHA256  string
	ModTime time.Time // from the archive header; zero when unknown
	// Printable is the share of the content that reads as text.
	Printable float64
	// Score and Why are, for decodings, the value the keep rule judged
	// and its verdict in words ("printable 98%", "matches the flag
	// pattern"); see the package documentation.
	Score float64
	Why   string
	// Truncated marks content known to be incomplete (a truncated
	// archive, a budget hit); Warnings say what was lost.
	Truncated bool
	// Flags are the distinct matches of Options.Flag in the content.
	Flags    []string
	Children []*Node
	Warnings []string
	// Attempts counts decodings tried on the content and not kept;
	// Rejected lists the first of them with their scores.
	Attempts int
	Rejected []Attempt

	data    *blob
	st      *stats
	zipTail bool
	names   map[string]int
	release func() error
}

// Attempt is a decoding that was tried and not kept.
type Attempt struct {
	Chain string // the chain element it would have had: "base64", "hex@40"
	Score float64
	Why   string
}

const (
	maxWarnings = 100
	maxRejected = 16
)

func (n *Node) warn(format string, args ...any) {
	switch {
	case len(n.Warnings) < maxWarnings:
		n.Warnings = append(n.Warnings, fmt.Sprintf(format, args...))
	case len(n.Warnings) == maxWarnings:
		n.Warnings = append(n.Warnings, "further warnings about this object suppressed")
	}
}

// Content reads the node's bytes. It stays valid until the root is closed.
func (n *Node) Content() *io.SectionReader {
	if n.data == nil {
		return io.NewSectionReader(emptyReaderAt{}, 0, 0)
	}
	return io.NewSectionReader(n.data.ra, 0, n.data.size)
}

type emptyReaderAt struct{}

func (emptyReaderAt) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }

// IsCapture reports a pcap or pcapng capture, which Walk does not parse:
// the caller recurses into it with its capture extractor.
func (n *Node) IsCapture() bool { return n.Format == FormatPcap || n.Format == FormatPcapng }

// Visit calls fn on n and its descendants, parents first; when fn returns
// false, the node's children are skipped.
func (n *Node) Visit(fn func(*Node) bool) {
	if !fn(n) {
		return
	}
	for _, c := range n.Children {
		c.Visit(fn)
	}
}

// Close releases the temporary files of the tree; call it on the root
// returned by Walk, after which no node's Content may be read.
func (n *Node) Close() error {
	if n.release == nil {
		return nil
	}
	r := n.release
	n.release = nil
	return r()
}

// walker holds the state of one Walk: options, budgets spent, storage.
type walker struct {
	ctx     context.Context
	opt     Options
	total   int64 // bytes produced, against MaxTotal
	mem     int64 // bytes held in memory, against MaxMemory
	nodes   int
	scratch []byte
	tmpdir  string
	files   []*os.File
}

// Walk reads an object of size bytes (size < 0: unknown, read to EOF) and
// unpacks and decodes it recursively within opt's budgets. It returns the
// root node (Kind "file", Chain [name]) with its tree; the caller closes
// it. When r is an io.ReaderAt and size is known, the root's content is
// read in place and must stay readable until Close. Walk never panics; an
// error (reading r, or ctx ending) comes with the partial tree.
func Walk(ctx context.Context, name string, r io.Reader, size int64, opt Options) (*Node, error) {
	w := &walker{ctx: ctx, opt: opt.withDefaults(), scratch: make([]byte, 64<<10)}
	root := &Node{Name: sanitize(name), Original: name, Kind: KindFile, Chain: []string{name}}
	root.release = w.cleanup
	w.nodes = 1
	if err := w.load(root, r, size); err != nil {
		w.expand(root)
		return root, fmt.Errorf("reading %s: %w", name, err)
	}
	w.expand(root)
	if err := ctx.Err(); err != nil {
		return root, fmt.Errorf("unpacking %s: %w", name, err)
	}
	return root, nil
}

// load measures the root's content, reading it in place or spooling it.
func (w *walker) load(root *Node, r io.Reader, size int64) error {
	sp := &spool{w: w, store: true, limit: math.MaxInt64, sum: sha256.New(), flags: newFlagScanner(w.opt.Flag)}
	ra, inPlace := r.(io.ReaderAt)
	inPlace = inPlace && size >= 0
	src := r
	switch {
	case inPlace:
		sp.store = false
		src = io.NewSectionReader(ra, 0, size)
	case size >= 0:
		src = io.LimitReader(r, size)
	}
	err := w.copy(sp, src)
	if inPlace {
		sp.flags.flush()
		w.fill(root, sp, &blob{ra: ra, size: sp.n})
	} else {
		w.fill(root, sp, sp.blob())
	}
	switch {
	case err != nil:
		root.Truncated = true
		root.warn("reading stopped after %s (%v): the rest of the input is lost", human(root.Size), err)
		return err
	case size >= 0 && root.Size < size:
		root.Truncated = true
		root.warn("input ended after %s of the stated %s", human(root.Size), human(size))
	}
	return nil
}

// copy moves src to dst in chunks, stopping when the walk is cancelled.
func (w *walker) copy(dst io.Writer, src io.Reader) error {
	for {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		n, err := src.Read(w.scratch)
		if n > 0 {
			if _, werr := dst.Write(w.scratch[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// fill completes a node from a finished spool and its stored content.
func (w *walker) fill(n *Node, sp *spool, b *blob) {
	n.data, n.st = b, &sp.st
	n.Size = sp.n
	n.SHA256 = hex.EncodeToString(sp.sum.Sum(nil))
	n.Printable = sp.st.printable()
	n.Flags = sp.flags.result()
	if sp.flags != nil && sp.flags.more {
		n.warn("more than %d distinct flag matches: the rest are not listed", maxFlags)
	}
	head := make([]byte, min(n.Size, sniffLen))
	k, _ := b.ra.ReadAt(head, 0)
	n.Format = sniff(head[:k])
	switch {
	case n.Format != "":
	case n.Size == 0:
		n.Format = FormatEmpty
	case n.Printable >= textThreshold:
		n.Format = FormatText
	default:
		n.Format = FormatData
	}
	n.zipTail = !archive(n.Format) && !n.IsCapture() && zipTail(b.ra, n.Size)
}

// child makes a node below parent from a finished spool.
func (w *walker) child(parent *Node, kind, name, original, elem string, sp *spool) *Node {
	c := &Node{Name: name, Original: original, Kind: kind, Depth: parent.Depth + 1,
		Chain: append(slices.Clip(parent.Chain), elem)}
	w.fill(c, sp, sp.blob())
	w.nodes++
	return c
}

// entry makes a node for a named archive entry, sanitizing the name.
func (w *walker) entry(parent *Node, kind, original string, sp *spool) *Node {
	name := sanitize(original)
	c := w.child(parent, kind, name, original, kind+":"+name, sp)
	if hostile(original) {
		c.warn("entry name %q sanitized to %q", original, name)
	}
	return c
}

// settle records how a step ended on the node it produced.
func (w *walker) settle(c *Node, sp *spool, in int64, err error, what string) {
	switch {
	case err == nil:
		return
	case errors.Is(err, errBudget) && sp.budget == budgetRatio:
		c.warn("expansion stopped at %s, %.0f times its %s input (MaxRatio %g, MinExpansion %s): the rest of this %s is lost; likely an archive bomb",
			human(c.Size), float64(c.Size)/float64(max(in, 1)), human(in), w.opt.MaxRatio, human(w.opt.MinExpansion), what)
	case errors.Is(err, errBudget):
		c.warn("stopped at %s: the total unpack budget of %s is spent (MaxTotal); the rest of this %s is lost",
			human(c.Size), human(w.opt.MaxTotal), what)
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.warn("truncated %s: %s recovered, the rest is missing from the input", what, human(c.Size))
	case w.ctx.Err() != nil:
		c.warn("cancelled after %s of this %s", human(c.Size), what)
	default:
		c.warn("%s unreadable after %s (%v): the rest is lost", what, human(c.Size), err)
	}
	c.Truncated = true
}

// keep adds c below parent and unpacks it; an empty truncated result only
// leaves its warnings on the parent.
func (w *walker) keep(parent, c *Node) {
	if c.Size == 0 && c.Truncated {
		for _, m := range c.Warnings {
			parent.warn("%s: %s", c.Chain[len(c.Chain)-1], m)
		}
		w.discard(c)
		return
	}
	w.adopt(parent, c)
	w.expand(c)
}

// adopt appends c to parent's children, renaming a duplicate name.
func (w *walker) adopt(parent, c *Node) {
	if parent.names == nil {
		parent.names = map[string]int{}
	}
	if k := parent.names[c.Name]; k > 0 {
		renamed := fmt.Sprintf("%s~%d", c.Name, k+1)
		c.warn("a sibling already has the name %q: kept as %q", c.Name, renamed)
		parent.names[c.Name] = k + 1
		if last := &c.Chain[len(c.Chain)-1]; *last == c.Kind+":"+c.Name {
			*last = c.Kind + ":" + renamed
		}
		c.Name = renamed
	}
	parent.names[c.Name]++
	parent.Children = append(parent.Children, c)
}

// discard drops a node and its subtree, returning their budgets.
func (w *walker) discard(n *Node) {
	n.Visit(func(d *Node) bool {
		w.total -= d.Size
		w.nodes--
		w.release(d.data)
		d.data = nil
		return true
	})
}

// room reports whether another object may be made below n, warning why not.
func (w *walker) room(n *Node, what string) bool {
	switch {
	case w.ctx.Err() != nil:
		return false
	case w.nodes >= w.opt.MaxNodes:
		n.warn("object limit of %d reached (MaxNodes): %s not unpacked", w.opt.MaxNodes, what)
		return false
	case w.total >= w.opt.MaxTotal:
		n.warn("the total unpack budget of %s is spent (MaxTotal): %s not unpacked", human(w.opt.MaxTotal), what)
		return false
	}
	return true
}

// deeper reports whether n's content may be unpacked below the depth limit.
func (w *walker) deeper(n *Node, what string) bool {
	if n.Depth < w.opt.MaxDepth {
		return true
	}
	n.warn("depth limit of %d reached (MaxDepth): %s not unpacked", w.opt.MaxDepth, what)
	return false
}

// limit is how much one step may produce from in bytes of input, and which
// budget that is.
func (w *walker) limit(in int64) (int64, string) {
	allowed := w.opt.MinExpansion
	if r := float64(in) * w.opt.MaxRatio; r > float64(allowed) {
		allowed = math.MaxInt64
		if r < math.MaxInt64/2 {
			allowed = int64(r)
		}
	}
	if rest := w.opt.MaxTotal - w.total; rest <= allowed {
		return rest, budgetTotal
	}
	return allowed, budgetRatio
}

// expand unpacks or decodes n's content into children. A panic, which
// would be a bug, becomes a warning so the rest of the tree survives.
func (w *walker) expand(n *Node) {
	defer func() {
		if r := recover(); r != nil {
			n.warn("internal error while unpacking (%v): this object's remaining content is not unpacked", r)
		}
	}()
	if w.ctx.Err() != nil {
		return
	}
	switch n.Format {
	case FormatGzip, FormatBzip2, FormatTar, FormatZip:
		if !w.deeper(n, n.Format+" content") {
			return
		}
		switch n.Format {
		case FormatGzip:
			w.gunzip(n)
		case FormatBzip2:
			w.bunzip2(n)
		case FormatTar:
			w.untar(n)
		case FormatZip:
			w.unzip(n, false)
		}
	case FormatXz, Format7z, FormatZstd, FormatRar:
		n.warn("%s content not unpacked: format not supported", n.Format)
	case FormatText:
		w.decodeText(n)
	}
	if n.zipTail && w.deeper(n, "the zip archive appended to this object") {
		w.unzip(n, true)
	}
}
