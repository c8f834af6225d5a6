package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Who runs an app, and where it lives inside its image.
const (
	NonRootUID  = 65532
	NonRootUser = "65532:65532" // the image config's User
	AppDir      = "/app"
)

// epoch is the modification time of every entry in the layers noops writes,
// so that a layer's digest depends only on its contents (as in Cloud Native
// Buildpacks, which use the same instant).
var epoch = time.Date(1980, 1, 1, 0, 0, 1, 0, time.UTC)

// entry is one file of a layer being written. Exactly one of data and src
// is used for a regular file: src is a host file read while writing.
type entry struct {
	hdr  tar.Header
	data []byte
	src  string
}

func dirEntry(name string, mode int64, uid int) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: uid}}
}

func fileEntry(name string, mode int64, data []byte) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data: data}
}

// writeLayer writes entries as a deterministic layer: sorted by name, owned
// as their headers say, stamped with epoch, gzipped in memory.
func writeLayer(entries []entry) (v1.Layer, error) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].hdr.Name < entries[j].hdr.Name })
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for i := range entries {
		e := &entries[i]
		if i > 0 && entries[i-1].hdr.Name == e.hdr.Name {
			return nil, fmt.Errorf("writing layer: %s appears twice", e.hdr.Name)
		}
		h := e.hdr
		h.ModTime = epoch
		h.Format = tar.FormatPAX
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, fmt.Errorf("writing layer entry %s: %w", e.hdr.Name, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if e.src == "" {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("writing layer entry %s: %w", e.hdr.Name, err)
			}
			continue
		}
		if err := copyFile(tw, e.src, h.Size); err != nil {
			return nil, fmt.Errorf("writing layer entry %s: %w", e.hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("writing layer: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("compressing layer: %w", err)
	}
	gzipped := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gzipped)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("hashing layer: %w", err)
	}
	return l, nil
}

// copyFile copies exactly size bytes of the host file src, so that a file
// that changes while it is read fails the layer instead of corrupting it.
func copyFile(w io.Writer, src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s changed while it was read", src)
	}
	return nil
}

// LayerFromDir returns a deterministic layer holding the tree at dir under
// the folder under (for example "app"): entries sorted, owned by root,
// stamped 1980-01-01, folders 0755, files 0755 when executable by their
// owner and 0644 otherwise, symlinks kept as they are. Other kinds of file
// (devices, sockets, pipes) are refused.
func LayerFromDir(dir, under string) (v1.Layer, error) {
	under = strings.Trim(path.Clean("/"+under), "/")
	if under == "" {
		return nil, fmt.Errorf("making a layer of %s: the folder inside the image must not be the root", dir)
	}
	var entries []entry
	for p := path.Dir(under); p != "."; p = path.Dir(p) {
		entries = append(entries, dirEntry(p, 0o755, 0))
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(under, filepath.ToSlash(rel))
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch m := fi.Mode(); {
		case m.IsDir():
			entries = append(entries, dirEntry(name, 0o755, 0))
		case m.IsRegular():
			mode := int64(0o644)
			if m&0o100 != 0 {
				mode = 0o755
			}
			entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: fi.Size()}, src: p})
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			entries = append(entries, entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}})
		default:
			return fmt.Errorf("%s is a %v, which images may not contain", rel, m.Type())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("making a layer of %s: %w", dir, err)
	}
	return writeLayer(entries)
}

// plainLayer hides the Descriptor method of the layer it wraps: a tarball
// layer describes itself with an empty, non-nil annotations map, which the
// manifest's JSON drops, and validate.Image then reports a mismatch.
type plainLayer struct{ v1.Layer }

// Assemble returns an OCI image for this machine's architecture made of
// layers (bottom first) and running as cfg says, created at created.
func Assemble(cfg v1.Config, created time.Time, layers ...v1.Layer) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{Layer: plainLayer{l}, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "noops"}}
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("assembling image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("assembling image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Created = v1.Time{Time: created}
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("assembling image config: %w", err)
	}
	return img, nil
}
