package runc_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"noops/internal/runtime"
	"noops/internal/runtime/runc"
)

var update = flag.Bool("update", false, "rewrite testdata/config.golden.json")

func baseSpec() runtime.Spec {
	return runtime.Spec{
		ID:     "hello-1-abc123",
		Layers: []string{"/images/l1", "/images/l2"},
		Args:   []string{"/app/server", "--port", "8080"},
		Env:    []string{"PORT=8080"},
		Log:    "/data/logs/hello/hello-1-abc123.log",
		NetNS:  "/run/netns/hello-1-abc123",
	}
}

func ociSpec(t *testing.T, s runtime.Spec, parent string) *specs.Spec {
	t.Helper()
	rs, err := runc.OCISpec(s, parent)
	if err != nil {
		t.Fatalf("OCISpec: %v", err)
	}
	return rs
}

// TestOCISpecGolden pins the whole configuration but the seccomp rules
// (which depend on the host's kernel version); run with -update after an
// intended change and review the diff.
func TestOCISpecGolden(t *testing.T) {
	rs := ociSpec(t, baseSpec(), "")
	rs.Linux.Seccomp = nil
	got, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "config.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("OCISpec differs from %s (go test -run TestOCISpecGolden -update to accept):\n%s", golden, got)
	}
}

func TestOCISpecHardening(t *testing.T) {
	rs := ociSpec(t, baseSpec(), "")
	p := rs.Process
	caps := p.Capabilities
	tests := []struct {
		name string
		ok   bool
	}{
		{"no new privileges", p.NoNewPrivileges},
		{"no terminal", !p.Terminal},
		{"capability sets present and empty", caps != nil &&
			caps.Bounding != nil && len(caps.Bounding) == 0 &&
			caps.Effective != nil && len(caps.Effective) == 0 &&
			caps.Inheritable != nil && len(caps.Inheritable) == 0 &&
			caps.Permitted != nil && len(caps.Permitted) == 0 &&
			caps.Ambient != nil && len(caps.Ambient) == 0},
		{"non-root user 65532", p.User.UID == 65532 && p.User.GID == 65532},
		{"read-only root", rs.Root.Readonly && rs.Root.Path == "rootfs"},
		{"no AppArmor profile", p.ApparmorProfile == ""},
		{"oom score raised", p.OOMScoreAdj != nil && *p.OOMScoreAdj > 0},
		{"open files limited", len(p.Rlimits) == 1 && p.Rlimits[0].Type == "RLIMIT_NOFILE" && p.Rlimits[0].Soft == 1024 && p.Rlimits[0].Hard == 4096},
		{"hostname is the id", rs.Hostname == "hello-1-abc123"},
		{"cgroup under /noops", rs.Linux.CgroupsPath == "/noops/hello-1-abc123"},
		{"default memory 256 MiB, no extra swap", *rs.Linux.Resources.Memory.Limit == 256<<20 && *rs.Linux.Resources.Memory.Swap == 256<<20},
		{"default pids 256", *rs.Linux.Resources.Pids.Limit == 256},
		{"cpu shares", *rs.Linux.Resources.CPU.Shares == 1024},
		{"devices denied", len(rs.Linux.Resources.Devices) == 1 && !rs.Linux.Resources.Devices[0].Allow && rs.Linux.Resources.Devices[0].Access == "rwm"},
		{"no extra devices", len(rs.Linux.Devices) == 0},
		{"seccomp", rs.Linux.Seccomp != nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Errorf("OCISpec(%s): %s does not hold", baseSpec().ID, tc.name)
			}
		})
	}
	// The capability object must reach runc even with empty sets: without
	// it runc would not drop the caller's capabilities.
	b, _ := json.Marshal(rs.Process)
	if !strings.Contains(string(b), `"capabilities":{}`) {
		t.Errorf("process JSON %s lacks an empty capabilities object", b)
	}
}

func TestOCISpecNamespaces(t *testing.T) {
	tests := []struct {
		name  string
		netns string
	}{
		{"joins the given network namespace", "/run/netns/x"},
		{"new empty network namespace", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSpec()
			s.NetNS = tc.netns
			rs := ociSpec(t, s, "")
			got := map[specs.LinuxNamespaceType]string{}
			for _, ns := range rs.Linux.Namespaces {
				got[ns.Type] = ns.Path
			}
			want := map[specs.LinuxNamespaceType]string{
				specs.PIDNamespace: "", specs.IPCNamespace: "", specs.UTSNamespace: "",
				specs.MountNamespace: "", specs.CgroupNamespace: "", specs.NetworkNamespace: tc.netns,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("namespaces = %v, want %v", got, want)
			}
		})
	}
}

func TestOCISpecFromSpec(t *testing.T) {
	tests := []struct {
		name   string
		change func(*runtime.Spec)
		parent string
		check  func(*specs.Spec) bool
	}{
		{"user kept", func(s *runtime.Spec) { s.UID, s.GID = 1000, 1001 }, "",
			func(rs *specs.Spec) bool { return rs.Process.User.UID == 1000 && rs.Process.User.GID == 1001 }},
		{"root becomes nonroot", func(s *runtime.Spec) { s.UID, s.GID = 0, 0 }, "",
			func(rs *specs.Spec) bool { return rs.Process.User.UID == 65532 && rs.Process.User.GID == 65532 }},
		{"group defaults to the user", func(s *runtime.Spec) { s.UID = 1000 }, "",
			func(rs *specs.Spec) bool { return rs.Process.User.GID == 1000 }},
		{"cwd defaults to /", func(s *runtime.Spec) {}, "",
			func(rs *specs.Spec) bool { return rs.Process.Cwd == "/" }},
		{"cwd kept", func(s *runtime.Spec) { s.Cwd = "/app" }, "",
			func(rs *specs.Spec) bool { return rs.Process.Cwd == "/app" }},
		{"args kept", func(s *runtime.Spec) {}, "",
			func(rs *specs.Spec) bool {
				return slices.Equal(rs.Process.Args, []string{"/app/server", "--port", "8080"})
			}},
		{"PATH added", func(s *runtime.Spec) {}, "",
			func(rs *specs.Spec) bool {
				return len(rs.Process.Env) == 2 && strings.HasPrefix(rs.Process.Env[0], "PATH=/usr/local/sbin") && rs.Process.Env[1] == "PORT=8080"
			}},
		{"PATH kept", func(s *runtime.Spec) { s.Env = []string{"PATH=/bin"} }, "",
			func(rs *specs.Spec) bool { return slices.Equal(rs.Process.Env, []string{"PATH=/bin"}) }},
		{"memory limit and swap", func(s *runtime.Spec) { s.Memory = 128 << 20 }, "",
			func(rs *specs.Spec) bool {
				m := rs.Linux.Resources.Memory
				return *m.Limit == 128<<20 && *m.Swap == 128<<20
			}},
		{"pids limit", func(s *runtime.Spec) { s.Pids = 50 }, "",
			func(rs *specs.Spec) bool { return *rs.Linux.Resources.Pids.Limit == 50 }},
		{"cgroup parent", func(s *runtime.Spec) {}, "/elsewhere",
			func(rs *specs.Spec) bool { return rs.Linux.CgroupsPath == "/elsewhere/hello-1-abc123" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSpec()
			tc.change(&s)
			if rs := ociSpec(t, s, tc.parent); !tc.check(rs) {
				b, _ := json.MarshalIndent(rs.Process, "", " ")
				t.Errorf("OCISpec: %s does not hold; process %s, linux resources %+v, cgroup %s", tc.name, b, rs.Linux.Resources, rs.Linux.CgroupsPath)
			}
		})
	}
}

func TestOCISpecMounts(t *testing.T) {
	rs := ociSpec(t, baseSpec(), "")
	got := map[string]specs.Mount{}
	for _, m := range rs.Mounts {
		got[m.Destination] = m
	}
	tests := []struct {
		dest, typ string
		opts      []string
	}{
		{"/proc", "proc", []string{"nosuid", "noexec", "nodev"}},
		{"/dev", "tmpfs", []string{"nosuid", "mode=755"}},
		{"/dev/pts", "devpts", []string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{"/dev/shm", "tmpfs", []string{"nosuid", "noexec", "nodev", "mode=1777", "size=64m"}},
		{"/dev/mqueue", "mqueue", []string{"nosuid", "noexec", "nodev"}},
		{"/sys", "sysfs", []string{"ro", "nosuid", "noexec", "nodev"}},
		{"/sys/fs/cgroup", "cgroup", []string{"ro"}},
		{"/tmp", "tmpfs", []string{"nosuid", "nodev", "mode=1777", "size=64m"}},
	}
	for _, tc := range tests {
		t.Run(tc.dest, func(t *testing.T) {
			m, ok := got[tc.dest]
			if !ok {
				t.Fatalf("no mount on %s", tc.dest)
			}
			if m.Type != tc.typ {
				t.Errorf("%s type %q, want %q", tc.dest, m.Type, tc.typ)
			}
			for _, o := range tc.opts {
				if !slices.Contains(m.Options, o) {
					t.Errorf("%s options %v lack %q", tc.dest, m.Options, o)
				}
			}
		})
	}
	if len(rs.Mounts) != len(tests) {
		t.Errorf("%d mounts, want exactly %d", len(rs.Mounts), len(tests))
	}
	if want := []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}; !slices.Equal(rs.Linux.MaskedPaths, want) {
		t.Errorf("masked paths %v, want %v", rs.Linux.MaskedPaths, want)
	}
	if want := []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}; !slices.Equal(rs.Linux.ReadonlyPaths, want) {
		t.Errorf("read-only paths %v, want %v", rs.Linux.ReadonlyPaths, want)
	}
}

func TestOCISpecSeccomp(t *testing.T) {
	sc := ociSpec(t, baseSpec(), "").Linux.Seccomp
	if sc.DefaultAction != specs.ActErrno || sc.DefaultErrnoRet == nil || *sc.DefaultErrnoRet != 1 {
		t.Errorf("default action %s errno %v, want an allow-list failing with EPERM", sc.DefaultAction, sc.DefaultErrnoRet)
	}
	if len(sc.Architectures) == 0 {
		t.Error("no architectures: the filter would not match this machine's syscalls")
	}
	allowed := map[string]bool{}
	for _, rule := range sc.Syscalls {
		if rule.Action != specs.ActAllow || len(rule.Args) > 0 {
			continue // conditional rules do not count as allowed
		}
		for _, n := range rule.Names {
			allowed[n] = true
		}
	}
	tests := []struct {
		syscall string
		allowed bool
	}{
		{"read", true}, {"write", true}, {"futex", true}, {"execve", true}, {"socket", false /* only by domain */},
		// Gated by capabilities the sandbox does not have:
		{"mount", false}, {"umount2", false}, {"bpf", false}, {"reboot", false},
		{"init_module", false}, {"setns", false}, {"unshare", false}, {"chroot", false},
		{"clock_settime", false}, {"syslog", false}, {"pivot_root", false}, {"kexec_load", false},
	}
	for _, tc := range tests {
		t.Run(tc.syscall, func(t *testing.T) {
			if allowed[tc.syscall] != tc.allowed {
				t.Errorf("%s allowed = %v, want %v", tc.syscall, allowed[tc.syscall], tc.allowed)
			}
		})
	}
}

func TestOCISpecBindMounts(t *testing.T) {
	tests := []struct {
		name   string
		mounts []runtime.Mount
		want   []specs.Mount // after the sandbox's own mounts
	}{
		{name: "none", mounts: nil, want: nil},
		{
			name:   "read-write folder",
			mounts: []runtime.Mount{{Source: "/data/src", Target: "/workspace"}},
			want:   []specs.Mount{{Destination: "/workspace", Type: "bind", Source: "/data/src", Options: []string{"bind", "nosuid", "nodev", "rw"}}},
		},
		{
			name:   "read-only file",
			mounts: []runtime.Mount{{Source: "/etc/resolv.conf", Target: "/etc/resolv.conf", ReadOnly: true}},
			want:   []specs.Mount{{Destination: "/etc/resolv.conf", Type: "bind", Source: "/etc/resolv.conf", Options: []string{"bind", "nosuid", "nodev", "ro"}}},
		},
		{
			name: "parents first, otherwise in order",
			mounts: []runtime.Mount{
				{Source: "/c/modules", Target: "/workspace/node_modules"},
				{Source: "/c/b", Target: "/b"},
				{Source: "/data/src", Target: "/workspace", ReadOnly: true},
				{Source: "/c/a", Target: "/a"},
			},
			want: []specs.Mount{
				{Destination: "/b", Type: "bind", Source: "/c/b", Options: []string{"bind", "nosuid", "nodev", "rw"}},
				{Destination: "/workspace", Type: "bind", Source: "/data/src", Options: []string{"bind", "nosuid", "nodev", "ro"}},
				{Destination: "/a", Type: "bind", Source: "/c/a", Options: []string{"bind", "nosuid", "nodev", "rw"}},
				{Destination: "/workspace/node_modules", Type: "bind", Source: "/c/modules", Options: []string{"bind", "nosuid", "nodev", "rw"}},
			},
		},
	}
	plain := ociSpec(t, baseSpec(), "")
	plain.Linux.Seccomp = nil
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSpec()
			s.Mounts = tc.mounts
			rs := ociSpec(t, s, "")
			own := len(plain.Mounts)
			if len(rs.Mounts) < own || !reflect.DeepEqual(rs.Mounts[:own], plain.Mounts) {
				t.Fatalf("mounts %+v do not start with the sandbox's own %+v", rs.Mounts, plain.Mounts)
			}
			if got := rs.Mounts[own:]; !reflect.DeepEqual(got, tc.want) && len(got)+len(tc.want) > 0 {
				t.Errorf("bind mounts = %+v, want %+v", got, tc.want)
			}
			// Everything but the mounts is the hardened configuration of a
			// sandbox without them.
			rs.Mounts = plain.Mounts
			rs.Linux.Seccomp = nil
			if !reflect.DeepEqual(rs, plain) {
				a, _ := json.Marshal(rs)
				b, _ := json.Marshal(plain)
				t.Errorf("mounts changed more than the mounts:\n%s\nwant\n%s", a, b)
			}
		})
	}
}

func TestOCISpecTmpSize(t *testing.T) {
	tests := []struct {
		name string
		size int64
		want string
	}{
		{"default", 0, "size=64m"},
		{"one GiB", 1 << 30, "size=1073741824"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := baseSpec()
			s.TmpSize = tc.size
			var tmp *specs.Mount
			rs := ociSpec(t, s, "")
			for i := range rs.Mounts {
				if rs.Mounts[i].Destination == "/tmp" {
					tmp = &rs.Mounts[i]
				}
			}
			if tmp == nil || !slices.Contains(tmp.Options, tc.want) {
				t.Errorf("OCISpec(TmpSize %d): /tmp mount %+v, want option %s", tc.size, tmp, tc.want)
			}
		})
	}
}
