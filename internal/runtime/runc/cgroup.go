package runc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroupMount is where the cgroup file systems are mounted.
const cgroupMount = "/sys/fs/cgroup"

// unified reports whether the machine runs cgroup v2 only.
func unified() bool {
	_, err := os.Stat(filepath.Join(cgroupMount, "cgroup.controllers"))
	return err == nil
}

// memoryCgroup returns the folder of the memory cgroup at path (a
// cgroupsPath, absolute from the hierarchy's root).
func memoryCgroup(path string) string {
	if unified() {
		return filepath.Join(cgroupMount, path)
	}
	return filepath.Join(cgroupMount, "memory", path)
}

// oomKilled reports, best effort, whether the kernel's OOM killer killed
// a process of the sandbox whose bundle this is: the oom_kill counter of
// its memory cgroup (memory.oom_control on v1, memory.events on v2). runc
// keeps the cgroup until the sandbox is deleted, so it can be read after
// the process exited.
func oomKilled(bundle string, log *slog.Logger) bool {
	path, err := cgroupsPath(bundle)
	if err != nil {
		log.Warn("cannot tell whether the sandbox ran out of memory", "err", err)
		return false
	}
	dir := memoryCgroup(path)
	file := "memory.oom_control"
	if unified() {
		file = "memory.events"
	}
	n, err := counter(filepath.Join(dir, file), "oom_kill")
	if err != nil {
		log.Warn("cannot tell whether the sandbox ran out of memory", "err", err)
		return false
	}
	return n > 0
}

// counter reads "key N" from a flat-keyed cgroup file.
func counter(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, os.ErrNotExist
}

// cgroupsPath returns the cgroupsPath of the sandbox whose bundle this is,
// from its config.json: os.ErrNotExist when it has none, so runc never saw
// it.
func cgroupsPath(bundle string) (string, error) {
	var oci specs.Spec
	if err := readJSON(filepath.Join(bundle, configFile), &oci); err != nil {
		return "", err
	}
	if oci.Linux == nil || !filepath.IsAbs(oci.Linux.CgroupsPath) {
		return "", fmt.Errorf("%s has no absolute cgroup path", configFile)
	}
	return oci.Linux.CgroupsPath, nil
}

// cgroupRetry is how often removeCgroup looks again at a cgroup that is
// not empty yet.
const cgroupRetry = 10 * time.Millisecond

// removeCgroup kills every process left in the cgroup at path (absolute
// from the hierarchies' roots) in every hierarchy, waits for them to end
// and removes the cgroup. runc deletes the cgroups of the containers it
// knows; this is for one it does not: a `runc run` killed while it made
// the container leaves no state, but may leave the cgroup with its `runc
// init` in it. A cgroup that is not there is not an error.
func removeCgroup(ctx context.Context, path string) error {
	dirs, err := cgroupDirs(path)
	if err != nil || len(dirs) == 0 {
		return err
	}
	for {
		pids, err := cgroupPids(dirs)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		for _, dir := range dirs {
			thaw(dir)
		}
		for _, pid := range pids {
			killInCgroup(pid, path)
		}
		if err := sleep(ctx, cgroupRetry); err != nil {
			return fmt.Errorf("emptying cgroup %s: %d processes left: %w", path, len(pids), err)
		}
	}
	for _, dir := range dirs {
		if err := rmdirTree(ctx, dir); err != nil {
			return err
		}
	}
	return nil
}

// cgroupDirs returns the folders of the cgroup at path that exist, one per
// mounted hierarchy (v1 controllers, named hierarchies and v2).
func cgroupDirs(path string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || sep+1 >= len(fields) {
			continue
		}
		if fstype := fields[sep+1]; fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		// As runc places a cgroup with an absolute path: below the mount
		// point, whatever part of the hierarchy is mounted there.
		dir := filepath.Join(unescapeMount(fields[4]), path)
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			dirs = append(dirs, dir)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	return dirs, nil
}

// cgroupPids lists the processes in the cgroups at dirs and below them.
func cgroupPids(dirs []string) ([]int, error) {
	var pids []int
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if errors.Is(err, os.ErrNotExist) {
				return nil // removed meanwhile
			}
			if err != nil || !e.IsDir() {
				return err
			}
			b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
					pids = append(pids, pid)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing the processes of cgroup %s: %w", dir, err)
		}
	}
	return pids, nil
}

// thaw thaws the v1 freezer cgroup at dir, if it is one: a frozen process
// cannot die, and runc killed while it froze the cgroup to kill what is
// in it leaves it frozen. (v2 lets SIGKILL through a frozen cgroup.)
func thaw(dir string) {
	f, err := os.OpenFile(filepath.Join(dir, "freezer.state"), os.O_WRONLY, 0)
	if err != nil {
		return
	}
	_, _ = f.WriteString("THAWED")
	f.Close()
}

// killInCgroup sends SIGKILL to pid if it is still in the cgroup at path
// or below it: it was read from cgroup.procs, and might have ended and its
// number gone to another process since.
func killInCgroup(pid int, path string) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // ended
	}
	defer unix.Close(fd)
	// Checked after opening: the pidfd now pins the process we check.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		// ID:CONTROLLERS:PATH, PATH from the root of the hierarchy
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && (f[2] == path || strings.HasPrefix(f[2], path+"/")) {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			return
		}
	}
}

// rmdirTree removes the cgroup at dir and its children, deepest first. A
// cgroup whose last process has just ended may stay busy a moment.
func rmdirTree(ctx context.Context, dir string) error {
	var all []string
	_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			all = append(all, p)
		}
		return nil
	})
	for i := len(all) - 1; i >= 0; i-- {
		for {
			err := unix.Rmdir(all[i])
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("removing cgroup %s: %w", all[i], err)
			}
			if err := sleep(ctx, cgroupRetry); err != nil {
				return fmt.Errorf("removing cgroup %s: still busy: %w", all[i], err)
			}
		}
	}
	return nil
}
