package runc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"noops/internal/runtime"
	"noops/internal/runtime/runc"
	"noops/internal/runtime/runtimetest"
	"noops/internal/testenv/need"
)

// The test binary plays two more roles, chosen by its first argument,
// before any test runs (the helper-process pattern):
//
//	noops-test-shim ARGS...   the shim: runc.RunShim(ARGS), as `noops shim` does
//	noops-test-server ROOT CGROUP SPEC
//	                          a server that starts the sandbox SPEC (JSON)
//	                          with a driver on ROOT, prints its pid and then
//	                          waits to be killed, to test that sandboxes
//	                          outlive their server
//
// So the tests pass Config.Shim = {this binary, "noops-test-shim"} and
// need no noops binary.
const (
	shimRole   = "noops-test-shim"
	serverRole = "noops-test-server"
)

// cgroupParent is where this test process's sandboxes get their cgroups;
// TestMain removes it at the end.
var cgroupParent = fmt.Sprintf("/noops-test-%d", os.Getpid())

func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case shimRole:
			if err := runc.RunShim(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		case serverRole:
			os.Exit(server(os.Args[2:]))
		}
	}
	// Shims are this binary; under the race detector each would sleep a
	// second before exiting (GORACE atexit_sleep_ms), delaying every Wait.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
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

// server is the serverRole: start a sandbox, say its pid, wait for death.
func server(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: noops-test-server ROOT CGROUP SPEC")
		return 2
	}
	var spec runtime.Spec
	if err := json.Unmarshal([]byte(args[2]), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	d, err := runc.New(runc.Config{Root: args[0], CgroupParent: args[1], Shim: shimCommand()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	st, err := d.Start(context.Background(), spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(st.Pid)
	select {} // until killed
}

func shimCommand() []string {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return []string{exe, shimRole}
}

// newDriver returns a driver on a fresh root, after checking the machine
// can run sandboxes. When the test ends it checks that nothing is left
// mounted under the root and no container is left in runc's state, and
// removes what is.
func newDriver(t *testing.T) (*runc.Driver, string) {
	t.Helper()
	need.Root(t)
	need.Program(t, "runc")
	root := t.TempDir()
	d, err := runc.New(runc.Config{Root: root, CgroupParent: cgroupParent, Shim: shimCommand()})
	if err != nil {
		t.Fatalf("runc.New: %v", err)
	}
	t.Cleanup(func() { checkClean(t, d, root) })
	return d, root
}

func checkClean(t *testing.T, d *runc.Driver, root string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sts, err := d.List(ctx)
	if err != nil {
		t.Errorf("cleanup: List: %v", err)
	}
	for _, st := range sts {
		t.Errorf("cleanup: sandbox %s (%s) left behind; deleting it", st.ID, st.Status)
		if err := d.Delete(ctx, st.ID); err != nil {
			t.Errorf("cleanup: Delete(%s): %v", st.ID, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, ".runc")); len(ents) > 0 {
		t.Errorf("cleanup: runc still has %d containers", len(ents))
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

// removeCgroups removes the cgroup folder named parent in every hierarchy.
// runc deletes each sandbox's own cgroup; what remains must be empty.
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
