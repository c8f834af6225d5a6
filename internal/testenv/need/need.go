// Package need lets a test declare what of the machine it needs (root, runc,
// CNI plugins, a program) and skip when it is missing. Under
// NOOPS_TEST_STRICT=1, as CI sets it, a missing need fails the test instead,
// so that a test that needs the real machine never skips silently.
package need

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Strict reports whether missing needs fail tests (NOOPS_TEST_STRICT=1).
func Strict() bool { return os.Getenv("NOOPS_TEST_STRICT") == "1" }

func missing(t testing.TB, what string) {
	t.Helper()
	if Strict() {
		t.Fatalf("needs %s (NOOPS_TEST_STRICT=1 forbids skipping; run `make setup` as root)", what)
	}
	t.Skipf("skipping: needs %s", what)
}

// Root needs the test to run as uid 0.
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "root")
	}
}

// Program needs an executable on PATH and returns its path.
func Program(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, name+" on PATH")
	}
	return p
}

// CNIPluginDirs are the folders searched for CNI plugins, Debian's first.
var CNIPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// CNI needs the bridge, host-local and loopback CNI plugins and returns the
// folder that holds them.
func CNI(t testing.TB) string {
	t.Helper()
	for _, d := range CNIPluginDirs {
		ok := true
		for _, p := range []string{"bridge", "host-local", "loopback"} {
			if _, err := os.Stat(filepath.Join(d, p)); err != nil {
				ok = false
			}
		}
		if ok {
			return d
		}
	}
	missing(t, "CNI plugins bridge, host-local and loopback")
	return ""
}

// Sandbox needs everything a real sandbox needs: root, runc, CNI plugins and
// the ip command.
func Sandbox(t testing.TB) {
	t.Helper()
	Root(t)
	Program(t, "runc")
	Program(t, "ip")
	CNI(t)
}

// Chromium needs a Chromium browser on PATH, under Debian's name (chromium)
// or another distribution's (chromium-browser), and returns its path.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "chromium or chromium-browser on PATH (install it with `make setup`, or apt-get install chromium)")
	return ""
}
