package source

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
)

var time0 = time.Unix(1e9, 0)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

func TestPackHonoursIgnoreFiles(t *testing.T) {
	t.Parallel()
	src := writeTree(t, map[string]string{
		"main.go":          "package main",
		"go.mod":           "module x",
		".gitignore":       "*.log\n/build/\n",
		".noopsignore":     "secrets.env\n",
		"app.log":          "noise",
		"build/out.bin":    "bin",
		"sub/build/ok.txt": "kept: /build/ is anchored",
		"secrets.env":      "TOKEN=x",
		".git/HEAD":        "ref",
	})
	if err := os.Symlink("main.go", filepath.Join(src, "link.go")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "escape")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	st, err := Pack(src, &buf)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	dst := t.TempDir()
	if _, err := Unpack(bytes.NewReader(buf.Bytes()), dst, Limits{}); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	got := strings.Join(listTree(t, dst), ",")
	want := ".gitignore,.noopsignore,go.mod,link.go,main.go,sub/build/ok.txt"
	if got != want {
		t.Errorf("unpacked files = %s, want %s", got, want)
	}
	if st.Files != 5 {
		t.Errorf("Stats.Files = %d, want 5 regular files", st.Files)
	}
	if target, err := os.Readlink(filepath.Join(dst, "link.go")); err != nil || target != "main.go" {
		t.Errorf("link.go = %q, %v; want a link to main.go", target, err)
	}
}

func TestPackIsDeterministic(t *testing.T) {
	t.Parallel()
	src := writeTree(t, map[string]string{"a": "1", "b/c": "2"})
	var a, b bytes.Buffer
	if _, err := Pack(src, &a); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(src, "a"), time0, time0)
	if _, err := Pack(src, &b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("packing the same tree twice gave different archives")
	}
}

type entry struct {
	name, link string
	typ        byte
	body       string
}

func archive(t testing.TB, entries ...entry) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestUnpackRefusesHostileArchives(t *testing.T) {
	t.Parallel()
	good := archive(t, entry{name: "main.go", typ: tar.TypeReg, body: strings.Repeat("x", 4096)})
	tests := []struct {
		name string
		data []byte
		lim  Limits
		want string
	}{
		{"dot-dot", archive(t, entry{name: "../evil", typ: tar.TypeReg, body: "x"}), Limits{}, "unsafe path"},
		{"absolute", archive(t, entry{name: "/etc/evil", typ: tar.TypeReg, body: "x"}), Limits{}, "unsafe path"},
		{"link out", archive(t, entry{name: "l", typ: tar.TypeSymlink, link: "../../etc"}), Limits{}, "points outside"},
		{"write through link", archive(t, entry{name: "d", typ: tar.TypeSymlink, link: "."}, entry{name: "d/x", typ: tar.TypeReg, body: "x"}), Limits{}, "through the link"},
		{"device", archive(t, entry{name: "dev", typ: tar.TypeChar}), Limits{}, "may not contain"},
		{"hard link", archive(t, entry{name: "a", typ: tar.TypeReg, body: "x"}, entry{name: "b", typ: tar.TypeLink, link: "a"}), Limits{}, "may not contain"},
		{"duplicate", archive(t, entry{name: "a", typ: tar.TypeReg, body: "x"}, entry{name: "a", typ: tar.TypeReg, body: "y"}), Limits{}, "twice"},
		{"too big", good, Limits{Bytes: 100}, "more than 100 bytes"},
		{"too many", archive(t, entry{name: "a", typ: tar.TypeReg}, entry{name: "b", typ: tar.TypeReg}), Limits{Files: 1}, "more than 1 entries"},
		{"truncated", good[:len(good)/2], Limits{}, "incomplete or corrupt"},
		{"not gzip", []byte("hello"), Limits{}, "not a gzipped archive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			_, err := Unpack(bytes.NewReader(tc.data), dir, tc.lim)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Unpack = %v, want error containing %q", err, tc.want)
			}
			if !errkind.Is(err, errkind.Invalid) {
				t.Errorf("Unpack error kind = %v, want invalid", errkind.Of(err))
			}
		})
	}
}

func FuzzUnpack(f *testing.F) {
	f.Add(archive(f, entry{name: "a/b", typ: tar.TypeReg, body: "x"}))
	f.Add(archive(f, entry{name: "l", typ: tar.TypeSymlink, link: "a"}, entry{name: "a", typ: tar.TypeDir}))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "app")
		os.Mkdir(dir, 0o755)
		Unpack(bytes.NewReader(data), dir, Limits{Bytes: 1 << 20, Files: 100})
		entries, _ := os.ReadDir(parent)
		if len(entries) != 1 {
			t.Fatalf("Unpack wrote outside its folder: %v", entries)
		}
	})
}
