package netns

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"
)

// Close releases what the network holds on the host once no sandbox is
// attached any more: the mount of the namespace folder and the bridge (the
// bridge plugin creates it but never deletes it). While sandboxes are still
// attached (they outlive a server restart and are adopted by the next
// server) it changes nothing, so the next server finds them as they were.
func (n *Network) Close(ctx context.Context) error {
	ids, err := n.List()
	if err != nil {
		return err
	}
	if len(ids) > 0 {
		return nil
	}
	var errs []error
	if err := unix.Unmount(n.nsDir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("unmounting %s: %w", n.nsDir, err))
	}
	out, err := exec.CommandContext(ctx, "ip", "link", "del", n.bridge).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("removing bridge %s: %v: %s", n.bridge, err, strings.TrimSpace(string(out))))
	}
	return errors.Join(errs...)
}
