package runc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

// Usage reads a running sandbox's CPU time, memory and pids from its
// cgroup: cpu.stat, memory.current and pids.current on cgroup v2; the
// cpuacct, memory and pids hierarchies on v1.
func (d *Driver) Usage(ctx context.Context, id string) (runtime.Usage, error) {
	st, err := d.State(ctx, id)
	if err != nil {
		return runtime.Usage{}, err
	}
	if st.Status != runtime.Running {
		return runtime.Usage{}, errkind.Errorf(errkind.Conflict, "sandbox %s is not running", id)
	}
	path, err := cgroupsPath(d.bundle(id))
	if err != nil {
		return runtime.Usage{}, errkind.Errorf(errkind.Conflict, "sandbox %s is not running", id)
	}
	u, err := readUsage(path)
	if errors.Is(err, os.ErrNotExist) {
		return runtime.Usage{}, errkind.Errorf(errkind.Conflict, "sandbox %s is not running", id)
	}
	if err != nil {
		return runtime.Usage{}, fmt.Errorf("reading the resource use of sandbox %s: %w", id, err)
	}
	return u, nil
}

// readUsage reads the cgroup at path (absolute from the hierarchies'
// roots).
func readUsage(path string) (runtime.Usage, error) {
	var u runtime.Usage
	if unified() {
		dir := filepath.Join(cgroupMount, path)
		usec, err := counter(filepath.Join(dir, "cpu.stat"), "usage_usec")
		if err != nil {
			return u, err
		}
		u.CPU = time.Duration(usec) * time.Microsecond
		if u.Memory, err = single(filepath.Join(dir, "memory.current")); err != nil {
			return u, err
		}
		u.Pids, err = single(filepath.Join(dir, "pids.current"))
		return u, err
	}
	ns, err := single(filepath.Join(cgroupMount, "cpuacct", path, "cpuacct.usage"))
	if err != nil {
		return u, err
	}
	u.CPU = time.Duration(ns)
	if u.Memory, err = single(filepath.Join(cgroupMount, "memory", path, "memory.usage_in_bytes")); err != nil {
		return u, err
	}
	u.Pids, err = single(filepath.Join(cgroupMount, "pids", path, "pids.current"))
	return u, err
}

// single reads a cgroup file holding one number.
func single(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}
