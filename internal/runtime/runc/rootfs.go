package runc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"noops/internal/errkind"
)

// skeleton is the bottom layer of every rootfs: the mount points runc
// needs. The root is read-only, so runc cannot make them itself, and an
// image need not have them. It also means an overlay always has at least
// the two lower layers the kernel requires when there is no upper layer.
var skeleton = []struct {
	name string
	mode os.FileMode
}{
	{"dev", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"tmp", 0o1777},
}

// makeSkeleton creates the skeleton layer at dir if needed.
func makeSkeleton(dir string) error {
	for _, e := range skeleton {
		p := filepath.Join(dir, e.name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("making the mount point layer: %w", err)
		}
		if err := os.Chmod(p, e.mode); err != nil {
			return fmt.Errorf("making the mount point layer: %w", err)
		}
	}
	return os.Chmod(dir, 0o755)
}

// maxMountData is what the kernel copies of mount(2)'s data: one page.
const maxMountData = 4096

// overlayOptions returns the mount data stacking layers (bottom first) on
// the skeleton: lowerdir lists the top layer first.
func overlayOptions(layers []string, skel string) (string, error) {
	lower := make([]string, 0, len(layers)+1)
	for i := len(layers) - 1; i >= 0; i-- {
		lower = append(lower, layers[i])
	}
	lower = append(lower, skel)
	data := "lowerdir=" + strings.Join(lower, ":")
	if len(data) >= maxMountData {
		return "", errkind.Errorf(errkind.Invalid, "%d layers make %d bytes of overlay options, more than the kernel's %d", len(layers), len(data), maxMountData)
	}
	return data, nil
}

// mountRootfs mounts the read-only overlay of layers on target. There is
// no upper layer: the sandbox's root cannot be written by construction,
// and the layers are shared between sandboxes.
func mountRootfs(target string, layers []string, skel string) error {
	data, err := overlayOptions(layers, skel)
	if err != nil {
		return err
	}
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		return fmt.Errorf("mounting the image layers on %s: %w", target, err)
	}
	// Keep it out of other mount namespaces' view (a shared parent would
	// propagate it).
	if err := unix.Mount("", target, "", unix.MS_PRIVATE, ""); err != nil {
		_ = unmount(target)
		return fmt.Errorf("making %s private: %w", target, err)
	}
	return nil
}

// unmount removes every mount on target, detaching lazily one that is
// busy. Not mounted is not an error.
func unmount(target string) error {
	for range 16 { // mounts may be stacked
		mounted, err := isMountPoint(target)
		if err != nil || !mounted {
			return err
		}
		err = unix.Unmount(target, 0)
		if errors.Is(err, unix.EBUSY) {
			err = unix.Unmount(target, unix.MNT_DETACH)
		}
		if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmounting %s: %w", target, err)
		}
	}
	return fmt.Errorf("unmounting %s: still mounted after 16 unmounts", target)
}

// isMountPoint reports whether something is mounted on path, from
// /proc/self/mountinfo (which, unlike comparing devices, sees a bind mount
// of a folder on its own file system).
func isMountPoint(path string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, fmt.Errorf("reading mounts: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == path {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("reading mounts: %w", err)
	}
	return false, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1:i+4]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '7' {
			return false
		}
	}
	return len(s) == 3
}
