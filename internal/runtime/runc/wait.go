package runc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"noops/internal/runtime"
)

// unknownExit is what is recorded when the shim died before the sandbox's
// process: the process is gone, but nobody saw how it ended.
func unknownExit(at time.Time) runtime.Exit {
	return runtime.Exit{Code: -1, Signal: "unknown", At: at}
}

// Wait blocks until the process of sandbox id has exited and returns how,
// from the exit.json its shim wrote. It works for sandboxes that an earlier
// driver (a server since restarted) started: it watches the shim through a
// pidfd. Should the shim be gone without a record (killed), it watches the
// sandbox's process itself and records an unknown exit when it ends.
func (d *Driver) Wait(ctx context.Context, id string) (runtime.Exit, error) {
	if _, err := d.record(id); err != nil {
		return runtime.Exit{}, fmt.Errorf("waiting for sandbox: %w", err)
	}
	bundle := d.bundle(id)
	for {
		e, ok, err := readExit(bundle)
		if err != nil || ok {
			return e, err
		}
		if d.isStarting(id) || d.isForeground(id) {
			if err := sleep(ctx, 20*time.Millisecond); err != nil {
				return runtime.Exit{}, fmt.Errorf("waiting for sandbox %s: %w", id, err)
			}
			continue
		}
		shim, err := d.openShim(id)
		if err != nil {
			return runtime.Exit{}, fmt.Errorf("waiting for sandbox %s: %w", id, err)
		}
		if shim >= 0 {
			err := waitPidfd(ctx, shim)
			unix.Close(shim)
			if err != nil {
				return runtime.Exit{}, fmt.Errorf("waiting for sandbox %s: %w", id, err)
			}
			if e, ok, err := readExit(bundle); err != nil || ok {
				return e, err
			}
		}
		// No shim and no record: the shim died first.
		return d.waitOrphan(ctx, id)
	}
}

// waitOrphan waits for a sandbox whose shim is gone, then records (and
// returns) an unknown exit.
func (d *Driver) waitOrphan(ctx context.Context, id string) (runtime.Exit, error) {
	cs, err := d.state(ctx, id)
	if err == nil && cs.Pid > 0 && cs.Status != "stopped" {
		d.log.Warn("sandbox outlived its shim; its exit status will be unknown", "sandbox", id, "pid", cs.Pid)
		fd, err := unix.PidfdOpen(cs.Pid, 0)
		if err == nil {
			err = waitPidfd(ctx, fd)
			unix.Close(fd)
			if err != nil {
				return runtime.Exit{}, fmt.Errorf("waiting for sandbox %s: %w", id, err)
			}
		} else if !errors.Is(err, unix.ESRCH) {
			return runtime.Exit{}, fmt.Errorf("waiting for sandbox %s: watching pid %d: %w", id, cs.Pid, err)
		}
	} else if err != nil && !notExist(err) {
		return runtime.Exit{}, fmt.Errorf("waiting for sandbox %s: %w", id, err)
	}
	// Record it, so that every later Wait and State agree.
	if _, err := d.record(id); err != nil {
		return runtime.Exit{}, fmt.Errorf("waiting for sandbox: %w", err) // deleted meanwhile
	}
	bundle := d.bundle(id)
	if e, ok, err := readExit(bundle); err != nil || ok {
		return e, err
	}
	e := unknownExit(time.Now().UTC())
	if err := writeJSON(filepath.Join(bundle, exitFile), recordOf(e)); err != nil {
		return runtime.Exit{}, fmt.Errorf("waiting for sandbox %s: %w", id, err)
	}
	return e, nil
}

// openShim returns a pidfd of sandbox id's shim, or -1 when it has ended.
// It checks that the process is the shim of this bundle, so a pid reused
// by another process is not mistaken for it.
func (d *Driver) openShim(id string) (int, error) {
	bundle := d.bundle(id)
	pid, err := readPid(filepath.Join(bundle, shimPidFile))
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("watching shim %d: %w", pid, err)
	}
	// Checked after opening: the pidfd now pins the process we checked.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(b), "\x00--bundle\x00"+bundle+"\x00") {
		unix.Close(fd)
		return -1, nil
	}
	return fd, nil
}

// waitPidfd blocks until the process of pidfd fd has exited or ctx ends.
func waitPidfd(ctx context.Context, fd int) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	defer w.Close()
	stop := context.AfterFunc(ctx, func() { w.Close() }) // wakes poll with POLLHUP on r
	defer stop()
	rc, err := r.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	err = rc.Control(func(rfd uintptr) {
		for {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(rfd), Events: unix.POLLIN}}
			_, perr = unix.Poll(fds, -1)
			if errors.Is(perr, unix.EINTR) {
				continue
			}
			if perr != nil || fds[0].Revents != 0 {
				return
			}
			if fds[1].Revents != 0 {
				perr = ctx.Err()
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return perr
}

// alive reports whether the process behind pidfd fd still runs.
func alive(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
