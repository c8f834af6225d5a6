package supervisor

import (
	"strings"
	"syscall"
	"testing"

	"noops/internal/errkind"
	"noops/internal/spec"
)

// TestStartFailuresAreRetried: a first start that fails as runc or CNI
// would is tried again, each failure recorded as an event, and the
// rollout succeeds.
func TestStartFailuresAreRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	for _, tc := range []struct {
		app, cause string
		inject     func()
	}{
		{"runc", "no space left on device", func() { h.faults.failStarts(2) }},
		{"disk", "unpacking layer", func() {
			h.images.mu.Lock()
			h.images.unpackFails = 2
			h.images.mu.Unlock()
		}},
		{"cni", "bridge", func() {
			h.net.mu.Lock()
			h.net.attachFails = 2
			h.net.mu.Unlock()
		}},
	} {
		tc.inject()
		h.rolloutOK(h.release(tc.app, h.image(map[string]proc{Web: {role: "web"}}), spec.Run{}, nil), 1)
		evs := h.events(tc.app, EventStartFailed)
		if len(evs) != 2 || !strings.Contains(evs[0].Message, tc.cause) {
			t.Errorf("%s: start-failed events = %+v, want 2 saying %q", tc.app, evs, tc.cause)
		}
		web, _ := h.byProcess(tc.app)
		if len(web) != 1 || web[0].State != "healthy" {
			t.Errorf("%s: after retried starts: %+v, want one healthy replica", tc.app, web)
		}
	}
}

// TestStartFailuresGiveUp: a start that keeps failing fails the rollout
// after StartTries, with the cause, leaving nothing behind.
func TestStartFailuresGiveUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.faults.failStarts(StartTries + 5)
	_, err := h.rollout(h.release("web", h.image(map[string]proc{Web: {role: "web"}}), spec.Run{}, nil), 1)
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || !errkind.Is(err, errkind.Invalid) {
		t.Fatalf("rollout with failing starts = %v, want its cause", err)
	}
	if n := len(h.events("web", EventStartFailed)); n != StartTries {
		t.Errorf("%d start-failed events, want %d", n, StartTries)
	}
	if web, workers := h.byProcess("web"); len(web)+len(workers) != 0 {
		t.Errorf("a failed rollout left sandboxes: %+v %+v", web, workers)
	}
}

// TestCrashLoopEvent: a process that keeps dying backs off, shows
// crashloop and raises one crashloop event.
func TestCrashLoopEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.rolloutOK(h.release("jobs", h.image(appProcs()), spec.Run{}, nil), 1)
	_, workers := h.byProcess("jobs")
	id := workers[0].ID
	for i := 0; i < 3; i++ {
		var pid int
		h.waitFor("the worker to run", func() bool {
			pid = h.s.Pid(id)
			_, w := h.byProcess("jobs")
			return pid != 0 && len(w) == 1 && w[0].Restarts == i
		})
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	h.waitFor("a crashloop event", func() bool { return len(h.events("jobs", EventCrashLoop)) == 1 })
	ev := h.events("jobs", EventCrashLoop)[0]
	if !strings.Contains(ev.Message, id) || !strings.Contains(ev.Message, "SIGKILL") {
		t.Errorf("crashloop event %q does not name the sandbox and its last exit", ev.Message)
	}
	h.waitFor("the worker to run again after its back-off", func() bool {
		_, w := h.byProcess("jobs")
		return len(w) == 1 && w[0].State == "running" && w[0].Restarts == 3
	})
}
