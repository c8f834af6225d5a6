package functions

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/events"
	"noops/internal/spec"
	"noops/internal/store"
)

// platform is a bus on an embedded server, the layer, and an app served
// by an httptest server behind a stand-in for the gateway: requests go
// through Inspect, then to the app.
type platform struct {
	t     *testing.T
	bus   *events.Bus
	layer *Layer
	calls atomic.Int32
	front *httptest.Server
}

func newPlatform(t *testing.T, app http.HandlerFunc) *platform {
	t.Helper()
	emb, err := events.StartEmbedded(events.EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	p := &platform{t: t}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		app(w, r)
	}))
	bus, err := events.Open(context.Background(), nc, events.Config{Target: events.HTTPTarget{URL: func(string) string { return backend.URL }}})
	if err != nil {
		t.Fatal(err)
	}
	p.bus = bus
	p.layer = New(Config{Bus: bus, Caller: func(r *http.Request) (string, error) {
		if c := r.Header.Get("Test-Caller"); c != "" {
			return c, nil
		}
		return "", errkind.Errorf(errkind.Unauthenticated, "no workload certificate")
	}})
	p.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ww, done, ok := p.layer.Inspect(w, r, "shop")
		if !ok {
			return
		}
		rec := httptest.NewRecorder()
		backend.Config.Handler.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			ww.Header()[k] = v
		}
		ww.WriteHeader(rec.Code)
		_, _ = ww.Write(rec.Body.Bytes())
		if done != nil {
			done(rec.Code)
		}
	}))
	t.Cleanup(func() {
		p.front.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = bus.Close(ctx)
		nc.Close()
		emb.Shutdown()
		backend.Close()
	})
	return p
}

func (p *platform) release(app string, c spec.Config) {
	p.t.Helper()
	data, _ := json.Marshal(c)
	if err := p.layer.SetRelease(store.Release{App: app, Number: 1, Config: data}); err != nil {
		p.t.Fatal(err)
	}
}

func (p *platform) do(method, path, body string, h http.Header) (*http.Response, string) {
	p.t.Helper()
	req, _ := http.NewRequest(method, p.front.URL+path, strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestIdempotencyKey(t *testing.T) {
	var n atomic.Int32
	p := newPlatform(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Order", fmt.Sprint(n.Add(1)))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "order for %s", body)
	})
	p.release("shop", spec.Config{})
	key := http.Header{"Idempotency-Key": {"k-1"}}
	r1, b1 := p.do("POST", "/orders", "2 apples", key)
	r2, b2 := p.do("POST", "/orders", "2 apples", key)
	if r1.StatusCode != 201 || r2.StatusCode != 201 || b1 != b2 || r2.Header.Get("X-Order") != "1" || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("duplicate: %d %q %v / %d %q %v", r1.StatusCode, b1, r1.Header, r2.StatusCode, b2, r2.Header)
	}
	if p.calls.Load() != 1 {
		t.Fatalf("the app ran %d times for one key", p.calls.Load())
	}
	r3, b3 := p.do("POST", "/orders", "3 pears", key)
	if r3.StatusCode != http.StatusConflict || !strings.Contains(b3, "different request") {
		t.Fatalf("same key, other payload: %d %s", r3.StatusCode, b3)
	}
	if r, _ := p.do("POST", "/orders", "2 apples", http.Header{"Idempotency-Key": {"k-2"}}); r.Header.Get("X-Order") != "2" {
		t.Fatalf("a new key must run the app: %v", r.Header)
	}
	if _, _ = p.do("POST", "/orders", "x", nil); p.calls.Load() != 3 {
		t.Fatalf("a request without a key must pass: %d calls", p.calls.Load())
	}
	big := strings.Repeat("x", events.DefaultMaxEventSize+1)
	if r, b := p.do("POST", "/orders", big, http.Header{"Idempotency-Key": {"k-3"}}); r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("big body with a key: %d %s", r.StatusCode, b)
	}

	// idempotency: off hands the key to the app.
	p.release("shop", spec.Config{Function: spec.Function{Idempotency: "off"}})
	p.do("POST", "/orders", "2 apples", key)
	if p.calls.Load() != 4 {
		t.Fatalf("with idempotency off the app must see every request: %d calls", p.calls.Load())
	}
}

func TestServerErrorsAreNotStored(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	p := newPlatform(t, func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusBadGateway)
		}
	})
	p.release("shop", spec.Config{})
	key := http.Header{"Idempotency-Key": {"k"}}
	if r, _ := p.do("POST", "/", "a", key); r.StatusCode != http.StatusBadGateway {
		t.Fatal(r.Status)
	}
	fail.Store(false)
	if r, _ := p.do("POST", "/", "a", key); r.StatusCode != http.StatusOK || p.calls.Load() != 2 {
		t.Fatalf("the retry after a 5xx must run the app: %s, %d calls", r.Status, p.calls.Load())
	}
}

func TestAsyncInvocationOverHTTP(t *testing.T) {
	p := newPlatform(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "resized %s", b)
	})
	p.release("shop", spec.Config{})
	r, body := p.do("POST", "/resize", "cat.png", http.Header{"Prefer": {"respond-async"}, "Idempotency-Key": {"a-1"}})
	if r.StatusCode != http.StatusAccepted || r.Header.Get("Preference-Applied") != "respond-async" {
		t.Fatalf("async: %d %v %s", r.StatusCode, r.Header, body)
	}
	var acc struct{ ID, Status, StatusURL string }
	_ = json.Unmarshal([]byte(body), &acc)
	loc := r.Header.Get("Location")
	if acc.ID == "" || loc != "/.noops/invocations/"+acc.ID {
		t.Fatalf("202 body %s, Location %q", body, loc)
	}
	// A retry of the same async request gets the same invocation.
	if _, b2 := p.do("POST", "/resize", "cat.png", http.Header{"Prefer": {"respond-async"}, "Idempotency-Key": {"a-1"}}); b2 != body {
		t.Fatalf("the retry queued another invocation: %s vs %s", b2, body)
	}
	var inv events.Invocation
	deadline := time.Now().Add(10 * time.Second)
	for inv.Status != events.InvocationSucceeded {
		if time.Now().After(deadline) {
			t.Fatalf("invocation %+v", inv)
		}
		_, b := p.do("GET", loc, "", nil)
		_ = json.Unmarshal([]byte(b), &inv)
		time.Sleep(20 * time.Millisecond)
	}
	if string(inv.Response.Body) != "resized cat.png" || p.calls.Load() != 1 {
		t.Fatalf("result %+v, %d calls", inv.Response, p.calls.Load())
	}
	if r, _ := p.do("DELETE", loc, "", nil); r.StatusCode != http.StatusConflict {
		t.Fatalf("cancelling a finished invocation: %s", r.Status)
	}
	if r, _ := p.do("GET", "/.noops/invocations/0123456789abcdef0123456789abcdef", "", nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown invocation: %s", r.Status)
	}
}

func TestWorkloadPublishing(t *testing.T) {
	p := newPlatform(t, func(w http.ResponseWriter, r *http.Request) {})
	p.release("web", spec.Config{Events: spec.Events{Publish: []string{"orders.*"}}})
	p.release("other", spec.Config{})
	srv := httptest.NewServer(p.layer)
	defer srv.Close()
	post := func(caller, path, body string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		if caller != "" {
			req.Header.Set("Test-Caller", caller)
		}
		req.Header.Set("ce-type", "com.example.order.created")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := post("web", EventsPrefix+"orders.created", `{"id":1}`); code != http.StatusAccepted || !strings.Contains(b, `"topic":"orders.created"`) {
		t.Fatalf("allowed publish: %d %s", code, b)
	}
	for _, tc := range []struct {
		caller, path string
		want         int
	}{
		{"other", EventsPrefix + "orders.created", http.StatusForbidden},
		{"web", EventsPrefix + "payments.created", http.StatusForbidden},
		{"", EventsPrefix + "orders.created", http.StatusUnauthorized},
		{"web", EventsPrefix + "orders.bad topic", http.StatusBadRequest},
		{"web", "/.noops/other", http.StatusNotFound},
	} {
		if code, b := post(tc.caller, tc.path, "x"); code != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.caller, tc.path, code, b, tc.want)
		}
	}
	if code, _ := post("web", EventsPrefix+"orders.big", strings.Repeat("x", events.DefaultMaxEventSize+1)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("big event: %d", code)
	}
}
