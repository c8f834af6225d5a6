package image

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"noops/internal/errkind"
)

// fakeZoneinfo writes a small time zone database shaped like Debian's.
func fakeZoneinfo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"Etc/UTC": "TZif-utc", "Europe/Paris": "TZif-paris", "right/UTC": "TZif-right", "posix/UTC": "TZif-posix", "zone.tab": "tab"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"UTC": "Etc/UTC", "Europe/Lutetia": "../Europe/Paris", "localtime": "/etc/localtime", "Leap": "right/UTC", "Out": "../../etc/passwd"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBaseLayer(t *testing.T) {
	t.Parallel()
	zi := fakeZoneinfo(t)
	l, err := BaseLayer(BaseOptions{Zoneinfo: zi})
	if err != nil {
		t.Fatalf("BaseLayer: %v", err)
	}
	hs, bodies := entries(t, l)
	if !strings.Contains(bodies["etc/passwd"], "\nnonroot:x:65532:65532:nonroot:/home/nonroot:") {
		t.Errorf("/etc/passwd has no nonroot user:\n%s", bodies["etc/passwd"])
	}
	for _, want := range []string{"root:x:0:", "nonroot:x:65532:", "nobody:x:65534:"} {
		if !strings.Contains(bodies["etc/group"], want) {
			t.Errorf("/etc/group lacks %q", want)
		}
	}
	if bodies["etc/nsswitch.conf"] != "hosts: files dns\n" {
		t.Errorf("/etc/nsswitch.conf = %q", bodies["etc/nsswitch.conf"])
	}
	certs, _ := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if len(certs) == 0 || bodies["etc/ssl/certs/ca-certificates.crt"] != string(certs) {
		t.Errorf("CA bundle has %d bytes, want the host's %d", len(bodies["etc/ssl/certs/ca-certificates.crt"]), len(certs))
	}
	for _, tc := range []struct {
		name     string
		typ      byte
		mode     int64
		uid      int
		linkname string
	}{
		{"tmp", tar.TypeDir, 0o1777, 0, ""},
		{"home/nonroot", tar.TypeDir, 0o700, NonRootUID, ""},
		{"app", tar.TypeDir, 0o755, 0, ""},
		{"usr/share/zoneinfo/Etc/UTC", tar.TypeReg, 0o644, 0, ""},
		{"usr/share/zoneinfo/UTC", tar.TypeSymlink, 0o777, 0, "Etc/UTC"},
		{"usr/share/zoneinfo/Europe/Lutetia", tar.TypeSymlink, 0o777, 0, "../Europe/Paris"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hs[tc.name]
			if h == nil {
				t.Fatalf("base layer has no %s", tc.name)
			}
			if h.Typeflag != tc.typ || h.Mode != tc.mode || h.Uid != tc.uid || h.Gid != tc.uid || h.Linkname != tc.linkname {
				t.Errorf("%s: type %c mode %o owner %d:%d link %q; want %c %o %d:%d %q", tc.name,
					h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname, tc.typ, tc.mode, tc.uid, tc.uid, tc.linkname)
			}
		})
	}
	for name, h := range hs {
		if !h.ModTime.Equal(epoch) {
			t.Errorf("%s has mtime %v, want %v", name, h.ModTime, epoch)
		}
		for _, left := range []string{"right", "posix", "localtime", "Leap", "Out"} {
			if strings.HasPrefix(name, "usr/share/zoneinfo/"+left) {
				t.Errorf("base layer has %s, which it should leave out", name)
			}
		}
	}
}

func TestBaseLayerIsDeterministic(t *testing.T) {
	t.Parallel()
	a, err := BaseLayer(BaseOptions{})
	if err != nil {
		t.Fatalf("BaseLayer: %v", err)
	}
	b, err := BaseLayer(BaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("two BaseLayer calls gave %s and %s", da, db)
	}
	// The same files elsewhere, with other times, give the same layer.
	zi := fakeZoneinfo(t)
	x, _ := BaseLayer(BaseOptions{Zoneinfo: zi})
	zi2 := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(zi2, os.DirFS(zi)); err != nil {
		t.Fatal(err)
	}
	y, err := BaseLayer(BaseOptions{Zoneinfo: zi2})
	if err != nil {
		t.Fatal(err)
	}
	dx, _ := x.Digest()
	dy, _ := y.Digest()
	if dx != dy {
		t.Errorf("a copied zoneinfo gave %s, the original %s", dy, dx)
	}
	hs, _ := entries(t, a)
	if _, ok := hs["usr/share/zoneinfo/Europe/Paris"]; !ok {
		t.Error("the host's base layer has no Europe/Paris")
	}
}

func TestBaseLayerMissingHostFiles(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing")
	for _, tc := range []struct {
		name string
		opts BaseOptions
		want string
	}{
		{"no CA certificates", BaseOptions{CACerts: missing}, "ca-certificates"},
		{"no zoneinfo", BaseOptions{Zoneinfo: missing}, "tzdata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := BaseLayer(tc.opts)
			if !errkind.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), missing) || !strings.Contains(errkind.HintOf(err), tc.want) {
				t.Errorf("BaseLayer = %v (hint %q), want Unavailable naming %s with a hint to install %s", err, errkind.HintOf(err), missing, tc.want)
			}
		})
	}
}
