package gateway

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wakerFunc is a Waker.
type wakerFunc func(app string)

func (f wakerFunc) Wake(app string) { f(app) }

// held returns how many requests the gateway holds for app.
func held(g *Gateway, app string) int {
	g.mu.Lock()
	l := g.loadOf(app)
	g.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// burst is how many requests TestColdStartBurst sends at once.
const burst = 50

// TestColdStartBurst: 50 concurrent requests for an app at zero are held
// while the waker brings a backend, then all succeed; the load counts them
// and each reports its cold start.
func TestColdStartBurst(t *testing.T) {
	var tg *testGateway
	u := newUpstream(t, "up")
	var wakes atomic.Int32
	var once sync.Once
	var mu sync.Mutex
	var cold []time.Duration
	tg = startGateway(t, false, func(c *Config) {
		c.Waker = wakerFunc(func(app string) {
			wakes.Add(1)
			once.Do(func() {
				go func() {
					// The sandbox is ready once every request of the burst
					// waits, and a little later.
					deadline := time.Now().Add(10 * time.Second)
					for held(tg.Gateway, app) < burst && time.Now().Before(deadline) {
						time.Sleep(time.Millisecond)
					}
					time.Sleep(20 * time.Millisecond)
					tg.SetBackends(app, []Backend{u.backend()}, "")
				}()
			})
		})
		c.ColdStart = func(app string, d time.Duration) {
			mu.Lock()
			cold = append(cold, d)
			mu.Unlock()
		}
	})
	tg.SetBackends("app", nil, "scaled to zero")
	tg.SetColdStart("app", true)
	const n = burst
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = tg.get(t, tg.url("app."+testDomain, "/"), nil).status
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: status %d, want 200", i, c)
		}
	}
	if wakes.Load() == 0 {
		t.Errorf("the waker was never called")
	}
	inflight, arrived := tg.Load("app")
	if inflight != 0 || arrived != n {
		t.Errorf("Load = %d in flight, %d arrived; want 0, %d", inflight, arrived, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(cold) != n {
		t.Fatalf("%d cold starts reported, want %d", len(cold), n)
	}
	for _, d := range cold {
		if d < 20*time.Millisecond {
			t.Errorf("a cold start of %s: shorter than the backend took to appear", d)
		}
	}
	// Warm now: no more cold starts, no wake.
	before := wakes.Load()
	if r := tg.get(t, tg.url("app."+testDomain, "/"), nil); r.status != 200 || len(cold) != n || wakes.Load() != before {
		t.Errorf("warm request: %d, %d cold starts, %d wakes; want 200 and no new ones", r.status, len(cold), wakes.Load()-before)
	}
}

// TestColdStartQueueFull: beyond HoldQueue a request gets a 503 with
// Retry-After at once; the held ones are served once a backend comes.
func TestColdStartQueueFull(t *testing.T) {
	u := newUpstream(t, "up")
	tg := startGateway(t, false, func(c *Config) { c.HoldQueue = 2 })
	tg.SetBackends("app", nil, "scaled to zero")
	tg.SetColdStart("app", true)
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = tg.get(t, tg.url("app."+testDomain, "/"), nil).status }()
	}
	waitFor(t, "two held requests", func() bool { return held(tg.Gateway, "app") == 2 })
	r := tg.get(t, tg.url("app."+testDomain, "/"), nil)
	if r.status != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "too many requests are waiting") {
		t.Errorf("third request: %d Retry-After %q %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
	}
	tg.SetBackends("app", []Backend{u.backend()}, "")
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Errorf("held requests got %v, want 200s", codes)
	}
}

// TestColdStartTimeout: a request held longer than HoldTimeout gets a 503.
func TestColdStartTimeout(t *testing.T) {
	tg := startGateway(t, false, func(c *Config) { c.HoldTimeout = 100 * time.Millisecond })
	tg.SetBackends("app", nil, "scaled to zero")
	tg.SetColdStart("app", true)
	start := time.Now()
	r := tg.get(t, tg.url("app."+testDomain, "/"), nil)
	if r.status != 503 || !strings.Contains(r.body, "did not start within 100ms") {
		t.Errorf("got %d %q, want a 503 saying the app did not start", r.status, r.body)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Errorf("answered after %s, before the timeout", time.Since(start))
	}
	if inflight, _ := tg.Load("app"); inflight != 0 {
		t.Errorf("%d in flight after the timeout, want 0", inflight)
	}
}

// TestColdStartOff: without cold starts a request for an app without a
// backend gets its 503 at once, and turning them off releases held ones;
// removing the app answers held requests with 404.
func TestColdStartOff(t *testing.T) {
	tg := startGateway(t, false)
	tg.SetBackends("app", nil, "scaled to zero")
	if r := tg.get(t, tg.url("app."+testDomain, "/"), nil); r.status != 503 {
		t.Errorf("cold starts off: %d, want 503", r.status)
	}
	tg.SetColdStart("app", true)
	done := make(chan int)
	go func() { done <- tg.get(t, tg.url("app."+testDomain, "/"), nil).status }()
	waitFor(t, "a held request", func() bool { return held(tg.Gateway, "app") == 1 })
	tg.SetColdStart("app", false)
	if c := <-done; c != 503 {
		t.Errorf("held request after cold starts went off: %d, want 503", c)
	}
	tg.SetColdStart("app", true)
	go func() { done <- tg.get(t, tg.url("app."+testDomain, "/"), nil).status }()
	waitFor(t, "a held request", func() bool { return held(tg.Gateway, "app") == 1 })
	tg.RemoveApp("app")
	if c := <-done; c != 404 {
		t.Errorf("held request after the app was removed: %d, want 404", c)
	}
}
