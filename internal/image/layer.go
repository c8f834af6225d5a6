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

// writeLayer writes entries as a deterministic layer (see encodeLayer),
// gzipped in memory.
func writeLayer(entries []entry) (v1.Layer, error) {
	var buf bytes.Buffer
	if err := encodeLayer(entries, &buf); err != nil {
		return nil, err
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

// encodeLayer writes entries to w as a gzipped tar: sorted by name, owned
// as their headers say, stamped with epoch.
func encodeLayer(entries []entry, w io.Writer) error {
	sort.Slice(entries, func(i, j int) bool { return entries[i].hdr.Name < entries[j].hdr.Name })
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for i := range entries {
		e := &entries[i]
		if i > 0 && entries[i-1].hdr.Name == e.hdr.Name {
			return fmt.Errorf("writing layer: %s appears twice", e.hdr.Name)
		}
		h := e.hdr
		h.ModTime = epoch
		h.Format = tar.FormatPAX
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if err := tw.WriteHeader(&h); err != nil {
			return fmt.Errorf("writing layer entry %s: %w", e.hdr.Name, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if e.src == "" {
			if _, err := tw.Write(e.data); err != nil {
				return fmt.Errorf("writing layer entry %s: %w", e.hdr.Name, err)
			}
			continue
		}
		if err := copyFile(tw, e.src, h.Size); err != nil {
			return fmt.Errorf("writing layer entry %s: %w", e.hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing layer: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("compressing layer: %w", err)
	}
	return nil
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
	entries, err := dirEntries(dir, under)
	if err != nil {
		return nil, err
	}
	return writeLayer(entries)
}

// LayerFileFromDir is LayerFromDir for big trees (node_modules, a
// virtualenv): the layer is written to the file out, not kept in memory,
// and read from it. A layer file made earlier from the same tree has the
// same digest, so out can be kept and reused with LayerFromFile.
func LayerFileFromDir(dir, under, out string) (v1.Layer, error) {
	entries, err := dirEntries(dir, under)
	if err != nil {
		return nil, err
	}
	tmp := out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("making a layer of %s: %w", dir, err)
	}
	err = encodeLayer(entries, f)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("making a layer of %s: %w", dir, err)
	}
	return LayerFromFile(out)
}

// LayerFromFile reads a gzipped layer tar that LayerFileFromDir wrote.
func LayerFromFile(file string) (v1.Layer, error) {
	l, err := tarball.LayerFromFile(file, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("reading layer %s: %w", file, err)
	}
	return l, nil
}

// dirEntries lists the tree at dir as layer entries under the folder under.
func dirEntries(dir, under string) ([]entry, error) {
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
	return entries, nil
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

// Extend returns base with layers added on top (in order) and the config's
// runtime part replaced by cfg, created at created: an app image on its
// stack's run image. base's layers stay byte-identical, which is what lets
// rebase swap them later.
func Extend(base v1.Image, cfg v1.Config, created time.Time, layers ...v1.Layer) (v1.Image, error) {
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{Layer: plainLayer{l}, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "noops build"}}
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, fmt.Errorf("adding layers to the run image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("writing the image config: %w", err)
	}
	return img, nil
}

// Rebase returns img with its bottom baseLayers layers (its old run image)
// replaced by newBase's layers: the layers above them are kept
// byte-identical (the same blobs, the same digests) and the config is img's,
// with labels updated by labels. Nothing is rebuilt, so it takes as long as
// writing a manifest and a config.
func Rebase(img v1.Image, baseLayers int, newBase v1.Image, labels map[string]string, created time.Time) (v1.Image, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the app image's layers: %w", err)
	}
	if baseLayers < 1 || baseLayers >= len(layers) {
		return nil, fmt.Errorf("the app image has %d layers, so %d of them cannot be its run image", len(layers), baseLayers)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the app image's config: %w", err)
	}
	cfg := *cf.Config.DeepCopy()
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for k, v := range labels {
		cfg.Labels[k] = v
	}
	return Extend(newBase, cfg, created, layers[baseLayers:]...)
}
