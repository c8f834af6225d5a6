package runtimetest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

// timeout bounds every wait of the suite, so that a broken driver fails
// instead of hanging.
const timeout = 30 * time.Second

// Run runs the conformance suite. newDriver is called once per subtest and
// returns a fresh driver (with nothing started) and the fixture to use.
func Run(t *testing.T, newDriver func(t *testing.T) (runtime.Driver, Fixture)) {
	tests := []struct {
		name string
		fn   func(*testing.T, *harness)
	}{
		{"StartReportsRunning", testStartReportsRunning},
		{"OutputGoesToLog", testOutputGoesToLog},
		{"ExitCodes", testExitCodes},
		{"KilledBySignal", testKilledBySignal},
		{"StopEscalatesToKill", testStopEscalatesToKill},
		{"StopStoppedOrUnknown", testStopStoppedOrUnknown},
		{"WaitHonoursContext", testWaitHonoursContext},
		{"Delete", testDelete},
		{"DeleteRunning", testDeleteRunning},
		{"List", testList},
		{"InvalidSpecs", testInvalidSpecs},
		{"DuplicateID", testDuplicateID},
		{"MissingProgram", testMissingProgram},
		{"EnvAndCwd", testEnvAndCwd},
		{"Restart", testRestart},
		{"CreateThenStart", testCreateThenStart},
		{"StopCreated", testStopCreated},
		{"Usage", testUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, fx := newDriver(t)
			tc.fn(t, &harness{d: d, fx: fx, logs: t.TempDir()})
		})
	}
}

var seq atomic.Int64

// harness makes specs from the fixture and cleans up what it starts.
type harness struct {
	d    runtime.Driver
	fx   Fixture
	logs string
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return c
}

// spec returns a spec running the test program with args.
func (h *harness) spec(args ...string) runtime.Spec {
	id := fmt.Sprintf("rt-%d-%d", os.Getpid(), seq.Add(1))
	return runtime.Spec{
		ID:     id,
		Layers: h.fx.Layers,
		Args:   append([]string{h.fx.Program}, args...),
		Env:    []string{"PATH=/bin"},
		Log:    filepath.Join(h.logs, id+".log"),
		Labels: map[string]string{"app": "conformance", "release": "1"},
	}
}

// removeAtEnd makes sure sandbox id is gone when t ends.
func (h *harness) removeAtEnd(t *testing.T, id string) {
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := h.d.Stop(c, id, 0); err != nil {
			t.Errorf("cleanup: Stop(%s): %v", id, err)
		}
		if err := h.d.Delete(c, id); err != nil {
			t.Errorf("cleanup: Delete(%s): %v", id, err)
		}
	})
}

// start starts spec and makes sure the sandbox is gone when t ends.
func (h *harness) start(t *testing.T, spec runtime.Spec) runtime.State {
	t.Helper()
	h.removeAtEnd(t, spec.ID)
	st, err := h.d.Start(ctx(t), spec)
	if err != nil {
		t.Fatalf("Start(%s): %v", spec.ID, err)
	}
	return st
}

func (h *harness) wait(t *testing.T, d runtime.Driver, id string) runtime.Exit {
	t.Helper()
	e, err := d.Wait(ctx(t), id)
	if err != nil {
		t.Fatalf("Wait(%s): %v", id, err)
	}
	return e
}

// record is one line of a sandbox log.
type record struct {
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Line   string    `json:"line"`
}

// readLog returns the records of a log file; every line must be one.
func readLog(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log %s: line %q is not a JSON record: %v", path, sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func has(rs []record, stream, line string) bool {
	for _, r := range rs {
		if r.Stream == stream && r.Line == line {
			return true
		}
	}
	return false
}

// waitLog waits until the log holds line on stdout.
func waitLog(t *testing.T, path, line string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if has(readLog(t, path), "stdout", line) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log %s never showed %q; it holds %v", path, line, readLog(t, path))
}

func testStartReportsRunning(t *testing.T, h *harness) {
	sp := h.spec("sleep")
	st := h.start(t, sp)
	if st.ID != sp.ID || st.Status != runtime.Running || st.Pid <= 0 {
		t.Fatalf("Start = %+v, want ID %s, Running, a pid", st, sp.ID)
	}
	if err := syscall.Kill(st.Pid, 0); err != nil {
		t.Errorf("kill(%d, 0) = %v; the reported pid is not alive", st.Pid, err)
	}
	got, err := h.d.State(ctx(t), sp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != runtime.Running || got.Pid != st.Pid || got.Labels["app"] != "conformance" || got.Exit != nil {
		t.Errorf("State = %+v, want Running, pid %d, labels kept, no exit", got, st.Pid)
	}
	if got.Started.IsZero() || time.Since(got.Started) > time.Minute {
		t.Errorf("State.Started = %v, want about now", got.Started)
	}
	waitLog(t, sp.Log, "ready")
	if err := h.d.Stop(ctx(t), sp.ID, timeout); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if e := h.wait(t, h.d, sp.ID); e.Code != 0 || e.Signal != "" {
		t.Errorf("Wait after Stop of a program that exits on SIGTERM = %+v, want code 0", e)
	}
	if !has(readLog(t, sp.Log), "stdout", "got SIGTERM") {
		t.Errorf("the program did not see SIGTERM; log: %v", readLog(t, sp.Log))
	}
}

func testOutputGoesToLog(t *testing.T, h *harness) {
	sp := h.spec("spam", "500")
	before := time.Now().Add(-time.Second)
	h.start(t, sp)
	h.wait(t, h.d, sp.ID)
	rs := readLog(t, sp.Log)
	if !has(rs, "stdout", "hello stdout") || !has(rs, "stderr", "hello stderr") {
		t.Errorf("log lacks hello on stdout and stderr: %v", rs)
	}
	n := 0
	for _, r := range rs {
		if r.Time.Before(before) || r.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("record %+v: time not about now", r)
		}
		if r.Stream == "stdout" && strings.HasPrefix(r.Line, "spam ") {
			if want := fmt.Sprintf("spam %06d %s", n, strings.Repeat("x", 64)); r.Line != want {
				t.Fatalf("spam line %d = %q, want %q", n, r.Line, want)
			}
			n++
		}
	}
	if n != 500 {
		t.Errorf("log holds %d spam lines, want 500", n)
	}
}

func testExitCodes(t *testing.T, h *harness) {
	for _, code := range []int{0, 3, 255} {
		t.Run(fmt.Sprint("exit ", code), func(t *testing.T) {
			sp := h.spec("exit", fmt.Sprint(code))
			h.start(t, sp)
			e := h.wait(t, h.d, sp.ID)
			if e.Code != code || e.Signal != "" || e.OOMKilled || e.At.IsZero() {
				t.Errorf("Wait = %+v, want code %d, no signal, a time", e, code)
			}
			st, err := h.d.State(ctx(t), sp.ID)
			if err != nil {
				t.Fatal(err)
			}
			if st.Status != runtime.Stopped || st.Exit == nil || st.Exit.Code != code || st.Pid != 0 {
				t.Errorf("State after exit = %+v (exit %+v), want Stopped with code %d and no pid", st, st.Exit, code)
			}
			if again := h.wait(t, h.d, sp.ID); !again.At.Equal(e.At) || again.Code != e.Code {
				t.Errorf("second Wait = %+v, want %+v", again, e)
			}
		})
	}
}

func testKilledBySignal(t *testing.T, h *harness) {
	sp := h.spec("sleep")
	st := h.start(t, sp)
	waitLog(t, sp.Log, "ready")
	if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := h.wait(t, h.d, sp.ID); e.Code != 137 || e.Signal != "SIGKILL" {
		t.Errorf("Wait after SIGKILL = %+v, want code 137, SIGKILL", e)
	}
}

func testStopEscalatesToKill(t *testing.T, h *harness) {
	sp := h.spec("ignore-term")
	h.start(t, sp)
	waitLog(t, sp.Log, "ready")
	const grace = 500 * time.Millisecond
	t0 := time.Now()
	if err := h.d.Stop(ctx(t), sp.ID, grace); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if took := time.Since(t0); took < grace {
		t.Errorf("Stop returned after %v, before the grace of %v", took, grace)
	}
	if e := h.wait(t, h.d, sp.ID); e.Code != 137 || e.Signal != "SIGKILL" {
		t.Errorf("Wait after Stop of a program ignoring SIGTERM = %+v, want code 137, SIGKILL", e)
	}
}

func testStopStoppedOrUnknown(t *testing.T, h *harness) {
	sp := h.spec("exit", "0")
	h.start(t, sp)
	h.wait(t, h.d, sp.ID)
	if err := h.d.Stop(ctx(t), sp.ID, time.Second); err != nil {
		t.Errorf("Stop of a stopped sandbox = %v, want nil", err)
	}
	if err := h.d.Stop(ctx(t), "unknown-sandbox", time.Second); err != nil {
		t.Errorf("Stop of an unknown sandbox = %v, want nil", err)
	}
}

func testWaitHonoursContext(t *testing.T, h *harness) {
	sp := h.spec("sleep")
	h.start(t, sp)
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := h.d.Wait(c, sp.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait with an expiring context = %v, want context.DeadlineExceeded", err)
	}
	if _, err := h.d.Wait(ctx(t), "unknown-sandbox"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Wait(unknown) = %v, want NotFound", err)
	}
}

func testDelete(t *testing.T, h *harness) {
	sp := h.spec("exit", "0")
	h.start(t, sp)
	h.wait(t, h.d, sp.ID)
	if err := h.d.Delete(ctx(t), sp.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := h.d.State(ctx(t), sp.ID); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("State after Delete = %v, want NotFound", err)
	}
	if err := h.d.Delete(ctx(t), sp.ID); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
	if err := h.d.Delete(ctx(t), "unknown-sandbox"); err != nil {
		t.Errorf("Delete(unknown) = %v, want nil", err)
	}
	if _, err := os.Stat(sp.Log); err != nil {
		t.Errorf("Delete removed the log, which belongs to the caller: %v", err)
	}
}

func testDeleteRunning(t *testing.T, h *harness) {
	sp := h.spec("ignore-term")
	st := h.start(t, sp)
	waitLog(t, sp.Log, "ready")
	if err := h.d.Delete(ctx(t), sp.ID); err != nil {
		t.Fatalf("Delete of a running sandbox: %v", err)
	}
	if _, err := h.d.State(ctx(t), sp.ID); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("State after Delete = %v, want NotFound", err)
	}
	deadline := time.Now().Add(timeout)
	for syscall.Kill(st.Pid, 0) == nil {
		// Signal 0 succeeds on a zombie: look at its state too.
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", st.Pid)); strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive after Delete", st.Pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testList(t *testing.T, h *harness) {
	running, done := h.spec("sleep"), h.spec("exit", "4")
	h.start(t, running)
	h.start(t, done)
	h.wait(t, h.d, done.ID)
	sts, err := h.d.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]runtime.State{}
	for _, st := range sts {
		got[st.ID] = st
	}
	if st := got[running.ID]; st.Status != runtime.Running || st.Pid <= 0 || st.Labels["release"] != "1" {
		t.Errorf("List entry of %s = %+v, want Running with a pid and labels", running.ID, st)
	}
	if st := got[done.ID]; st.Status != runtime.Stopped || st.Exit == nil || st.Exit.Code != 4 {
		t.Errorf("List entry of %s = %+v, want Stopped with code 4", done.ID, st)
	}
	if len(got) != 2 {
		t.Errorf("List = %d sandboxes, want 2", len(got))
	}
	if err := h.d.Delete(ctx(t), done.ID); err != nil {
		t.Fatal(err)
	}
	sts, err = h.d.List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 1 || sts[0].ID != running.ID {
		t.Errorf("List after Delete = %+v, want only %s", sts, running.ID)
	}
}

func testInvalidSpecs(t *testing.T, h *harness) {
	tests := []struct {
		name   string
		change func(*runtime.Spec)
	}{
		{"empty id", func(s *runtime.Spec) { s.ID = "" }},
		{"upper-case id", func(s *runtime.Spec) { s.ID = "Hello" }},
		{"id like a flag", func(s *runtime.Spec) { s.ID = "-rm" }},
		{"id with slash", func(s *runtime.Spec) { s.ID = "a/b" }},
		{"id too long", func(s *runtime.Spec) { s.ID = strings.Repeat("a", runtime.MaxIDLen+1) }},
		{"no args", func(s *runtime.Spec) { s.Args = nil }},
		{"empty program", func(s *runtime.Spec) { s.Args = []string{""} }},
		{"no log", func(s *runtime.Spec) { s.Log = "" }},
		{"relative log", func(s *runtime.Spec) { s.Log = "x.log" }},
		{"relative cwd", func(s *runtime.Spec) { s.Cwd = "tmp" }},
		{"env without =", func(s *runtime.Spec) { s.Env = []string{"PATH"} }},
		{"negative memory", func(s *runtime.Spec) { s.Memory = -1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := h.spec("exit", "0")
			tc.change(&sp)
			st, err := h.d.Start(ctx(t), sp)
			if err == nil {
				h.d.Stop(ctx(t), sp.ID, 0)
				h.d.Delete(ctx(t), sp.ID)
				t.Fatalf("Start(%s) = %+v, want an Invalid error", tc.name, st)
			}
			if !errkind.Is(err, errkind.Invalid) {
				t.Errorf("Start(%s) = %v (kind %v), want Invalid", tc.name, err, errkind.Of(err))
			}
			if sts, _ := h.d.List(ctx(t)); len(sts) != 0 {
				t.Errorf("a refused Start left sandboxes: %+v", sts)
			}
		})
	}
}

func testDuplicateID(t *testing.T, h *harness) {
	sp := h.spec("sleep")
	h.start(t, sp)
	if _, err := h.d.Start(ctx(t), sp); !errkind.Is(err, errkind.Conflict) {
		t.Errorf("second Start(%s) = %v, want Conflict", sp.ID, err)
	}
	if st, err := h.d.State(ctx(t), sp.ID); err != nil || st.Status != runtime.Running {
		t.Errorf("State after a refused duplicate = %+v, %v; want the first still Running", st, err)
	}
}

func testMissingProgram(t *testing.T, h *harness) {
	sp := h.spec()
	sp.Args = []string{"/no/such/program"}
	_, err := h.d.Start(ctx(t), sp)
	if err == nil {
		h.d.Stop(ctx(t), sp.ID, 0)
		h.d.Delete(ctx(t), sp.ID)
		t.Fatal("Start of a missing program succeeded")
	}
	if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "/no/such/program") {
		t.Errorf("Start of a missing program = %v (kind %v), want Invalid naming the program", err, errkind.Of(err))
	}
	if _, err := h.d.State(ctx(t), sp.ID); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("State after a failed Start = %v, want NotFound", err)
	}
}

func testEnvAndCwd(t *testing.T, h *harness) {
	sp := h.spec("probe")
	sp.Env = append(sp.Env, "NOOPS_PROBE=hello world")
	sp.Cwd = "/tmp"
	h.start(t, sp)
	if e := h.wait(t, h.d, sp.ID); e.Code != 0 {
		t.Fatalf("probe exited %+v", e)
	}
	rs := readLog(t, sp.Log)
	for _, want := range []string{"cwd: /tmp", "env NOOPS_PROBE: hello world"} {
		if !has(rs, "stdout", want) {
			t.Errorf("probe output lacks %q: %v", want, rs)
		}
	}
}

func testRestart(t *testing.T, h *harness) {
	if h.fx.Restart == nil {
		t.Fatal("the fixture has no Restart")
	}
	sp := h.spec("sleep")
	st := h.start(t, sp)
	waitLog(t, sp.Log, "ready")
	d2 := h.fx.Restart(t)
	got, err := d2.State(ctx(t), sp.ID)
	if err != nil || got.Status != runtime.Running || got.Pid != st.Pid || got.Labels["app"] != "conformance" {
		t.Fatalf("restarted driver: State = %+v, %v; want Running, pid %d, labels", got, err, st.Pid)
	}
	sts, err := d2.List(ctx(t))
	if err != nil || len(sts) != 1 || sts[0].ID != sp.ID {
		t.Errorf("restarted driver: List = %+v, %v; want %s", sts, err, sp.ID)
	}
	if err := d2.Stop(ctx(t), sp.ID, timeout); err != nil {
		t.Fatalf("restarted driver: Stop: %v", err)
	}
	e := h.wait(t, d2, sp.ID)
	if e.Code != 0 {
		t.Errorf("restarted driver: Wait = %+v, want code 0", e)
	}
	if e1 := h.wait(t, h.d, sp.ID); e1.Code != e.Code || !e1.At.Equal(e.At) {
		t.Errorf("first driver: Wait = %+v, want %+v as the restarted one saw", e1, e)
	}
	if err := d2.Delete(ctx(t), sp.ID); err != nil {
		t.Fatalf("restarted driver: Delete: %v", err)
	}
	if _, err := h.d.State(ctx(t), sp.ID); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("first driver: State after the restarted one deleted = %v, want NotFound", err)
	}
}
