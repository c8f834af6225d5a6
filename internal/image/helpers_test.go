package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// file is one entry of a hand-made layer.
type file struct {
	hdr  tar.Header
	body string
}

// tarLayer makes a layer of files in the given order, as written.
func tarLayer(t *testing.T, files ...file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := f.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(f.body))
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("writing test layer header %s: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			t.Fatalf("writing test layer %s: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatalf("making test layer: %v", err)
	}
	return l
}

func imageOf(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := Assemble(v1.Config{User: NonRootUser}, epoch, layers...)
	if err != nil {
		t.Fatalf("Assemble: %v", err)
	}
	return img
}

// entries reads a layer into headers and contents by clean name.
func entries(t *testing.T, l v1.Layer) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hs, bodies := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hs, bodies
		}
		if err != nil {
			t.Fatalf("reading layer: %v", err)
		}
		name, err := entryName(h.Name)
		if err != nil {
			t.Fatalf("layer has entry %q: %v", h.Name, err)
		}
		if _, dup := hs[name]; dup {
			t.Errorf("layer has %s twice", name)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		hs[name], bodies[name] = h, string(b)
	}
}
