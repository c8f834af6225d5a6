package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"noops/internal/testenv"
	"noops/internal/testenv/need"
)

// TestServerKill9 kills the server with SIGKILL while a client sends a
// request every 10ms, and starts it again on the same data folder: the
// requests fail only between the kill and the new server's start, the
// sandbox survives (same ID, same process) and is adopted, and nothing in
// the store is lost.
func TestServerKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	need.Sandbox(t)
	noops := testenv.Binary(t)
	data := t.TempDir()
	https := freePort(t)
	env := append(os.Environ(), "NOOPS_DATA="+data, "NOOPS_STACK_DEBS="+filepath.Join(os.TempDir(), "noops-test-debs"))
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(noops, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("noops %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	start := func() *exec.Cmd {
		t.Helper()
		cmd := exec.Command(noops, "server", "--data", data, "--https", https, "--http", "off", "--internal", ":0", "--stop-sandboxes")
		cmd.Env = env
		logf, err := os.OpenFile(filepath.Join(data, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if c, err := net.Dial("unix", filepath.Join(data, "api.sock")); err == nil {
				c.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(filepath.Join(data, "server.log"))
				t.Fatalf("the server did not start in 30s:\n%s", log)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	server := start()
	t.Cleanup(func() {
		_ = server.Process.Signal(syscall.SIGTERM) // --stop-sandboxes: it stops them
		done := make(chan struct{})
		go func() { _ = server.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = server.Process.Kill()
		}
	})
	run("deploy", filepath.Join(repoRoot(t), "examples", "hello-go"))
	type sandbox struct {
		ID  string `json:"id"`
		Pid int    `json:"pid"`
	}
	ps := func() []sandbox {
		var out []sandbox
		if err := json.Unmarshal(run("ps", "hello", "--json"), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := ps()
	if len(before) != 1 || before[0].Pid == 0 {
		t.Fatalf("ps before = %+v, want one running sandbox", before)
	}

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(run("ca", "root")) {
		t.Fatal("noops ca root printed no certificate")
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "hello.localhost"},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, https)
		}}}
	type result struct {
		at time.Time
		ok bool
	}
	var mu sync.Mutex
	var results []result
	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		end := time.Now().Add(60 * time.Second) // bounded, whatever happens
		for time.Now().Before(end) {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			resp, err := client.Get("https://hello.localhost/")
			ok := err == nil && resp.StatusCode == 200
			if err == nil {
				resp.Body.Close()
			}
			mu.Lock()
			results = append(results, result{time.Now(), ok})
			mu.Unlock()
		}
	}()

	time.Sleep(time.Second)
	killed := time.Now()
	if err := server.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = server.Wait()
	time.Sleep(500 * time.Millisecond) // the outage a crash and a supervisor restart would make
	restarted := time.Now()
	server = start()
	serving := time.Time{}
	deadline := time.Now().Add(30 * time.Second)
	for serving.IsZero() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		mu.Lock()
		if n := len(results); n > 0 && results[n-1].ok && results[n-1].at.After(restarted) {
			serving = results[n-1].at
		}
		mu.Unlock()
	}
	time.Sleep(time.Second) // requests after it serves again must all succeed
	close(stop)
	<-loopDone
	if serving.IsZero() {
		t.Fatalf("the app did not serve again within 30s of the restart")
	}
	t.Logf("killed at +0, new server started at +%s, serving again at +%s (%s after the new server started)",
		restarted.Sub(killed).Round(time.Millisecond), serving.Sub(killed).Round(time.Millisecond), serving.Sub(restarted).Round(time.Millisecond))
	var okBefore, failedOutside int
	for _, r := range results {
		switch {
		case r.at.Before(killed):
			if r.ok {
				okBefore++
			} else {
				failedOutside++
			}
		case !r.at.Before(serving) && !r.ok:
			failedOutside++
		}
	}
	if okBefore == 0 || failedOutside > 0 {
		t.Errorf("%d requests succeeded before the kill and %d failed outside the outage; want some, and none", okBefore, failedOutside)
	}
	after := ps()
	if len(after) != 1 || after[0].ID != before[0].ID || after[0].Pid != before[0].Pid {
		t.Errorf("ps after the restart = %+v, want the same sandbox and process as before, %+v", after, before)
	}
	var releases []struct {
		Number int    `json:"number"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(run("releases", "hello", "--json"), &releases); err != nil || len(releases) != 1 || releases[0].Status != "live" {
		t.Errorf("releases after the restart = %+v (%v), want release 1 live", releases, err)
	}
}
