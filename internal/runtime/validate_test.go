package runtime_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"hello-1-abc123", true},
		{"a", true},
		{"9lives", true},
		{strings.Repeat("a", 48), true},
		{strings.Repeat("a", 49), false},
		{"", false},
		{"-flag", false},
		{"Upper", false},
		{"has_underscore", false},
		{"dot.dot", false},
		{"../escape", false},
		{"a/b", false},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			err := runtime.ValidID(tc.id)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
			}
			if err != nil && !errkind.Is(err, errkind.Invalid) {
				t.Errorf("ValidID(%q) kind %v, want Invalid", tc.id, errkind.Of(err))
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	good := runtime.Spec{ID: "ok", Args: []string{"/app"}, Log: "/logs/ok.log", Env: []string{"A=1", "B="}}
	tests := []struct {
		name   string
		change func(*runtime.Spec)
		ok     bool
	}{
		{"good", func(*runtime.Spec) {}, true},
		{"cwd absolute", func(s *runtime.Spec) { s.Cwd = "/srv" }, true},
		{"no args", func(s *runtime.Spec) { s.Args = nil }, false},
		{"relative cwd", func(s *runtime.Spec) { s.Cwd = "srv" }, false},
		{"relative log", func(s *runtime.Spec) { s.Log = "ok.log" }, false},
		{"env without key", func(s *runtime.Spec) { s.Env = []string{"=x"} }, false},
		{"env without =", func(s *runtime.Spec) { s.Env = []string{"A"} }, false},
		{"negative pids", func(s *runtime.Spec) { s.Pids = -1 }, false},
		{"negative tmp size", func(s *runtime.Spec) { s.TmpSize = -1 }, false},
		{"no log", func(s *runtime.Spec) { s.Log = "" }, false},
		{"mounts", func(s *runtime.Spec) {
			s.Mounts = []runtime.Mount{{Source: "/srv/src", Target: "/workspace"}, {Source: "/etc/resolv.conf", Target: "/etc/resolv.conf", ReadOnly: true}}
		}, true},
		{"mount under /tmp", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/c", Target: "/tmp/cache"}} }, true},
		{"mount on a look-alike of /dev", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/c", Target: "/devel"}} }, true},
		{"mount source relative", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "src", Target: "/workspace"}} }, false},
		{"mount source empty", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Target: "/workspace"}} }, false},
		{"mount target relative", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src", Target: "workspace"}} }, false},
		{"mount target empty", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src"}} }, false},
		{"mount target not clean", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src", Target: "/workspace/../etc"}} }, false},
		{"mount target trailing slash", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src", Target: "/workspace/"}} }, false},
		{"mount on the root", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src", Target: "/"}} }, false},
		{"mount on /proc", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src", Target: "/proc"}} }, false},
		{"mount under /proc", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src", Target: "/proc/sys/kernel"}} }, false},
		{"mount on /sys", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src", Target: "/sys"}} }, false},
		{"mount under /sys", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src", Target: "/sys/fs/cgroup"}} }, false},
		{"mount on /dev", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src", Target: "/dev"}} }, false},
		{"mount under /dev", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src", Target: "/dev/sda"}} }, false},
		{"two mounts on one target", func(s *runtime.Spec) {
			s.Mounts = []runtime.Mount{{Source: "/a", Target: "/w"}, {Source: "/b", Target: "/w"}}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.change(&s)
			err := s.Validate()
			if (err == nil) != tc.ok || err != nil && !errkind.Is(err, errkind.Invalid) {
				t.Errorf("Validate() = %v (kind %v), want ok=%v or Invalid", err, errkind.Of(err), tc.ok)
			}
		})
	}
}

func TestSpecValidateForeground(t *testing.T) {
	good := runtime.Spec{ID: "ok", Args: []string{"/app"}}
	tests := []struct {
		name   string
		change func(*runtime.Spec)
		ok     bool
	}{
		{"good", func(*runtime.Spec) {}, true},
		{"with a log", func(s *runtime.Spec) { s.Log = "/logs/ok.log" }, false},
		{"no args", func(s *runtime.Spec) { s.Args = nil }, false},
		{"mount on /proc", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/src", Target: "/proc"}} }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.change(&s)
			err := s.ValidateForeground()
			if (err == nil) != tc.ok || err != nil && !errkind.Is(err, errkind.Invalid) {
				t.Errorf("ValidateForeground() = %v (kind %v), want ok=%v or Invalid", err, errkind.Of(err), tc.ok)
			}
		})
	}
}

func TestExitOf(t *testing.T) {
	at := time.Unix(1, 0)
	tests := []struct {
		name string
		ws   syscall.WaitStatus // as the kernel encodes it
		want runtime.Exit
	}{
		{"exit 0", 0, runtime.Exit{Code: 0, At: at}},
		{"exit 3", 3 << 8, runtime.Exit{Code: 3, At: at}},
		{"killed", syscall.WaitStatus(syscall.SIGKILL), runtime.Exit{Code: 137, Signal: "SIGKILL", At: at}},
		{"terminated", syscall.WaitStatus(syscall.SIGTERM), runtime.Exit{Code: 143, Signal: "SIGTERM", At: at}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := runtime.ExitOf(tc.ws, at); got != tc.want {
				t.Errorf("ExitOf(%#x) = %+v, want %+v", uint32(tc.ws), got, tc.want)
			}
		})
	}
}
