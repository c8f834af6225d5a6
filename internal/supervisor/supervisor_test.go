package supervisor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/spec"
	"noops/internal/store"
)

func TestRolloutRunsReleaseThenWebThenWorker(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rel := h.release("shop", h.image(appProcs()), spec.Run{Memory: 64 << 20, Pids: 32}, map[string]string{"SECRET": "s"})
	lines := h.rolloutOK(rel, 1)

	rOut, rErr := indexOf(lines, "release: migrate: release 1: ok"), indexOf(lines, "release: migrate: env MODE=image")
	web, worker := indexOf(lines, "starting replica 1/1"), indexOf(lines, "starting worker 1/1")
	if rOut < 0 || rErr < 0 || web < 0 || worker < 0 || !(rOut < web && rErr < web && web < worker) {
		t.Errorf("progress = %q, want the release command's output (both streams, prefixed) before the web replica, then the worker", lines)
	}

	if n := h.runner.count(); n != 1 {
		t.Fatalf("release command ran %d times, want 1", n)
	}
	sp := h.runner.runs[0]
	if ProcessOf(sp.ID) != Release || sp.Log != "" || sp.Memory != 64<<20 || sp.Pids != 32 || sp.Labels["process"] != Release {
		t.Errorf("release sandbox spec = %+v, want a foreground release sandbox with the app's limits", sp)
	}
	for _, kv := range []string{"SECRET=s", "NOOPS_APP=shop", "NOOPS_RELEASE=1", "MODE=image"} {
		if !slices.Contains(sp.Env, kv) {
			t.Errorf("release sandbox env %q lacks %s", sp.Env, kv)
		}
	}
	if !h.runner.attached[0] {
		t.Error("the release command ran before its network was attached")
	}
	if h.net.isLive(sp.ID) {
		t.Errorf("the release command's network %s is still there after it ran", sp.ID)
	}

	webs, workers := h.byProcess("shop")
	if len(webs) != 1 || len(workers) != 1 {
		t.Fatalf("Instances = %+v, want one web and one worker", h.s.Instances("shop"))
	}
	if webs[0].State != "healthy" || webs[0].Addr == "" {
		t.Errorf("web row = %+v, want healthy with an address", webs[0])
	}
	if workers[0].State != "running" || workers[0].Addr != "" || !strings.Contains(workers[0].ID, "-worker-") {
		t.Errorf("worker row = %+v, want running, no address, a worker ID", workers[0])
	}
	if ids, _ := h.router.routes("shop"); !slices.Equal(ids, []string{webs[0].ID}) {
		t.Errorf("routed to %v, want only the web sandbox %s", ids, webs[0].ID)
	}
	a, err := h.store.GetApp(context.Background(), "shop")
	if err != nil || a.Release != 1 || a.Replicas != 1 {
		t.Errorf("app after rollout = %+v, %v; want release 1 live with 1 replica", a, err)
	}
	logFile := filepath.Join(h.cfg.LogDir, "shop", workers[0].ID+".log")
	h.waitFor("the worker's log line", func() bool {
		b, _ := os.ReadFile(logFile)
		return bytes.Contains(b, []byte("worker: release 1 up"))
	})

	// The next release replaces both.
	rel2 := h.release("shop", h.image(appProcs()), spec.Run{}, nil)
	lines = h.rolloutOK(rel2, 1)
	h.waitFor("the old release's sandboxes to go", func() bool {
		w, k := h.byProcess("shop")
		return len(w) == 1 && len(k) == 1
	})
	webs2, workers2 := h.byProcess("shop")
	if webs2[0].Release != 2 || workers2[0].Release != 2 {
		t.Errorf("after the second rollout rows = %+v, want release 2's web and worker", h.s.Instances("shop"))
	}
	if indexOf(lines, "stopping worker "+workers[0].ID) < 0 {
		t.Errorf("progress = %q, want the old worker stopped", lines)
	}
	if h.runner.count() != 2 {
		t.Errorf("release command ran %d times after two rollouts, want 2", h.runner.count())
	}
}

func TestWorkerRestartsAfterItExits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.rolloutOK(h.release("jobs", h.image(appProcs()), spec.Run{}, nil), 1)
	_, workers := h.byProcess("jobs")
	id := workers[0].ID
	pid := h.s.Pid(id)
	if pid == 0 {
		t.Fatalf("worker %s has no pid", id)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the worker to run again", func() bool {
		_, w := h.byProcess("jobs")
		p := h.s.Pid(id)
		return len(w) == 1 && w[0].State == "running" && w[0].Restarts >= 1 && p != 0 && p != pid
	})
	_, w := h.byProcess("jobs")
	if w[0].ID != id || !strings.Contains(w[0].LastExit, "SIGKILL") {
		t.Errorf("worker after kill = %+v, want %s restarted after SIGKILL", w[0], id)
	}
}

func TestWorkerThatDoesNotSettleFailsTheRollout(t *testing.T) {
	t.Parallel()
	// Long enough for the crashing helper to start and exit on a busy
	// machine: it must fail within the settle time to count as unsettled.
	h := newHarness(t, func(c *Config) { c.WorkerSettle = 3 * time.Second })
	h.rolloutOK(h.release("jobs", h.image(appProcs()), spec.Run{}, nil), 1)
	oldWeb, oldWorker := h.byProcess("jobs")

	bad := appProcs()
	bad[Worker] = proc{role: "crash"}
	rel2 := h.release("jobs", h.image(bad), spec.Run{}, nil)
	lines, err := h.rollout(rel2, 1)
	if err == nil || !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "exited within") || !strings.Contains(err.Error(), "exit 3") {
		t.Fatalf("Rollout(worker that crashes) = %v, want an invalid error saying it exited (exit 3)\nprogress: %q", err, lines)
	}
	// The previous web replica serves again at once: it was only out of
	// routing while the new worker started.
	if ids, _ := h.router.routes("jobs"); !slices.Equal(ids, []string{oldWeb[0].ID}) {
		t.Errorf("after the failed rollout routed to %v, want the previous web %s", ids, oldWeb[0].ID)
	}
	web, worker := h.byProcess("jobs")
	if len(web) != 1 || web[0].ID != oldWeb[0].ID || len(worker) != 1 || worker[0].ID != oldWorker[0].ID {
		t.Errorf("after the failed rollout rows = %+v, want release 1's web and worker untouched", h.s.Instances("jobs"))
	}
	r, _ := h.store.GetRelease(context.Background(), "jobs", rel2.Number)
	a, _ := h.store.GetApp(context.Background(), "jobs")
	if r.Status != store.StatusFailed || a.Release != 1 {
		t.Errorf("release 2 = %s, live = %d; want failed and release 1 live", r.Status, a.Release)
	}
}

func TestReleaseCommandFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		release proc
		timeout time.Duration
		want    []string
	}{
		{"non-zero exit", proc{role: "release", env: map[string]string{"RELEASE_EXIT": "3"}}, 0,
			[]string{"failed (exit 3)", `last output: "migrate: release 2: refused" "migrate: env MODE=image"`}},
		{"timeout", proc{role: "hang"}, 500 * time.Millisecond,
			[]string{"did not finish within 500ms and was killed", "it wrote nothing"}},
		{"cannot start", proc{role: "missing"}, 0,
			[]string{`release command "/nonexistent/program" could not run`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.rolloutOK(h.release("app", h.image(appProcs()), spec.Run{}, nil), 1)
			if tc.timeout > 0 {
				h.s.cfg.ReleaseTimeout = tc.timeout // only rollouts read it, and none runs now
			}
			before := h.s.Instances("app")
			routed, _ := h.router.routes("app")

			procs := appProcs()
			procs[Release] = tc.release
			rel := h.release("app", h.image(procs), spec.Run{}, nil)
			lines, err := h.rollout(rel, 1)
			if err == nil || !errkind.Is(err, errkind.Invalid) {
				t.Fatalf("Rollout = %v, want an invalid error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Rollout error = %q, want it to contain %q", err, w)
				}
			}
			if indexOf(lines, "starting") >= 0 {
				t.Errorf("progress = %q: a sandbox started after the release command failed", lines)
			}
			if after := h.s.Instances("app"); len(after) != len(before) || after[0].ID != before[0].ID || after[1].ID != before[1].ID {
				t.Errorf("rows after the failed release = %+v, want %+v", after, before)
			}
			if ids, _ := h.router.routes("app"); !slices.Equal(ids, routed) {
				t.Errorf("routes after the failed release = %v, want %v", ids, routed)
			}
			r, _ := h.store.GetRelease(context.Background(), "app", rel.Number)
			if r.Status != store.StatusFailed || !strings.Contains(r.Reason, "release command") {
				t.Errorf("release %d = %s %q, want failed with the release command's error", rel.Number, r.Status, r.Reason)
			}
			if n := len(h.runner.runs); n != 2 || h.net.isLive(h.runner.runs[1].ID) {
				t.Errorf("release commands run = %d (want 2) or the failed one's network is left", n)
			}
		})
	}
}

func TestReleaseCommandNeedsARunner(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.Runner = nil })
	_, err := h.rollout(h.release("app", h.image(appProcs()), spec.Run{}, nil), 1)
	if err == nil || !strings.Contains(err.Error(), "cannot run one") {
		t.Fatalf("Rollout without a runner = %v, want an error saying so", err)
	}
}

func TestRollbackDoesNotRunTheReleaseCommandAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	img := h.image(appProcs())
	h.rolloutOK(h.release("app", img, spec.Run{}, nil), 1)
	h.rolloutOK(h.release("app", img, spec.Run{}, map[string]string{"K": "v"}), 1) // env set: a new release
	if n := h.runner.count(); n != 2 {
		t.Fatalf("release command ran %d times for two releases, want 2", n)
	}
	ctx := context.Background()
	rel1, err := h.store.GetRelease(ctx, "app", 1)
	if err != nil || rel1.Status != store.StatusSuperseded {
		t.Fatalf("release 1 = %+v, %v; want superseded", rel1, err)
	}
	// As the control plane does: read the release, mark it pending, roll out.
	if err := h.store.SetReleaseStatus(ctx, "app", 1, store.StatusPending, "rollback from 2"); err != nil {
		t.Fatal(err)
	}
	lines := h.rolloutOK(rel1, 1)
	if n := h.runner.count(); n != 2 {
		t.Errorf("release command ran again on rollback (%d runs)", n)
	}
	if indexOf(lines, "not running it again") < 0 {
		t.Errorf("progress = %q, want a line saying the release command is not run again", lines)
	}
	if a, _ := h.store.GetApp(ctx, "app"); a.Release != 1 {
		t.Errorf("live release after rollback = %d, want 1", a.Release)
	}
}

func TestWorkerOnlyAppHasNoRoutes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	// A web release first: moving to a worker-only one retires its web.
	h.rolloutOK(h.release("cron", h.image(nil), spec.Run{}, nil), 1)
	rel := h.release("cron", h.image(map[string]proc{Worker: {role: "worker"}}), spec.Run{}, nil)
	lines := h.rolloutOK(rel, 1)
	if indexOf(lines, "has no web process") < 0 {
		t.Errorf("progress = %q, want a note that there is nothing to route", lines)
	}
	h.waitFor("only the worker", func() bool {
		web, worker := h.byProcess("cron")
		return len(web) == 0 && len(worker) == 1
	})
	ids, reason := h.router.routes("cron")
	if len(ids) != 0 || reason != "app has no web process" {
		t.Errorf("routes = %v, reason %q; want none and %q", ids, reason, "app has no web process")
	}
	// Scaling web replicas runs none: there is no web process.
	if err := h.s.Scale(context.Background(), "cron", 3); err != nil {
		t.Fatalf("Scale: %v", err)
	}
	if web, worker := h.byProcess("cron"); len(web) != 0 || len(worker) != 1 {
		t.Errorf("after scale to 3: %d web, %d worker, want 0 and 1", len(web), len(worker))
	}
}

func TestReconcileKeepsBothCounts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	two := 2
	h.rolloutOK(h.release("app", h.image(appProcs()), spec.Run{Workers: &two}, nil), 1)
	count := func() (int, int) {
		w, k := h.byProcess("app")
		return len(w), len(k)
	}
	if w, k := count(); w != 1 || k != 2 {
		t.Fatalf("after rollout: %d web, %d workers, want 1 and 2", w, k)
	}
	ctx := context.Background()
	for _, n := range []int{2, 0, 1} {
		if err := h.s.Scale(ctx, "app", n); err != nil {
			t.Fatalf("Scale(%d): %v", n, err)
		}
		if w, k := count(); w != n || k != 2 {
			t.Errorf("after Scale(%d): %d web, %d workers, want %d and 2", n, w, k, n)
		}
	}
	if err := h.s.Reconcile(ctx, "app"); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if w, k := count(); w != 1 || k != 2 {
		t.Errorf("after Reconcile: %d web, %d workers, want 1 and 2", w, k)
	}
	if h.runner.count() != 1 {
		t.Errorf("release command ran %d times; scaling must not run it", h.runner.count())
	}
	zero := 0
	h.rolloutOK(h.release("app", h.image(appProcs()), spec.Run{Workers: &zero}, nil), 1)
	h.waitFor("no workers with run.workers 0", func() bool {
		w, k := count()
		return w == 1 && k == 0
	})
}

func TestImageWithoutProcessesRunsItsEntrypoint(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.rolloutOK(h.release("old", h.image(nil), spec.Run{}, nil), 1)
	rows := h.s.Instances("old")
	if len(rows) != 1 || rows[0].State != "healthy" || ProcessOf(rows[0].ID) != Web || strings.Count(rows[0].ID, "-") != 2 {
		t.Errorf("rows = %+v, want one healthy web sandbox named <app>-<rel>-<hex>", rows)
	}
	if h.runner.count() != 0 {
		t.Errorf("an image without a release process ran %d release commands", h.runner.count())
	}
	one := 1
	if _, err := h.rollout(h.release("old", h.image(nil), spec.Run{Workers: &one}, nil), 1); err == nil ||
		!strings.Contains(err.Error(), "declares no worker process") {
		t.Errorf("Rollout(workers: 1 of an image without a worker) = %v, want it refused", err)
	}
}

func TestRestartAdoptsWorkers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.rolloutOK(h.release("app", h.image(appProcs()), spec.Run{}, nil), 1)
	before := h.s.Instances("app")
	pids := map[string]int{}
	for _, r := range before {
		pids[r.ID] = h.s.Pid(r.ID)
	}
	ctx := context.Background()
	if err := h.s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	h.start(h.driver.Restart())
	h.waitFor("the adopted sandboxes to be up", func() bool {
		rows := h.s.Instances("app")
		return len(rows) == 2 && rows[0].State != "starting" && rows[1].State != "starting"
	})
	web, worker := h.byProcess("app")
	if len(web) != 1 || len(worker) != 1 || worker[0].State != "running" || web[0].State != "healthy" {
		t.Fatalf("after restart rows = %+v, want the web healthy and the worker running", h.s.Instances("app"))
	}
	for _, r := range append(web, worker...) {
		if p := h.s.Pid(r.ID); p != pids[r.ID] {
			t.Errorf("%s has pid %d after restart, want %d (adopted, not restarted)", r.ID, p, pids[r.ID])
		}
	}
	if ids, _ := h.router.routes("app"); !slices.Equal(ids, []string{web[0].ID}) {
		t.Errorf("after restart routed to %v, want only %s", ids, web[0].ID)
	}
	if h.runner.count() != 1 {
		t.Errorf("a restart ran the release command again (%d runs)", h.runner.count())
	}
}
