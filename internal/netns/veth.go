package netns

import (
	"encoding/binary"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"noops/internal/errkind"
)

// HostVeth returns the name of the host side of sandbox id's veth pair:
// the interface the sandbox's traffic crosses on the host, where
// `noops capture` records it. It asks the kernel, in the sandbox's
// namespace, which host interface eth0 is paired with (IFLA_LINK).
func (n *Network) HostVeth(id string) (string, error) {
	if err := validID(id); err != nil {
		return "", err
	}
	peer, err := peerIndex(n.nsPath(id))
	if err != nil {
		return "", fmt.Errorf("finding the host side of sandbox %s's network: %w", id, err)
	}
	ifi, err := net.InterfaceByIndex(peer)
	if err != nil {
		return "", fmt.Errorf("finding the host side of sandbox %s's network (interface %d): %w", id, peer, err)
	}
	return ifi.Name, nil
}

// peerIndex enters the namespace at path on a locked thread and reads
// eth0's link index; the thread goes back to the host's namespace, or is
// thrown away if it cannot.
func peerIndex(path string) (int, error) {
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, errkind.Errorf(errkind.NotFound, "no network namespace at %s: %v", path, err)
	}
	defer unix.Close(target)
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return 0, err
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return 0, fmt.Errorf("entering %s: %w", path, err)
	}
	idx, lerr := linkOf(ifName)
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// The thread stays in the sandbox's namespace: keep it locked so
		// that Go ends it with this goroutine.
		return 0, fmt.Errorf("returning to the host's network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return idx, lerr
}

// linkOf returns the IFLA_LINK of interface name in the current thread's
// namespace: for one end of a veth pair, the other end's index.
func linkOf(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	tab, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return 0, fmt.Errorf("listing links: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(tab)
	if err != nil {
		return 0, fmt.Errorf("reading links: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		info := (*syscall.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
		if int(info.Index) != ifi.Index {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return 0, fmt.Errorf("reading the attributes of %s: %w", name, err)
		}
		for _, a := range attrs {
			if a.Attr.Type == syscall.IFLA_LINK && len(a.Value) >= 4 {
				return int(binary.NativeEndian.Uint32(a.Value)), nil
			}
		}
		return 0, fmt.Errorf("%s is not one end of a pair (no IFLA_LINK)", name)
	}
	return 0, fmt.Errorf("%s is not among the links", name)
}
