package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"noops/internal/errkind"
	"noops/internal/testenv/need"
)

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  Config
		want string // in the message
	}{
		{"bridge too long", Config{Bridge: "abcdefghijklmnop"}, "bridge name"},
		{"bridge with space", Config{Bridge: "my bridge"}, "bridge name"},
		{"bridge with slash", Config{Bridge: "a/b"}, "bridge name"},
		{"bridge leading dash", Config{Bridge: "-br"}, "bridge name"},
		{"bridge dot", Config{Bridge: "."}, "bridge name"},
		{"subnet not a prefix", Config{Subnet: "10.88.0.0"}, "not an IPv4 prefix"},
		{"subnet garbage", Config{Subnet: "lots"}, "not an IPv4 prefix"},
		{"subnet IPv6", Config{Subnet: "fd00::/64"}, "not an IPv4 prefix"},
		{"subnet too large", Config{Subnet: "10.0.0.0/7"}, "between /8 and /28"},
		{"subnet too small", Config{Subnet: "10.0.0.0/29"}, "between /8 and /28"},
		{"subnet host bits", Config{Subnet: "10.88.1.0/16"}, "did you mean 10.88.0.0/16"},
		{"no state folder", Config{StateDir: "-"}, "state folder is not set"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			state := filepath.Join(t.TempDir(), "net")
			if tc.cfg.StateDir == "-" {
				tc.cfg.StateDir = ""
			} else {
				tc.cfg.StateDir = state
			}
			_, err := New(tc.cfg)
			if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%+v) = %v (kind %v), want an invalid error containing %q", tc.cfg, err, errkind.Of(err), tc.want)
			}
			if _, err := os.Stat(state); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("New(%+v) created %s despite rejecting the config", tc.cfg, state)
			}
		})
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		id   string
		ok   bool
	}{
		{"supervisor style", "hello-3-a1b2c3", true},
		{"digits", "42", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"65 characters", strings.Repeat("a", 65), false},
		{"empty", "", false},
		{"upper case", "Hello", false},
		{"slash", "a/b", false},
		{"parent", "..", false},
		{"leading dash", "-a", false},
		{"underscore", "a_b", false},
		{"dot", "a.b", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := validID(tc.id)
			if tc.ok && err != nil {
				t.Errorf("validID(%q) = %v, want nil", tc.id, err)
			}
			if !tc.ok && !errkind.Is(err, errkind.Invalid) {
				t.Errorf("validID(%q) = %v, want an invalid error", tc.id, err)
			}
		})
	}
}

func TestSetupTeardownRejectInvalidID(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 24, "")
	for _, id := range []string{"", "../escape", "UPPER", strings.Repeat("x", 65)} {
		if _, err := tn.Setup(context.Background(), id); !errkind.Is(err, errkind.Invalid) {
			t.Errorf("Setup(%q) = %v, want an invalid error", id, err)
		}
		if err := tn.Teardown(context.Background(), id); !errkind.Is(err, errkind.Invalid) {
			t.Errorf("Teardown(%q) = %v, want an invalid error", id, err)
		}
	}
	if ids, err := tn.List(); err != nil || len(ids) != 0 {
		t.Errorf("List() = %v, %v after rejected ids, want none", ids, err)
	}
}

func TestSetupAttachesToBridge(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 24, "")
	ctx := context.Background()
	hostNS := inode(t, "/proc/self/ns/net")
	gateway := tn.Subnet().Addr().Next()

	atts := map[string]Attachment{}
	for _, id := range []string{"web-1-aaaaaa", "web-1-bbbbbb"} {
		att, err := tn.Setup(ctx, id)
		if err != nil {
			t.Fatalf("Setup(%s): %v", id, err)
		}
		atts[id] = att
		if !tn.Subnet().Contains(att.IP) || att.IP == gateway {
			t.Errorf("Setup(%s).IP = %s, want a sandbox address in %s", id, att.IP, tn.Subnet())
		}
		if att.Gateway != gateway {
			t.Errorf("Setup(%s).Gateway = %s, want %s", id, att.Gateway, gateway)
		}
		if att.NetNS != filepath.Join(tn.state, "ns", id) {
			t.Errorf("Setup(%s).NetNS = %s, want it under %s", id, att.NetNS, filepath.Join(tn.state, "ns"))
		}
		if got := nsType(t, att.NetNS); got != unix.CLONE_NEWNET {
			t.Errorf("namespace type of %s = %#x, want CLONE_NEWNET", att.NetNS, got)
		}
		if inode(t, att.NetNS) == hostNS {
			t.Errorf("%s is the host's network namespace", att.NetNS)
		}
		if n := mountsAt(t, att.NetNS); n != 1 {
			t.Errorf("%s is mounted %d times, want once", att.NetNS, n)
		}
		if _, err := os.Stat(tn.leaseFile(att.IP)); err != nil {
			t.Errorf("lease of %s: %v", att.IP, err)
		}
	}
	a, b := atts["web-1-aaaaaa"], atts["web-1-bbbbbb"]
	if a.IP == b.IP {
		t.Errorf("both sandboxes got %s", a.IP)
	}
	if inode(t, a.NetNS) == inode(t, b.NetNS) {
		t.Errorf("both sandboxes share a namespace")
	}
	if ids, err := tn.List(); err != nil || !slices.Equal(ids, []string{"web-1-aaaaaa", "web-1-bbbbbb"}) {
		t.Errorf("List() = %v, %v, want both sandboxes", ids, err)
	}

	t.Run("interfaces inside", func(t *testing.T) {
		var lo, eth0 *net.Interface
		var addrs []net.Addr
		var err error
		inNS(t, a.NetNS, func() {
			if lo, err = net.InterfaceByName("lo"); err != nil {
				return
			}
			if eth0, err = net.InterfaceByName("eth0"); err != nil {
				return
			}
			addrs, err = eth0.Addrs()
		})
		if err != nil {
			t.Fatalf("reading interfaces in the sandbox: %v", err)
		}
		if lo.Flags&net.FlagUp == 0 {
			t.Errorf("lo in the sandbox is down: %v", lo.Flags)
		}
		if eth0.Flags&net.FlagUp == 0 {
			t.Errorf("eth0 in the sandbox is down: %v", eth0.Flags)
		}
		want := netip.PrefixFrom(a.IP, tn.Subnet().Bits()).String()
		if !slices.ContainsFunc(addrs, func(x net.Addr) bool { return x.String() == want }) {
			t.Errorf("eth0 addresses = %v, want %s", addrs, want)
		}
	})

	t.Run("host reaches a listener in the sandbox", func(t *testing.T) {
		var ln net.Listener
		var err error
		inNS(t, a.NetNS, func() { ln, err = net.Listen("tcp", netip.AddrPortFrom(a.IP, 0).String()) })
		if err != nil {
			t.Fatalf("listening in the sandbox: %v", err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = io.Copy(c, c) // echo
		}()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatalf("dialling %s from the host: %v", ln.Addr(), err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo from the sandbox = %q, %v, want ping", buf, err)
		}
	})

	t.Run("listener inside is not in the host namespace", func(t *testing.T) {
		var ln net.Listener
		var err error
		inNS(t, a.NetNS, func() { ln, err = net.Listen("tcp", "127.0.0.1:0") })
		if err != nil {
			t.Fatalf("listening on lo in the sandbox: %v", err)
		}
		defer ln.Close()
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("dialled the sandbox's loopback listener %s from the host", ln.Addr())
		}
	})

	t.Run("setup of a live id conflicts", func(t *testing.T) {
		_, err := tn.Setup(ctx, "web-1-bbbbbb")
		if !errkind.Is(err, errkind.Conflict) {
			t.Fatalf("second Setup(web-1-bbbbbb) = %v, want a conflict", err)
		}
		if !isNS(b.NetNS) {
			t.Errorf("a conflicting Setup broke the existing namespace %s", b.NetNS)
		}
	})

	t.Run("teardown", func(t *testing.T) {
		if err := tn.Teardown(ctx, "web-1-aaaaaa"); err != nil {
			t.Fatalf("Teardown: %v", err)
		}
		if _, err := os.Stat(a.NetNS); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("namespace file after Teardown: %v, want it gone", err)
		}
		if n := mountsAt(t, a.NetNS); n != 0 {
			t.Errorf("%s still mounted %d times after Teardown", a.NetNS, n)
		}
		if _, err := os.Stat(tn.leaseFile(a.IP)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("lease of %s after Teardown: %v, want it released", a.IP, err)
		}
		if _, err := os.Stat(tn.leaseFile(b.IP)); err != nil {
			t.Errorf("lease of the other sandbox %s: %v", b.IP, err)
		}
		if err := tn.Teardown(ctx, "web-1-aaaaaa"); err != nil {
			t.Errorf("second Teardown = %v, want nil", err)
		}
		if err := tn.Teardown(ctx, "never-set-up"); err != nil {
			t.Errorf("Teardown of an unknown id = %v, want nil", err)
		}
		if ids, err := tn.List(); err != nil || !slices.Equal(ids, []string{"web-1-bbbbbb"}) {
			t.Errorf("List() = %v, %v, want [web-1-bbbbbb]", ids, err)
		}
		again, err := tn.Setup(ctx, "web-1-aaaaaa")
		if err != nil {
			t.Fatalf("Setup after Teardown: %v", err)
		}
		if again.IP == b.IP || !tn.Subnet().Contains(again.IP) {
			t.Errorf("Setup after Teardown got %s, want a free address in %s", again.IP, tn.Subnet())
		}
	})
}

// A namespace file that lost its mount (as after a reboot) is still listed,
// and Teardown releases its lease without a namespace.
func TestTeardownWithoutNamespace(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 24, "")
	ctx := context.Background()
	att, err := tn.Setup(ctx, "orphan")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if err := unix.Unmount(att.NetNS, unix.MNT_DETACH); err != nil {
		t.Fatalf("unmounting %s: %v", att.NetNS, err)
	}
	if ids, err := tn.List(); err != nil || !slices.Equal(ids, []string{"orphan"}) {
		t.Errorf("List() = %v, %v, want [orphan]", ids, err)
	}
	if err := tn.Teardown(ctx, "orphan"); err != nil {
		t.Fatalf("Teardown of a sandbox whose namespace is gone: %v", err)
	}
	if _, err := os.Stat(tn.leaseFile(att.IP)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lease of %s after Teardown: %v, want it released", att.IP, err)
	}
	if ids, err := tn.List(); err != nil || len(ids) != 0 {
		t.Errorf("List() = %v, %v, want none", ids, err)
	}
}

// A /28 holds 13 sandboxes (the gateway takes one address): set them up at
// once, see the 14th refused cleanly, tear them down at once.
func TestConcurrentSetupUntilExhausted(t *testing.T) {
	t.Parallel()
	tn := newTestNet(t, 28, "")
	ctx := context.Background()
	const capacity = 13
	ids := make([]string, capacity)
	atts := make([]Attachment, capacity)
	errs := make([]error, capacity)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = fmt.Sprintf("fill-%02d", i)
		wg.Go(func() { atts[i], errs[i] = tn.Setup(ctx, ids[i]) })
	}
	wg.Wait()
	seen := map[netip.Addr]string{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Setup(%s): %v", ids[i], err)
		}
		if other, dup := seen[atts[i].IP]; dup {
			t.Errorf("%s and %s both got %s", ids[i], other, atts[i].IP)
		}
		seen[atts[i].IP] = ids[i]
	}

	_, err := tn.Setup(ctx, "one-too-many")
	if !errkind.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), "no IP addresses available") || !strings.Contains(err.Error(), `type="bridge"`) {
		t.Fatalf("Setup beyond the subnet = %v (kind %v), want unavailable naming the bridge plugin and its message", err, errkind.Of(err))
	}
	if errkind.HintOf(err) == "" {
		t.Errorf("exhaustion error has no hint")
	}
	if _, err := os.Stat(filepath.Join(tn.state, "ns", "one-too-many")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed Setup left its namespace file: %v", err)
	}
	if got, err := tn.List(); err != nil || len(got) != capacity {
		t.Errorf("List() = %d ids, %v, want %d", len(got), err, capacity)
	}
	if got := bridgePorts(t, tn.Bridge()); got != capacity {
		t.Errorf("bridge %s has %d ports, want %d", tn.Bridge(), got, capacity)
	}

	for i := range ids {
		wg.Go(func() { errs[i] = tn.Teardown(ctx, ids[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Teardown(%s): %v", ids[i], err)
		}
		if _, err := os.Stat(tn.leaseFile(atts[i].IP)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("lease of %s after Teardown: %v", atts[i].IP, err)
		}
	}
	if got, err := tn.List(); err != nil || len(got) != 0 {
		t.Errorf("List() = %v, %v after tearing all down, want none", got, err)
	}
	if got := bridgePorts(t, tn.Bridge()); got != 0 {
		t.Errorf("bridge %s has %d ports after tearing all down, want none", tn.Bridge(), got)
	}
}

// When a plugin fails, the error names it with its message and Setup leaves
// nothing behind.
func TestSetupFailureUndoes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("bridge name taken by another interface", func(t *testing.T) {
		t.Parallel()
		tn := newTestNet(t, 24, "")
		// A veth pair (dummy interfaces need a module this kernel may lack);
		// the test's clean-up deletes it with the bridge name.
		if out, err := run("ip", "link", "add", tn.Bridge(), "type", "veth", "peer", "name", tn.Bridge()+"p"); err != nil {
			t.Fatalf("creating veth %s: %v: %s", tn.Bridge(), err, out)
		}
		_, err := tn.Setup(ctx, "victim")
		if err == nil || !strings.Contains(err.Error(), `type="bridge"`) || !strings.Contains(err.Error(), "not a bridge") {
			t.Fatalf("Setup with a veth in the bridge's place = %v, want the bridge plugin's complaint", err)
		}
		if _, err := os.Stat(filepath.Join(tn.state, "ns", "victim")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("failed Setup left its namespace file: %v", err)
		}
		if n := mountsAt(t, filepath.Join(tn.state, "ns", "victim")); n != 0 {
			t.Errorf("failed Setup left %d mounts", n)
		}
		leases, _ := os.ReadDir(filepath.Join(tn.state, "ipam", "noops-"+tn.Bridge()))
		for _, l := range leases {
			if _, err := netip.ParseAddr(l.Name()); err == nil {
				t.Errorf("failed Setup left lease %s", l.Name())
			}
		}
	})

	t.Run("plugins missing", func(t *testing.T) {
		t.Parallel()
		need.Root(t)
		empty := t.TempDir()
		state := filepath.Join(t.TempDir(), "net")
		n, err := New(Config{Bridge: fmt.Sprintf("nn%06d", rand.IntN(1_000_000)), Subnet: "10.127.0.0/24", PluginDirs: []string{empty}, StateDir: state})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { _ = unix.Unmount(n.nsDir, unix.MNT_DETACH) })
		_, err = n.Setup(ctx, "lonely")
		if !errkind.Is(err, errkind.Unavailable) || !strings.Contains(errkind.HintOf(err), "make setup") || !strings.Contains(err.Error(), "bridge") {
			t.Fatalf("Setup without plugins = %v (kind %v, hint %q), want unavailable with the setup hint", err, errkind.Of(err), errkind.HintOf(err))
		}
		if ids, err := n.List(); err != nil || len(ids) != 0 {
			t.Errorf("List() = %v, %v after a failed Setup, want none", ids, err)
		}
	})
}

// With a shared parent mount, as systemd sets up /, a namespace file is
// mounted exactly once and its unmount leaves nothing behind.
func TestSharedParentMount(t *testing.T) {
	t.Parallel()
	need.Root(t)
	parent := t.TempDir()
	for _, step := range []struct {
		src   string
		flags uintptr
	}{{parent, unix.MS_BIND}, {"", unix.MS_PRIVATE}, {"", unix.MS_SHARED}} {
		if err := unix.Mount(step.src, parent, "", step.flags, ""); err != nil {
			t.Fatalf("preparing shared mount %s: %v", parent, err)
		}
	}
	t.Cleanup(func() {
		if err := unix.Unmount(parent, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", parent, err)
		}
	})
	tn := newTestNet(t, 24, filepath.Join(parent, "net"))
	att, err := tn.Setup(context.Background(), "shared")
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if n := mountsAt(t, att.NetNS); n != 1 {
		t.Errorf("%s is mounted %d times under a shared parent, want once", att.NetNS, n)
	}
	if err := tn.Teardown(context.Background(), "shared"); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if n := mountsAt(t, att.NetNS); n != 0 {
		t.Errorf("%s still mounted %d times after Teardown", att.NetNS, n)
	}

	// A second Network on the same state folder (a restarted server) reuses
	// the mount point rather than stacking another.
	if _, err := New(Config{Bridge: tn.Bridge(), Subnet: tn.Subnet().String(), PluginDirs: tn.dirs, StateDir: tn.state}); err != nil {
		t.Fatalf("New on an existing state folder: %v", err)
	}
	if n := mountsAt(t, tn.nsDir); n != 1 {
		t.Errorf("%s is mounted %d times after a second New, want once", tn.nsDir, n)
	}
}
