package unpack

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"encoding/binary"
	"io/fs"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A pre-made bzip2 stream of "flag{bzip2_ok}\n", from
// printf 'flag{bzip2_ok}\n' | bzip2 -9 | xxd -i
var bzip2Flag = []byte{
	0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0xce, 0x9e,
	0xcb, 0xf3, 0x00, 0x00, 0x02, 0xcb, 0x80, 0x00, 0x10, 0x10, 0x00, 0x00,
	0x00, 0xb1, 0xac, 0xc0, 0x1a, 0x20, 0x00, 0x22, 0x8c, 0x99, 0x34, 0x63,
	0xd5, 0x0a, 0x60, 0x00, 0x0a, 0x59, 0x1b, 0x81, 0x3e, 0xba, 0xb3, 0xe2,
	0xee, 0x48, 0xa7, 0x0a, 0x12, 0x19, 0xd3, 0xd9, 0x7e, 0x60,
}

func TestBzip2(t *testing.T) {
	t.Parallel()
	root := walk(t, "f.txt.bz2", bzip2Flag, Options{Flag: flagRE})
	got := withFlag(root, "flag{bzip2_ok}")
	if len(got) != 1 || !slices.Equal(got[0].Chain, []string{"f.txt.bz2", "bzip2"}) || got[0].Name != "f.txt" {
		t.Fatalf("bzip2 not decompressed:\n%s", dump(root))
	}
	// A truncated stream keeps what was recovered and says so.
	root = walk(t, "cut.bz2", bzip2Flag[:40], Options{})
	if w := allWarnings(root); !strings.Contains(w, "bzip2") {
		t.Errorf("no warning for a truncated bzip2 stream:\n%s\n%s", w, dump(root))
	}
}

// tar.bz2 made by the bzip2 command, when it is installed.
func TestBzip2Command(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("bzip2"); err != nil {
		t.Skip("bzip2 not installed")
	}
	tr := makeTar(t, file{name: "a/flag.txt", data: []byte(b64("flag{from_a_tbz2}"))})
	cmd := exec.Command("bzip2", "-c")
	cmd.Stdin = bytes.NewReader(tr)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bzip2: %v", err)
	}
	root := walk(t, "x.tbz2", out, Options{Flag: flagRE})
	got := withFlag(root, "flag{from_a_tbz2}")
	if len(got) != 1 || !slices.Equal(got[0].Chain, []string{"x.tbz2", "bzip2", "tar:a/flag.txt", "base64"}) {
		t.Fatalf("flag not found through tar.bz2:\n%s", dump(root))
	}
}

func TestHostileTarEntries(t *testing.T) {
	t.Parallel()
	data := makeTar(t,
		file{name: "../../etc/cron.d/evil", data: []byte("* * * * * root sh")},
		file{name: "/abs/file", data: []byte("x")},
		file{name: "link", typ: tar.TypeSymlink, link: "/etc/shadow"},
		file{name: "hard", typ: tar.TypeLink, link: "../../outside"},
		file{name: "dev/sda", typ: tar.TypeBlock},
		file{name: "pipe", typ: tar.TypeFifo},
		file{name: "dup.txt", data: []byte("one")},
		file{name: "dup.txt", data: []byte("two")},
	)
	root := walk(t, "evil.tar", data, Options{})
	checkTree(t, root)
	var names []string
	for _, c := range root.Children {
		names = append(names, c.Name)
	}
	if want := []string{"etc/cron.d/evil", "abs/file", "dup.txt", "dup.txt~2"}; !slices.Equal(names, want) {
		t.Errorf("children %q, want %q", names, want)
	}
	if c := root.Children[0]; c.Original != "../../etc/cron.d/evil" || !strings.Contains(strings.Join(c.Warnings, ";"), "sanitized") {
		t.Errorf("first entry: Original %q, warnings %q", c.Original, c.Warnings)
	}
	w := allWarnings(root)
	for _, s := range []string{`symbolic link "link" -> "/etc/shadow" recorded, not followed`, `hard link "hard"`, `device file "dev/sda"`, `fifo "pipe"`, "a sibling already has the name"} {
		if !strings.Contains(w, s) {
			t.Errorf("warnings lack %q:\n%s", s, w)
		}
	}
}

// Truncating an archive anywhere never panics, never invents content: what
// is recovered is a prefix of an original entry, and a cut shows up as a
// warning or a truncated node.
func TestTruncatedArchives(t *testing.T) {
	t.Parallel()
	text := []byte(strings.Repeat("line of the file that was sent over the network\n", 400))
	entries := []file{{name: "one.txt", data: text}, {name: "two.txt", data: text[:5000]}, {name: "three.bin", data: bytes.Repeat([]byte{1, 2, 3}, 3000)}}
	originals := [][]byte{text, text[:5000], entries[2].data}
	archives := map[string][]byte{
		"tar":        makeTar(t, entries...),
		"gzip":       gz(t, text),
		"tgz":        gz(t, makeTar(t, entries...)),
		"zip":        makeZip(t, 8, entries...),
		"stored zip": makeZip(t, 0, entries...),
	}
	for name, full := range archives {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, cut := range []int{10, 100, 300, 511, 600, len(full) / 3, len(full) / 2, len(full) - 30, len(full) - 1} {
				if cut >= len(full) {
					continue
				}
				root := walk(t, "cut", full[:cut], Options{})
				checkTree(t, root)
				leaves := find(root, func(n *Node) bool { return len(n.Children) == 0 && n.Depth > 0 && !archive(n.Format) })
				for _, l := range leaves {
					b := content(t, l)
					if !slices.ContainsFunc(originals, func(o []byte) bool { return bytes.HasPrefix(o, b) }) {
						t.Errorf("cut at %d: %v holds %d bytes that are no original's prefix", cut, l.Chain, len(b))
					}
					if l.Kind != KindFile && !l.Truncated && !slices.ContainsFunc(originals, func(o []byte) bool { return bytes.Equal(o, b) }) {
						t.Errorf("cut at %d: %v is incomplete (%d bytes) but not marked truncated:\n%s", cut, l.Chain, len(b), dump(root))
					}
				}
				if root.Format != FormatData && root.Format != FormatText && allWarnings(root) == "" {
					t.Errorf("cut at %d of %d: no warning:\n%s", cut, len(full), dump(root))
				}
			}
		})
	}
}

// A zip whose central directory is damaged is read from its local headers,
// with data descriptors (Go's writer uses them) for both methods.
func TestZipLocalHeaderFallback(t *testing.T) {
	t.Parallel()
	for _, method := range []uint16{0, 8} {
		z := makeZip(t, method, file{name: "a.txt", data: []byte("first flag{zip_local_a}")}, file{name: "dir/b.txt", data: []byte("second flag{zip_local_b}")})
		i := bytes.LastIndex(z, []byte("PK\x01\x02"))
		bad := slices.Clone(z)
		copy(bad[i:], "XXXX")
		binary.LittleEndian.PutUint32(bad[len(bad)-6:], 0xFFFFFF) // central directory offset past the end
		root := walk(t, "bad.zip", bad, Options{Flag: flagRE})
		checkTree(t, root)
		for _, f := range []string{"flag{zip_local_a}", "flag{zip_local_b}"} {
			if got := find(root, func(n *Node) bool { return n.Kind == KindZip && slices.Contains(n.Flags, f) }); len(got) != 1 {
				t.Errorf("method %d: %s not recovered:\n%s", method, f, dump(root))
			}
		}
		if !strings.Contains(allWarnings(root), "local headers") {
			t.Errorf("method %d: no warning about the central directory", method)
		}
	}
}

// A zip appended to another file (a polyglot) is found by its end record.
func TestAppendedZip(t *testing.T) {
	t.Parallel()
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0x11, 0x99}, 500)...)
	data := append(png, makeZip(t, 8, file{name: "hidden.txt", data: []byte("flag{polyglot}")})...)
	root := walk(t, "cat.png", data, Options{Flag: flagRE})
	if root.Format != FormatPNG {
		t.Errorf("root format %q, want png", root.Format)
	}
	if got := withFlag(root, "flag{polyglot}"); len(got) != 1 || !slices.Equal(got[0].Chain, []string{"cat.png", "zip:hidden.txt"}) {
		t.Errorf("appended zip not unpacked:\n%s", dump(root))
	}
}

// A single entry of huge ratio stops at the ratio budget.
func TestRatioBomb(t *testing.T) {
	t.Parallel()
	zeros := make([]byte, 4<<20)
	const minExp = 64 << 10
	for name, data := range map[string][]byte{"gzip": gz(t, zeros), "zip": makeZip(t, 8, file{name: "zeros", data: zeros})} {
		start := time.Now()
		root := walk(t, "bomb", data, Options{MaxRatio: 100, MinExpansion: minExp})
		big := find(root, func(n *Node) bool { return n.Depth == 1 })
		if len(big) != 1 || !big[0].Truncated || big[0].Size < minExp || big[0].Size > 100*int64(len(data)) {
			t.Fatalf("%s bomb of %d bytes not stopped by the ratio:\n%s", name, len(data), dump(root))
		}
		if w := allWarnings(root); !strings.Contains(w, "likely an archive bomb") {
			t.Errorf("%s: warning lacks the bomb notice:\n%s", name, w)
		}
		t.Logf("%s: %d-byte bomb stopped at %s in %v", name, len(data), human(big[0].Size), time.Since(start))
	}
}

// A 42.zip-like nest: zips of 16 copies of zips, down to zeros; the total
// budget stops it with warnings, in bounded time and memory.
func TestNestedZipBomb(t *testing.T) {
	t.Parallel()
	layer := makeZip(t, 8, file{name: "zeros.bin", data: make([]byte, 256<<10)})
	for level := range 4 {
		var fs []file
		for i := range 16 {
			fs = append(fs, file{name: string(rune('a'+level)) + string(rune('a'+i)) + ".zip", data: layer})
		}
		layer = makeZip(t, 8, fs...)
	}
	// Fully unpacked this is 16^4 × 256 KiB = 16 GiB.
	const total = 16 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	root := walk(t, "42.zip", layer, Options{MaxTotal: total, MaxMemory: 4 << 20, TempDir: t.TempDir()})
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	var produced int64
	root.Visit(func(n *Node) bool {
		if n.Depth > 0 {
			produced += n.Size
		}
		return true
	})
	if mem, _ := memHeld(root); mem > 4<<20 {
		t.Errorf("%s held in memory, over MaxMemory", human(mem))
	}
	if produced > total {
		t.Errorf("produced %s, over the %s budget", human(produced), human(total))
	}
	if w := allWarnings(root); !strings.Contains(w, "total unpack budget") {
		t.Errorf("no total-budget warning:\n%s", w)
	}
	t.Logf("42.zip-like (%d bytes): %s produced in %v, %s allocated", len(layer), human(produced), elapsed, human(int64(after.TotalAlloc-before.TotalAlloc)))
	if elapsed > 10*time.Second {
		t.Errorf("took %v", elapsed)
	}
}

func TestEntryAndNodeLimits(t *testing.T) {
	t.Parallel()
	var fs []file
	for i := range 50 {
		fs = append(fs, file{name: strings.Repeat("f", 1+i%7) + string(rune('a'+i%26)) + ".bin", data: []byte{byte(i)}})
	}
	tr, z := makeTar(t, fs...), makeZip(t, 8, fs...)
	for name, data := range map[string][]byte{"tar": tr, "zip": z} {
		root := walk(t, name, data, Options{MaxEntries: 10})
		if len(root.Children) != 10 || !strings.Contains(allWarnings(root), "entry limit of 10 reached") {
			t.Errorf("%s: %d children, warnings %q", name, len(root.Children), root.Warnings)
		}
		root = walk(t, name, data, Options{MaxNodes: 5})
		if len(root.Children) != 4 || !strings.Contains(allWarnings(root), "object limit of 5 reached") {
			t.Errorf("%s: %d children with MaxNodes 5, warnings %q", name, len(root.Children), root.Warnings)
		}
	}
}

func TestNestedCaptureIsReported(t *testing.T) {
	t.Parallel()
	pcap := []byte("\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\x01\x00\x00\x00")
	root := walk(t, "t.tar", makeTar(t, file{name: "inner.pcap", data: pcap}), Options{})
	if len(root.Children) != 1 || !root.Children[0].IsCapture() || len(root.Children[0].Children) != 0 {
		t.Errorf("nested capture not reported:\n%s", dump(root))
	}
}

func TestGzipMembersTrailingDataAndCRC(t *testing.T) {
	t.Parallel()
	one, two := gz(t, []byte("first member, ")), gz(t, []byte("second member flag{two_members}\n"))
	root := walk(t, "m.gz", slices.Concat(one, two), Options{Flag: flagRE})
	if got := withFlag(root, "flag{two_members}"); len(got) != 1 || string(content(t, got[0])) != "first member, second member flag{two_members}\n" {
		t.Errorf("concatenated members not joined:\n%s", dump(root))
	}

	padded := slices.Concat(one, make([]byte, 100))
	root = walk(t, "p.gz", padded, Options{})
	if w := allWarnings(root); !strings.Contains(w, "100 B after the gzip stream at offset "+itoa(len(one))) || len(root.Children) != 1 || root.Children[0].Truncated {
		t.Errorf("trailing zeros: warnings %q\n%s", w, dump(root))
	}

	bad := slices.Clone(one)
	bad[len(bad)-8] ^= 0xff // CRC-32 in the trailer
	root = walk(t, "c.gz", bad, Options{})
	if w := allWarnings(root); len(root.Children) != 1 || !strings.Contains(w, "CRC-32 mismatch") {
		t.Errorf("bad CRC: warnings %q\n%s", w, dump(root))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestHostileZipEntries(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"../../../etc/passwd", "/abs.txt", `..\win.txt`} {
		w, _ := zw.Create(name)
		w.Write([]byte("data of " + name))
	}
	h := &zip.FileHeader{Name: "link"}
	h.SetMode(fs.ModeSymlink | 0o777)
	w, _ := zw.CreateHeader(h)
	w.Write([]byte("/etc/shadow"))
	zw.Close()
	root := walk(t, "evil.zip", buf.Bytes(), Options{})
	checkTree(t, root)
	var names []string
	for _, c := range root.Children {
		names = append(names, c.Name)
	}
	if want := []string{"etc/passwd", "abs.txt", "win.txt"}; !slices.Equal(names, want) {
		t.Errorf("children %q, want %q", names, want)
	}
	if w := allWarnings(root); !strings.Contains(w, `symbolic link "link" recorded, not followed`) {
		t.Errorf("no symlink warning:\n%s", w)
	}
}

// A central directory whose offsets point nowhere: the local headers are
// read instead.
func TestZipWrongCentralDirectory(t *testing.T) {
	t.Parallel()
	z := makeZip(t, 8, file{name: "a.txt", data: []byte("flag{wrong_cd}")})
	i := bytes.LastIndex(z, []byte("PK\x01\x02"))
	bad := slices.Clone(z)
	binary.LittleEndian.PutUint32(bad[i+42:], 7) // local header offset
	root := walk(t, "w.zip", bad, Options{Flag: flagRE})
	if got := find(root, func(n *Node) bool { return n.Kind == KindZip && slices.Contains(n.Flags, "flag{wrong_cd}") }); len(got) != 1 {
		t.Errorf("entry not recovered from the local header:\n%s\n%s", dump(root), allWarnings(root))
	}
}
