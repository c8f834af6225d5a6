package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"noops/internal/errkind"
	"noops/internal/observe/trace"
)

// refuseAll is a Guard that lets nothing through.
type refuseAll struct{}

func (refuseAll) Admit(w http.ResponseWriter, r *http.Request, app string) bool {
	w.WriteHeader(http.StatusForbidden)
	return false
}

func TestDeliverBypassesTheGuard(t *testing.T) {
	tg := startGateway(t, false, func(c *Config) { c.Guard = refuseAll{} })
	up := newUpstream(t, "fn")
	tg.SetBackends("fn", []Backend{up.backend()}, "")
	if r := tg.get(t, tg.url("fn."+testDomain, "/"), nil); r.status != http.StatusForbidden {
		t.Fatalf("a client got %d, want the guard's 403", r.status)
	}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("event"))
	req.Host, req.RemoteAddr = "", ""
	req.Header.Set("ce-id", "e1")
	rec := httptest.NewRecorder()
	if err := tg.Deliver(rec, req, "fn"); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || rec.Body.String() != "fn" {
		t.Fatalf("Deliver: %d %q", rec.Code, rec.Body.String())
	}
	h, host := up.lastRequest()
	if h.Get("ce-id") != "e1" || host != "fn."+testDomain {
		t.Fatalf("the app got host %q, ce-id %q", host, h.Get("ce-id"))
	}
	if _, ok := trace.Parse(h.Get("traceparent")); !ok {
		t.Fatalf("no trace context started: %q", h.Get("traceparent"))
	}
	if err := tg.Deliver(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/", nil), "nope"); !errkind.Is(err, errkind.NotFound) {
		t.Fatalf("unknown app: %v", err)
	}
}

func TestTraceContextPassedOn(t *testing.T) {
	tg := startGateway(t, false)
	up := newUpstream(t, "app")
	tg.SetBackends("app", []Backend{up.backend()}, "")
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tg.get(t, tg.url("app."+testDomain, "/"), http.Header{"Traceparent": {tp}})
	if h, _ := up.lastRequest(); h.Get("traceparent") != tp {
		t.Fatalf("traceparent %q, want %q passed on", h.Get("traceparent"), tp)
	}
	tg.get(t, tg.url("app."+testDomain, "/"), http.Header{"Traceparent": {"garbage"}, "Tracestate": {"a=b"}})
	h, _ := up.lastRequest()
	if p, ok := trace.Parse(h.Get("traceparent")); !ok || p.TraceIDString() == "4bf92f3577b34da6a3ce929d0e0e4736" || h.Get("tracestate") != "" {
		t.Fatalf("an invalid traceparent must be replaced: %q %q", h.Get("traceparent"), h.Get("tracestate"))
	}
}

func TestObserveRequests(t *testing.T) {
	type obs struct {
		app, method string
		status      int
		tp          string
	}
	got := make(chan obs, 10)
	tg := startGateway(t, false, func(c *Config) {
		c.Observe = func(app, method string, status int, d time.Duration, tp string) { got <- obs{app, method, status, tp} }
	})
	up := newUpstream(t, "app")
	tg.SetBackends("app", []Backend{up.backend()}, "")
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tg.get(t, tg.url("app."+testDomain, "/"), http.Header{"Traceparent": {tp}})
	tg.get(t, tg.url("nope."+testDomain, "/"), nil)
	select {
	case o := <-got:
		if o != (obs{"app", "GET", 200, tp}) {
			t.Fatalf("observed %+v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request was not observed")
	}
	select {
	case o := <-got:
		t.Fatalf("a request to no app was observed: %+v", o)
	case <-time.After(100 * time.Millisecond):
	}
}
