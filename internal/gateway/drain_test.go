package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"noops/internal/errkind"
)

// slowUpstream answers after delay, or when release is closed if delay is 0;
// started receives a value when a request arrives.
func slowUpstream(t *testing.T, delay time.Duration, release <-chan struct{}) (*httptest.Server, <-chan struct{}, *atomic.Bool) {
	started := make(chan struct{}, 1)
	var finished atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		if delay > 0 {
			time.Sleep(delay)
		} else {
			<-release
		}
		io.WriteString(w, "slow")
		finished.Store(true)
	}))
	t.Cleanup(up.Close)
	return up, started, &finished
}

func TestDrainWaitsForInFlight(t *testing.T) {
	tg := startGateway(t, false)
	up, started, finished := slowUpstream(t, 300*time.Millisecond, nil)
	tg.SetBackends("hello", []Backend{{ID: "old", Addr: up.Listener.Addr().String()}}, "")
	got := make(chan response, 1)
	go func() { got <- tg.get(t, tg.url("hello.localhost", "/"), nil) }()
	<-started
	tg.SetBackends("hello", nil, "rolling out") // the supervisor removes it first
	begin := time.Now()
	if err := tg.Drain(context.Background(), "old"); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if !finished.Load() {
		t.Errorf("Drain returned after %v, before the in-flight request finished", time.Since(begin))
	}
	if res := <-got; res.status != 200 || res.body != "slow" {
		t.Errorf("request in flight during Drain = %d %q, want 200 slow", res.status, res.body)
	}
	tg.mu.Lock()
	_, kept := tg.backends["old"]
	tg.mu.Unlock()
	if kept {
		t.Errorf("drained backend still has state in the gateway")
	}
}

func TestDrainTimeout(t *testing.T) {
	tg := startGateway(t, false)
	release := make(chan struct{})
	up, started, _ := slowUpstream(t, 0, release)
	tg.SetBackends("hello", []Backend{{ID: "stuck", Addr: up.Listener.Addr().String()}}, "")
	got := make(chan response, 1)
	go func() { got <- tg.get(t, tg.url("hello.localhost", "/"), nil) }()
	<-started
	tg.RemoveApp("hello")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := tg.Drain(ctx, "stuck")
	if !errors.Is(err, context.DeadlineExceeded) || !errkind.Is(err, errkind.Unavailable) {
		t.Errorf("Drain past its deadline = %v (kind %v), want deadline exceeded (unavailable)", err, errkind.Of(err))
	}
	close(release)
	if res := <-got; res.status != 200 {
		t.Errorf("request after the drain timed out = %d, want 200 (it is not cut)", res.status)
	}
}

func TestDrainIdle(t *testing.T) {
	tests := []struct {
		name  string
		setup func(g *Gateway)
	}{
		{"unknown backend", func(*Gateway) {}},
		{"removed, nothing in flight", func(g *Gateway) {
			g.SetBackends("hello", []Backend{{ID: "b", Addr: "127.0.0.1:1"}}, "")
			g.SetBackends("hello", nil, "")
		}},
		{"still serving, nothing in flight", func(g *Gateway) {
			g.SetBackends("hello", []Backend{{ID: "b", Addr: "127.0.0.1:1"}}, "")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New(Config{})
			tc.setup(g)
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // an idle backend drains without waiting
			if err := g.Drain(ctx, "b"); err != nil {
				t.Errorf("Drain = %v, want nil", err)
			}
		})
	}
}

// TestAcquireBacksOffRemoved checks the hand-off between a request that
// picked a backend from an old table and Drain: once the backend is marked
// removed, acquire never counts a request on it.
func TestAcquireBacksOffRemoved(t *testing.T) {
	g := New(Config{})
	g.SetBackends("hello", []Backend{{ID: "a", Addr: "127.0.0.1:1"}}, "")
	stale := g.routes.get("hello")
	g.SetBackends("hello", []Backend{{ID: "b", Addr: "127.0.0.1:2"}}, "")
	b := g.acquire(stale, nil)
	if b == nil || b.id != "b" {
		t.Fatalf("acquire on a stale table = %v, want the current backend b", b)
	}
	b.release()
	g.RemoveApp("hello")
	if b := g.acquire(stale, nil); b != nil {
		t.Errorf("acquire after RemoveApp = %s, want nil", b.id)
	}
}
