package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func resource(svc string) *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{strAttr("service.name", svc)}}
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// traceReq is a request with one span named name.
func traceReq(name string) *coltracepb.ExportTraceServiceRequest {
	tid := make([]byte, 16)
	copy(tid, name)
	tid[15] = 1
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: resource("shop"),
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: "noops/gateway"},
			Spans: []*tracepb.Span{{
				TraceId:           tid,
				SpanId:            []byte{1, 2, 3, 4, 5, 6, 7, 8},
				Name:              name,
				Kind:              tracepb.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: uint64(t0.UnixNano()),
				EndTimeUnixNano:   uint64(t0.Add(time.Millisecond).UnixNano()),
				Attributes:        []*commonpb.KeyValue{strAttr("http.route", "/cart/{id}")},
				Status:            &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK},
			}},
		}},
	}}}
}

func metricReq(name string) *colmetricspb.ExportMetricsServiceRequest {
	return &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: resource("shop"),
		ScopeMetrics: []*metricspb.ScopeMetrics{{
			Scope: &commonpb.InstrumentationScope{Name: "noops/metrics"},
			Metrics: []*metricspb.Metric{{
				Name: name,
				Unit: "1",
				Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{{
					TimeUnixNano: uint64(t0.UnixNano()),
					Value:        &metricspb.NumberDataPoint_AsDouble{AsDouble: 42.5},
					Attributes:   []*commonpb.KeyValue{strAttr("route", "/")},
				}}}},
			}},
		}},
	}}}
}

func logReq(body string) *collogspb.ExportLogsServiceRequest {
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: resource("shop"),
		ScopeLogs: []*logspb.ScopeLogs{{
			Scope: &commonpb.InstrumentationScope{Name: "noops/logs"},
			LogRecords: []*logspb.LogRecord{{
				TimeUnixNano:   uint64(t0.UnixNano()),
				SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
				SeverityText:   "INFO",
				Body:           &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: body}},
			}},
		}},
	}}}
}

// receiver records what an OTLP receiver (HTTP or gRPC) decoded with the
// collector's own pdata code, re-encoded as OTLP protobuf.
type receiver struct {
	mu      sync.Mutex
	traces  []*coltracepb.ExportTraceServiceRequest
	metrics []*colmetricspb.ExportMetricsServiceRequest
	logs    []*collogspb.ExportLogsServiceRequest
	headers []http.Header // HTTP headers or gRPC metadata of every request
	calls   int
	// respond, if set, decides the reply to request number n (from 1) of
	// signal; status 0 accepts it.
	respond func(n int, signal string, spanNames []string) reply
}

// reply is what the receiver answers instead of accepting.
type reply struct {
	status   int   // HTTP status
	grpcErr  error // gRPC error
	header   http.Header
	message  string // HTTP body (text/plain)
	rejected int64  // accept with a partial success rejecting this many
	hang     bool   // block until the request is cancelled
}

func (rc *receiver) decide(signal string, names []string) reply {
	rc.mu.Lock()
	rc.calls++
	n, f := rc.calls, rc.respond
	rc.mu.Unlock()
	if f == nil {
		return reply{}
	}
	return f(n, signal, names)
}

func (rc *receiver) record(hdr http.Header, body []byte, signal string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.headers = append(rc.headers, hdr)
	switch signal {
	case "traces":
		m := &coltracepb.ExportTraceServiceRequest{}
		must(proto.Unmarshal(body, m))
		rc.traces = append(rc.traces, m)
	case "metrics":
		m := &colmetricspb.ExportMetricsServiceRequest{}
		must(proto.Unmarshal(body, m))
		rc.metrics = append(rc.metrics, m)
	case "logs":
		m := &collogspb.ExportLogsServiceRequest{}
		must(proto.Unmarshal(body, m))
		rc.logs = append(rc.logs, m)
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// spanNames lists the spans received, in order.
func (rc *receiver) spanNames() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var names []string
	for _, r := range rc.traces {
		names = append(names, traceNames(r)...)
	}
	return names
}

func traceNames(r *coltracepb.ExportTraceServiceRequest) []string {
	var names []string
	for _, rs := range r.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				names = append(names, s.Name)
			}
		}
	}
	return names
}

// decodeHTTP decodes an OTLP/HTTP body with pdata and returns it as OTLP
// protobuf, and the span names when it holds traces.
func decodeHTTP(signal string, body []byte) ([]byte, []string, error) {
	switch signal {
	case "traces":
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			return nil, nil, err
		}
		var names []string
		rss := req.Traces().ResourceSpans()
		for i := range rss.Len() {
			for j := range rss.At(i).ScopeSpans().Len() {
				spans := rss.At(i).ScopeSpans().At(j).Spans()
				for k := range spans.Len() {
					names = append(names, spans.At(k).Name())
				}
			}
		}
		b, err := req.MarshalProto()
		return b, names, err
	case "metrics":
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			return nil, nil, err
		}
		b, err := req.MarshalProto()
		return b, nil, err
	case "logs":
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			return nil, nil, err
		}
		b, err := req.MarshalProto()
		return b, nil, err
	}
	return nil, nil, fmt.Errorf("unknown signal %q", signal)
}

// ServeHTTP is an OTLP/HTTP receiver.
func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	signal, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if r.Method != http.MethodPost || !ok || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "not an OTLP/HTTP protobuf request", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip", http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	wire, names, err := decodeHTTP(signal, raw)
	if err != nil {
		http.Error(w, "decoding: "+err.Error(), http.StatusBadRequest)
		return
	}
	rp := rc.decide(signal, names)
	if rp.hang {
		<-r.Context().Done()
		return
	}
	if rp.status != 0 {
		for k, v := range rp.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(rp.status)
		io.WriteString(w, rp.message)
		return
	}
	rc.record(r.Header.Clone(), wire, signal)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(httpAccept(signal, rp.rejected))
}

// httpAccept is a success reply made with pdata, with a partial success
// when rejected > 0.
func httpAccept(signal string, rejected int64) []byte {
	var b []byte
	var err error
	switch signal {
	case "traces":
		r := ptraceotlp.NewExportResponse()
		if rejected > 0 {
			r.PartialSuccess().SetRejectedSpans(rejected)
			r.PartialSuccess().SetErrorMessage("spans too old")
		}
		b, err = r.MarshalProto()
	case "metrics":
		b, err = pmetricotlp.NewExportResponse().MarshalProto()
	case "logs":
		b, err = plogotlp.NewExportResponse().MarshalProto()
	}
	must(err)
	return b
}

func newHTTPReceiver(t *testing.T) (*receiver, *httptest.Server) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv
}

// gRPC receiver: the collector's own service registration.

type grpcTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	rc *receiver
}

func (g *grpcTraces) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	b, err := req.MarshalProto()
	must(err)
	_, names, _ := decodeHTTP("traces", b)
	rp := g.rc.decide("traces", names)
	if rp.hang {
		<-ctx.Done()
		return ptraceotlp.NewExportResponse(), ctx.Err()
	}
	if rp.grpcErr != nil {
		return ptraceotlp.NewExportResponse(), rp.grpcErr
	}
	g.rc.record(mdHeader(ctx), b, "traces")
	resp := ptraceotlp.NewExportResponse()
	if rp.rejected > 0 {
		resp.PartialSuccess().SetRejectedSpans(rp.rejected)
		resp.PartialSuccess().SetErrorMessage("spans too old")
	}
	return resp, nil
}

type grpcMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	rc *receiver
}

func (g *grpcMetrics) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	b, err := req.MarshalProto()
	must(err)
	if rp := g.rc.decide("metrics", nil); rp.grpcErr != nil {
		return pmetricotlp.NewExportResponse(), rp.grpcErr
	}
	g.rc.record(mdHeader(ctx), b, "metrics")
	return pmetricotlp.NewExportResponse(), nil
}

type grpcLogs struct {
	plogotlp.UnimplementedGRPCServer
	rc *receiver
}

func (g *grpcLogs) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	b, err := req.MarshalProto()
	must(err)
	if rp := g.rc.decide("logs", nil); rp.grpcErr != nil {
		return plogotlp.NewExportResponse(), rp.grpcErr
	}
	g.rc.record(mdHeader(ctx), b, "logs")
	return plogotlp.NewExportResponse(), nil
}

func mdHeader(ctx context.Context) http.Header {
	md, _ := metadata.FromIncomingContext(ctx)
	h := http.Header{}
	for k, v := range md {
		h[http.CanonicalHeaderKey(k)] = v
	}
	return h
}

// newGRPCReceiver serves OTLP/gRPC on 127.0.0.1 and returns its address.
func newGRPCReceiver(t *testing.T) (*receiver, string) {
	rc := &receiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, &grpcTraces{rc: rc})
	pmetricotlp.RegisterGRPCServer(srv, &grpcMetrics{rc: rc})
	plogotlp.RegisterGRPCServer(srv, &grpcLogs{rc: rc})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return rc, ln.Addr().String()
}

// logBuffer collects log output; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testConfig is a config with fast retries for endpoint.
func testConfig(t *testing.T, endpoint string) Config {
	return Config{
		Endpoint:   endpoint,
		Dir:        t.TempDir(),
		Timeout:    2 * time.Second,
		Backoff:    time.Millisecond,
		MaxBackoff: 5 * time.Millisecond,
	}
}

// waits records the delays the exporter asked for, and waits 1ms instead.
type waits struct {
	mu sync.Mutex
	ds []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) bool {
	w.mu.Lock()
	w.ds = append(w.ds, d)
	w.mu.Unlock()
	return sleepCtx(ctx, time.Millisecond)
}

func (w *waits) list() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.ds...)
}

func newExporter(t *testing.T, cfg Config) *Exporter {
	t.Helper()
	e, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { e.Stop(context.Background()) })
	return e
}

func start(t *testing.T, e *Exporter) {
	t.Helper()
	if err := e.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after 10s.
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

func names(prefix string, from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, fmt.Sprintf("%s-%03d", prefix, i))
	}
	return s
}
