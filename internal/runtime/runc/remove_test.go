package runc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"noops/internal/runtime"
	"noops/internal/runtime/runtimetest"
	"noops/internal/testenv/need"
)

// TestRemoveAfterRuncKilled: a `runc run` killed at any point of making
// the container (as a cancelled Run kills one that does not end) may
// leave runc's state without state.json, its cgroup and its `runc init`;
// remove leaves none of them.
func TestRemoveAfterRuncKilled(t *testing.T) {
	need.Root(t)
	need.Program(t, "runc")
	parent := fmt.Sprintf("/noops-test-remove-%d", os.Getpid())
	d, err := New(Config{Root: t.TempDir(), CgroupParent: parent, Shim: []string{"unused"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dirs, _ := cgroupDirs(parent)
		for _, dir := range dirs {
			if err := unix.Rmdir(dir); err != nil {
				t.Errorf("cleanup: removing cgroup %s: %v", dir, err)
			}
		}
	})
	layers := runtimetest.Image(t)
	// From before runc has made anything to a running process: where each
	// delay lands depends on the machine, but every one must be cleaned.
	for delay := time.Duration(0); delay <= 100*time.Millisecond; delay += 10 * time.Millisecond {
		t.Run(delay.String(), func(t *testing.T) {
			id := fmt.Sprintf("rm-%d-%d", os.Getpid(), delay/time.Millisecond)
			spec := runtime.Spec{ID: id, Layers: layers, Args: []string{runtimetest.ProgramPath, "ignore-term"}, Memory: 64 << 20}
			oci, err := d.ociSpec(spec)
			if err != nil {
				t.Fatal(err)
			}
			bundle, err := d.makeBundle(id)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.fillBundle(spec, bundle, oci, &sandboxRecord{ID: id}); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(d.runc, "--root", d.runcRoot, "run", "--keep", "--bundle", bundle, id)
			cmd.Dir = bundle
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(delay)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := d.remove(ctx, id); err != nil {
				t.Fatalf("remove: %v", err)
			}
			for _, p := range []string{bundle, filepath.Join(d.runcRoot, id)} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s left after remove", p)
				}
			}
			if dirs, err := cgroupDirs(path.Join(parent, id)); err != nil || len(dirs) > 0 {
				t.Errorf("cgroups left after remove: %v (%v)", dirs, err)
			}
		})
	}
}
