package control

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"noops/internal/build"
	"noops/internal/errkind"
	"noops/internal/source"
	"noops/internal/spec"
	"noops/internal/supervisor"
)

func TestBuildKeyChanges(t *testing.T) {
	t.Parallel()
	const (
		src  = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
		base = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	)
	manifest := func(port int, env map[string]string) *spec.Manifest {
		m := &spec.Manifest{}
		m.Run.Port = port
		m.Build.Env = env
		return m
	}
	ref := buildKey(src, base, manifest(8080, map[string]string{"CGO_ENABLED": "0", "GOFLAGS": "-trimpath"}))
	if len(ref) != 32 {
		t.Fatalf("buildKey(...) = %q, want 32 hex characters", ref)
	}
	if _, err := hex.DecodeString(ref); err != nil {
		t.Fatalf("buildKey(...) = %q, want hex: %v", ref, err)
	}
	tests := []struct {
		name      string
		src, base string
		m         *spec.Manifest
	}{
		{"source digest", "sha256:3333333333333333333333333333333333333333333333333333333333333333", base,
			manifest(8080, map[string]string{"CGO_ENABLED": "0", "GOFLAGS": "-trimpath"})},
		{"base digest", src, "sha256:4444444444444444444444444444444444444444444444444444444444444444",
			manifest(8080, map[string]string{"CGO_ENABLED": "0", "GOFLAGS": "-trimpath"})},
		{"port", src, base, manifest(8081, map[string]string{"CGO_ENABLED": "0", "GOFLAGS": "-trimpath"})},
		{"env value", src, base, manifest(8080, map[string]string{"CGO_ENABLED": "1", "GOFLAGS": "-trimpath"})},
		{"env value emptied", src, base, manifest(8080, map[string]string{"CGO_ENABLED": "", "GOFLAGS": "-trimpath"})},
		{"env key added", src, base, manifest(8080, map[string]string{"CGO_ENABLED": "0", "GOFLAGS": "-trimpath", "X": "y"})},
		{"env key removed", src, base, manifest(8080, map[string]string{"CGO_ENABLED": "0"})},
		{"env key renamed", src, base, manifest(8080, map[string]string{"CGO_ENABLED": "0", "GOFLAG": "-trimpath"})},
		{"env emptied", src, base, manifest(8080, nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := buildKey(tc.src, tc.base, tc.m); got == ref {
				t.Errorf("buildKey(%q, %q, port %d env %v) = %q, the same as before the change", tc.src, tc.base, tc.m.Run.Port, tc.m.Build.Env, got)
			}
		})
	}
}

func TestBuildKeyStable(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	for i := range 50 {
		env[fmt.Sprintf("K%02d", i)] = fmt.Sprint(i)
	}
	m := &spec.Manifest{}
	m.Run.Port = 8080
	m.Build.Env = env
	want := buildKey("sha256:aa", "sha256:bb", m)
	// Each call ranges over the map in a new random order; a copy built in
	// reverse insertion order must agree too.
	rev := map[string]string{}
	for i := 49; i >= 0; i-- {
		rev[fmt.Sprintf("K%02d", i)] = fmt.Sprint(i)
	}
	m2 := &spec.Manifest{}
	m2.Run.Port = 8080
	m2.Build.Env = rev
	for i := range 50 {
		if got := buildKey("sha256:aa", "sha256:bb", m); got != want {
			t.Fatalf("buildKey call %d = %q, want %q (depends on map order)", i, got, want)
		}
		if got := buildKey("sha256:aa", "sha256:bb", m2); got != want {
			t.Fatalf("buildKey(reversed map) call %d = %q, want %q", i, got, want)
		}
	}
	// Settings that do not affect the build do not change the key.
	m3 := *m
	m3.Run.Replicas, m3.Run.Health, m3.Run.Env = 5, "/healthz", map[string]string{"RUNTIME": "x"}
	if got := buildKey("sha256:aa", "sha256:bb", &m3); got != want {
		t.Errorf("buildKey with other run settings = %q, want %q", got, want)
	}
}

func TestLineWriter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		writes []string
		flush  bool
		want   []string
	}{
		{"one line", []string{"hello\n"}, false, []string{"hello"}},
		{"several lines in one write", []string{"a\nb\nc\n"}, false, []string{"a", "b", "c"}},
		{"line split over writes", []string{"he", "llo\nwor", "ld\n"}, false, []string{"hello", "world"}},
		{"crlf", []string{"a\r\nb\r\n"}, false, []string{"a", "b"}},
		{"crlf split between writes", []string{"a\r", "\nb\r", "\n"}, false, []string{"a", "b"}},
		{"empty lines kept", []string{"\n\nx\n"}, false, []string{"", "", "x"}},
		{"partial last line waits", []string{"a\npartial"}, false, []string{"a"}},
		{"partial last line flushed", []string{"a\npartial"}, true, []string{"a", "partial"}},
		{"flush with nothing left", []string{"a\n"}, true, []string{"a"}},
		{"flush of nothing", nil, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			w := &lineWriter{fn: func(s string) { got = append(got, s) }}
			for _, s := range tc.writes {
				n, err := w.Write([]byte(s))
				if n != len(s) || err != nil {
					t.Fatalf("Write(%q) = %d, %v, want %d, nil", s, n, err, len(s))
				}
			}
			if tc.flush {
				w.Flush()
				w.Flush() // a second flush sends nothing more
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("lines of %q (flush %v) = %q, want %q", tc.writes, tc.flush, got, tc.want)
			}
		})
	}
}

func TestLineWriterLongLine(t *testing.T) {
	t.Parallel()
	t.Run("one big write", func(t *testing.T) {
		t.Parallel()
		var got []string
		w := &lineWriter{fn: func(s string) { got = append(got, s) }}
		long := strings.Repeat("x", 100<<10)
		w.Write([]byte(long))
		if len(got) != 1 || got[0] != long {
			t.Fatalf("after a %d-byte write without newline: %d lines, want the whole write as 1 line before any flush", len(long), len(got))
		}
		w.Write([]byte("tail\n"))
		if len(got) != 2 || got[1] != "tail" {
			t.Errorf("the line after a long one = %q, want [.. \"tail\"]", got[1:])
		}
	})
	t.Run("many small writes", func(t *testing.T) {
		t.Parallel()
		var got []string
		w := &lineWriter{fn: func(s string) { got = append(got, s) }}
		chunk := strings.Repeat("y", 1000)
		for range 200 { // 200 kB, no newline
			w.Write([]byte(chunk))
		}
		if len(got) < 2 {
			t.Fatalf("200 kB without newline gave %d lines before flush, want it split", len(got))
		}
		w.Flush()
		total := 0
		for i, l := range got {
			if len(l) > 64<<10+len(chunk) {
				t.Errorf("piece %d is %d bytes, want at most %d", i, len(l), 64<<10+len(chunk))
			}
			total += len(l)
		}
		if total != 200*len(chunk) {
			t.Errorf("pieces hold %d bytes, want %d (nothing lost)", total, 200*len(chunk))
		}
		if len(w.buf) != 0 {
			t.Errorf("buffer holds %d bytes after flush, want 0", len(w.buf))
		}
	})
}

// packed returns a source.Pack archive of a small app and its sha256.
func packed(t *testing.T) ([]byte, string) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"main.go":      "package main\n\nfunc main() {}\n",
		"go.mod":       "module example.com/hello\n\ngo 1.22\n",
		"static/a.txt": "hello\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := source.Pack(dir, &buf); err != nil {
		t.Fatalf("source.Pack: %v", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:])
}

func TestReceive(t *testing.T) {
	t.Parallel()
	archive, sum := packed(t)
	other := sha256.Sum256([]byte("something else"))
	tests := []struct {
		name     string
		body     []byte
		sha      string
		wantErr  string // "" when accepted
		wantKind errkind.Kind
	}{
		{"matching digest", archive, sum, "", 0},
		{"matching digest in upper case", archive, strings.ToUpper(sum), "", 0},
		{"no digest skips the check", archive, "", "", 0},
		{"different digest", archive, hex.EncodeToString(other[:]), "incomplete", errkind.Invalid},
		{"truncated upload", archive[:len(archive)/2], sum, "incomplete", errkind.Invalid},
		{"empty upload", nil, sum, "incomplete", errkind.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			work := t.TempDir()
			src := filepath.Join(work, "src")
			err := receive(DeployRequest{App: "hello", Archive: bytes.NewReader(tc.body), SHA256: tc.sha}, work, src)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("receive(sha %q) error = %v, want nil", tc.sha, err)
				}
				b, err := os.ReadFile(filepath.Join(src, "static", "a.txt"))
				if err != nil || string(b) != "hello\n" {
					t.Errorf("unpacked static/a.txt = %q, %v, want \"hello\\n\"", b, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("receive(sha %q) error = %v, want one saying %q", tc.sha, err, tc.wantErr)
			}
			if k := errkind.Of(err); k != tc.wantKind {
				t.Errorf("Of(receive error) = %v, want %v", k, tc.wantKind)
			}
			if h := errkind.HintOf(err); !strings.Contains(h, "deploy again") {
				t.Errorf("HintOf(receive error) = %q, want one saying to deploy again", h)
			}
			if _, err := os.Stat(src); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat(src) after a refused upload = %v, want not exist (nothing unpacked)", err)
			}
		})
	}
}

// failingReader returns some bytes, then an error, like a client that hangs up.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(b []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(b, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReceiveReadError(t *testing.T) {
	t.Parallel()
	archive, sum := packed(t)
	tests := []struct {
		name     string
		err      error
		wantKind errkind.Kind
		wantMsg  string
		wantHint string
	}{
		{"client hangs up", io.ErrUnexpectedEOF, errkind.Invalid, "client may have disconnected", "deploy again"},
		{"disk full while writing", &fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, errkind.Unavailable, "disk is full", "free space"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			work := t.TempDir()
			r := &failingReader{data: archive[:len(archive)/2], err: tc.err}
			err := receive(DeployRequest{App: "hello", Archive: r, SHA256: sum}, work, filepath.Join(work, "src"))
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("receive(reader failing with %v) error = %v, want one saying %q", tc.err, err, tc.wantMsg)
			}
			if k := errkind.Of(err); k != tc.wantKind {
				t.Errorf("Of(%v) = %v, want %v", err, k, tc.wantKind)
			}
			if h := errkind.HintOf(err); !strings.Contains(h, tc.wantHint) {
				t.Errorf("HintOf(%v) = %q, want one saying %q", err, h, tc.wantHint)
			}
		})
	}
}

func TestDiskErr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		full bool
	}{
		{"ENOSPC", syscall.ENOSPC, true},
		{"EDQUOT", syscall.EDQUOT, true},
		{"ENOSPC in a PathError", &fs.PathError{Op: "write", Path: "/data/tmp/x", Err: syscall.ENOSPC}, true},
		{"EDQUOT wrapped twice", fmt.Errorf("copying: %w", &os.LinkError{Op: "link", Old: "a", New: "b", Err: syscall.EDQUOT}), true},
		{"EACCES", &fs.PathError{Op: "open", Path: "/data/tmp", Err: syscall.EACCES}, false},
		{"EIO", syscall.EIO, false},
		{"plain error", errors.New("boom"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := isDiskFull(tc.err); got != tc.full {
				t.Errorf("isDiskFull(%v) = %v, want %v", tc.err, got, tc.full)
			}
			err := diskErr("storing image", tc.err)
			if !strings.HasPrefix(err.Error(), "storing image: ") {
				t.Errorf("diskErr(%q, %v) = %q, want it to start with what was being done", "storing image", tc.err, err)
			}
			if tc.full {
				if k := errkind.Of(err); k != errkind.Unavailable {
					t.Errorf("Of(diskErr(%v)) = %v, want %v", tc.err, k, errkind.Unavailable)
				}
				if h := errkind.HintOf(err); !strings.Contains(h, "free space") {
					t.Errorf("HintOf(diskErr(%v)) = %q, want one saying to free space", tc.err, h)
				}
				if !strings.Contains(err.Error(), "disk is full") {
					t.Errorf("diskErr(%v) = %q, want it to say the disk is full", tc.err, err)
				}
				return
			}
			if k := errkind.Of(err); k != errkind.Internal {
				t.Errorf("Of(diskErr(%v)) = %v, want %v (not a disk-full error)", tc.err, k, errkind.Internal)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("diskErr(%v) = %v, want it to wrap the cause", tc.err, err)
			}
		})
	}
}

// TestBuildKeyValueCannotForgeEntry: an env value holding a newline and
// what looks like another entry must not collide with two real entries.
func TestBuildKeyValueCannotForgeEntry(t *testing.T) {
	t.Parallel()
	src := "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	base := "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	m := func(env map[string]string) *spec.Manifest {
		mf := &spec.Manifest{Build: spec.Build{Env: env}}
		mf.Default()
		return mf
	}
	forged := buildKey(src, base, m(map[string]string{"A": "1\nenv B=2"}))
	real := buildKey(src, base, m(map[string]string{"A": "1", "B": "2"}))
	if forged == real {
		t.Errorf("buildKey with A=%q equals buildKey with A=1, B=2 (%s)", "1\nenv B=2", real)
	}
}

// TestProcessLabelAgrees: the supervisor reads the label the build writes.
func TestProcessLabelAgrees(t *testing.T) {
	if supervisor.LabelProcesses != build.LabelProcesses {
		t.Errorf("supervisor reads %q, build writes %q", supervisor.LabelProcesses, build.LabelProcesses)
	}
}
