package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"

	"noops/internal/errkind"
)

// makeMountPoint turns dir into a mount point of its own with shared
// propagation in a fresh peer group, as `ip netns` does for /run/netns.
//
// Its own peer group matters when the parent mount is shared (systemd makes /
// shared): a plain bind would join the parent's peer group, and every
// namespace file bound below dir would propagate back onto the parent, where
// a second, shadowed mount would keep the namespace alive after Teardown.
// Making the bind private first cuts that tie. Making it shared again then
// lets an unmount here reach copies in mount namespaces created later (by
// runc, say), so a namespace is freed as soon as Teardown unmounts it.
func makeMountPoint(dir string) error {
	mounted, err := isMountPoint(dir)
	if err != nil {
		return err
	}
	if !mounted {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return classifyFS(fmt.Errorf("bind-mounting %s onto itself: %w", dir, err))
		}
		if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
			return classifyFS(fmt.Errorf("making %s a private mount: %w", dir, err))
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		return classifyFS(fmt.Errorf("making %s a shared mount: %w", dir, err))
	}
	return nil
}

// isMountPoint reports whether dir is the root of a mount, by comparing its
// mount id with its parent's.
func isMountPoint(dir string) (bool, error) {
	id := func(p string) (uint64, error) {
		var st unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &st); err != nil {
			return 0, fmt.Errorf("reading mount of %s: %w", p, err)
		}
		if st.Mask&unix.STATX_MNT_ID == 0 {
			return 0, fmt.Errorf("reading mount of %s: the kernel does not report mount ids (needs Linux 5.8)", p)
		}
		return st.Mnt_id, nil
	}
	a, err := id(dir)
	if err != nil {
		return false, err
	}
	b, err := id(filepath.Dir(dir))
	if err != nil {
		return false, err
	}
	return a != b, nil
}

// createNS creates a new network namespace and binds it onto path, which must
// not exist yet. On failure nothing is left behind.
func createNS(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if errors.Is(err, fs.ErrExist) {
		return errkind.Errorf(errkind.Conflict, "namespace file %s already exists", path)
	}
	if err != nil {
		return classifyFS(fmt.Errorf("creating namespace file: %w", err))
	}
	if err := f.Close(); err != nil {
		return errors.Join(fmt.Errorf("creating namespace file: %w", err), removeNS(path))
	}
	if err := bindNewNS(path); err != nil {
		return errors.Join(err, removeNS(path))
	}
	return nil
}

// bindNewNS runs unshareAndBind on a goroutine of its own, locked to its OS
// thread. If the thread cannot return to the host's namespace it stays
// locked, and the runtime terminates it when the goroutine exits, so no
// other goroutine ever runs in the sandbox's namespace.
func bindNewNS(path string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := unshareAndBind(path)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// unshareAndBind moves the calling thread into a new network namespace,
// binds that namespace onto path and moves the thread back. restored reports
// whether the thread is back in its original namespace.
func unshareAndBind(path string) (restored bool, err error) {
	self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	orig, err := unix.Open(self, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true, fmt.Errorf("opening the current network namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return true, classifyFS(fmt.Errorf("unsharing a network namespace: %w", err))
	}
	bindErr := unix.Mount(self, path, "none", unix.MS_BIND, "")
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		err = fmt.Errorf("returning to the original network namespace: %w", err)
		if bindErr != nil {
			err = errors.Join(fmt.Errorf("binding network namespace onto %s: %w", path, bindErr), err)
		}
		return false, err
	}
	if bindErr != nil {
		return true, classifyFS(fmt.Errorf("binding network namespace onto %s: %w", path, bindErr))
	}
	return true, nil
}

// removeNS unmounts and removes a namespace file. A file that is not mounted
// or does not exist is fine.
func removeNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unmounting %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// isNS reports whether path is a bound namespace (a file on nsfs).
func isNS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}
