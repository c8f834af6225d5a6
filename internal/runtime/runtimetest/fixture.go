// Package runtimetest is the conformance suite of runtime.Driver: every
// driver runs Run with a fixture that tells the suite how to run its test
// program (testprog) in a sandbox. It also builds that program and a small
// two-layer image holding it.
package runtimetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"noops/internal/runtime"
)

// Fixture tells the suite how to run the test program under a driver.
type Fixture struct {
	// Program is Args[0] of the test program as the driver sees it: a host
	// path for the fake driver, a path inside Layers for runc.
	Program string
	// Layers are the image layers holding Program (bottom first); nil when
	// the driver ignores layers.
	Layers []string
	// Restart returns another driver over the same sandboxes, as a server
	// restarted on the same machine makes one.
	Restart func(t *testing.T) runtime.Driver
}

// ProgramPath is where Image puts the test program.
const ProgramPath = "/bin/testprog"

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// Program returns the path of the test program, built once per test
// process with CGO_ENABLED=0 (a static binary) into a temporary folder
// that is removed when the process exits cleanly through TestMain; callers
// copy it where they need it.
func Program(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "noops-testprog-")
		if build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "testprog")
		cmd := exec.Command(goTool(), "build", "-trimpath", "-o", build.path, "noops/internal/runtime/runtimetest/testprog")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
		build.out, build.err = cmd.CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("building the test program: %v\n%s", build.err, build.out)
	}
	return build.path
}

// Cleanup removes what Program built; call it from TestMain after m.Run.
func Cleanup() {
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// Image makes a two-layer image under t.TempDir() and returns its layer
// folders, bottom first. The bottom layer holds the program at ProgramPath,
// /etc/noops-bottom ("bottom") and /etc/noops-layer ("bottom"); the top
// layer overrides /etc/noops-layer with "top", so a probe shows whether the
// layers were stacked in the right order.
func Image(t testing.TB) []string {
	t.Helper()
	prog := Program(t)
	root := t.TempDir()
	bottom, top := filepath.Join(root, "bottom"), filepath.Join(root, "top")
	files := map[string]string{
		filepath.Join(bottom, "etc", "noops-bottom"): "bottom\n",
		filepath.Join(bottom, "etc", "noops-layer"):  "bottom\n",
		filepath.Join(top, "etc", "noops-layer"):     "top\n",
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(bottom, ProgramPath)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// t.TempDir is 0700; the sandbox's non-root user must reach the layers.
	for _, d := range []string{root, bottom, top} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return []string{bottom, top}
}
