package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// receiver is a real HTTP server standing for a webhook receiver. Its
// status function decides each reply from the request number (from 1) and
// the body; a nil one answers 200.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	status  func(n int, body []byte) int
	calls   int
	bodies  [][]byte      // every request body, in order
	ok      [][]byte      // the bodies answered 2xx, in order
	headers []http.Header // every request's headers
}

func newReceiver(t *testing.T, status func(n int, body []byte) int) *receiver {
	t.Helper()
	r := &receiver{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.calls++
		code := http.StatusOK
		if r.status != nil {
			code = r.status(r.calls, b)
		}
		r.bodies = append(r.bodies, b)
		r.headers = append(r.headers, req.Header.Clone())
		if code/100 == 2 {
			r.ok = append(r.ok, b)
		}
		r.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) setStatus(f func(n int, body []byte) int) {
	r.mu.Lock()
	r.status = f
	r.mu.Unlock()
}

// delivered returns the keys of the events answered 2xx, in order.
func (r *receiver) delivered(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys []string
	for _, b := range r.ok {
		keys = append(keys, bodyKey(t, b))
	}
	return keys
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func bodyKey(t *testing.T, b []byte) string {
	t.Helper()
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatalf("receiver got %q: %v", b, err)
	}
	return w.Key
}

// hangingServer never answers until the client gives up.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); s.Close() })
	return s
}

// start returns a started Notifier that is stopped when the test ends.
func start(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	n := newStopped(t, cfg)
	if err := n.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return n
}

// newStopped returns a Notifier not yet started, stopped when the test ends.
func newStopped(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Stop(context.Background()) })
	return n
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func sinkStats(n *Notifier, i int) SinkStats { return n.Stats().Sinks[i] }

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// funcSink is a Sink made of a function, for sinks other than HTTP ones.
type funcSink struct {
	name string
	send func(ctx context.Context, e Event) error
}

func (f funcSink) Name() string                            { return f.name }
func (f funcSink) Send(ctx context.Context, e Event) error { return f.send(ctx, e) }

func ev(key string) Event {
	return Event{Kind: "ban", Key: key, Title: key + " banned"}
}
