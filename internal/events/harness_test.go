package events

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"noops/internal/spec"
)

// harness is an embedded server, a bus on it and a function per app
// served by an httptest server.
type harness struct {
	t    *testing.T
	dir  string
	emb  *Embedded
	bus  *Bus
	mu   sync.Mutex
	apps map[string]string // app → base URL
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), apps: map[string]string{}}
	h.start()
	return h
}

func (h *harness) start() {
	t := h.t
	emb, err := StartEmbedded(EmbeddedConfig{Dir: h.dir})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("NOOPS_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	bus, err := Open(context.Background(), nc, Config{Target: HTTPTarget{URL: h.url}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h.emb, h.bus = emb, bus
	t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.bus.Close(ctx)
	h.bus.nc.Close()
	h.emb.Shutdown()
	h.bus, h.emb = nil, nil
}

// restart stops the server and starts it again on the same folder.
func (h *harness) restart() {
	h.stop()
	h.start()
}

func (h *harness) url(app string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.apps[app]
}

// serve gives app an HTTP handler and returns its server.
func (h *harness) serve(app string, fn http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(fn)
	h.t.Cleanup(srv.Close)
	h.mu.Lock()
	h.apps[app] = srv.URL
	h.mu.Unlock()
	return srv
}

// fn is a function definition with fast retries.
func fn(app string, topics ...string) Function {
	retries := 2
	return Function{App: app, Topics: topics, Settings: spec.Function{Timeout: spec.Duration(2 * time.Second), Retries: &retries,
		Backoff: spec.Duration(50 * time.Millisecond), MaxBackoff: spec.Duration(200 * time.Millisecond)}}
}

func (h *harness) set(f Function) {
	h.t.Helper()
	if err := h.bus.SetFunction(context.Background(), f); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) publish(topic string, data string, mod ...func(*Event)) Event {
	h.t.Helper()
	e := Event{Topic: topic, Data: []byte(data), ContentType: "text/plain"}
	for _, m := range mod {
		m(&e)
	}
	if err := h.bus.Publish(context.Background(), &e, "/test"); err != nil {
		h.t.Fatal(err)
	}
	return e
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newTestServer serves fn and returns its URL.
func newTestServer(t *testing.T, fn http.HandlerFunc) string {
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	return srv.URL
}
