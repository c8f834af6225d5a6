package runc

import (
	"bufio"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
	var oci specs.Spec
	if err := readJSON(filepath.Join(bundle, configFile), &oci); err != nil || oci.Linux == nil || !filepath.IsAbs(oci.Linux.CgroupsPath) {
		log.Warn("cannot tell whether the sandbox ran out of memory: no absolute cgroup path", "err", err)
		return false
	}
	dir := memoryCgroup(oci.Linux.CgroupsPath)
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
