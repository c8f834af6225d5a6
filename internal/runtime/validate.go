package runtime

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"noops/internal/errkind"
)

// MaxIDLen is the longest sandbox ID a driver accepts.
const MaxIDLen = 48

// ValidID reports, as an errkind.Invalid error, why id cannot name a
// sandbox: it must be 1 to 48 characters of [a-z0-9-] and start with a
// letter or digit (so that no command line mistakes it for a flag).
func ValidID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return errkind.Errorf(errkind.Invalid, "sandbox id %q: want 1 to %d characters", id, MaxIDLen)
	}
	for i, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0
		if !ok {
			return errkind.Errorf(errkind.Invalid, "sandbox id %q: want [a-z0-9-] starting with a letter or digit", id)
		}
	}
	return nil
}

// Validate checks what every driver needs of a spec: a valid ID, a
// program to run, KEY=VALUE environment, absolute Cwd and Log paths,
// non-negative limits and well-formed Mounts. Drivers check what is
// specific to them (layers, network namespace, mount sources) on top.
// Errors are errkind.Invalid.
func (s Spec) Validate() error { return s.validate(true) }

// ValidateForeground checks a spec for a foreground run, whose output goes
// to the caller's writers rather than to a log: as Validate, but Log must
// be empty.
func (s Spec) ValidateForeground() error { return s.validate(false) }

func (s Spec) validate(logged bool) error {
	if err := ValidID(s.ID); err != nil {
		return err
	}
	invalid := func(format string, args ...any) error {
		return errkind.Errorf(errkind.Invalid, "sandbox %s: "+format, append([]any{s.ID}, args...)...)
	}
	switch {
	case len(s.Args) == 0 || s.Args[0] == "":
		return invalid("no program to run (Args is empty)")
	case s.Cwd != "" && !filepath.IsAbs(s.Cwd):
		return invalid("working folder %q is not absolute", s.Cwd)
	case logged && (s.Log == "" || !filepath.IsAbs(s.Log)):
		return invalid("log path %q is not absolute", s.Log)
	case !logged && s.Log != "":
		return invalid("log path %q given to a foreground run, whose output goes to the caller", s.Log)
	case s.Memory < 0:
		return invalid("negative memory limit %d", s.Memory)
	case s.Pids < 0:
		return invalid("negative pids limit %d", s.Pids)
	case s.TmpSize < 0:
		return invalid("negative /tmp size %d", s.TmpSize)
	}
	for _, kv := range s.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return invalid("environment entry %q is not KEY=VALUE", kv)
		}
	}
	seen := map[string]bool{}
	for _, m := range s.Mounts {
		if err := m.validate(); err != nil {
			return invalid("%v", err)
		}
		if seen[m.Target] {
			return invalid("two mounts on %s", m.Target)
		}
		seen[m.Target] = true
	}
	return nil
}

// kernelPaths are the file systems a sandbox gets from the kernel, which
// no mount may replace or reach into.
var kernelPaths = []string{"/proc", "/sys", "/dev"}

// validate checks the form of m; whether Source exists is the driver's
// business.
func (m Mount) validate() error {
	switch {
	case m.Source == "" || !filepath.IsAbs(m.Source):
		return fmt.Errorf("mount source %q is not an absolute path", m.Source)
	case !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) != m.Target:
		return fmt.Errorf("mount target %q is not an absolute, clean path", m.Target)
	case m.Target == "/":
		return fmt.Errorf("mount target / would replace the sandbox's root")
	}
	for _, k := range kernelPaths {
		if m.Target == k || strings.HasPrefix(m.Target, k+"/") {
			return fmt.Errorf("mount target %s is in %s, which the kernel provides", m.Target, k)
		}
	}
	return nil
}

// ExitOf describes a wait status as an Exit: a signal death is reported
// as Code 128+signal with the signal's name, as shells do.
func ExitOf(ws syscall.WaitStatus, at time.Time) Exit {
	if ws.Signaled() {
		sig := ws.Signal()
		return Exit{Code: 128 + int(sig), Signal: unix.SignalName(sig), At: at}
	}
	return Exit{Code: ws.ExitStatus(), At: at}
}
