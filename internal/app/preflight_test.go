package app

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"noops/internal/errkind"
)

// executable writes a file with the given mode into dir and returns its path.
func executable(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // the umask may have trimmed it
		t.Fatal(err)
	}
	return p
}

func TestCheckTools(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	runc := executable(t, bin, "runc", 0o755)
	notExec := executable(t, bin, "runc-noexec", 0o644)

	allPlugins := t.TempDir()
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		executable(t, allPlugins, p, 0o755)
	}
	noPlugins := t.TempDir()
	somePlugins := t.TempDir()
	executable(t, somePlugins, "bridge", 0o755)
	executable(t, somePlugins, "loopback", 0o644) // present but not executable

	tests := []struct {
		name        string
		cfg         Config
		wantMsg     []string // each must be in the message
		wantNot     []string // none of these may be
		wantHint    string
		wantNoError bool
	}{
		{
			name:     "runc missing",
			cfg:      Config{Runc: "/nonexistent/runc", PluginDirs: []string{allPlugins}},
			wantMsg:  []string{"runc is not installed", "/nonexistent/runc"},
			wantHint: "make setup",
		},
		{
			name:     "runc not executable",
			cfg:      Config{Runc: notExec, PluginDirs: []string{allPlugins}},
			wantMsg:  []string{"runc is not installed", notExec},
			wantHint: "make setup",
		},
		{
			name:     "no CNI plugins",
			cfg:      Config{Runc: runc, PluginDirs: []string{noPlugins}},
			wantMsg:  []string{"bridge", "host-local", "loopback", noPlugins},
			wantHint: "containernetworking-plugins",
		},
		{
			name:     "some CNI plugins missing or not executable",
			cfg:      Config{Runc: runc, PluginDirs: []string{somePlugins}},
			wantMsg:  []string{"host-local", "loopback"},
			wantNot:  []string{"bridge,", "plugins bridge"},
			wantHint: "containernetworking-plugins",
		},
		{
			name:        "plugins spread over folders",
			cfg:         Config{Runc: runc, PluginDirs: []string{noPlugins, somePlugins, allPlugins}},
			wantNoError: true,
		},
		{
			name:        "everything present",
			cfg:         Config{Runc: runc, PluginDirs: []string{allPlugins}},
			wantNoError: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkTools(tc.cfg)
			if tc.wantNoError {
				if err != nil {
					t.Fatalf("checkTools(runc %q, plugins %q) = %v, want nil", tc.cfg.Runc, tc.cfg.PluginDirs, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkTools(runc %q, plugins %q) = nil, want an error", tc.cfg.Runc, tc.cfg.PluginDirs)
			}
			if k := errkind.Of(err); k != errkind.Unavailable {
				t.Errorf("Of(%v) = %v, want %v", err, k, errkind.Unavailable)
			}
			for _, s := range tc.wantMsg {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("checkTools error = %q, want it to name %q", err, s)
				}
			}
			for _, s := range tc.wantNot {
				if strings.Contains(err.Error(), s) {
					t.Errorf("checkTools error = %q, want it not to name %q", err, s)
				}
			}
			if h := errkind.HintOf(err); !strings.Contains(h, tc.wantHint) {
				t.Errorf("HintOf(%v) = %q, want one naming %q", err, h, tc.wantHint)
			}
		})
	}
}

func TestLockData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := lockData(dir)
	if err != nil {
		t.Fatalf("lockData(%q) = %v, want the lock", dir, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "server.lock"))
	if want := fmt.Sprintf("%d\n", os.Getpid()); err != nil || string(b) != want {
		t.Errorf("server.lock holds %q, %v, want %q", b, err, want)
	}

	second, err := lockData(dir)
	if err == nil {
		second.release()
		t.Fatalf("second lockData(%q) = nil error, want a conflict", dir)
	}
	if k := errkind.Of(err); k != errkind.Conflict {
		t.Errorf("Of(%v) = %v, want %v", err, k, errkind.Conflict)
	}
	if want := fmt.Sprintf("pid %d", os.Getpid()); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
		t.Errorf("second lockData error = %q, want it to name %q and %s", err, want, dir)
	}
	if h := errkind.HintOf(err); !strings.Contains(h, "--data") {
		t.Errorf("HintOf(%v) = %q, want a hint naming --data", err, h)
	}

	if err := first.release(); err != nil {
		t.Fatalf("release() = %v", err)
	}
	third, err := lockData(dir)
	if err != nil {
		t.Fatalf("lockData(%q) after release = %v, want the lock", dir, err)
	}
	if err := third.release(); err != nil {
		t.Errorf("release() = %v", err)
	}
}

// TestLockDataUnknownHolder: a lock held by something that wrote no pid is
// still refused, and says so.
func TestLockDataUnknownHolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "server.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	l, err := lockData(dir)
	if err == nil {
		l.release()
		t.Fatalf("lockData(%q) with the lock held = nil error, want a conflict", dir)
	}
	if k := errkind.Of(err); k != errkind.Conflict || !strings.Contains(err.Error(), "pid unknown") {
		t.Errorf("lockData error = %v (kind %v), want a conflict naming pid unknown", err, k)
	}
}

func TestLockDataMissingFolder(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "missing")
	l, err := lockData(dir)
	if err == nil {
		l.release()
		t.Fatalf("lockData(%q) = nil error, want one for the missing folder", dir)
	}
	if errkind.Is(err, errkind.Conflict) {
		t.Errorf("lockData(missing folder) = %v, classified as a conflict; want an opening error", err)
	}
}

func TestReleaseNilLock(t *testing.T) {
	t.Parallel()
	var l *lock
	if err := l.release(); err != nil {
		t.Errorf("(*lock)(nil).release() = %v, want nil", err)
	}
}
