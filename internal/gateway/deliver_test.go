package gateway

import (
	"fmt"
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
	tg.get(t, tg.url("app."+testDomain, "/"), http.Header{"Traceparent": {tp}, "Tracestate": {"a=b"}})
	h, _ := up.lastRequest()
	p, ok := trace.Parse(h.Get("traceparent"))
	if !ok || p.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" || p.String() == tp || h.Get("tracestate") != "a=b" {
		t.Fatalf("traceparent %q tracestate %q, want the caller's trace continued by the gateway's own span", h.Get("traceparent"), h.Get("tracestate"))
	}
	tg.get(t, tg.url("app."+testDomain, "/"), http.Header{"Traceparent": {"garbage"}, "Tracestate": {"a=b"}})
	h, _ = up.lastRequest()
	if p, ok := trace.Parse(h.Get("traceparent")); !ok || p.TraceIDString() == "4bf92f3577b34da6a3ce929d0e0e4736" || h.Get("tracestate") != "" {
		t.Fatalf("an invalid traceparent must be replaced: %q %q", h.Get("traceparent"), h.Get("tracestate"))
	}
}

func TestObserveRequests(t *testing.T) {
	type obs struct {
		app, method string
		status      int
		parent, tp  string // the caller's span, the traceparent the app got
		bytes       int64
	}
	got := make(chan obs, 10)
	tg := startGateway(t, false, func(c *Config) {
		c.Observe = func(r *http.Request, s *Served) {
			parent := ""
			if s.HasParent {
				parent = fmt.Sprintf("%x", s.Parent)
			}
			got <- obs{s.App, r.Method, s.Status, parent, s.Span.String(), s.BytesOut}
		}
	})
	up := newUpstream(t, "app")
	tg.SetBackends("app", []Backend{up.backend()}, "")
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	res := tg.get(t, tg.url("app."+testDomain, "/"), http.Header{"Traceparent": {tp}})
	tg.get(t, tg.url("nope."+testDomain, "/"), nil)
	select {
	case o := <-got:
		h, _ := up.lastRequest()
		if tr := res.header.Get("Traceresponse"); o.tp != tr {
			t.Errorf("traceresponse %q, want the gateway's span %q", tr, o.tp)
		}
		if o != (obs{"app", "GET", 200, "00f067aa0ba902b7", h.Get("traceparent"), int64(len("app"))}) {
			t.Fatalf("observed %+v, the app got traceparent %q", o, h.Get("traceparent"))
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
