package fake

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

// clockTick is the kernel's USER_HZ, the unit of /proc/PID/stat's times
// (100 on every Linux architecture Go supports).
const clockTick = 100

// Usage reads the sandbox process's CPU time, resident memory and
// threads from /proc: the fake driver has no cgroup, so it counts its one
// process, not its children.
func (d *Driver) Usage(_ context.Context, id string) (runtime.Usage, error) {
	d.m.mu.Lock()
	sb, ok := d.m.sandboxes[id]
	var pid int
	running := false
	if ok {
		pid = sb.pid
		select {
		case <-sb.done:
		default:
			running = sb.proc != nil
		}
	}
	d.m.mu.Unlock()
	if !ok {
		return runtime.Usage{}, errkind.Errorf(errkind.NotFound, "sandbox %s not found", id)
	}
	if !running {
		return runtime.Usage{}, errkind.Errorf(errkind.Conflict, "sandbox %s is not running", id)
	}
	u, err := procUsage(pid)
	if err != nil {
		return runtime.Usage{}, fmt.Errorf("reading the resource use of sandbox %s: %w", id, err)
	}
	return u, nil
}

// procUsage reads /proc/PID/stat (utime, stime) and /proc/PID/status
// (VmRSS, Threads).
func procUsage(pid int) (runtime.Usage, error) {
	var u runtime.Usage
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return u, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after its last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return u, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("/proc/%d/stat: bad utime or stime", pid)
	}
	u.CPU = time.Duration(ut+st) * time.Second / clockTick
	fh, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return u, err
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			u.Memory = n << 10 // kB
		case "Threads":
			u.Pids = n
		}
	}
	return u, sc.Err()
}
