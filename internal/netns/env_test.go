package netns

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"noops/internal/testenv/need"
)

// testNet is a Network on a bridge and subnet of its own, removed with the test.
type testNet struct {
	*Network
	state string
}

// newTestNet needs root and the CNI plugins and builds a Network on a unique
// bridge with a random 10.x.y.z/bits subnet, x in 100-124: test packages
// run at once, and each keeps to its own range (buildbox 125-149, testenv
// 150-249, the default 88-89). stateDir "" means a temporary
// one. opts change the Config before New.
func newTestNet(t *testing.T, bits int, stateDir string, opts ...func(*Config)) testNet {
	t.Helper()
	need.Root(t)
	dir := need.CNI(t)
	if stateDir == "" {
		stateDir = filepath.Join(t.TempDir(), "net")
	}
	bridge := fmt.Sprintf("nn%06d", rand.IntN(1_000_000))
	subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + rand.IntN(25)), byte(rand.IntN(256)), byte(rand.IntN(256))}), bits).Masked()
	cfg := Config{Bridge: bridge, Subnet: subnet.String(), PluginDirs: []string{dir}, StateDir: stateDir}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ids, _ := n.List()
		for _, id := range ids {
			if err := n.Teardown(context.Background(), id); err != nil {
				t.Errorf("cleanup: Teardown(%s): %v", id, err)
			}
		}
		if out, err := exec.Command("ip", "link", "del", bridge).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
			t.Errorf("cleanup: ip link del %s: %v: %s", bridge, err, out)
		}
		if err := unix.Unmount(n.nsDir, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			t.Errorf("cleanup: unmounting %s: %v", n.nsDir, err)
		}
	})
	return testNet{Network: n, state: stateDir}
}

// run runs a command and returns its combined output.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// leaseFile is where host-local records that ip is taken.
func (tn testNet) leaseFile(ip netip.Addr) string {
	return filepath.Join(tn.state, "ipam", "noops-"+tn.bridge, ip.String())
}

// inNS runs f on a thread inside the namespace at path and returns to the
// host's namespace afterwards; a thread that cannot return is discarded.
func inNS(t *testing.T, path string, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		host, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer host.Close()
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering %s: %w", path, err)
			return
		}
		f()
		if err := unix.Setns(int(host.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("returning to the host namespace: %w", err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// mountsAt counts the entries of /proc/self/mountinfo mounted at path.
func mountsAt(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == path {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// nsType returns the namespace type (a CLONE_NEW* flag) of the file at path.
func nsType(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("opening namespace file: %v", err)
	}
	defer f.Close()
	typ, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		t.Fatalf("NS_GET_NSTYPE on %s: %v", path, err)
	}
	return typ
}

// inode returns the inode number of path.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// bridgePorts counts the interfaces attached to bridge.
func bridgePorts(t *testing.T, bridge string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	if err != nil {
		t.Fatalf("listing ports of %s: %v", bridge, err)
	}
	return len(ents)
}
