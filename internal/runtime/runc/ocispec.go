package runc

import (
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"noops/internal/runtime"
)

// The defaults of a sandbox.
const (
	DefaultUID          = 65532     // "nonroot", as in distroless images
	DefaultMemory       = 256 << 20 // bytes
	DefaultPids         = 256
	DefaultCPUShares    = 1024 // the kernel's default weight
	DefaultCgroupParent = "/noops"
	defaultPath         = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	nofileSoft          = 1024
	nofileHard          = 4096
	oomScoreAdj         = 500 // sandboxes go before the platform when memory runs out
)

// OCISpec returns the runtime configuration (config.json) that runs s in a
// hardened sandbox: non-root, no capabilities, no new privileges, Docker's
// default seccomp profile, read-only root, private /tmp, masked /proc
// paths, its own pid, ipc, uts, mount, cgroup and network namespaces (the
// network one is s.NetNS when set), and memory, swap and pids limits in the
// cgroup cgroupParent/<id> ("" means DefaultCgroupParent). The root is the
// bundle's "rootfs" folder. s.Mounts follow the sandbox's own mounts as
// bind mounts (no submounts, nosuid, nodev, "ro" when read-only), parents
// before the mounts inside them whatever their order in s. It only
// computes; s must be valid.
func OCISpec(s runtime.Spec, cgroupParent string) (*specs.Spec, error) {
	uid, gid := s.UID, s.GID
	if uid == 0 {
		uid = DefaultUID
	}
	if gid == 0 {
		gid = uid
	}
	cwd := s.Cwd
	if cwd == "" {
		cwd = "/"
	}
	env := append([]string{}, s.Env...)
	if !hasKey(env, "PATH") {
		env = append([]string{defaultPath}, env...)
	}
	memory := s.Memory
	if memory == 0 {
		memory = DefaultMemory
	}
	pids := s.Pids
	if pids == 0 {
		pids = DefaultPids
	}
	if cgroupParent == "" {
		cgroupParent = DefaultCgroupParent
	}
	oom := oomScoreAdj
	shares := uint64(DefaultCPUShares)
	netns := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: s.NetNS}

	rs := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User: specs.User{UID: uid, GID: gid},
			Args: append([]string{}, s.Args...),
			Env:  env,
			Cwd:  cwd,
			// Every set empty, not absent: runc leaves the capabilities of
			// its caller alone when the object is missing.
			Capabilities: &specs.LinuxCapabilities{
				Bounding:    []string{},
				Effective:   []string{},
				Inheritable: []string{},
				Permitted:   []string{},
				Ambient:     []string{},
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofileHard, Soft: nofileSoft}},
			NoNewPrivileges: true,
			ApparmorProfile: "",
			OOMScoreAdj:     &oom,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: s.ID,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=64m"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", tmpSize(s.TmpSize)}},
		},
		Linux: &specs.Linux{
			CgroupsPath: path.Join(cgroupParent, s.ID),
			Resources: &specs.LinuxResources{
				// Deny every device; runc adds the rules for its default
				// devices (null, zero, full, random, urandom, tty, ptmx).
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  &specs.LinuxMemory{Limit: &memory, Swap: &memory},
				Pids:    &specs.LinuxPids{Limit: &pids},
				CPU:     &specs.LinuxCPU{Shares: &shares},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.CgroupNamespace},
				netns,
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
				"/proc/sched_debug", "/proc/scsi", "/sys/firmware",
				"/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
	rs.Mounts = append(rs.Mounts, bindMounts(s.Mounts)...)
	sc, err := seccompFor(rs)
	if err != nil {
		return nil, err
	}
	rs.Linux.Seccomp = sc
	return rs, nil
}

// tmpSize is the size option of the tmpfs on /tmp: n bytes, 0 meaning
// 64 MiB.
func tmpSize(n int64) string {
	if n == 0 {
		return "size=64m"
	}
	return "size=" + strconv.FormatInt(n, 10)
}

// bindMounts returns ms as OCI bind mounts ordered by depth (stable), so
// that a mount inside another one's target is not hidden by it.
func bindMounts(ms []runtime.Mount) []specs.Mount {
	sorted := slices.Clone(ms)
	slices.SortStableFunc(sorted, func(a, b runtime.Mount) int {
		return depth(a.Target) - depth(b.Target)
	})
	out := make([]specs.Mount, 0, len(sorted))
	for _, m := range sorted {
		// "bind", not "rbind": what is mounted below Source on the host
		// stays out of the sandbox.
		opts := []string{"bind", "nosuid", "nodev"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		out = append(out, specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: opts})
	}
	return out
}

// depth is the number of components of a clean absolute path.
func depth(p string) int { return strings.Count(p, "/") }

func hasKey(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}
