package runc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

// shimExitTimeout bounds how long Delete waits for a shim to record the
// exit of the process runc just killed.
const shimExitTimeout = 10 * time.Second

// Stop sends SIGTERM to the sandbox's process, SIGKILL after grace, and
// waits for it to exit. A stopped or unknown sandbox is not an error.
func (d *Driver) Stop(ctx context.Context, id string, grace time.Duration) error {
	if _, err := d.record(id); err != nil {
		if errkind.Is(err, errkind.NotFound) {
			return nil
		}
		return fmt.Errorf("stopping sandbox %s: %w", id, err)
	}
	if _, ok, err := readExit(d.bundle(id)); err != nil || ok {
		return err
	}
	if st, err := d.State(ctx, id); err == nil && st.Status == runtime.Created && !d.isStarting(id) {
		grace = 0 // runc's init ignores SIGTERM: nothing runs to be told
	}
	if grace <= 0 {
		if err := d.kill(ctx, id, "KILL"); err != nil {
			return fmt.Errorf("killing sandbox %s: %w", id, err)
		}
		if _, err := d.Wait(ctx, id); err != nil {
			return fmt.Errorf("killing sandbox %s: %w", id, err)
		}
		return nil
	}
	if err := d.kill(ctx, id, "TERM"); err != nil {
		return fmt.Errorf("stopping sandbox %s: %w", id, err)
	}
	gctx, cancel := context.WithTimeout(ctx, grace)
	_, err := d.Wait(gctx, id)
	cancel()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stopping sandbox %s: %w", id, ctx.Err())
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stopping sandbox %s: %w", id, err)
	}
	if err := d.kill(ctx, id, "KILL"); err != nil {
		return fmt.Errorf("killing sandbox %s: %w", id, err)
	}
	if _, err := d.Wait(ctx, id); err != nil {
		return fmt.Errorf("killing sandbox %s: %w", id, err)
	}
	return nil
}

// kill signals the sandbox's process through runc; a process that has
// already ended is not an error. The process is the init of its pid
// namespace, so when it dies the kernel kills the rest.
func (d *Driver) kill(ctx context.Context, id, sig string) error {
	_, err := d.run(ctx, "kill", id, sig)
	if err != nil && !notRunning(err) && !notExist(err) {
		return err
	}
	return nil
}

// Delete removes sandbox id: runc's container (killing its process if it
// still runs), the rootfs mount and the bundle. It leaves the log, which
// belongs to the caller. An unknown sandbox is not an error.
func (d *Driver) Delete(ctx context.Context, id string) error {
	if runtime.ValidID(id) != nil {
		return nil // no sandbox can have that name
	}
	_, berr := os.Stat(d.bundle(id))
	_, rerr := os.Stat(filepath.Join(d.runcRoot, id))
	if errors.Is(berr, os.ErrNotExist) && errors.Is(rerr, os.ErrNotExist) {
		return nil
	}
	if err := d.remove(ctx, id); err != nil {
		return fmt.Errorf("deleting sandbox %s: %w", id, err)
	}
	return nil
}

// remove undoes Start, whatever state the sandbox is in.
func (d *Driver) remove(ctx context.Context, id string) error {
	// runc also removes the state folder that a runc killed while it made
	// the container leaves without state.json, but not its cgroup.
	if _, err := d.run(ctx, "delete", "--force", id); err != nil && !notExist(err) {
		return err
	}
	// runc deleted the container's cgroup if it knew the container; one
	// left is that of a `runc run` killed while it made the container,
	// perhaps with its `runc init` still in it.
	if path, err := cgroupsPath(d.bundle(id)); err == nil {
		if err := removeCgroup(ctx, path); err != nil {
			return err
		}
	}
	// runc killed the process; let its shim record that and end before
	// the bundle goes away under it.
	if shim, err := d.openShim(id); err == nil && shim >= 0 {
		wctx, cancel := context.WithTimeout(ctx, shimExitTimeout)
		werr := waitPidfd(wctx, shim)
		cancel()
		if werr != nil && alive(shim) {
			d.log.Warn("shim did not end after its sandbox was deleted; killing it", "sandbox", id)
			_ = unix.PidfdSendSignal(shim, unix.SIGKILL, nil, 0)
		}
		unix.Close(shim)
	}
	bundle := d.bundle(id)
	rootfs := filepath.Join(bundle, rootfsDir)
	if err := unmount(rootfs); err != nil {
		return err
	}
	// Never remove through a mount: that would reach into the image layers.
	if mounted, err := isMountPoint(rootfs); err != nil || mounted {
		return fmt.Errorf("removing %s: the root is still mounted (%v)", bundle, err)
	}
	if err := os.RemoveAll(bundle); err != nil {
		return fmt.Errorf("removing %s: %w", bundle, err)
	}
	return nil
}
