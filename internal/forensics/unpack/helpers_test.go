package unpack

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// file is one archive entry to build.
type file struct {
	name string
	data []byte
	typ  byte // tar type flag; 0 means regular
	link string
}

func makeTar(t testing.TB, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		typ := f.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: f.name, Typeflag: typ, Mode: 0o644, Size: int64(len(f.data)),
			Linkname: f.link, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", f.name, err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(f.data); err != nil {
				t.Fatalf("tar data %q: %v", f.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func makeZip(t testing.TB, method uint16, files ...file) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: method, Modified: time.Unix(1700000000, 0)})
		if err != nil {
			t.Fatalf("zip header %q: %v", f.name, err)
		}
		if _, err := w.Write(f.data); err != nil {
			t.Fatalf("zip data %q: %v", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var flagRE = regexp.MustCompile(`flag\{[^}\s]{1,100}\}`)

// walk runs Walk over data as a plain stream (not a ReaderAt) and closes
// the tree when the test ends.
func walk(t testing.TB, name string, data []byte, opt Options) *Node {
	t.Helper()
	root, err := Walk(context.Background(), name, io.MultiReader(bytes.NewReader(data)), int64(len(data)), opt)
	if err != nil {
		t.Fatalf("Walk(%s) error: %v", name, err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

// find returns the nodes pred accepts.
func find(root *Node, pred func(*Node) bool) []*Node {
	var out []*Node
	root.Visit(func(n *Node) bool {
		if pred(n) {
			out = append(out, n)
		}
		return true
	})
	return out
}

// withFlag returns the nodes whose Flags include flag.
func withFlag(root *Node, flag string) []*Node {
	return find(root, func(n *Node) bool { return slices.Contains(n.Flags, flag) })
}

func content(t testing.TB, n *Node) []byte {
	t.Helper()
	b, err := io.ReadAll(n.Content())
	if err != nil {
		t.Fatalf("reading %v: %v", n.Chain, err)
	}
	return b
}

// allWarnings gathers the tree's warnings, prefixed by chain.
func allWarnings(root *Node) string {
	var sb strings.Builder
	root.Visit(func(n *Node) bool {
		for _, w := range n.Warnings {
			sb.WriteString(strings.Join(n.Chain, " > ") + ": " + w + "\n")
		}
		return true
	})
	return sb.String()
}

// dump renders the tree for failure messages.
func dump(root *Node) string {
	var sb strings.Builder
	root.Visit(func(n *Node) bool {
		sb.WriteString(strings.Repeat("  ", n.Depth))
		sb.WriteString(strings.Join(n.Chain, " > "))
		sb.WriteString(" [" + n.Kind + "/" + n.Format + "]")
		if n.Why != "" {
			sb.WriteString(" (" + n.Why + ")")
		}
		for _, f := range n.Flags {
			sb.WriteString(" FLAG " + f)
		}
		sb.WriteString("\n")
		return true
	})
	return sb.String()
}

// checkTree verifies what must hold of every tree: sizes and hashes match
// content, chains grow by one, depths and names are sane.
func checkTree(t testing.TB, root *Node) {
	t.Helper()
	root.Visit(func(n *Node) bool {
		b := content(t, n)
		if int64(len(b)) != n.Size {
			t.Errorf("%v: content %d bytes, Size %d", n.Chain, len(b), n.Size)
		}
		if got := sha(b); got != n.SHA256 {
			t.Errorf("%v: SHA256 %s, content hashes to %s", n.Chain, n.SHA256, got)
		}
		if len(n.Chain) != n.Depth+1 {
			t.Errorf("%v: chain length %d at depth %d", n.Chain, len(n.Chain), n.Depth)
		}
		if n.Depth > 0 && (strings.HasPrefix(n.Name, "/") || slices.Contains(strings.Split(n.Name, "/"), "..") || strings.ContainsRune(n.Name, 0)) {
			t.Errorf("%v: unsafe name %q", n.Chain, n.Name)
		}
		for _, c := range n.Children {
			if !slices.Equal(c.Chain[:len(c.Chain)-1], n.Chain) {
				t.Errorf("child chain %v does not extend %v", c.Chain, n.Chain)
			}
		}
		return true
	})
}

// memHeld sums the memory the tree's contents hold; the rest is on disk.
func memHeld(root *Node) (mem int64, onDisk int) {
	root.Visit(func(n *Node) bool {
		if n.data != nil {
			mem += n.data.mem
			if n.data.file != nil {
				onDisk++
			}
		}
		return true
	})
	return mem, onDisk
}
