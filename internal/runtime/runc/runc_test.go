package runc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/runtime"
	"noops/internal/runtime/runc"
	"noops/internal/runtime/runtimetest"
	"noops/internal/testenv/need"
)

func TestConformance(t *testing.T) {
	need.Root(t)
	need.Program(t, "runc")
	layers := runtimetest.Image(t)
	runtimetest.Run(t, func(t *testing.T) (runtime.Driver, runtimetest.Fixture) {
		d, root := newDriver(t)
		return d, runtimetest.Fixture{
			Program: runtimetest.ProgramPath,
			Layers:  layers,
			Restart: func(t *testing.T) runtime.Driver {
				d2, err := runc.New(runc.Config{Root: root, CgroupParent: cgroupParent, Shim: shimCommand()})
				if err != nil {
					t.Fatalf("runc.New on the same root: %v", err)
				}
				return d2
			},
		}
	})
}

// sandbox starts a sandbox of the test image running args and stops and
// deletes it when t ends.
func sandbox(t *testing.T, d *runc.Driver, layers []string, args ...string) (runtime.Spec, runtime.State) {
	t.Helper()
	id := fmt.Sprintf("rc-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
	logs := t.TempDir()
	sp := runtime.Spec{
		ID:     id,
		Layers: layers,
		Args:   append([]string{runtimetest.ProgramPath}, args...),
		Log:    filepath.Join(logs, id+".log"),
		Memory: 64 << 20,
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = d.Stop(ctx, id, 0)
		if err := d.Delete(ctx, id); err != nil {
			t.Errorf("cleanup: Delete(%s): %v", id, err)
		}
	})
	st, err := d.Start(context.Background(), sp)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return sp, st
}

// logLines returns the "line"s of a sandbox log.
func logLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct{ Line string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, rec.Line)
	}
	return out
}

func waitLine(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log %s never showed %q", path, want)
}

// procStatus reads the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		m[k] = strings.TrimSpace(v)
	}
	return m
}

// TestHardening looks at a running sandbox's process from the host.
func TestHardening(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	sp, st := sandbox(t, d, layers, "sleep")
	waitLine(t, sp.Log, "ready")

	status := procStatus(t, st.Pid)
	for _, tc := range []struct{ field, want string }{
		{"Seccomp", "2"},
		{"NoNewPrivs", "1"},
		{"CapInh", "0000000000000000"},
		{"CapPrm", "0000000000000000"},
		{"CapEff", "0000000000000000"},
		{"CapBnd", "0000000000000000"},
		{"CapAmb", "0000000000000000"},
		{"Uid", "65532\t65532\t65532\t65532"},
		{"Gid", "65532\t65532\t65532\t65532"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			if got := status[tc.field]; got != tc.want {
				t.Errorf("/proc/%d/status %s = %q, want %q", st.Pid, tc.field, got, tc.want)
			}
		})
	}

	t.Run("read-only root", func(t *testing.T) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", st.Pid))
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]string{}
		for _, l := range strings.Split(string(b), "\n") {
			fs := strings.Fields(l)
			if len(fs) > 5 {
				found[fs[4]] = fs[5]
			}
		}
		if opts := found["/"]; !strings.Contains(","+opts+",", ",ro,") {
			t.Errorf("root mounted %q, want ro", opts)
		}
		if opts := found["/tmp"]; !strings.Contains(","+opts+",", ",rw,") {
			t.Errorf("/tmp mounted %q, want rw", opts)
		}
	})

	t.Run("own network namespace", func(t *testing.T) {
		mine, err := os.Readlink("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", st.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if mine == theirs {
			t.Errorf("sandbox shares the host's network namespace %s", mine)
		}
	})

	t.Run("memory limit", func(t *testing.T) {
		if got := cgroupValue(t, st.Pid, "memory", "memory.limit_in_bytes", "memory.max"); got != sp.Memory {
			t.Errorf("memory limit of the sandbox's cgroup = %d, want %d", got, sp.Memory)
		}
	})
	t.Run("pids limit", func(t *testing.T) {
		if got := cgroupValue(t, st.Pid, "pids", "pids.max", "pids.max"); got != runc.DefaultPids {
			t.Errorf("pids limit of the sandbox's cgroup = %d, want %d", got, runc.DefaultPids)
		}
	})
}

// cgroupValue reads a number from pid's cgroup of controller: file v1 on
// cgroup v1, file v2 on the unified hierarchy.
func cgroupValue(t *testing.T, pid int, controller, v1, v2 string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file string
		switch {
		case strings.Contains(","+parts[1]+",", ","+controller+","):
			file = filepath.Join("/sys/fs/cgroup", controller, parts[2], v1)
		case parts[0] == "0" && parts[1] == "":
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
				continue // a hybrid's unified tree has no controllers
			}
			file = filepath.Join("/sys/fs/cgroup", parts[2], v2)
		default:
			continue
		}
		v, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		if err != nil {
			t.Fatalf("%s holds %q", file, v)
		}
		return n
	}
	t.Fatalf("no %s cgroup for pid %d in %s", controller, pid, b)
	return 0
}

// TestProbe looks at the sandbox from inside: the layers are stacked top
// first, / is read-only, /tmp is writable, the user is nonroot.
func TestProbe(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	sp, _ := sandbox(t, d, layers, "probe")
	if e, err := d.Wait(context.Background(), sp.ID); err != nil || e.Code != 0 {
		t.Fatalf("Wait = %+v, %v; want exit 0", e, err)
	}
	lines := strings.Join(logLines(t, sp.Log), "\n")
	for _, want := range []string{
		"layer: top",
		"bottom: bottom",
		"write /tmp: ok",
		"write /: denied (open /probe: read-only file system)",
		"uid: 65532 gid: 65532",
		"hostname: " + sp.ID,
		"status Seccomp:\t2",
		"status NoNewPrivs:\t1",
		"status CapBnd:\t0000000000000000",
	} {
		if !strings.Contains(lines, want) {
			t.Errorf("probe output lacks %q:\n%s", want, lines)
		}
	}
}

// TestSurvivesServerDeath starts a sandbox from another process, kills
// that process with SIGKILL, and adopts the sandbox with a new driver.
func TestSurvivesServerDeath(t *testing.T) {
	d, root := newDriver(t)
	layers := runtimetest.Image(t)
	id := fmt.Sprintf("srv-%d", os.Getpid())
	sp := runtime.Spec{ID: id, Layers: layers, Args: []string{runtimetest.ProgramPath, "sleep"}, Log: filepath.Join(t.TempDir(), id+".log")}
	t.Cleanup(func() { _ = d.Delete(context.Background(), id) })
	b, _ := json.Marshal(sp)
	exe, _ := os.Executable()
	srv := exec.Command(exe, serverRole, root, cgroupParent, string(b))
	srv.Stderr = os.Stderr
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		srv.Process.Kill()
		srv.Wait()
		t.Fatalf("the server did not report a pid: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	waitLine(t, sp.Log, "ready")

	st, err := d.State(context.Background(), id)
	if err != nil || st.Status != runtime.Running || st.Pid != pid {
		t.Fatalf("State after the server died = %+v, %v; want Running with pid %d", st, err, pid)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Stop(ctx, id, 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	e, err := d.Wait(ctx, id)
	if err != nil || e.Code != 0 {
		t.Errorf("Wait = %+v, %v; want exit 0 (the program exits on SIGTERM)", e, err)
	}
	if !strings.Contains(strings.Join(logLines(t, sp.Log), "\n"), "got SIGTERM") {
		t.Errorf("the log lost the output after the server died: %q", logLines(t, sp.Log))
	}
	if err := d.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

// TestShimKilled: when the shim dies, Wait still sees the end of the
// process and says honestly that its status is unknown.
func TestShimKilled(t *testing.T) {
	d, root := newDriver(t)
	layers := runtimetest.Image(t)
	sp, st := sandbox(t, d, layers, "sleep")
	waitLine(t, sp.Log, "ready")
	b, err := os.ReadFile(filepath.Join(root, sp.ID, "shim.pid"))
	if err != nil {
		t.Fatal(err)
	}
	shim, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Kill(shim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	done := make(chan runtime.Exit, 1)
	go func() {
		e, err := d.Wait(context.Background(), sp.ID)
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		done <- e
	}()
	select {
	case e := <-done:
		t.Fatalf("Wait returned %+v while the process still runs", e)
	case <-time.After(300 * time.Millisecond):
	}
	if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-done:
		if e.Code != -1 || e.Signal != "unknown" {
			t.Errorf("Wait = %+v, want code -1, signal unknown", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return after the process was killed")
	}
}

// TestRuncErrors: runc's own message reaches the caller of Start.
func TestRuncErrors(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	tests := []struct {
		name string
		args []string
		cwd  string
		kind errkind.Kind
		want string
	}{
		{name: "missing program", args: []string{"/bin/nope"}, kind: errkind.Invalid, want: "/bin/nope"},
		{name: "program is a folder", args: []string{"/etc"}, kind: errkind.Invalid, want: "/etc"},
		{name: "missing working folder", args: []string{runtimetest.ProgramPath, "exit", "0"}, cwd: "/nowhere", kind: errkind.Invalid, want: "nowhere"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("err-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
			sp := runtime.Spec{ID: id, Layers: layers, Args: tc.args, Cwd: tc.cwd, Log: filepath.Join(t.TempDir(), "x.log")}
			_, err := d.Start(context.Background(), sp)
			if err == nil {
				d.Delete(context.Background(), id)
				t.Fatal("Start succeeded")
			}
			if errkind.Of(err) != tc.kind || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start = %v (kind %v), want kind %v mentioning %q", err, errkind.Of(err), tc.kind, tc.want)
			}
		})
	}
}

// TestInvalidLayers: specs this driver refuses before touching anything.
func TestInvalidLayers(t *testing.T) {
	d, root := newDriver(t)
	layers := runtimetest.Image(t)
	tests := []struct {
		name   string
		change func(*runtime.Spec)
	}{
		{"no layers", func(s *runtime.Spec) { s.Layers = nil }},
		{"missing layer", func(s *runtime.Spec) { s.Layers = []string{"/no/such/layer"} }},
		{"relative layer", func(s *runtime.Spec) { s.Layers = []string{"layer"} }},
		{"layer with colon", func(s *runtime.Spec) { s.Layers = []string{layers[0] + ":x"} }},
		{"missing netns", func(s *runtime.Spec) { s.NetNS = "/run/netns/none-such" }},
		{"missing log folder", func(s *runtime.Spec) { s.Log = "/no/such/folder/x.log" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := runtime.Spec{ID: "inv", Layers: layers, Args: []string{runtimetest.ProgramPath}, Log: filepath.Join(t.TempDir(), "x.log")}
			tc.change(&sp)
			if _, err := d.Start(context.Background(), sp); !errkind.Is(err, errkind.Invalid) {
				d.Delete(context.Background(), sp.ID)
				t.Errorf("Start = %v, want Invalid", err)
			}
			if _, err := os.Stat(filepath.Join(root, "inv")); !os.IsNotExist(err) {
				t.Errorf("a refused Start left its bundle: %v", err)
			}
		})
	}
}

// TestStartLatency logs how long Start takes to report Running; the
// numbers are for people (bench/ holds the comparisons).
func TestStartLatency(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	var took []time.Duration
	for range 5 {
		t0 := time.Now()
		sandbox(t, d, layers, "sleep")
		took = append(took, time.Since(t0))
	}
	t.Logf("Start to Running: %v", took)
}

// TestOOMKilled: a process over its memory limit is killed, and the exit
// says why.
func TestOOMKilled(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	id := fmt.Sprintf("oom-%d", os.Getpid())
	sp := runtime.Spec{ID: id, Layers: layers, Args: []string{runtimetest.ProgramPath, "hog"}, Memory: 32 << 20, Log: filepath.Join(t.TempDir(), id+".log")}
	t.Cleanup(func() { _ = d.Delete(context.Background(), id) })
	if _, err := d.Start(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := d.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !e.OOMKilled || e.Signal != "SIGKILL" {
		t.Errorf("Wait = %+v, want killed by SIGKILL for running out of memory", e)
	}
}

// TestStartMounts: a started sandbox gets its spec's bind mounts too (the
// supervisor's app sandboxes have none).
func TestStartMounts(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	dir := t.TempDir()
	if err := os.Chown(dir, runc.DefaultUID, runc.DefaultUID); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("mnt-%d", os.Getpid())
	sp := runtime.Spec{
		ID:     id,
		Layers: layers,
		Args:   []string{runtimetest.ProgramPath, "write", "/data/out", "from a started sandbox"},
		Log:    filepath.Join(t.TempDir(), id+".log"),
		Mounts: []runtime.Mount{{Source: dir, Target: "/data"}},
	}
	t.Cleanup(func() { _ = d.Delete(context.Background(), id) })
	if _, err := d.Start(context.Background(), sp); err != nil {
		t.Fatalf("Start: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e, err := d.Wait(ctx, id); err != nil || e.Code != 0 {
		t.Fatalf("Wait = %+v, %v; want exit 0 (log %q)", e, err, logLines(t, sp.Log))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "out")); err != nil || string(b) != "from a started sandbox" {
		t.Errorf("the mounted folder holds %q, %v; want what the sandbox wrote", b, err)
	}
	if err := d.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}
