package buildbox_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"noops/internal/buildbox"
	"noops/internal/netns"
	"noops/internal/runtime/runc"
	"noops/internal/runtime/runtimetest"
	"noops/internal/testenv/need"
)

// cgroupParent is where this test process's build sandboxes get their
// cgroups; TestMain removes it at the end.
var cgroupParent = fmt.Sprintf("/noops-buildbox-test-%d", os.Getpid())

func TestMain(m *testing.M) {
	code := m.Run()
	runtimetest.Cleanup()
	if os.Geteuid() == 0 {
		if err := removeCgroups(cgroupParent); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// removeCgroups removes the cgroup folder named parent in every hierarchy;
// runc removed each sandbox's own, so it must be empty.
func removeCgroups(parent string) error {
	dirs := []string{filepath.Join("/sys/fs/cgroup", parent)}
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hs {
		dirs = append(dirs, filepath.Join(h, parent))
	}
	var errs []string
	for _, d := range dirs {
		if err := unix.Rmdir(d); err != nil && err != unix.ENOENT && err != unix.ENOTDIR {
			errs = append(errs, fmt.Sprintf("%s: %v", d, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("removing test cgroups: %s", strings.Join(errs, "; "))
	}
	return nil
}

// fixture is a Box on a fresh driver root and a build network of its own
// (a unique bridge and a random 10.x.y.0/24), with the test image.
type fixture struct {
	box     *buildbox.Box
	driver  *runc.Driver
	net     *netns.Network
	layers  []string
	gateway netip.Addr // the bridge's address, on this machine
}

// newFixture needs a machine that can run sandboxes. When the test ends it
// checks that no sandbox, mount, runc container or network namespace is
// left, and removes the bridge. change adjusts the Config before New.
func newFixture(t *testing.T, change func(*buildbox.Config)) fixture {
	t.Helper()
	need.Sandbox(t)
	need.Program(t, "iptables") // the bridge plugin masquerades with it
	root := t.TempDir()
	// Run needs no shim; the driver insists on a command all the same.
	d, err := runc.New(runc.Config{Root: root, CgroupParent: cgroupParent, Shim: []string{"/nonexistent/noops-shim"}})
	if err != nil {
		t.Fatalf("runc.New: %v", err)
	}
	n := newNetwork(t, true)
	t.Cleanup(func() { checkClean(t, d, n, root) })
	cfg := buildbox.Config{Driver: d, Network: n}
	if change != nil {
		change(&cfg)
	}
	return fixture{box: buildbox.New(cfg), driver: d, net: n, layers: runtimetest.Image(t), gateway: n.Subnet().Addr().Next()}
}

// newNetwork makes a network on a unique bridge and a random 10.x.y.0/24
// (x in 125-149, the range of this package's tests; see netns's newTestNet),
// with its bridge and gateway address already there (they appear with the
// first attachment), so that tests can listen on the gateway. The caller
// closes it.
func newNetwork(t *testing.T, ipMasq bool) *netns.Network {
	t.Helper()
	bridge := fmt.Sprintf("nb%06d", rand.IntN(1_000_000))
	subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(125 + rand.IntN(25)), byte(rand.IntN(256)), 0}), 24)
	n, err := netns.New(netns.Config{Bridge: bridge, Subnet: subnet.String(), PluginDirs: []string{need.CNI(t)}, StateDir: filepath.Join(t.TempDir(), "net"), IPMasq: ipMasq})
	if err != nil {
		t.Fatalf("netns.New: %v", err)
	}
	if _, err := n.Setup(context.Background(), "warm-up"); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	if err := n.Teardown(context.Background(), "warm-up"); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	return n
}

func checkClean(t *testing.T, d *runc.Driver, n *netns.Network, root string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if sts, err := d.List(ctx); err != nil || len(sts) > 0 {
		t.Errorf("cleanup: sandboxes left: %+v, %v", sts, err)
		for _, st := range sts {
			_ = d.Delete(ctx, st.ID)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, ".runc")); len(ents) > 0 {
		t.Errorf("cleanup: runc still has %d containers", len(ents))
	}
	if ids, err := n.List(); err != nil || len(ids) > 0 {
		t.Errorf("cleanup: network namespaces left: %v, %v", ids, err)
		for _, id := range ids {
			_ = n.Teardown(ctx, id)
		}
	}
	if err := n.Close(ctx); err != nil {
		t.Errorf("cleanup: closing the network: %v", err)
	}
	for _, m := range mountsUnder(t, root) {
		t.Errorf("cleanup: %s is still mounted; detaching it", m)
		_ = unix.Unmount(m, unix.MNT_DETACH)
	}
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 4 && (fs[4] == dir || strings.HasPrefix(fs[4], dir+"/")) {
			out = append(out, fs[4])
		}
	}
	return out
}

// listen serves "hello from the host" on a TCP port of addr, on this
// machine, and returns the address and the addresses of the peers served.
func listen(t *testing.T, addr netip.Addr) (netip.AddrPort, <-chan netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	peers := make(chan netip.AddrPort, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
			fmt.Fprintln(c, "hello from the host")
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort(), peers
}

// buffer is an io.Writer safe to read while a step writes to it; wrote is
// signalled after every write.
type buffer struct {
	mu    sync.Mutex
	b     strings.Builder
	wrote chan struct{}
}

func newBuffer() *buffer { return &buffer{wrote: make(chan struct{}, 1)} }

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.b.Write(p)
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
