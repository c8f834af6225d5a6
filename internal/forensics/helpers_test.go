package forensics

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// flagPattern is the --flag pattern of the acceptance tests.
var flagPattern = regexp.MustCompile(`flag\{[^}]+\}`)

type tarFile struct {
	name string
	data []byte
}

func makeTar(t testing.TB, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data)), ModTime: time.Unix(1700000000, 0)}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// extract runs Extract into a new directory and checks what every
// extraction must satisfy: the manifest on disk is the Report, every
// entry's file exists with its SHA-256 and size, and no path leaves the
// output directory.
func extract(t testing.TB, file string, opt Options) (*Report, string) {
	t.Helper()
	out := t.TempDir()
	if opt.Flag == nil {
		opt.Flag = flagPattern
	}
	opt.TempDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Extract(ctx, file, out, opt)
	if err != nil {
		t.Fatalf("Extract(%s): %v", filepath.Base(file), err)
	}
	raw, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatalf("reading manifest.json: %v", err)
	}
	var m Report
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(m.Objects) != len(r.Objects) || len(m.Flags) != len(r.Flags) || len(m.Warnings) != len(r.Warnings) || m.SHA256 != r.SHA256 {
		t.Errorf("manifest.json holds %d objects, %d flags, %d warnings; the Report %d, %d, %d",
			len(m.Objects), len(m.Flags), len(m.Warnings), len(r.Objects), len(r.Flags), len(r.Warnings))
	}
	if _, err := os.Stat(filepath.Join(out, "summary.txt")); err != nil {
		t.Errorf("summary.txt: %v", err)
	}
	for _, e := range r.Objects {
		if !filepath.IsLocal(filepath.FromSlash(e.Path)) {
			t.Errorf("entry path %q is not local", e.Path)
			continue
		}
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(e.Path)))
		if err != nil {
			t.Errorf("entry %s: %v", e.Path, err)
			continue
		}
		if int64(len(b)) != e.Size || sha(b) != e.SHA256 {
			t.Errorf("entry %s: file has %d bytes, sha256 %s; manifest says %d, %s", e.Path, len(b), sha(b), e.Size, e.SHA256)
		}
	}
	return r, out
}

// top returns the report's extracted objects (not unpacked nodes, not
// objects of nested captures) of protocol proto.
func top(r *Report, proto string) []Entry {
	var out []Entry
	for _, e := range r.Objects {
		if e.Parent == "" && e.Capture == "" && e.Protocol == proto {
			out = append(out, e)
		}
	}
	return out
}

func warningsWith(r *Report, subs ...string) []string {
	var out []string
	for _, w := range r.Warnings {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(w, s)
		}
		if ok {
			out = append(out, w)
		}
	}
	return out
}

func readOut(t testing.TB, out string, e Entry) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(e.Path)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
