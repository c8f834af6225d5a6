package unpack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// The acceptance case: a flag hidden as base64 in a tar inside a
// tar is found, with the chain from the capture down to the leaf.
func TestFlagBase64InTarInTar(t *testing.T) {
	t.Parallel()
	const flag = "flag{n3sted_t4rs_and_b64}"
	secret := "Nothing to see here, just some notes.\n" + flag + "\n"
	tests := []struct {
		name      string
		flagFile  string
		wantChain []string
	}{
		{"whole file is base64", base64.StdEncoding.EncodeToString([]byte(secret)) + "\n",
			[]string{"ftp:secret.tar", "tar:inner.tar", "tar:notes/flag.txt", "base64"}},
		{"base64 at the end of a text", "Here is what you asked for:\n" + base64.StdEncoding.EncodeToString([]byte(secret)) + "\n",
			[]string{"ftp:secret.tar", "tar:inner.tar", "tar:notes/flag.txt", "base64@28"}},
		{"wrapped base64 ending in the flag", wrap(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("padding text ", 20)+flag)), 76),
			[]string{"ftp:secret.tar", "tar:inner.tar", "tar:notes/flag.txt", "base64"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inner := makeTar(t, file{name: "readme.txt", data: []byte("hello\n")}, file{name: "notes/flag.txt", data: []byte(tc.flagFile)})
			outer := makeTar(t, file{name: "inner.tar", data: inner}, file{name: "other.bin", data: []byte{0, 1, 2, 3}})
			for _, flagged := range []bool{true, false} {
				opt := Options{}
				if flagged {
					opt.Flag = flagRE
				}
				root := walk(t, "ftp:secret.tar", outer, opt)
				checkTree(t, root)
				leaf := find(root, func(n *Node) bool { return bytes.Contains(content(t, n), []byte(flag)) })
				if len(leaf) != 1 {
					t.Fatalf("flag %s in %d nodes, want 1 (Flag set: %v):\n%s", flag, len(leaf), flagged, dump(root))
				}
				if !slices.Equal(leaf[0].Chain, tc.wantChain) {
					t.Errorf("chain %q, want %q", leaf[0].Chain, tc.wantChain)
				}
				if flagged && !slices.Contains(leaf[0].Flags, flag) {
					t.Errorf("Flags of the leaf = %q, want %s", leaf[0].Flags, flag)
				}
				if !flagged && len(leaf[0].Flags) != 0 {
					t.Errorf("Flags without a pattern = %q", leaf[0].Flags)
				}
				if w := allWarnings(root); w != "" {
					t.Errorf("warnings on a clean archive:\n%s", w)
				}
			}
		})
	}
}

func wrap(s string, n int) string {
	var sb strings.Builder
	for len(s) > n {
		sb.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	return sb.String() + s + "\n"
}

func TestGzipOfTarOfZip(t *testing.T) {
	t.Parallel()
	z := makeZip(t, 8, file{name: "docs/secret.txt", data: []byte("the flag is flag{gz_tar_zip}\n")}, file{name: "a.bin", data: bytes.Repeat([]byte{7}, 1000)})
	tgz := gz(t, makeTar(t, file{name: "bundle.zip", data: z}))
	root := walk(t, "http:download.tgz", tgz, Options{Flag: flagRE})
	checkTree(t, root)
	got := withFlag(root, "flag{gz_tar_zip}")
	if len(got) != 1 {
		t.Fatalf("flag found in %d nodes, want 1:\n%s", len(got), dump(root))
	}
	want := []string{"http:download.tgz", "gzip", "tar:bundle.zip", "zip:docs/secret.txt"}
	if !slices.Equal(got[0].Chain, want) {
		t.Errorf("chain %q, want %q", got[0].Chain, want)
	}
	if g := root.Children[0]; g.Name != "http:download.tar" || g.Format != FormatTar {
		t.Errorf("gunzipped node = %q (%s), want http:download.tar (tar)", g.Name, g.Format)
	}
	if n := find(root, func(n *Node) bool { return n.Name == "a.bin" }); len(n) != 1 || n[0].Size != 1000 || n[0].ModTime.IsZero() {
		t.Errorf("a.bin not unpacked right:\n%s", dump(root))
	}
}

// A ReaderAt root is read in place and gives the same tree as a stream.
func TestReaderAtRootMatchesStream(t *testing.T) {
	t.Parallel()
	data := makeTar(t, file{name: "x.txt", data: []byte("flag{in_place}")})
	a := walk(t, "a", data, Options{Flag: flagRE})
	b, err := Walk(context.Background(), "a", bytes.NewReader(data), int64(len(data)), Options{Flag: flagRE})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if dump(a) != dump(b) || a.SHA256 != b.SHA256 || a.SHA256 != sha(data) {
		t.Errorf("in-place tree differs from streamed:\n%s\n%s", dump(a), dump(b))
	}
}

func TestShortInputIsReported(t *testing.T) {
	t.Parallel()
	root, err := Walk(context.Background(), "short", strings.NewReader("abc"), 10, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if !root.Truncated || root.Size != 3 || !strings.Contains(allWarnings(root), "ended after 3 B of the stated 10 B") {
		t.Errorf("short input: Truncated=%v Size=%d warnings %q", root.Truncated, root.Size, root.Warnings)
	}
}

func TestCancelledWalkReturnsPartialTree(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := makeTar(t, file{name: "x", data: []byte("y")})
	root, err := Walk(ctx, "c", bytes.NewReader(data), int64(len(data)), Options{})
	if !errors.Is(err, context.Canceled) || root == nil {
		t.Fatalf("Walk on a cancelled context = %v, %v; want the root and context.Canceled", root, err)
	}
	root.Close()
}

// Content beyond MaxMemory goes to a temporary file that Close removes.
func TestSpillsToTempDirAndCleansUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := bytes.Repeat([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, 64<<10) // 1 MiB of data
	data := makeTar(t, file{name: "big.txt", data: big}, file{name: "small.txt", data: []byte("flag{small}")})
	root := walk(t, "t", data, Options{MaxMemory: 256 << 10, TempDir: dir, Flag: flagRE})
	checkTree(t, root)
	if mem, onDisk := memHeld(root); mem > 256<<10 || onDisk == 0 {
		t.Errorf("%d bytes held in memory (MaxMemory 256 KiB), %d objects on disk", mem, onDisk)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp dir holds %d entries, want 1 private directory", len(entries))
	}
	if n := find(root, func(n *Node) bool { return n.Name == "big.txt" }); len(n) != 1 || !bytes.Equal(content(t, n[0]), big) {
		t.Fatalf("big.txt not read back from disk")
	}
	if err := root.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("after Close the temp dir still holds %v", entries)
	}
}

func TestFlagScannerAcrossWindows(t *testing.T) {
	t.Parallel()
	// Flags straddling every window boundary, written in odd-sized pieces.
	var data []byte
	var want []string
	for i := 0; len(data) < 3*flagWindow; i++ {
		data = append(data, bytes.Repeat([]byte{'.'}, flagWindow-7)...)
		f := "flag{w" + strings.Repeat("x", i) + "}"
		data = append(data, f...)
		want = append(want, f)
	}
	fs := newFlagScanner(flagRE)
	for p := data; len(p) > 0; {
		k := min(len(p), 12345)
		fs.Write(p[:k])
		p = p[k:]
	}
	fs.flush()
	if !slices.Equal(fs.result(), want) {
		t.Errorf("flags %q, want %q", fs.result(), want)
	}
}

func TestSanitize(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"a/b.txt", "a/b.txt"},
		{"../../etc/passwd", "etc/passwd"},
		{"/abs/path", "abs/path"},
		{"a/../../b", "a/b"},
		{`..\..\windows\x.dll`, "windows/x.dll"},
		{"./", "unnamed"},
		{"", "unnamed"},
		{"nul\x00byte", "nul_byte"},
		{"bad\xffutf8", "bad_utf8"},
		{strings.Repeat("x", 300), strings.Repeat("x", 255)},
	}
	for _, tc := range tests {
		if got := sanitize(tc.in); got != tc.want {
			t.Errorf("sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// BenchmarkWalk measures throughput on a gzipped tar of mixed entries:
// text, base64 text, binary and a nested zip.
func BenchmarkWalk(b *testing.B) {
	text := bytes.Repeat([]byte("a line of log output, nothing to see here 0123456789\n"), 20000)
	bin := make([]byte, 4<<20)
	for i := range bin {
		bin[i] = byte(i * 7 >> 3)
	}
	data := gz(b, makeTar(b,
		file{name: "log.txt", data: text},
		file{name: "blob.b64", data: []byte(wrap(base64.StdEncoding.EncodeToString(bin[:1<<20]), 76))},
		file{name: "bin", data: bin},
		file{name: "in.zip", data: makeZip(b, 8, file{name: "x.txt", data: text})},
	))
	var produced int64
	root := walk(b, "bench.tgz", data, Options{})
	root.Visit(func(n *Node) bool { produced += n.Size; return true })
	b.SetBytes(produced)
	b.ReportAllocs()
	for b.Loop() {
		root, err := Walk(context.Background(), "bench.tgz", bytes.NewReader(data), int64(len(data)), Options{Flag: flagRE})
		if err != nil {
			b.Fatal(err)
		}
		root.Close()
	}
}
