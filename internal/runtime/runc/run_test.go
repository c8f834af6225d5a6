package runc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/runtime"
	"noops/internal/runtime/runc"
	"noops/internal/runtime/runtimetest"
)

// buffer is an io.Writer safe to read while Run writes to it; wrote is
// signalled after every write.
type buffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
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

// runSpec is a foreground spec of the test image running testprog args.
func runSpec(layers []string, args ...string) runtime.Spec {
	return runtime.Spec{
		ID:     fmt.Sprintf("run-%d-%d", os.Getpid(), time.Now().UnixNano()%1e9),
		Layers: layers,
		Args:   append([]string{runtimetest.ProgramPath}, args...),
		Memory: 64 << 20,
	}
}

// checkGone fails unless nothing of sandbox id is left: no bundle, no
// runc container, no cgroup in any hierarchy, no runc command about it
// still running (one would write under root after Run returned).
func checkGone(t *testing.T, root, id string) {
	t.Helper()
	for _, p := range processesNaming(id) {
		t.Errorf("process %s still runs after Run", p)
	}
	for _, p := range []string{filepath.Join(root, id), filepath.Join(root, ".runc", id)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Run: %v", p, err)
		}
	}
	cgroups, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgroupParent, id))
	if unified, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", cgroupParent, id)); len(unified) > 0 {
		cgroups = append(cgroups, unified...)
	}
	for _, c := range cgroups {
		t.Errorf("cgroup %s left after Run", c)
	}
}

// processesNaming lists the processes with word in their command line,
// as "PID: ARGS".
func processesNaming(word string) []string {
	var out []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // ended
		}
		for _, arg := range strings.Split(string(b), "\x00") {
			if arg == word {
				pid := filepath.Base(filepath.Dir(f))
				out = append(out, pid+": "+strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")))
				break
			}
		}
	}
	return out
}

func TestRunExits(t *testing.T) {
	d, root := newDriver(t)
	layers := runtimetest.Image(t)
	tests := []struct {
		name   string
		args   []string
		memory int64
		want   runtime.Exit // At ignored
	}{
		{name: "exit 0", args: []string{"exit", "0"}, want: runtime.Exit{Code: 0}},
		{name: "exit 3", args: []string{"exit", "3"}, want: runtime.Exit{Code: 3}},
		{name: "out of memory", args: []string{"hog"}, memory: 32 << 20, want: runtime.Exit{Code: 137, Signal: "SIGKILL", OOMKilled: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := runSpec(layers, tc.args...)
			if tc.memory != 0 {
				sp.Memory = tc.memory
			}
			t0 := time.Now()
			got, err := d.Run(context.Background(), sp, nil, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if got.At.Before(t0) {
				t.Errorf("Run exit at %v, before the run began at %v", got.At, t0)
			}
			got.At = time.Time{}
			if got != tc.want {
				t.Errorf("Run(%v) = %+v, want %+v", tc.args, got, tc.want)
			}
			checkGone(t, root, sp.ID)
		})
	}
}

// TestRunStreamsOutput: the writers see the output while the process
// still runs, each stream on its own writer.
func TestRunStreamsOutput(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	stdout, stderr := newBuffer(), newBuffer()
	done := make(chan error, 1)
	go func() {
		_, err := d.Run(context.Background(), runSpec(layers, "pause", "300ms"), stdout, stderr)
		done <- err
	}()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(stdout.String(), "before") {
		select {
		case <-stdout.wrote:
		case err := <-done:
			t.Fatalf("Run returned (%v) before the writer saw the first line; stdout %q", err, stdout.String())
		case <-deadline:
			t.Fatalf("no first line after 30s; stdout %q", stdout.String())
		}
	}
	if out := stdout.String(); strings.Contains(out, "after") {
		t.Errorf("the first line came with the last one: %q", out)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := "hello stdout\nbefore\nafter\n"; stdout.String() != want {
		t.Errorf("stdout = %q, want %q", stdout.String(), want)
	}
	if want := "hello stderr\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

// TestRunOneWriter: one writer for both streams gets all of the output.
func TestRunOneWriter(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	var out bytes.Buffer // not safe for concurrent writes: Run must serialise
	if _, err := d.Run(context.Background(), runSpec(layers, "spam", "2000"), &out, &out); err != nil {
		t.Fatalf("Run: %v", err)
	}
	s := out.String()
	if !strings.Contains(s, "hello stderr\n") || !strings.Contains(s, "spam 001999") || strings.Count(s, "\n") != 2002 {
		t.Errorf("combined output has %d lines, want 2002 with stderr's and the last spam line", strings.Count(s, "\n"))
	}
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestRunFailingWriter: a writer that fails does not stall the sandbox,
// and its error is reported with the exit.
func TestRunFailingWriter(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exit, err := d.Run(ctx, runSpec(layers, "spam", "20000"), failingWriter{}, nil)
	if err == nil || !strings.Contains(err.Error(), "disk full") || ctx.Err() != nil {
		t.Errorf("Run with a failing writer = %v (ctx %v), want the writer's error", err, ctx.Err())
	}
	if exit.Code != 0 {
		t.Errorf("exit = %+v, want the process's exit 0 with the error", exit)
	}
}

// TestRunMounts: bind mounts are there, writable by the sandbox's user
// when the caller gave the folder to it, and refuse writes when read-only.
func TestRunMounts(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	rw, ro, nested := t.TempDir(), t.TempDir(), t.TempDir()
	for _, dir := range []string{rw, nested} {
		if err := os.Chown(dir, runc.DefaultUID, runc.DefaultUID); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "settings")
	if err := os.WriteFile(file, []byte("x\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	mounts := []runtime.Mount{
		{Source: nested, Target: "/workspace/out"}, // inside the next one: mounted after it
		{Source: rw, Target: "/workspace"},
		{Source: ro, Target: "/cache", ReadOnly: true},
		{Source: file, Target: "/etc/settings", ReadOnly: true},
	}
	tests := []struct {
		name     string
		path     string
		code     int
		want     string // in stdout
		hostFile string // where a write must land, "" when it must not
	}{
		{"read-write folder", "/workspace/made", 0, "write /workspace/made: ok", filepath.Join(rw, "made")},
		{"folder in a folder", "/workspace/out/made", 0, "write /workspace/out/made: ok", filepath.Join(nested, "made")},
		{"read-only folder", "/cache/made", 1, "read-only file system", ""},
		{"read-only file", "/etc/settings", 1, "read-only file system", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := runSpec(layers, "write", tc.path, "made in the sandbox")
			sp.Mounts = mounts
			out := newBuffer()
			exit, err := d.Run(context.Background(), sp, out, out)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if exit.Code != tc.code || !strings.Contains(out.String(), tc.want) {
				t.Errorf("write %s: exit %d, output %q; want exit %d and %q", tc.path, exit.Code, out.String(), tc.code, tc.want)
			}
			if tc.hostFile == "" {
				return
			}
			b, err := os.ReadFile(tc.hostFile)
			if err != nil || string(b) != "made in the sandbox" {
				t.Fatalf("host file %s = %q, %v; want what the sandbox wrote", tc.hostFile, b, err)
			}
			var st syscall.Stat_t
			if err := syscall.Stat(tc.hostFile, &st); err != nil || st.Uid != runc.DefaultUID || st.Gid != runc.DefaultUID {
				t.Errorf("host file %s owned by %d:%d (%v), want %d:%d", tc.hostFile, st.Uid, st.Gid, err, runc.DefaultUID, runc.DefaultUID)
			}
		})
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "x\n" {
		t.Errorf("read-only file mount now holds %q, %v", b, err)
	}
	if ents, _ := os.ReadDir(ro); len(ents) != 0 {
		t.Errorf("read-only folder mount got %d entries", len(ents))
	}
}

// TestRunHardening: a foreground sandbox is as hardened as a started one.
func TestRunHardening(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	sp := runSpec(layers, "probe")
	sp.Mounts = []runtime.Mount{{Source: t.TempDir(), Target: "/workspace", ReadOnly: true}}
	var out bytes.Buffer
	if exit, err := d.Run(context.Background(), sp, &out, nil); err != nil || exit.Code != 0 {
		t.Fatalf("Run = %+v, %v; want exit 0", exit, err)
	}
	for _, want := range []string{
		"layer: top",
		"write /tmp: ok",
		"write /: denied (open /probe: read-only file system)",
		"uid: 65532 gid: 65532",
		"hostname: " + sp.ID,
		"status Seccomp:\t2",
		"status NoNewPrivs:\t1",
		"status CapEff:\t0000000000000000",
		"status CapBnd:\t0000000000000000",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("probe output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestRunCancel: when ctx ends, the sandbox is killed and removed, and Run
// says why, whether runc had made it or not.
func TestRunCancel(t *testing.T) {
	d, root := newDriver(t)
	layers := runtimetest.Image(t)
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		waitFor string // cancel once stdout shows it; "" leaves it to ctx
		want    error
	}{
		{"cancelled while running", func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, "ready", context.Canceled},
		{"deadline while starting", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 10*time.Millisecond)
		}, "", context.DeadlineExceeded},
		// Later deadlines find runc further into making the container.
		{"deadline after 40ms", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 40*time.Millisecond)
		}, "", context.DeadlineExceeded},
		{"deadline after 100ms", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, "", context.DeadlineExceeded},
		{"cancelled before", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, "", context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			sp := runSpec(layers, "ignore-term")
			out := newBuffer()
			done := make(chan error, 1)
			go func() {
				_, err := d.Run(ctx, sp, out, nil)
				done <- err
			}()
			if tc.waitFor != "" {
				for !strings.Contains(out.String(), tc.waitFor) {
					select {
					case <-out.wrote:
					case err := <-done:
						t.Fatalf("Run returned %v before printing %q", err, tc.waitFor)
					case <-time.After(30 * time.Second):
						t.Fatalf("no %q after 30s", tc.waitFor)
					}
				}
				cancel()
			}
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Errorf("Run = %v, want %v", err, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return 30s after ctx ended")
			}
			checkGone(t, root, sp.ID)
		})
	}
}

// TestRunVisibleWhileRunning: a foreground sandbox is in List and State
// while it runs (so a later server finds one left by a crash) and gone
// afterwards.
func TestRunVisibleWhileRunning(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	sp := runSpec(layers, "sleep")
	sp.Labels = map[string]string{"role": "build"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newBuffer()
	done := make(chan error, 1)
	go func() {
		_, err := d.Run(ctx, sp, out, nil)
		done <- err
	}()
	for !strings.Contains(out.String(), "ready") {
		select {
		case <-out.wrote:
		case err := <-done:
			t.Fatalf("Run returned %v before printing ready", err)
		case <-time.After(30 * time.Second):
			t.Fatal("no ready after 30s")
		}
	}
	st, err := d.State(context.Background(), sp.ID)
	if err != nil || st.Status != runtime.Running || st.Pid <= 0 || st.Labels["role"] != "build" {
		t.Errorf("State while running = %+v, %v; want Running with a pid and the labels", st, err)
	}
	all, err := d.List(context.Background())
	if err != nil || len(all) != 1 || all[0].ID != sp.ID {
		t.Errorf("List while running = %+v, %v; want the one sandbox", all, err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if _, err := d.State(context.Background(), sp.ID); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("State after Run = %v, want NotFound", err)
	}
}

// TestRunRefuses: specs Run refuses, leaving nothing behind.
func TestRunRefuses(t *testing.T) {
	d, root := newDriver(t)
	layers := runtimetest.Image(t)
	running, _ := sandbox(t, d, layers, "sleep")
	tests := []struct {
		name   string
		change func(*runtime.Spec)
		kind   errkind.Kind
		want   string
	}{
		{"a log", func(s *runtime.Spec) { s.Log = "/tmp/x.log" }, errkind.Invalid, "log"},
		{"missing mount source", func(s *runtime.Spec) {
			s.Mounts = []runtime.Mount{{Source: "/no/such/folder", Target: "/workspace"}}
		}, errkind.Invalid, "/no/such/folder"},
		{"mount on /proc", func(s *runtime.Spec) { s.Mounts = []runtime.Mount{{Source: "/tmp", Target: "/proc"}} }, errkind.Invalid, "/proc"},
		{"no layers", func(s *runtime.Spec) { s.Layers = nil }, errkind.Invalid, "layers"},
		{"missing program", func(s *runtime.Spec) { s.Args = []string{"/bin/nope"} }, errkind.Invalid, "/bin/nope"},
		{"missing working folder", func(s *runtime.Spec) { s.Cwd = "/nowhere" }, errkind.Invalid, "nowhere"},
		{"id of a running sandbox", func(s *runtime.Spec) { s.ID = running.ID }, errkind.Conflict, "already"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := runSpec(layers, "exit", "0")
			tc.change(&sp)
			_, err := d.Run(context.Background(), sp, nil, nil)
			if errkind.Of(err) != tc.kind || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run = %v (kind %v), want kind %v mentioning %q", err, errkind.Of(err), tc.kind, tc.want)
			}
			if sp.ID != running.ID {
				checkGone(t, root, sp.ID)
			}
		})
	}
	if st, err := d.State(context.Background(), running.ID); err != nil || st.Status != runtime.Running {
		t.Errorf("the running sandbox after a clashing Run: %+v, %v; want it still running", st, err)
	}
}

// TestRunLatency logs how long a run of a program that exits at once
// takes, set-up and clean-up included; the numbers are for people.
func TestRunLatency(t *testing.T) {
	d, _ := newDriver(t)
	layers := runtimetest.Image(t)
	var took []time.Duration
	for range 5 {
		t0 := time.Now()
		if _, err := d.Run(context.Background(), runSpec(layers, "exit", "0"), nil, nil); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(t0))
	}
	t.Logf("Run of a program that exits at once: %v", took)
}
