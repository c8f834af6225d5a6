package app

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"noops/internal/errkind"
	"noops/internal/netns"
)

// Preflight checks what the server needs before it touches anything: root,
// runc and the CNI plugins. Each failure is one line with the fix.
func Preflight(cfg Config) error {
	if os.Geteuid() != 0 {
		return errkind.WithHint(errkind.Permission, errors.New("noops server must run as root: it creates sandboxes with runc, mounts and network namespaces"),
			"run it with sudo")
	}
	return checkTools(cfg)
}

// checkTools checks the programs the server runs: runc and the CNI plugins.
func checkTools(cfg Config) error {
	if _, err := exec.LookPath(cfg.runc()); err != nil {
		return errkind.WithHint(errkind.Unavailable, fmt.Errorf("runc is not installed (looked for %q)", cfg.runc()),
			"run `make setup`, or `apt-get install runc`")
	}
	if err := netns.CheckPlugins(cfg.PluginDirs); err != nil {
		return err
	}
	return nil
}

// lock holds the data folder for one server at a time.
type lock struct{ f *os.File }

// lockData takes an exclusive lock on DATA/server.lock, or says which
// server holds it.
func lockData(dir string) (*lock, error) {
	path := filepath.Join(dir, "server.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(b))
		if holder == "" {
			holder = "unknown"
		}
		return nil, errkind.WithHint(errkind.Conflict, fmt.Errorf("another noops server (pid %s) is using the data folder %s", holder, dir),
			"stop it first, or give this one its own --data folder")
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &lock{f: f}, nil
}

func (l *lock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	return l.f.Close() // closing drops the flock
}
