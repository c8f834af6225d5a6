package stack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCleanName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want, wantErr string }{
		{name: "root", in: "./", want: ""},
		{name: "usr file", in: "./usr/bin/node", want: "usr/bin/node"},
		{name: "bin into usr", in: "./bin/dash", want: "usr/bin/dash"},
		{name: "lib into usr", in: "./lib/x86_64-linux-gnu/libc.so.6", want: "usr/lib/x86_64-linux-gnu/libc.so.6"},
		{name: "lib64 into usr", in: "./lib64/ld-linux-x86-64.so.2", want: "usr/lib64/ld-linux-x86-64.so.2"},
		{name: "sbin folder", in: "./sbin/", want: "usr/sbin"},
		{name: "a name that only starts like bin", in: "./binaries/x", want: "binaries/x"},
		{name: "absolute", in: "/etc/x", want: "etc/x"},
		{name: "dots inside names", in: "./usr/lib/a..b", want: "usr/lib/a..b"},
		{name: "parent reference", in: "./usr/../../etc/shadow", wantErr: "leaves the root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cleanName(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("cleanName(%q) = %q, %v; want error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("cleanName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestKeepFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, pkg, file string
		want            bool
	}{
		{"program", "nodejs", "usr/bin/node", true},
		{"copyright", "nodejs", "usr/share/doc/nodejs/copyright", true},
		{"doc folder", "nodejs", "usr/share/doc/nodejs", true},
		{"doc folder's parent", "nodejs", "usr/share/doc", true},
		{"changelog", "nodejs", "usr/share/doc/nodejs/changelog.Debian.gz", false},
		{"nested copyright is documentation", "nodejs", "usr/share/doc/nodejs/api/copyright", false},
		{"manual page", "nodejs", "usr/share/man/man1/node.1.gz", false},
		{"man folder", "nodejs", "usr/share/man", false},
		{"translations", "libc6", "usr/share/locale/de/LC_MESSAGES/libc.mo", false},
		{"lintian overrides", "libc6", "usr/share/lintian/overrides/libc6", false},
		{"info", "tar", "usr/share/info/tar.info.gz", false},
		{"os-release", "base-files", "usr/lib/os-release", true},
		{"os-release link", "base-files", "etc/os-release", true},
		{"licences", "base-files", "usr/share/common-licenses/GPL-3", true},
		{"parent of kept", "base-files", "usr/lib", true},
		{"base-files copyright", "base-files", "usr/share/doc/base-files/copyright", true},
		{"login environment", "base-files", "etc/profile", false},
		{"motd", "base-files", "etc/motd", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := keepFile(tc.pkg, tc.file); got != tc.want {
				t.Errorf("keepFile(%q, %q) = %v, want %v", tc.pkg, tc.file, got, tc.want)
			}
		})
	}
}

// debData is a package data tar as dpkg-deb --fsys-tarfile gives it.
func debData(t *testing.T, hdrs ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		body := strings.Repeat("x", int(h.Size))
		if h.Typeflag == tar.TypeReg && h.Size == 0 && h.Linkname != "" { // Linkname carries the body
			body, h.Linkname = h.Linkname, ""
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unpackedOf reads data as package pkg would be, spooling into a file.
func unpackedOf(t *testing.T, pkg string, data []byte) *unpacked {
	t.Helper()
	spool, err := os.Create(filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { spool.Close() })
	entries, err := readData(bytes.NewReader(data), pkg, spool)
	if err != nil {
		t.Fatalf("readData(%s): %v", pkg, err)
	}
	u := &unpacked{pkg: Package{Name: pkg, Version: "1"}, spool: spool, control: Paragraph{{"Package", pkg}, {"Version", "1"}}}
	for _, e := range entries {
		u.files = append(u.files, &file{pkg: pkg, spool: spool, off: e.Offset, hdr: tar.Header{
			Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Uid: e.UID, Gid: e.GID, Linkname: e.Linkname, Size: e.Size}})
	}
	return u
}

func reg(name, body string, mode int64) tar.Header {
	return tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Linkname: body}
}

// layerEntries reads a written layer into headers and bodies by name.
func layerEntries(t *testing.T, l *layerFile) ([]*tar.Header, map[string]string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var hs []*tar.Header
	bodies := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hs, bodies
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		hs = append(hs, h)
		bodies[h.Name] = string(b)
	}
}

func TestMergeWritesAMergedUsrLayer(t *testing.T) {
	t.Parallel()
	dash := unpackedOf(t, "dash", debData(t,
		tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeDir, Name: "./bin/", Mode: 0o751},
		reg("./bin/dash", "ELF", 0o755),
		tar.Header{Typeflag: tar.TypeSymlink, Name: "./bin/sh", Linkname: "dash"},
		reg("./usr/bin/su", "suid", 0o4755),
		tar.Header{Typeflag: tar.TypeDir, Name: "./usr/share/doc/dash/", Mode: 0o755},
		reg("./usr/share/doc/dash/copyright", "C", 0o644),
		reg("./usr/share/doc/dash/changelog.gz", "L", 0o644),
		reg("./usr/share/man/man1/dash.1.gz", "M", 0o644),
		// hard links, one sorting before its target
		reg("./usr/lib/python3.11/z", "same", 0o644),
		tar.Header{Typeflag: tar.TypeLink, Name: "./usr/lib/python3.11/a", Linkname: "./usr/lib/python3.11/z"},
		tar.Header{Typeflag: tar.TypeDir, Name: "./var/mail/", Mode: 0o2775, Gid: 8},
	))
	other := unpackedOf(t, "other", debData(t,
		tar.Header{Typeflag: tar.TypeDir, Name: "./usr/bin/", Mode: 0o700}, // first package's mode wins
		reg("./usr/bin/dash", "ELF", 0o755),                                // the same file: fine
	))
	tr, err := merge([]*unpacked{dash, other})
	if err != nil {
		t.Fatal(err)
	}
	tr.finish()
	l, err := tr.write(context.Background(), filepath.Join(t.TempDir(), "layer"))
	if err != nil {
		t.Fatal(err)
	}
	hs, bodies := layerEntries(t, l)
	var got []string
	byName := map[string]*tar.Header{}
	for _, h := range hs {
		got = append(got, h.Name)
		byName[h.Name] = h
	}
	want := []string{"bin", "lib", "sbin", "usr/", "usr/bin/", "usr/bin/dash", "usr/bin/sh", "usr/bin/su",
		"usr/lib/", "usr/lib/python3.11/", "usr/lib/python3.11/a", "usr/lib/python3.11/z",
		"usr/sbin/", "usr/share/", "usr/share/doc/", "usr/share/doc/dash/", "usr/share/doc/dash/copyright",
		"var/", "var/mail/"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("layer entries\n%q\nwant\n%q", got, want)
	}
	for _, tc := range []struct {
		name  string
		check func() bool
	}{
		{"bin links to usr/bin", func() bool { return byName["bin"].Typeflag == tar.TypeSymlink && byName["bin"].Linkname == "usr/bin" }},
		{"sh keeps its relative target", func() bool { return byName["usr/bin/sh"].Linkname == "dash" }},
		{"set-user-ID bit dropped", func() bool { return byName["usr/bin/su"].Mode == 0o755 }},
		{"first folder mode wins", func() bool { return byName["usr/bin/"].Mode == 0o751 }},
		{"group and set-group-ID folder kept", func() bool { return byName["var/mail/"].Gid == 8 && byName["var/mail/"].Mode == 0o2775 }},
		{"first hard link name holds the contents", func() bool {
			return byName["usr/lib/python3.11/a"].Typeflag == tar.TypeReg && bodies["usr/lib/python3.11/a"] == "same"
		}},
		{"later name links to it", func() bool {
			z := byName["usr/lib/python3.11/z"]
			return z.Typeflag == tar.TypeLink && z.Linkname == "usr/lib/python3.11/a"
		}},
		{"fixed times", func() bool { return byName["usr/bin/dash"].ModTime.Equal(epoch) }},
		{"no user names", func() bool { return byName["usr/bin/dash"].Uname == "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.check() {
				t.Error("not so")
			}
		})
	}
	again, err := tr.write(context.Background(), filepath.Join(t.TempDir(), "layer"))
	if err != nil {
		t.Fatal(err)
	}
	if again.digest != l.digest || again.diffID != l.diffID {
		t.Errorf("writing the tree twice gave %s and %s", l.digest, again.digest)
	}
}

func TestMergeRefusesConflicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		a, b []tar.Header
		want string
	}{
		{"different contents", []tar.Header{reg("./usr/bin/x", "one", 0o755)}, []tar.Header{reg("./usr/bin/x", "two", 0o755)}, "both ship /usr/bin/x"},
		{"through merged /usr", []tar.Header{reg("./bin/x", "one", 0o755)}, []tar.Header{reg("./usr/bin/x", "two", 0o755)}, "both ship /usr/bin/x"},
		{"file and folder", []tar.Header{reg("./etc/x", "one", 0o644)}, []tar.Header{{Typeflag: tar.TypeDir, Name: "./etc/x/", Mode: 0o755}}, "both ship /etc/x"},
		{"links to different targets", []tar.Header{{Typeflag: tar.TypeSymlink, Name: "./etc/x", Linkname: "a"}},
			[]tar.Header{{Typeflag: tar.TypeSymlink, Name: "./etc/x", Linkname: "b"}}, "both ship /etc/x"},
		{"hard link to a dropped file", []tar.Header{reg("./usr/share/doc/a/README", "r", 0o644),
			{Typeflag: tar.TypeLink, Name: "./usr/lib/readme", Linkname: "./usr/share/doc/a/README"}}, nil, "not a file the image keeps"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := []*unpacked{unpackedOf(t, "a", debData(t, tc.a...))}
			if tc.b != nil {
				parts = append(parts, unpackedOf(t, "b", debData(t, tc.b...)))
			}
			_, err := merge(parts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("merge: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestReadDataRefusesDevices(t *testing.T) {
	t.Parallel()
	data := debData(t, tar.Header{Typeflag: tar.TypeChar, Name: "./dev/null", Mode: 0o666})
	if _, err := readData(bytes.NewReader(data), "x", io.Discard); err == nil || !strings.Contains(err.Error(), "may not contain") {
		t.Errorf("readData of a device: %v, want a refusal", err)
	}
}

func TestSystemFiles(t *testing.T) {
	t.Parallel()
	cert := "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----"
	ca := unpackedOf(t, "ca-certificates", debData(t,
		reg("./usr/share/ca-certificates/mozilla/B.crt", cert, 0o644),
		reg("./usr/share/ca-certificates/mozilla/A.crt", cert+"\n", 0o644),
		reg("./usr/share/ca-certificates/mozilla/README", "not a certificate", 0o644),
	))
	ssl := unpackedOf(t, "libssl3", debData(t, reg("./usr/lib/x86_64-linux-gnu/libssl.so.3", "ELF", 0o644)))
	base := unpackedOf(t, "base-files", debData(t,
		reg("./usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n", 0o644)))
	tr, err := merge([]*unpacked{base, ca, ssl})
	if err != nil {
		t.Fatal(err)
	}
	if err := addSystemFiles(tr, []*unpacked{base, ca, ssl}); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, ok, err := tr.read(name)
		if err != nil || !ok {
			t.Fatalf("reading %s: %v, %v", name, ok, err)
		}
		return string(b)
	}
	if got, want := read(caBundle), cert+"\n"+cert+"\n"; got != want {
		t.Errorf("CA bundle = %q, want %q", got, want)
	}
	if got := read("etc/passwd"); !strings.Contains(got, "nonroot:x:65532:65532:nonroot:/home/nonroot:") {
		t.Errorf("passwd = %q, want the nonroot user", got)
	}
	if got := read("var/lib/dpkg/status.d/libssl3"); got != "Package: libssl3\nStatus: install ok installed\nVersion: 1\n" {
		t.Errorf("status record = %q", got)
	}
	if l := tr["usr/lib/ssl/cert.pem"]; l == nil || l.hdr.Linkname != "/"+caBundle {
		t.Errorf("OpenSSL's cert.pem = %+v, want a link to the bundle", l)
	}
	if h := tr["home/nonroot"].hdr; h.Uid != 65532 || h.Mode != 0o700 {
		t.Errorf("/home/nonroot is %d mode %o, want 65532 mode 700", h.Uid, h.Mode)
	}
	if h := tr["tmp"].hdr; h.Mode != 0o1777 {
		t.Errorf("/tmp mode %o, want 1777", h.Mode)
	}
	if d, err := distro(tr); err != nil || d != "debian-12" {
		t.Errorf("distro = %q, %v; want debian-12", d, err)
	}
	for name, f := range tr {
		if name != "" && !strings.Contains(name, "/") {
			continue
		}
		parent := filepath.Dir(name)
		if p, ok := tr[parent]; !ok || p.hdr.Typeflag != tar.TypeDir {
			t.Errorf("%s has no parent folder %s", f.hdr.Name, parent)
		}
	}
}

func TestParseOSRelease(t *testing.T) {
	t.Parallel()
	got := parseOSRelease("# c\nID=debian\nVERSION_ID=\"12\"\nNAME='Debian'\nHOME_URL=\"https://www.debian.org/\"\nbad line\n")
	want := map[string]string{"ID": "debian", "VERSION_ID": "12", "NAME": "Debian", "HOME_URL": "https://www.debian.org/"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseOSRelease = %v, want %v", got, want)
	}
}

func TestLayerFileIsALayer(t *testing.T) {
	t.Parallel()
	tr := tree{}
	tr.add(regular("etc/hello", 0o644, []byte("hi")))
	tr.finish()
	l, err := tr.write(context.Background(), filepath.Join(t.TempDir(), "l"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	gz, err := gzip.NewReader(rc)
	if err != nil {
		t.Fatalf("the layer is not gzip: %v", err)
	}
	if _, err := io.Copy(io.Discard, gz); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(l.path); fi.Size() != l.size {
		t.Errorf("Size() = %d, file has %d", l.size, fi.Size())
	}
}
