package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/metadata"

	"noops/internal/errkind"
	"noops/internal/observe/tracestore"
)

// appHeader names the test's caller; the real Caller reads the client's
// workload certificate.
const appHeader = "X-Test-App"

func testCaller(app string) (string, error) {
	switch app {
	case "":
		return "", errkind.Errorf(errkind.Unauthenticated, "no workload certificate")
	case "intruder":
		return "", errkind.Errorf(errkind.Permission, "app intruder may not export telemetry")
	}
	return app, nil
}

// sink records what the callbacks received and returns err when set.
type sink struct {
	mu    sync.Mutex
	err   error
	calls int
	app   string
	spans []tracestore.Span
}

func (s *sink) take(ctx context.Context, app string, spans []tracestore.Span) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return s.err
	}
	s.app = app
	s.spans = append(s.spans, spans...)
	return nil
}

func (s *sink) got() (int, string, []tracestore.Span) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.app, append([]tracestore.Span(nil), s.spans...)
}

func newTestReceiver(t testing.TB, cfg Config, sk *sink) *Receiver {
	t.Helper()
	cfg.Caller = func(ctx context.Context, r *http.Request) (string, error) { return testCaller(r.Header.Get(appHeader)) }
	cfg.CallerGRPC = func(ctx context.Context) (string, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("x-test-app"); len(v) == 1 {
			return testCaller(v[0])
		}
		return testCaller("")
	}
	if cfg.Spans == nil {
		cfg.Spans = sk.take
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func ns(d time.Duration) uint64 { return uint64(t0.Add(d).UnixNano()) }

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

var (
	traceA  = []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	rootID  = []byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
	childID = []byte{0x53, 0x99, 0x5c, 0x3f, 0x42, 0xcd, 0x8a, 0xd8}
)

const (
	traceAHex  = "4bf92f3577b34da6a3ce929d0e0e4736"
	rootIDHex  = "00f067aa0ba902b7"
	childIDHex = "53995c3f42cd8ad8"
)

// sampleRequest has two valid spans (a server span and its client child
// with every kind of attribute, an event and an error) and two invalid
// ones (a short trace ID, an all-zero span ID). Its resource claims to be
// another app, which must not matter.
func sampleRequest() *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "checkout"), str("noops.app", "bank"), str("host.name", "box")}},
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: "net/http"},
			Spans: []*tracepb.Span{
				{TraceId: traceA, SpanId: rootID, Name: "GET /cart", Kind: tracepb.Span_SPAN_KIND_SERVER,
					StartTimeUnixNano: ns(0), EndTimeUnixNano: ns(120 * time.Millisecond),
					Attributes: []*commonpb.KeyValue{str("http.request.method", "GET"), str("url.path", "/cart")},
					Status:     &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}},
				{TraceId: traceA, SpanId: childID, ParentSpanId: rootID, Name: "SELECT carts", Kind: tracepb.Span_SPAN_KIND_CLIENT,
					StartTimeUnixNano: ns(10 * time.Millisecond), EndTimeUnixNano: ns(60 * time.Millisecond),
					Attributes: []*commonpb.KeyValue{
						str("db.statement", "SELECT * FROM carts WHERE id = $1"),
						{Key: "db.rows", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}},
						{Key: "retry", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
						{Key: "ratio", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.5}}},
						{Key: "tags", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
							{Value: &commonpb.AnyValue_StringValue{StringValue: "a"}}, {Value: &commonpb.AnyValue_IntValue{IntValue: 1}}}}}}},
						{Key: "peer", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{str("host", "db")}}}}},
						{Key: "blob", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{1, 2, 3}}}},
					},
					Events: []*tracepb.Span_Event{{Name: "exception", TimeUnixNano: ns(59 * time.Millisecond), Attributes: []*commonpb.KeyValue{str("exception.message", "timeout")}}},
					Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "timeout"}},
				{TraceId: []byte{1, 2, 3}, SpanId: rootID, Name: "bad trace", StartTimeUnixNano: ns(0)},
				{TraceId: traceA, SpanId: make([]byte, 8), Name: "zero span", StartTimeUnixNano: ns(0)},
			},
		}},
	}}}
}

// checkSample checks the spans converted from sampleRequest for app.
func checkSample(t *testing.T, app string, spans []tracestore.Span) {
	t.Helper()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	root, child := spans[0], spans[1]
	if root.TraceID != traceAHex || root.SpanID != rootIDHex || root.ParentID != "" || child.ParentID != rootIDHex || child.SpanID != childIDHex {
		t.Errorf("IDs: root %s/%s/%q, child %s/%s", root.TraceID, root.SpanID, root.ParentID, child.SpanID, child.ParentID)
	}
	for _, s := range spans {
		if s.App != app || s.Service != "checkout" {
			t.Errorf("span %s: app %q, service %q; want %q, checkout", s.Name, s.App, s.Service, app)
		}
	}
	if root.Name != "GET /cart" || root.Kind != "server" || root.StatusCode != "ok" || !root.Start.Equal(t0) || root.Duration() != 120*time.Millisecond {
		t.Errorf("root %+v", root)
	}
	want := map[string]string{
		"db.statement": "SELECT * FROM carts WHERE id = $1", "db.rows": "42", "retry": "true", "ratio": "0.5",
		"tags": `["a",1]`, "peer": `{"host":"db"}`, "blob": "AQID",
		"resource.noops.app": "bank", "resource.host.name": "box", "otel.scope.name": "net/http",
	}
	for k, v := range want {
		if child.Attributes[k] != v {
			t.Errorf("child attribute %s = %q, want %q", k, child.Attributes[k], v)
		}
	}
	if _, ok := child.Attributes["resource.service.name"]; ok {
		t.Error("service.name copied into the attributes")
	}
	if child.Kind != "client" || child.StatusCode != "error" || child.StatusMessage != "timeout" || len(child.Events) != 1 ||
		child.Events[0].Name != "exception" || child.Events[0].Attributes["exception.message"] != "timeout" || !child.Events[0].Time.Equal(t0.Add(59*time.Millisecond)) {
		t.Errorf("child %+v", child)
	}
}

func post(t testing.TB, h http.Handler, path, app, ctype, cenc string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if cenc != "" {
		req.Header.Set("Content-Encoding", cenc)
	}
	if app != "" {
		req.Header.Set(appHeader, app)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var errBoom = errors.New("disk on fire")
