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

// scaledApp copies hello-go with a noops.yaml naming it app with the
// given run.scale section, and extra handlers: /slow sleeps 200ms.
func scaledApp(t *testing.T, app, scale string) string {
	t.Helper()
	dir := copyApp(t)
	manifest := fmt.Sprintf("name: %s\nrun:\n  health: /healthz\n  memory: 64Mi\n  scale: %s\naccess: { policy: public }\n", app, scale)
	if err := os.WriteFile(filepath.Join(dir, "noops.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	edit(t, dir, "main.go", `	mux.HandleFunc("GET /healthz",`, `	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(200 * time.Millisecond)
		fmt.Fprintln(w, "slow")
	})
	mux.HandleFunc("GET /healthz",`)
	return dir
}

// TestScaleToZero deploys hello-go with run.scale min 0: the deploy starts
// one replica, which goes away after the idle time, leaving a standby
// sandbox; a burst of 50 concurrent requests at zero replicas is held by
// the gateway while the standby starts, and every request succeeds.
func TestScaleToZero(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := Start(t, Options{})
	ctx := context.Background()
	deployOK(t, e, scaledApp(t, "lazy", "{ min: 0, max: 3, concurrency: 10, idle: 2s, window: 6s }"), "lazy")
	if code, _ := e.Get(t, "lazy", "/"); code != 200 {
		t.Fatalf("after the deploy: %d, want 200", code)
	}
	// At zero, what runs is the standby made for the next cold start.
	atZero := func() bool {
		a, err := e.Client.App(ctx, "lazy")
		if err != nil {
			t.Fatal(err)
		}
		ps, err := e.Client.Ps(ctx, "lazy")
		if err != nil {
			t.Fatal(err)
		}
		return a.Replicas == 0 && len(ps) == 1 && ps[0].State == "standby"
	}
	waitFor(t, "lazy at zero replicas with a standby", 30*time.Second, atZero)

	const n = 50
	codes := make([]int, n)
	var wg sync.WaitGroup
	client := e.HTTPClient()
	start := time.Now()
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
	sc, err := e.Client.Scaling(ctx, "lazy")
	if err != nil {
		t.Fatal(err)
	}
	// Requests that arrived once the replica served were not held: a
	// cold start is counted for each held one.
	if sc.Desired < 1 || !sc.Autoscaled || sc.Scale == nil || sc.Scale.Max != 3 || sc.ColdStarts.Count < 1 || sc.ColdStarts.Count > n || sc.ColdStarts.P50Ms <= 0 {
		t.Errorf("scaling after the burst = %+v, want at least one replica, autoscaled (max 3), 1 to %d cold starts", sc, n)
	}
	prom, err := e.Client.Metrics(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`noops_cold_start_seconds_count{app="lazy"} %d`, sc.ColdStarts.Count); !strings.Contains(string(prom), want) {
		t.Errorf("metrics lack %q", want)
	}
	if _, err := e.Client.Scale(ctx, "lazy", 2); apiclient.Kind(err) != errkind.Conflict || !strings.Contains(err.Error(), "scales with its load") {
		t.Errorf("noops scale of an autoscaled app = %v, want a conflict", err)
	}
	// Idle again, it goes back to zero, with a new standby.
	waitFor(t, "lazy at zero again", 30*time.Second, atZero)
}

// TestScaleWithLoad: four clients looping on a 200ms endpoint of an app
// whose target is one request in flight per replica raise its replicas;
// when they stop, the count falls back to min after the stable window.
func TestScaleWithLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	e := Start(t, Options{})
	ctx := context.Background()
	deployOK(t, e, scaledApp(t, "busy", "{ min: 1, max: 3, concurrency: 1, window: 6s }"), "busy")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	client := e.HTTPClient()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(40 * time.Second) // bounded, whatever happens
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(e.URL("busy", "/slow"))
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					mu.Lock()
					failures++
					mu.Unlock()
				}
			}
		}()
	}
	most := 0
	waitFor(t, "busy to scale up under load", 30*time.Second, func() bool {
		sc, err := e.Client.Scaling(ctx, "busy")
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, sc.Ready)
		return sc.Ready >= 2
	})
	close(stop)
	wg.Wait()
	mu.Lock()
	if failures > 0 {
		t.Errorf("%d requests failed while scaling up", failures)
	}
	mu.Unlock()
	waitFor(t, "busy to fall back to one replica", 60*time.Second, func() bool {
		sc, err := e.Client.Scaling(ctx, "busy")
		if err != nil {
			t.Fatal(err)
		}
		return sc.Desired == 1 && sc.Ready == 1
	})
	if code, _ := e.Get(t, "busy", "/"); code != 200 {
		t.Errorf("after scaling down: %d, want 200", code)
	}
}
