package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeSource(t *testing.T, dir string) {
	t.Helper()
	for name, body := range map[string]string{"go.mod": "module hello\n", "main.go": "package main\n", "sub/a.txt": "a", "bin/run": "#!/bin/sh\n"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sub/a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestSourceDigest(t *testing.T) {
	t.Parallel()
	orig := t.TempDir()
	writeSource(t, orig)
	want, err := SourceDigest(orig)
	if err != nil {
		t.Fatalf("SourceDigest: %v", err)
	}
	if !strings.HasPrefix(want, "sha256:") || len(want) != len("sha256:")+64 {
		t.Fatalf("SourceDigest = %q, want sha256:<hex>", want)
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string) error
		same   bool
	}{
		{"copy elsewhere", func(*testing.T, string) error { return nil }, true},
		{"other mtime", func(t *testing.T, dir string) error {
			return os.Chtimes(filepath.Join(dir, "main.go"), time.Unix(1, 0), time.Unix(1, 0))
		}, true},
		{"group write bit", func(t *testing.T, dir string) error { return os.Chmod(filepath.Join(dir, "main.go"), 0o664) }, true},
		{"one byte", func(t *testing.T, dir string) error {
			return os.WriteFile(filepath.Join(dir, "sub/a.txt"), []byte("b"), 0o644)
		}, false},
		{"file name", func(t *testing.T, dir string) error {
			return os.Rename(filepath.Join(dir, "sub/a.txt"), filepath.Join(dir, "sub/b.txt"))
		}, false},
		{"exec bit", func(t *testing.T, dir string) error { return os.Chmod(filepath.Join(dir, "bin/run"), 0o755) }, false},
		{"link target", func(t *testing.T, dir string) error {
			os.Remove(filepath.Join(dir, "link"))
			return os.Symlink("main.go", filepath.Join(dir, "link"))
		}, false},
		{"empty folder removed", func(t *testing.T, dir string) error { return os.Remove(filepath.Join(dir, "empty")) }, false},
		{"file moved between folders", func(t *testing.T, dir string) error {
			return os.Rename(filepath.Join(dir, "sub/a.txt"), filepath.Join(dir, "a.txt"))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "copy-"+strings.ReplaceAll(tc.name, " ", "-"))
			writeSource(t, dir)
			if err := tc.change(t, dir); err != nil {
				t.Fatal(err)
			}
			got, err := SourceDigest(dir)
			if err != nil {
				t.Fatalf("SourceDigest: %v", err)
			}
			if (got == want) != tc.same {
				t.Errorf("after %s: SourceDigest = %s, original %s; same = %v, want %v", tc.name, got, want, got == want, tc.same)
			}
		})
	}
}

func TestSourceDigestRefusesPipes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := mkfifo(filepath.Join(dir, "pipe")); err != nil {
		t.Fatal(err)
	}
	if _, err := SourceDigest(dir); err == nil {
		t.Error("SourceDigest of a folder with a pipe succeeded")
	}
}
