package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"noops/internal/errkind"
)

// BaseOptions says where BaseLayer finds what it copies from the host.
type BaseOptions struct {
	CACerts  string // PEM bundle; default /etc/ssl/certs/ca-certificates.crt
	Zoneinfo string // time zone database; default /usr/share/zoneinfo
}

func (o *BaseOptions) defaults() {
	if o.CACerts == "" {
		o.CACerts = "/etc/ssl/certs/ca-certificates.crt"
	}
	if o.Zoneinfo == "" {
		o.Zoneinfo = "/usr/share/zoneinfo"
	}
}

const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nonroot:x:65532:\n" +
		"nobody:x:65534:\n"
	nsswitch = "hosts: files dns\n"
)

// zoneinfoSkipped are the duplicate trees of the time zone database that
// the base leaves out to stay small.
var zoneinfoSkipped = map[string]bool{"right": true, "posix": true}

// BaseLayer returns the layer every app image starts from: users and
// groups (root, nonroot 65532, nobody), name service switch, the host's CA
// certificates and time zone database, /tmp, /home/nonroot and /app. It is
// deterministic: the same host files give the same digest on any machine.
func BaseLayer(o BaseOptions) (v1.Layer, error) {
	o.defaults()
	certs, err := os.Stat(o.CACerts)
	if err != nil || !certs.Mode().IsRegular() {
		return nil, missingHostFile(o.CACerts, "ca-certificates", err)
	}
	if fi, err := os.Stat(o.Zoneinfo); err != nil || !fi.IsDir() {
		return nil, missingHostFile(o.Zoneinfo, "tzdata", err)
	}
	entries := []entry{
		dirEntry("etc", 0o755, 0),
		fileEntry("etc/passwd", 0o644, []byte(passwd)),
		fileEntry("etc/group", 0o644, []byte(group)),
		fileEntry("etc/nsswitch.conf", 0o644, []byte(nsswitch)),
		dirEntry("etc/ssl", 0o755, 0),
		dirEntry("etc/ssl/certs", 0o755, 0),
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Size: certs.Size()}, src: o.CACerts},
		dirEntry("tmp", 0o1777, 0),
		dirEntry("home", 0o755, 0),
		dirEntry("home/nonroot", 0o700, NonRootUID),
		dirEntry("root", 0o700, 0),
		dirEntry(strings.TrimPrefix(AppDir, "/"), 0o755, 0),
		dirEntry("usr", 0o755, 0),
		dirEntry("usr/share", 0o755, 0),
	}
	zones, err := zoneinfo(o.Zoneinfo, "usr/share/zoneinfo")
	if err != nil {
		return nil, err
	}
	l, err := writeLayer(append(entries, zones...))
	if err != nil {
		return nil, fmt.Errorf("building base layer: %w", err)
	}
	return l, nil
}

func missingHostFile(p, pkg string, err error) error {
	if err == nil {
		err = errors.New("wrong kind of file")
	}
	return errkind.WithHint(errkind.Unavailable,
		fmt.Errorf("building base layer: reading %s from the host: %w", p, err),
		fmt.Sprintf("install the %s package on the server (apt-get install %s)", pkg, pkg))
}

// zoneinfo lists the time zone database at dir as entries under name,
// leaving out the duplicate trees and links that point out of what is kept.
func zoneinfo(dir, name string) ([]entry, error) {
	var entries []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if zoneinfoSkipped[rel] {
			return fs.SkipDir
		}
		n := path.Join(name, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch m := fi.Mode(); {
		case m.IsDir():
			entries = append(entries, dirEntry(n, 0o755, 0))
		case m.IsRegular():
			entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: fi.Size()}, src: p})
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			// A link such as localtime -> /etc/localtime describes the host,
			// and one into right/ or posix/ would dangle: leave both out.
			resolved := path.Join(path.Dir(rel), target)
			if path.IsAbs(target) || !fs.ValidPath(resolved) || zoneinfoSkipped[strings.SplitN(resolved, "/", 2)[0]] {
				return nil
			}
			entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: n, Linkname: target, Mode: 0o777}})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("building base layer: reading time zones from %s: %w", dir, err)
	}
	return entries, nil
}
