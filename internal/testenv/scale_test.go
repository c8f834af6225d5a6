package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"noops/internal/apiclient"
	"noops/internal/errkind"
)

// TestScaleToZero deploys hello-go with run.scale min 0: the deploy starts
// one replica, which goes away after the idle time; a burst of 50
// concurrent requests at zero replicas is held by the gateway while one
// starts, and every request succeeds.
func TestScaleToZero(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := Start(t, Options{})
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(Example(t, "hello-go"))); err != nil {
		t.Fatal(err)
	}
	manifest := "name: lazy\nrun:\n  health: /healthz\n  memory: 64Mi\n  scale: { min: 0, max: 3, concurrency: 10, idle: 2s, window: 6s }\n"
	if err := os.WriteFile(filepath.Join(dir, "noops.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, log, err := e.Deploy(t, dir, "lazy"); err != nil {
		t.Fatalf("deploy: %v\n%v", err, log)
	}
	if code, _ := e.Get(t, "lazy", "/"); code != 200 {
		t.Fatalf("after the deploy: %d, want 200", code)
	}
	atZero := func() bool {
		a, err := e.Client.App(ctx, "lazy")
		if err != nil {
			t.Fatal(err)
		}
		ps, err := e.Client.Ps(ctx, "lazy")
		if err != nil {
			t.Fatal(err)
		}
		// At zero, what runs is at most the standby made for the next
		// cold start.
		for _, p := range ps {
			if p.State != "standby" {
				return false
			}
		}
		return a.Replicas == 0 && len(ps) <= 1
	}
	hasStandby := func() bool {
		ps, err := e.Client.Ps(ctx, "lazy")
		if err != nil {
			t.Fatal(err)
		}
		return len(ps) == 1 && ps[0].State == "standby"
	}
	waitUntil(t, 30*time.Second, "lazy to scale to zero", atZero)
	waitUntil(t, 30*time.Second, "a standby sandbox for lazy's next cold start", hasStandby)

	const n = 50
	start := time.Now()
	codes := make([]int, n)
	var wg sync.WaitGroup
	client := e.HTTPClient()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(e.URL("lazy", "/"))
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	t.Logf("a burst of %d requests at zero replicas took %s", n, time.Since(start))
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d of the burst at zero: %d, want 200", i, c)
		}
	}
	a, err := e.Client.App(ctx, "lazy")
	if err != nil {
		t.Fatal(err)
	}
	if a.Replicas < 1 {
		t.Errorf("after the burst the app wants %d replicas, want at least 1", a.Replicas)
	}
	sc, err := e.Client.Scaling(ctx, "lazy")
	if err != nil {
		t.Fatal(err)
	}
	if !sc.Autoscaled || sc.Scale == nil || sc.Scale.Max != 3 || sc.ColdStarts.Count != n || sc.ColdStarts.P50Ms <= 0 {
		t.Errorf("scaling after the burst = %+v, want autoscaled (max 3) with %d cold starts", sc, n)
	}
	prom, err := e.Client.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`noops_cold_start_seconds_count{app="lazy"} %d`, n); !strings.Contains(string(prom), want) {
		t.Errorf("metrics lack %q", want)
	}
	if _, err := e.Client.Scale(ctx, "lazy", 2); apiclient.Kind(err) != errkind.Conflict || !strings.Contains(err.Error(), "scales with its load") {
		t.Errorf("noops scale of an autoscaled app = %v, want a conflict", err)
	}

	// Idle again, it goes back to zero, with a new standby.
	waitUntil(t, 30*time.Second, "lazy to scale to zero again", atZero)
	waitUntil(t, 30*time.Second, "a new standby sandbox", hasStandby)
}

// waitUntil polls cond every 100ms until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
