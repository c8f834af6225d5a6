package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzExtract feeds arbitrary bytes to the layer extractor, as a hostile
// or truncated layer would arrive. It must return (an error or nil) without
// a panic and never create anything outside its folder: a sibling folder
// stays empty and a symlink planted beside it stays untouched.
func FuzzExtract(f *testing.F) {
	seed := func(entries ...tar.Header) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range entries {
			h := h
			_ = tw.WriteHeader(&h)
			if h.Typeflag == tar.TypeReg {
				_, _ = tw.Write(make([]byte, h.Size))
			}
		}
		_ = tw.Close()
		return b.Bytes()
	}
	f.Add(seed(tar.Header{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o755}, tar.Header{Name: "a/b", Typeflag: tar.TypeReg, Size: 3, Mode: 0o644}))
	f.Add(seed(tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}))
	f.Add(seed(tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../outside"}, tar.Header{Name: "l/x", Typeflag: tar.TypeReg, Size: 1}))
	f.Add(seed(tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}))
	f.Add(seed(tar.Header{Name: "d/.wh..wh..opq", Typeflag: tar.TypeReg}, tar.Header{Name: "d/.wh.gone", Typeflag: tar.TypeReg}))
	f.Add([]byte("not a tar at all"))
	f.Add(seed(tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 10, Mode: 0o644})[:700]) // truncated
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, "layer")
		outside := filepath.Join(root, "outside")
		for _, d := range []string{dir, outside} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		_ = extract(context.Background(), bytes.NewReader(data), dir)
		ents, err := os.ReadDir(outside)
		if err != nil || len(ents) != 0 {
			t.Fatalf("extract wrote outside its folder: %v %v", ents, err)
		}
		top, _ := os.ReadDir(root)
		if len(top) != 2 {
			t.Fatalf("extract created %d entries beside its folder, want none", len(top)-2)
		}
	})
}
