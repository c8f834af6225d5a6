package testenv

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"noops/internal/apiclient"
	"noops/internal/apitype"
	"noops/internal/errkind"
	"noops/internal/supervisor"
)

// byProcess splits an app's ps rows into web and worker sandboxes.
func byProcess(t *testing.T, e *Env, app string) (web, worker []apitype.Sandbox) {
	t.Helper()
	sbs, err := e.Client.Ps(context.Background(), app)
	if err != nil {
		t.Fatalf("ps %s: %v", app, err)
	}
	for _, s := range sbs {
		switch p := supervisor.ProcessOf(s.ID); p {
		case supervisor.Web:
			web = append(web, s)
		case supervisor.Worker:
			worker = append(worker, s)
		default:
			t.Errorf("ps %s lists %s, a %s sandbox", app, s.ID, p)
		}
	}
	return web, worker
}

// logsContain reports whether the app's recent log lines hold want.
func logsContain(t *testing.T, e *Env, app, want string) bool {
	t.Helper()
	found := false
	err := e.Client.Logs(context.Background(), app, apitype.LogQuery{Lines: 500}, func(l apitype.LogLine) error {
		found = found || strings.Contains(l.Line, want)
		return nil
	})
	if err != nil {
		t.Fatalf("logs %s: %v", app, err)
	}
	return found
}

// TestProcessTypes deploys examples/worker-procfile (a Procfile with web,
// worker and release processes) on the real platform: the release command
// runs before the release goes live and its output is in the deploy log,
// the web is routed and the worker runs beside it unrouted, a failing
// release command refuses a release while the previous one keeps serving,
// and a killed worker is restarted.
func TestProcessTypes(t *testing.T) {
	e := Start(t, Options{StartTimeout: 8 * time.Second})
	ctx := context.Background()
	const app = "worker-procfile"
	var n int

	t.Run("deploy runs the release command first", func(t *testing.T) {
		ev, log, err := e.Deploy(t, Example(t, app), app)
		if err != nil {
			t.Fatalf("deploy %s: %v\nlog:\n%s", app, err, strings.Join(log, "\n"))
		}
		n = ev.Release.Number
		want := fmt.Sprintf("release: migrate: release %d: schema is up to date", n)
		at := -1
		for i, l := range log {
			if strings.Contains(l, want) {
				at = i
				break
			}
		}
		if at < 0 {
			t.Fatalf("deploy log lacks %q:\n%s", want, strings.Join(log, "\n"))
		}
		for _, l := range log[:at] {
			if strings.Contains(l, "starting replica") || strings.Contains(l, "starting worker") {
				t.Errorf("deploy log starts a sandbox (%q) before the release command ran:\n%s", l, strings.Join(log, "\n"))
			}
		}
	})
	if n == 0 {
		t.Fatal("nothing deployed; the rest cannot run")
	}

	t.Run("ps shows one web and one worker", func(t *testing.T) {
		web, worker := byProcess(t, e, app)
		if len(web) != 1 || len(worker) != 1 {
			t.Fatalf("ps = %+v, %+v; want one web and one worker sandbox", web, worker)
		}
		if web[0].State != "healthy" || web[0].Release != n || web[0].Addr == "" {
			t.Errorf("web sandbox = %+v, want healthy release %d with an address", web[0], n)
		}
		if worker[0].State != "running" || worker[0].Release != n || worker[0].Addr != "" || worker[0].Pid == 0 {
			t.Errorf("worker sandbox = %+v, want running release %d, unrouted, with a pid", worker[0], n)
		}
	})

	t.Run("web answers over HTTPS", func(t *testing.T) {
		code, body := e.Get(t, app, "/")
		if code != 200 || !strings.Contains(body, "web process of release "+strconv.Itoa(n)) {
			t.Fatalf("GET / = %d %q, want 200 from the web process of release %d", code, body, n)
		}
	})

	t.Run("worker's output is in the logs", func(t *testing.T) {
		want := fmt.Sprintf("worker: release %d did job", n)
		waitFor(t, "the worker's log line "+strconv.Quote(want), 30*time.Second, func() bool { return logsContain(t, e, app, want) })
	})

	t.Run("worker is hardened like the web", func(t *testing.T) {
		_, worker := byProcess(t, e, app)
		if len(worker) != 1 || worker[0].Pid == 0 {
			t.Fatalf("no running worker: %+v", worker)
		}
		pid := strconv.Itoa(worker[0].Pid)
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]string{}
		for _, l := range strings.Split(string(status), "\n") {
			k, v, _ := strings.Cut(l, ":")
			fields[k] = strings.TrimSpace(v)
		}
		for k, v := range map[string]string{"Seccomp": "2", "NoNewPrivs": "1", "CapEff": "0000000000000000"} {
			if fields[k] != v {
				t.Errorf("worker /proc/%s/status %s = %q, want %q", pid, k, fields[k], v)
			}
		}
		if uid := strings.Fields(fields["Uid"]); len(uid) == 0 || uid[0] != "65532" {
			t.Errorf("worker Uid = %q, want 65532", fields["Uid"])
		}
		self, _ := os.Readlink("/proc/self/ns/net")
		theirs, _ := os.Readlink("/proc/" + pid + "/ns/net")
		if theirs == "" || theirs == self {
			t.Errorf("worker shares the host's network namespace (%s)", theirs)
		}
	})

	t.Run("a failing release command refuses the release", func(t *testing.T) {
		beforeWeb, beforeWorker := byProcess(t, e, app)
		_, err := e.Client.SetEnv(ctx, app, apitype.EnvRequest{Set: map[string]string{"FAIL_RELEASE": "1"}})
		if err == nil {
			t.Fatal("env set FAIL_RELEASE=1 succeeded, want the release command to refuse it")
		}
		for _, want := range []string{"release command", "exit 1", "refused (FAIL_RELEASE=1)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("env set error = %q, want it to contain %q", err, want)
			}
		}
		if k := apiclient.Kind(err); k != errkind.Invalid {
			t.Errorf("env set error kind = %v, want %v", k, errkind.Invalid)
		}
		a, err := e.Client.App(ctx, app)
		if err != nil || a.Release != n {
			t.Errorf("live release after the refused one = %d (%v), want %d", a.Release, err, n)
		}
		rels, err := e.Client.Releases(ctx, app)
		if err != nil || len(rels) == 0 || rels[0].Number <= n || rels[0].Status != "failed" || !strings.Contains(rels[0].Reason, "FAIL_RELEASE") {
			t.Errorf("newest release = %+v (%v), want a failed one after %d naming the release command's output", rels, err, n)
		}
		afterWeb, afterWorker := byProcess(t, e, app)
		if len(afterWeb) != 1 || len(afterWorker) != 1 || afterWeb[0].ID != beforeWeb[0].ID || afterWorker[0].ID != beforeWorker[0].ID {
			t.Errorf("ps after the refused release = %+v %+v, want unchanged %+v %+v", afterWeb, afterWorker, beforeWeb, beforeWorker)
		}
		if code, body := e.Get(t, app, "/"); code != 200 || !strings.Contains(body, "release "+strconv.Itoa(n)) {
			t.Errorf("GET / after the refused release = %d %q, want 200 from release %d", code, body, n)
		}
	})

	t.Run("killed worker is restarted", func(t *testing.T) {
		_, worker := byProcess(t, e, app)
		if len(worker) != 1 || worker[0].Pid == 0 {
			t.Fatalf("no running worker: %+v", worker)
		}
		id, pid := worker[0].ID, worker[0].Pid
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the worker to run again", 30*time.Second, func() bool {
			_, w := byProcess(t, e, app)
			return len(w) == 1 && w[0].State == "running" && w[0].Pid != 0 && w[0].Pid != pid
		})
		_, w := byProcess(t, e, app)
		if w[0].ID != id || w[0].Restarts < 1 || !strings.Contains(w[0].LastExit, "SIGKILL") {
			t.Errorf("worker after kill = %+v, want %s restarted after SIGKILL", w[0], id)
		}
		if code, _ := e.Get(t, app, "/"); code != 200 {
			t.Errorf("GET / while the worker restarted = %d, want 200", code)
		}
	})
	t.Run("server restart adopts the worker", func(t *testing.T) {
		beforeWeb, beforeWorker := byProcess(t, e, app)
		e.Restart(t)
		waitFor(t, "the adopted sandboxes", 30*time.Second, func() bool {
			web, worker := byProcess(t, e, app)
			return len(web) == 1 && web[0].State == "healthy" && len(worker) == 1 && worker[0].State == "running"
		})
		web, worker := byProcess(t, e, app)
		if web[0].ID != beforeWeb[0].ID || web[0].Pid != beforeWeb[0].Pid || worker[0].ID != beforeWorker[0].ID || worker[0].Pid != beforeWorker[0].Pid {
			t.Errorf("after restart web %s pid %d, worker %s pid %d; want %s pid %d and %s pid %d (adopted, not restarted)",
				web[0].ID, web[0].Pid, worker[0].ID, worker[0].Pid, beforeWeb[0].ID, beforeWeb[0].Pid, beforeWorker[0].ID, beforeWorker[0].Pid)
		}
		if code, _ := e.Get(t, app, "/"); code != 200 {
			t.Errorf("GET / after restart = %d, want 200", code)
		}
	})
}
