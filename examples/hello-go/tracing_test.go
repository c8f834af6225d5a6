package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// The caller's trace, as the gateway would send it.
const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
	traceparent = "00-" + callerTrace + "-" + callerSpan + "-01"
)

// TestServerSpans: one server span per request, named after the route,
// with the HTTP attributes, and the page's child span under it.
func TestServerSpans(t *testing.T) {
	cases := []struct {
		name, method, path string
		wantName           string
		wantRoute          string // "" for none
		wantStatus         int
		wantChild          bool
	}{
		{"page", "GET", "/", "GET /", "/", 200, true},
		{"health check through the gateway", "GET", "/healthz", "GET /healthz", "/healthz", 200, false},
		{"unknown path", "GET", "/nope", "GET", "", 404, false},
		{"wrong method", "POST", "/", "POST", "", 405, false},
		{"made-up method", "BREW", "/", "HTTP", "", 405, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mem := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(mem))
			h := newHandler("7", "box", tp.Tracer(tracerName))
			req := httptest.NewRequest(tc.method, tc.path, nil)
			req.Header.Set("traceparent", traceparent)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.wantStatus)
			}
			var server, child *tracetest.SpanStub
			spans := mem.GetSpans()
			for i := range spans {
				switch spans[i].SpanKind {
				case trace.SpanKindServer:
					server = &spans[i]
				case trace.SpanKindInternal:
					child = &spans[i]
				}
			}
			if server == nil || len(spans) != map[bool]int{true: 2, false: 1}[tc.wantChild] {
				t.Fatalf("spans = %v, want a server span and child=%v", names(spans), tc.wantChild)
			}
			if server.Name != tc.wantName {
				t.Errorf("server span name = %q, want %q", server.Name, tc.wantName)
			}
			if got := server.SpanContext.TraceID().String(); got != callerTrace {
				t.Errorf("server span trace = %s, want the caller's %s", got, callerTrace)
			}
			if got := server.Parent.SpanID().String(); got != callerSpan || !server.Parent.IsRemote() {
				t.Errorf("server span parent = %s (remote %v), want the caller's %s", got, server.Parent.IsRemote(), callerSpan)
			}
			attrs := attribute.NewSet(server.Attributes...)
			wantMethod := tc.method
			if tc.method == "BREW" {
				wantMethod = "_OTHER"
				if v, _ := attrs.Value("http.request.method_original"); v.AsString() != "BREW" {
					t.Errorf("http.request.method_original = %q, want BREW", v.AsString())
				}
			}
			for k, want := range map[string]any{"http.request.method": wantMethod, "url.path": tc.path, "http.response.status_code": int64(tc.wantStatus)} {
				if v, ok := attrs.Value(attribute.Key(k)); !ok || v.AsInterface() != want {
					t.Errorf("%s = %v, want %v", k, v.AsInterface(), want)
				}
			}
			if v, ok := attrs.Value("http.route"); ok != (tc.wantRoute != "") || v.AsString() != tc.wantRoute {
				t.Errorf("http.route = %q (set %v), want %q", v.AsString(), ok, tc.wantRoute)
			}
			if tc.wantChild {
				if child.Name != "render page" || child.Parent.SpanID() != server.SpanContext.SpanID() || child.SpanContext.TraceID() != server.SpanContext.TraceID() {
					t.Errorf("child span %q has parent %s, want \"render page\" under the server span %s",
						child.Name, child.Parent.SpanID(), server.SpanContext.SpanID())
				}
			}
		})
	}
}

// TestProbesStartNoTrace: the platform's health probes (no traceparent)
// are served without a span; any other request without one starts a trace.
func TestProbesStartNoTrace(t *testing.T) {
	for _, tc := range []struct {
		path      string
		wantSpans int
	}{{"/healthz", 0}, {"/", 2}, {"/nope", 1}} {
		mem := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(mem))
		rec := httptest.NewRecorder()
		newHandler("7", "box", tp.Tracer(tracerName)).ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		spans := mem.GetSpans()
		if len(spans) != tc.wantSpans {
			t.Errorf("GET %s without traceparent made spans %v, want %d", tc.path, names(spans), tc.wantSpans)
		}
		if tc.path == "/healthz" && rec.Body.String() != "ok\n" {
			t.Errorf("GET /healthz = %q, want ok", rec.Body.String())
		}
		for _, s := range spans {
			if s.Parent.IsValid() && s.Parent.IsRemote() {
				t.Errorf("span %q has a remote parent though no traceparent came", s.Name)
			}
		}
	}
}

func names(spans tracetest.SpanStubs) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return n
}

// TestExportsOverMutualTLS is the app as the platform runs it: the OTEL_*
// variables and the identity folder, an OTLP/HTTP receiver that requires a
// client certificate, a request that carries the gateway's traceparent.
// What arrives continues the caller's trace, nests the page under the
// server span and names the service.
func TestExportsOverMutualTLS(t *testing.T) {
	ca := newCA(t, "platform")
	rc := startReceiver(t, ca.issue(t, "gateway", x509.ExtKeyUsageServerAuth, localhost).tls, ca)
	dir := t.TempDir()
	writeIdentity(t, dir, ca.issue(t, "hello-sandbox", x509.ExtKeyUsageClientAuth), ca)
	setPlatformEnv(t, rc.url, dir, "hello-test", "7")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := newTracing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tr.sdk == nil {
		t.Fatal("newTracing with an endpoint left tracing off")
	}
	rec := get(t, newHandler("7", "box", tr.tracer()), "/")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "Hello from noops") || rec.Header().Get("X-Release") != "7" {
		t.Fatalf("GET / = %d %q X-Release %q, want the page of release 7", rec.Code, rec.Body.String(), rec.Header().Get("X-Release"))
	}
	if err := tr.shutdown(ctx); err != nil {
		t.Fatalf("shutdown (flushing the spans) = %v", err)
	}

	exports := rc.received()
	if len(exports) == 0 {
		t.Fatal("the receiver got no export")
	}
	var server, child *tracepb.Span
	for _, ex := range exports {
		if ex.client != "hello-sandbox" {
			t.Errorf("export came with client certificate %q, want hello-sandbox", ex.client)
		}
		for _, rs := range ex.req.ResourceSpans {
			res := attrMap(rs.GetResource().GetAttributes())
			for k, want := range map[string]string{"service.name": "hello-test", "noops.app": "hello-test", "noops.release": "7"} {
				if res[k] != want {
					t.Errorf("resource %s = %q, want %q", k, res[k], want)
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					switch s.Name {
					case "GET /":
						server = s
					case "render page":
						child = s
					}
				}
			}
		}
	}
	if server == nil || child == nil {
		t.Fatalf("exported spans lack %q or %q", "GET /", "render page")
	}
	if got := hex.EncodeToString(server.TraceId); got != callerTrace {
		t.Errorf("server span trace = %s, want the caller's %s", got, callerTrace)
	}
	if got := hex.EncodeToString(server.ParentSpanId); got != callerSpan {
		t.Errorf("server span parent = %s, want the caller's span %s", got, callerSpan)
	}
	if server.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("server span kind = %v, want SERVER", server.Kind)
	}
	if a := attrMap(server.Attributes); a["http.request.method"] != "GET" || a["url.path"] != "/" || a["http.response.status_code"] != "200" {
		t.Errorf("server span attributes = %v, want GET, / and 200", a)
	}
	if !bytes.Equal(child.ParentSpanId, server.SpanId) || !bytes.Equal(child.TraceId, server.TraceId) {
		t.Errorf("render page's parent = %x in trace %x, want the server span %x", child.ParentSpanId, child.TraceId, server.SpanId)
	}
	if child.Kind != tracepb.Span_SPAN_KIND_INTERNAL {
		t.Errorf("render page kind = %v, want INTERNAL", child.Kind)
	}
}

// TestExportsAcrossRotation: the platform replaces svid.pem and bundle.pem
// (a new certificate from a new CA) and the gateway moves to a certificate
// from that CA. The next export presents the new certificate and trusts the
// new gateway, without a restart; a gateway that the bundle does not vouch
// for is refused.
func TestExportsAcrossRotation(t *testing.T) {
	ca1, ca2, rogue := newCA(t, "platform-1"), newCA(t, "platform-2"), newCA(t, "rogue")
	rc := startReceiver(t, ca1.issue(t, "gateway", x509.ExtKeyUsageServerAuth, localhost).tls, ca1, ca2)
	dir := t.TempDir()
	writeIdentity(t, dir, ca1.issue(t, "svid-1", x509.ExtKeyUsageClientAuth), ca1)
	setPlatformEnv(t, rc.url, dir, "hello-test", "7")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := newTracing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.shutdown(ctx)
	h := newHandler("7", "box", tr.tracer())
	exportOnce := func() (string, error) {
		t.Helper()
		before := len(rc.received())
		get(t, h, "/")
		if err := tr.flush(ctx); err != nil {
			return "", err
		}
		got := rc.received()
		if len(got) == before {
			t.Fatal("flush succeeded but nothing arrived")
		}
		return got[len(got)-1].client, nil
	}

	if client, err := exportOnce(); err != nil || client != "svid-1" {
		t.Fatalf("first export = %q, %v; want svid-1 accepted", client, err)
	}

	writeIdentity(t, dir, ca2.issue(t, "svid-2", x509.ExtKeyUsageClientAuth), ca2)
	gw2 := ca2.issue(t, "gateway", x509.ExtKeyUsageServerAuth, localhost).tls
	rc.cert.Store(&gw2)
	if client, err := exportOnce(); err != nil || client != "svid-2" {
		t.Fatalf("export after rotation = %q, %v; want svid-2 accepted", client, err)
	}

	gw3 := rogue.issue(t, "gateway", x509.ExtKeyUsageServerAuth, localhost).tls
	rc.cert.Store(&gw3)
	if client, err := exportOnce(); err == nil {
		t.Fatalf("export to a gateway outside the bundle went through (client %q)", client)
	} else if !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("export to a gateway outside the bundle = %v, want an unknown authority error", err)
	}
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("traceparent", traceparent)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// attrMap flattens OTLP attributes to strings.
func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.Key] = strconv.FormatInt(v.IntValue, 10)
		default:
			m[kv.Key] = kv.GetValue().String()
		}
	}
	return m
}

// TestRouteOf: ServeMux patterns as http.route values.
func TestRouteOf(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"GET /{$}", "/"},
		{"GET /healthz", "/healthz"},
		{"/", "/"},
		{"POST example.com/items/{id}", "/items/{id}"},
		{"GET  /x/{$}", "/x/"},
		{"", ""},
	} {
		if got := routeOf(tc.pattern); got != tc.want {
			t.Errorf("routeOf(%q) = %q, want %q", tc.pattern, got, tc.want)
		}
	}
}
