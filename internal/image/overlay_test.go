package image

import (
	"archive/tar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"noops/internal/testenv/need"
)

// TestUnpackedLayersMountAsOverlay mounts unpacked layers the way sandboxes
// do and checks that overlayfs honours their whiteouts and opaque folders.
func TestUnpackedLayersMountAsOverlay(t *testing.T) {
	t.Parallel()
	need.Root(t)
	lower := tarLayer(t,
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/keep", Mode: 0o644}, body: "keep"},
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/secret", Mode: 0o600}, body: "s"},
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "var/old", Mode: 0o644}, body: "old"},
	)
	upper := tarLayer(t,
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.secret"}},
		file{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "var/", Mode: 0o755}},
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "var/.wh..wh..opq"}},
		file{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "var/new", Mode: 0o644}, body: "new"},
	)
	s := openStore(t)
	dirs := unpack(t, s, imageOf(t, lower, upper))
	slices.Reverse(dirs) // overlayfs lists the top layer first
	mnt := t.TempDir()
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(dirs, ":")); err != nil {
		t.Fatalf("mounting the unpacked layers: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	for _, tc := range []struct {
		name, path, want string // want "" means absent
	}{
		{"lower file", "etc/keep", "keep"},
		{"whited out", "etc/secret", ""},
		{"hidden by opaque folder", "var/old", ""},
		{"in opaque folder", "var/new", "new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(mnt, tc.path))
			if tc.want == "" {
				if !os.IsNotExist(err) {
					t.Errorf("%s: %q, %v; want it absent", tc.path, b, err)
				}
				return
			}
			if err != nil || string(b) != tc.want {
				t.Errorf("%s: %q, %v; want %q", tc.path, b, err, tc.want)
			}
		})
	}
}
