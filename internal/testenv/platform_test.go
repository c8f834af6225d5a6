package testenv

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"noops/internal/apiclient"
	"noops/internal/apitype"
	"noops/internal/errkind"
)

// copyApp copies examples/hello-go into a temp folder the test may change.
func copyApp(t *testing.T) string {
	t.Helper()
	src := Example(t, "hello-go")
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func edit(t *testing.T, dir, file, old, new string) {
	t.Helper()
	p := filepath.Join(dir, file)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func deployOK(t *testing.T, e *Env, dir, app string) int {
	t.Helper()
	ev, log, err := e.Deploy(t, dir, app)
	if err != nil {
		t.Fatalf("deploy %s: %v\nlog:\n%s", app, err, strings.Join(log, "\n"))
	}
	return ev.Release.Number
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

func healthyPid(t *testing.T, e *Env, app string) int {
	t.Helper()
	sbs, err := e.Client.Ps(context.Background(), app)
	if err != nil {
		t.Fatalf("ps: %v", err)
	}
	for _, s := range sbs {
		if s.State == "healthy" && s.Pid > 0 {
			return s.Pid
		}
	}
	return 0
}

// TestPlatform runs the platform once and walks the life of an app through
// it: deploy, hardening, crash and restart, rolling deploy under load,
// rollback, env, bad input and a server restart with adoption.
func TestPlatform(t *testing.T) {
	e := Start(t, Options{StartTimeout: 8 * time.Second})
	ctx := context.Background()
	dir := copyApp(t)

	t.Run("deploy serves HTTPS verified by the CA", func(t *testing.T) {
		n := deployOK(t, e, dir, "hello")
		code, body := e.Get(t, "hello", "/")
		if code != 200 || !strings.Contains(body, "Release <b>"+strconv.Itoa(n)+"</b>") {
			t.Fatalf("GET / = %d %q, want 200 with release %d", code, body, n)
		}
		resp, err := e.HTTPClient().Get(e.URL("hello", "/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Strict-Transport-Security") == "" || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("response headers %v lack HSTS or X-Request-Id", resp.Header)
		}
	})

	t.Run("sandbox is hardened", func(t *testing.T) {
		pid := healthyPid(t, e, "hello")
		if pid == 0 {
			t.Fatal("no healthy sandbox with a pid")
		}
		status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]string{}
		for _, l := range strings.Split(string(status), "\n") {
			k, v, _ := strings.Cut(l, ":")
			fields[k] = strings.TrimSpace(v)
		}
		want := map[string]string{"Seccomp": "2", "NoNewPrivs": "1", "CapEff": "0000000000000000",
			"CapPrm": "0000000000000000", "CapBnd": "0000000000000000", "CapAmb": "0000000000000000"}
		for k, v := range want {
			if fields[k] != v {
				t.Errorf("/proc/%d/status %s = %q, want %q", pid, k, fields[k], v)
			}
		}
		if uid := strings.Fields(fields["Uid"]); len(uid) == 0 || uid[0] != "65532" || uid[1] != "65532" {
			t.Errorf("Uid = %q, want 65532", fields["Uid"])
		}
		mi, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		rootRO := false
		for _, l := range strings.Split(string(mi), "\n") {
			f := strings.Fields(l)
			if len(f) > 5 && f[4] == "/" {
				rootRO = strings.HasPrefix(f[5], "ro")
			}
		}
		if !rootRO {
			t.Errorf("root of the sandbox is not mounted read-only:\n%s", mi)
		}
		self, _ := os.Readlink("/proc/self/ns/net")
		theirs, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
		if self == theirs || theirs == "" {
			t.Errorf("sandbox shares the host's network namespace (%s)", theirs)
		}
	})

	t.Run("killed app is restarted", func(t *testing.T) {
		pid := healthyPid(t, e, "hello")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a restarted, healthy sandbox", 30*time.Second, func() bool {
			p := healthyPid(t, e, "hello")
			return p != 0 && p != pid
		})
		sbs, _ := e.Client.Ps(ctx, "hello")
		if sbs[0].Restarts < 1 || !strings.Contains(sbs[0].LastExit, "SIGKILL") {
			t.Errorf("ps after kill = %+v, want a restart after SIGKILL", sbs[0])
		}
	})

	t.Run("rolling deploy has no failed requests", func(t *testing.T) {
		if _, err := e.Client.Scale(ctx, "hello", 2); err != nil {
			t.Fatalf("scale: %v", err)
		}
		edit(t, dir, "main.go", "Hello from noops", "Hello again from noops")
		var ok, failed atomic.Int64
		var firstErr atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		client := e.HTTPClient()
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 5000; i++ { // bounded
					select {
					case <-stop:
						return
					default:
					}
					resp, err := client.Get(e.URL("hello", "/"))
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == 200 {
							ok.Add(1)
							continue
						}
						err = errkind.Errorf(errkind.Internal, "status %d", resp.StatusCode)
					}
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}()
		}
		n := deployOK(t, e, dir, "hello")
		close(stop)
		wg.Wait()
		if failed.Load() != 0 {
			t.Errorf("%d of %d requests failed during the rolling deploy; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
		}
		if ok.Load() == 0 {
			t.Error("no request succeeded during the deploy")
		}
		if _, body := e.Get(t, "hello", "/"); !strings.Contains(body, "Hello again") || !strings.Contains(body, "<b>"+strconv.Itoa(n)+"</b>") {
			t.Errorf("after deploy body = %q, want the new release %d", body, n)
		}
		a, _ := e.Client.App(ctx, "hello")
		if a.Replicas != 2 || a.Healthy != 2 {
			t.Errorf("after deploy app = %+v, want 2 healthy replicas", a)
		}
	})

	t.Run("rollback switches without a rebuild", func(t *testing.T) {
		before, _ := e.Client.App(ctx, "hello")
		rel, err := e.Client.Rollback(ctx, "hello", 0)
		if err != nil {
			t.Fatalf("rollback: %v", err)
		}
		if rel.Number >= before.Release {
			t.Errorf("rollback went to %d, want a release before %d", rel.Number, before.Release)
		}
		if _, body := e.Get(t, "hello", "/"); strings.Contains(body, "Hello again") {
			t.Errorf("after rollback body = %q, want the old page", body)
		}
	})

	t.Run("env set makes a new release", func(t *testing.T) {
		before, _ := e.Client.App(ctx, "hello")
		rel, err := e.Client.SetEnv(ctx, "hello", apitype.EnvRequest{Set: map[string]string{"GREETING": "hi"}})
		if err != nil {
			t.Fatalf("env set: %v", err)
		}
		if rel.Number <= before.Release {
			t.Errorf("env set made release %d, want > %d", rel.Number, before.Release)
		}
		env, err := e.Client.Env(ctx, "hello")
		if err != nil || env.Env["GREETING"] != "hi" {
			t.Errorf("env list = %+v, %v; want GREETING=hi", env, err)
		}
	})

	t.Run("deploys, rollbacks and config changes are markers in time", func(t *testing.T) {
		marks, err := e.Client.Events(ctx, apiclient.EventQuery{App: "hello", Kinds: []string{"deploy", "rollback", "config"}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, m := range marks {
			kinds = append(kinds, m.Kind)
		}
		if got := strings.Join(kinds, ","); !strings.HasPrefix(got, "deploy,deploy") || !strings.HasSuffix(got, "rollback,config") {
			t.Fatalf("markers %s, want deploys, then the rollback and the env change", got)
		}
		last := marks[len(marks)-1]
		if !strings.Contains(last.Message, "env set GREETING") {
			t.Errorf("config marker %q", last.Message)
		}
		since, err := e.Client.Events(ctx, apiclient.EventQuery{App: "hello", Kinds: []string{"deploy", "rollback", "config"}, From: last.Time})
		if err != nil || len(since) != 1 || since[0].Seq != last.Seq {
			t.Errorf("markers from %s = %+v, %v; want the last one only", last.Time, since, err)
		}
	})

	t.Run("bad deploys keep the live release serving", func(t *testing.T) {
		live, _ := e.Client.App(ctx, "hello")
		tests := []struct {
			name   string
			change func(dir string)
			want   string
			kind   errkind.Kind
		}{
			{"compile error", func(d string) { edit(t, d, "main.go", "func main() {", "func main() {\n\tundefinedThing()") },
				"undefined: undefinedThing", errkind.Invalid},
			{"manifest typo", func(d string) { edit(t, d, "noops.yaml", "port: 8080", "prot: 8080") },
				"line 3: field prot not found", errkind.Invalid},
			{"never listens", func(d string) { edit(t, d, "main.go", `Addr: ":" + port`, `Addr: "127.0.0.1:" + port`) },
				"did not pass its health check", errkind.Invalid},
			{"no app", func(d string) { os.Remove(filepath.Join(d, "go.mod")) },
				"no recognised app", errkind.Invalid},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				d := copyApp(t)
				tc.change(d)
				_, _, err := e.Deploy(t, d, "hello")
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("deploy = %v, want error containing %q", err, tc.want)
				}
				if k := apiclient.Kind(err); k != tc.kind {
					t.Errorf("deploy error kind = %v, want %v", k, tc.kind)
				}
				if code, _ := e.Get(t, "hello", "/"); code != 200 {
					t.Errorf("live release answers %d after a bad deploy, want 200", code)
				}
				a, _ := e.Client.App(ctx, "hello")
				if a.Release != live.Release {
					t.Errorf("live release = %d after a bad deploy, want %d", a.Release, live.Release)
				}
			})
		}
	})

	t.Run("a full disk during upload changes nothing", func(t *testing.T) { testFullDisk(t, e, "hello") })
	t.Run("a client gone mid-upload changes nothing", func(t *testing.T) { testDisconnect(t, e, "hello") })

	t.Run("server restart re-adopts sandboxes", func(t *testing.T) {
		before, _ := e.Client.Ps(ctx, "hello")
		e.Restart(t)
		code, _ := e.Get(t, "hello", "/")
		if code != 200 {
			t.Fatalf("after restart GET = %d, want 200", code)
		}
		after, err := e.Client.Ps(ctx, "hello")
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Fatalf("after restart %d sandboxes %+v, want %d: %+v", len(after), after, len(before), before)
		}
		for i := range before {
			if after[i].ID != before[i].ID || after[i].Pid != before[i].Pid {
				t.Errorf("sandbox %d after restart = %s pid %d, want %s pid %d (adopted, not restarted)",
					i, after[i].ID, after[i].Pid, before[i].ID, before[i].Pid)
			}
		}
		rels, _ := e.Client.Releases(ctx, "hello")
		if len(rels) < 4 {
			t.Errorf("releases after restart = %d, want every release kept", len(rels))
		}
	})

	t.Run("audit log records mutating calls", func(t *testing.T) {
		rows, err := e.Client.Audit(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var deploys, envs int
		for _, r := range rows {
			if strings.Contains(r.Action, "/deploy") {
				deploys++
			}
			if strings.Contains(r.Action, "/env") {
				envs++
				if strings.Contains(r.Detail, "hi") {
					t.Errorf("audit record leaks an env value: %+v", r)
				}
			}
		}
		if deploys < 3 || envs != 1 {
			t.Errorf("audit has %d deploys and %d env changes, want >= 3 and 1", deploys, envs)
		}
	})

	t.Run("deleted app's sandboxes are removed", func(t *testing.T) {
		sbs, _ := e.Client.Ps(ctx, "hello")
		if err := e.Client.DeleteApp(ctx, "hello"); err != nil {
			t.Fatal(err)
		}
		for _, s := range sbs {
			if s.Pid > 0 {
				if err := syscall.Kill(s.Pid, 0); err == nil {
					t.Errorf("process %d of deleted app still runs", s.Pid)
				}
			}
		}
		if code, _ := e.Get(t, "hello", "/"); code != 404 {
			t.Errorf("GET deleted app = %d, want 404", code)
		}
	})
}
