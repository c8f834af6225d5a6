package runc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// execFifo is the FIFO in runc's state folder of a created container that
// runc's init, blocked, waits to write to before it execs the process.
const execFifo = "exec.fifo"

// errNoFifo means the container has no exec FIFO: it is not (or no longer)
// in the created state, or this runc keeps its state elsewhere.
var errNoFifo = errors.New("no exec FIFO")

// startByFifo does what `runc start` does for a created container without
// running runc (a process start, milliseconds, on a cold start's path):
// it opens the exec FIFO for reading, which lets runc's init open it for
// writing, reads the byte init writes before it execs, and removes the
// FIFO (runc tells created from running by it). pid is init's, watched so
// that a dead init is an error rather than a hang.
func startByFifo(ctx context.Context, runcRoot, id string, pid int, timeout time.Duration) error {
	path := filepath.Join(runcRoot, id, execFifo)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return errNoFifo
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return errNoFifo
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 16)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 50)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("waiting on %s: %w", path, err)
		}
		if n > 0 {
			r, err := unix.Read(fd, buf)
			switch {
			case r > 0:
				if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("removing %s: %w", path, err)
				}
				return nil
			case err == nil || r == 0 && !errors.Is(err, unix.EAGAIN):
				return fmt.Errorf("the sandbox's init closed its exec FIFO without starting (it was killed)")
			}
		}
		if pid > 0 && unix.Kill(pid, 0) != nil {
			return fmt.Errorf("the sandbox's init (pid %d) has exited", pid)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the sandbox's init did not take its start within %s", timeout)
		}
	}
}
