package runtimetest

import (
	"context"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/runtime"
)

// create creates spec and makes sure the sandbox is gone when t ends.
func (h *harness) create(t *testing.T, spec runtime.Spec) runtime.State {
	t.Helper()
	h.removeAtEnd(t, spec.ID)
	st, err := h.d.Create(ctx(t), spec)
	if err != nil {
		t.Fatalf("Create(%s): %v", spec.ID, err)
	}
	return st
}

// testCreateThenStart: a created sandbox's program does not run until
// StartCreated, which runs it as Start would; a second StartCreated is a
// conflict.
func testCreateThenStart(t *testing.T, h *harness) {
	sp := h.spec("sleep")
	st := h.create(t, sp)
	if st.Status != runtime.Created {
		t.Fatalf("Create = %+v, want Created", st)
	}
	if got, err := h.d.State(ctx(t), sp.ID); err != nil || got.Status != runtime.Created {
		t.Fatalf("State after Create = %+v, %v; want Created", got, err)
	}
	time.Sleep(100 * time.Millisecond)
	if has(readLog(t, sp.Log), "stdout", "ready") {
		t.Fatalf("the program of a created sandbox ran before StartCreated")
	}
	wctx, cancel := context.WithTimeout(ctx(t), 50*time.Millisecond)
	_, err := h.d.Wait(wctx, sp.ID)
	cancel()
	if err == nil {
		t.Errorf("Wait on a created sandbox returned before it started")
	}
	st, err = h.d.StartCreated(ctx(t), sp.ID)
	if err != nil {
		t.Fatalf("StartCreated: %v", err)
	}
	if st.Status != runtime.Running || st.Pid <= 0 {
		t.Errorf("StartCreated = %+v, want Running with a pid", st)
	}
	waitLog(t, sp.Log, "ready")
	if _, err := h.d.StartCreated(ctx(t), sp.ID); !errkind.Is(err, errkind.Conflict) {
		t.Errorf("second StartCreated = %v, want a conflict", err)
	}
	if err := h.d.Stop(ctx(t), sp.ID, timeout); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if e := h.wait(t, h.d, sp.ID); e.Code != 0 {
		t.Errorf("Wait after Stop = %+v, want code 0 (the program exits on SIGTERM)", e)
	}
}

// testStopCreated: a created sandbox that never starts stops at once,
// whatever the grace, and deletes cleanly.
func testStopCreated(t *testing.T, h *harness) {
	sp := h.spec("sleep")
	h.create(t, sp)
	start := time.Now()
	if err := h.d.Stop(ctx(t), sp.ID, timeout); err != nil {
		t.Fatalf("Stop of a created sandbox: %v", err)
	}
	if d := time.Since(start); d > timeout/2 {
		t.Errorf("Stop of a created sandbox took %s: it waited for a grace nothing needed", d)
	}
	if st, err := h.d.State(ctx(t), sp.ID); err != nil || st.Status != runtime.Stopped {
		t.Errorf("State after Stop = %+v, %v; want Stopped", st, err)
	}
	if _, err := h.d.StartCreated(ctx(t), sp.ID); err == nil {
		t.Errorf("StartCreated of a stopped sandbox succeeded")
	}
	if err := h.d.Delete(ctx(t), sp.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := h.d.State(ctx(t), sp.ID); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("State after Delete = %v, want not found", err)
	}
	if _, err := h.d.StartCreated(ctx(t), "rt-no-such-sandbox"); err == nil {
		t.Errorf("StartCreated of an unknown sandbox succeeded")
	}
}

// testUsage checks that a running sandbox's resource use is read and
// grows with the work it does, and the errors for other sandboxes.
func testUsage(t *testing.T, h *harness) {
	sp := h.spec("spin", "200ms")
	h.start(t, sp)
	waitLog(t, sp.Log, "ready")
	var u runtime.Usage
	deadline := time.Now().Add(timeout)
	for {
		var err error
		if u, err = h.d.Usage(ctx(t), sp.ID); err != nil {
			t.Fatalf("Usage of a running sandbox: %v", err)
		}
		if u.CPU > 0 && u.Memory > 0 && u.Pids >= 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if u.CPU <= 0 || u.Memory <= 0 || u.Pids < 1 {
		t.Fatalf("Usage = %+v, want CPU time, memory and at least one pid", u)
	}
	if err := h.d.Stop(ctx(t), sp.ID, timeout); err != nil {
		t.Fatal(err)
	}
	h.wait(t, h.d, sp.ID)
	if _, err := h.d.Usage(ctx(t), sp.ID); !errkind.Is(err, errkind.Conflict) {
		t.Errorf("Usage of a stopped sandbox = %v, want a conflict", err)
	}
	if _, err := h.d.Usage(ctx(t), "no-such-sandbox"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Usage of an unknown sandbox = %v, want not found", err)
	}
}
