package image

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"noops/internal/errkind"
	"noops/internal/testenv/need"
)

func unpack(t *testing.T, s *Store, img v1.Image) []string {
	t.Helper()
	d := put(t, s, img, "test:"+t.Name())
	dirs, err := s.Unpack(t.Context(), d)
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	return dirs
}

func TestUnpackRandomImage(t *testing.T) {
	t.Parallel()
	need.Root(t) // owners, devices and trusted.* attributes
	s := openStore(t)
	img := randomImage(t, 3)
	dirs := unpack(t, s, img)
	layers, _ := img.Layers()
	if len(dirs) != len(layers) {
		t.Fatalf("Unpack returned %d folders for %d layers", len(dirs), len(layers))
	}
	for i, l := range layers {
		id, _ := l.DiffID()
		if want := filepath.Join(s.dir, "layers", "sha256-"+id.Hex); dirs[i] != want {
			t.Errorf("layer %d unpacked into %s, want %s", i, dirs[i], want)
		}
		_, bodies := entries(t, l)
		for name, body := range bodies {
			got, err := os.ReadFile(filepath.Join(dirs[i], name))
			if err != nil || string(got) != body {
				t.Errorf("layer %d: %s has %d bytes (%v), want %d", i, name, len(got), err, len(body))
			}
		}
	}
}

func TestUnpackTree(t *testing.T) {
	t.Parallel()
	need.Root(t) // owners, devices and trusted.* attributes
	mtime := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	lower := tarLayer(t,
		file{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}},
		file{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o750, Uid: 7, Gid: 8, ModTime: mtime}},
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "bin/run", Mode: 0o755}, body: "#!/bin/sh\n"},
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "bin/suid", Mode: 0o4755, Uid: 1000, Gid: 1001, ModTime: mtime}, body: "x"},
		file{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "run"}},
		file{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "etc-link", Linkname: "/etc/passwd"}},
		file{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "bin/hard", Linkname: "bin/run"}},
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/secret", Mode: 0o600}, body: "s"},
	)
	upper := tarLayer(t,
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.secret", Mode: 0o600}},
		file{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "var/", Mode: 0o755}},
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "var/.wh..wh..opq", Mode: 0o600}},
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "var/new", Mode: 0o644}, body: "n"},
		file{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "pipe", Mode: 0o600}},
	)
	s := openStore(t)
	dirs := unpack(t, s, imageOf(t, lower, upper))
	lo, up := dirs[0], dirs[1]

	type want struct {
		mode     os.FileMode // type and permission bits
		uid, gid int
		mtime    time.Time // zero: not checked
	}
	for _, tc := range []struct {
		name string
		path string
		want want
	}{
		{"root", lo, want{mode: os.ModeDir | 0o755}},
		{"dir owner, mode, time", filepath.Join(lo, "bin"), want{os.ModeDir | 0o750, 7, 8, mtime}},
		{"exec file", filepath.Join(lo, "bin/run"), want{mode: 0o755}},
		{"setuid file keeps its bit after chown", filepath.Join(lo, "bin/suid"), want{os.ModeSetuid | 0o755, 1000, 1001, mtime}},
		{"relative symlink", filepath.Join(lo, "bin/sh"), want{mode: os.ModeSymlink | 0o777}},
		{"implicit parent", filepath.Join(lo, "etc"), want{mode: os.ModeDir | 0o755}},
		{"private file", filepath.Join(lo, "etc/secret"), want{mode: 0o600}},
		{"whiteout", filepath.Join(up, "etc/secret"), want{mode: os.ModeDevice | os.ModeCharDevice}},
		{"opaque dir content", filepath.Join(up, "var/new"), want{mode: 0o644}},
		{"fifo", filepath.Join(up, "pipe"), want{mode: os.ModeNamedPipe | 0o600}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fi, err := os.Lstat(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode() != tc.want.mode || int(st.Uid) != tc.want.uid || int(st.Gid) != tc.want.gid {
				t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", tc.path, fi.Mode(), st.Uid, st.Gid, tc.want.mode, tc.want.uid, tc.want.gid)
			}
			if !tc.want.mtime.IsZero() && !fi.ModTime().Equal(tc.want.mtime) {
				t.Errorf("%s: mtime %v, want %v", tc.path, fi.ModTime(), tc.want.mtime)
			}
		})
	}
	if got, err := os.Readlink(filepath.Join(lo, "etc-link")); err != nil || got != "/etc/passwd" {
		t.Errorf("absolute symlink = %q, %v; want it kept as /etc/passwd", got, err)
	}
	a, _ := os.Stat(filepath.Join(lo, "bin/run"))
	b, _ := os.Stat(filepath.Join(lo, "bin/hard"))
	if !os.SameFile(a, b) {
		t.Error("bin/hard is not a hard link to bin/run")
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(up, "etc/secret"), &st); err != nil || st.Rdev != 0 {
		t.Errorf("whiteout device = %d, %v; want 0/0", st.Rdev, err)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(up, "var"), opaqueXattr, buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque folder xattr = %q, %v; want y", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(up, "var/.wh..wh..opq")); !os.IsNotExist(err) {
		t.Errorf("the opaque marker was unpacked as a file: %v", err)
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	t.Parallel()
	need.Root(t) // owners, devices and trusted.* attributes
	outside := t.TempDir()
	for _, tc := range []struct {
		name  string
		files []file
	}{
		{"dot dot", []file{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "../x", Mode: 0o644}, body: "x"}}},
		{"dot dot inside", []file{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "a/../../x", Mode: 0o644}, body: "x"}}},
		{"absolute", []file{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "/etc/x", Mode: 0o644}, body: "x"}}},
		{"write through absolute symlink", []file{
			{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "evil", Linkname: outside}},
			{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "evil/x", Mode: 0o644}, body: "x"}}},
		{"write through relative symlink", []file{
			{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "a/", Mode: 0o755}},
			{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "a/up", Linkname: "../../../../../../../../" + outside}},
			{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "a/up/d/", Mode: 0o755}}}},
		{"whiteout through symlink", []file{
			{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "evil", Linkname: outside}},
			{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "evil/.wh.x"}}}},
		{"hard link out", []file{{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "x", Linkname: "../../etc/passwd"}}}},
		{"hard link absolute", []file{{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "x", Linkname: "/etc/passwd"}}}},
		{"hard link through symlink", []file{
			{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "etc", Linkname: "/etc"}},
			{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "x", Linkname: "etc/passwd"}}}},
		{"device", []file{{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "sda", Devmajor: 8}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openStore(t)
			d := put(t, s, imageOf(t, tarLayer(t, tc.files...)), "bad:1")
			_, err := s.Unpack(t.Context(), d)
			if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "unsafe layer") {
				t.Fatalf("Unpack = %v, want an Invalid unsafe layer error", err)
			}
			left, _ := os.ReadDir(filepath.Join(s.dir, "layers"))
			if len(left) != 0 {
				t.Errorf("a refused layer left %v in layers/", left)
			}
		})
	}
	if left, _ := os.ReadDir(outside); len(left) != 0 {
		t.Errorf("unpacking wrote outside the layer: %v", left)
	}
	if _, err := os.Stat("/x"); err == nil {
		t.Error("unpacking wrote /x")
	}
}

func TestUnpackConcurrentlyUnpacksOnce(t *testing.T) {
	t.Parallel()
	need.Root(t) // owners, devices and trusted.* attributes
	s := openStore(t)
	img := randomImage(t, 3)
	d := put(t, s, img, "app:1")
	var wg sync.WaitGroup
	results := make([][]string, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = s.Unpack(context.Background(), d) })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("Unpack #%d: %v", i, errs[i])
		}
		if strings.Join(results[i], ",") != strings.Join(results[0], ",") {
			t.Errorf("Unpack #%d = %v, want %v", i, results[i], results[0])
		}
	}
	if n := s.unpacked.Load(); n != 3 {
		t.Errorf("8 concurrent Unpacks of a 3-layer image unpacked %d layers, want 3", n)
	}
	// An image sharing a layer reuses its folder.
	layers, _ := img.Layers()
	other := imageOf(t, layers[1], tarLayer(t, file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "x", Mode: 0o644}, body: "x"}))
	dirs := unpack(t, s, other)
	if dirs[0] != results[0][1] {
		t.Errorf("shared layer unpacked into %s, want the existing %s", dirs[0], results[0][1])
	}
	if n := s.unpacked.Load(); n != 4 {
		t.Errorf("after an image sharing one layer: %d layers unpacked, want 4", n)
	}
	left, _ := os.ReadDir(filepath.Join(s.dir, "layers"))
	if len(left) != 4 {
		t.Errorf("layers/ holds %d entries, want 4", len(left))
	}
}

func TestUnpackCancelled(t *testing.T) {
	t.Parallel()
	need.Root(t) // owners, devices and trusted.* attributes
	s := openStore(t)
	d := put(t, s, randomImage(t, 1), "app:1")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Unpack(ctx, d); !errors.Is(err, context.Canceled) {
		t.Errorf("Unpack with a cancelled context = %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(filepath.Join(s.dir, "layers")); len(left) != 0 {
		t.Errorf("a cancelled Unpack left %v", left)
	}
}
