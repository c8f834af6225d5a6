package otlp

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"noops/internal/errkind"
	"noops/internal/observe/tracestore"
)

const (
	pb   = "application/x-protobuf"
	js   = "application/json"
	path = "/.noops/otlp/v1/traces"
)

func TestHTTPProtobuf(t *testing.T) {
	t.Parallel()
	sk := &sink{}
	r := newTestReceiver(t, Config{}, sk)
	body, _ := proto.Marshal(sampleRequest())
	for _, cenc := range []string{"", "gzip"} {
		b := body
		if cenc == "gzip" {
			b = gzipped(t, body)
		}
		w := post(t, r, path, "shop", pb, cenc, b)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != pb {
			t.Fatalf("%q: status %d, type %q, body %q", cenc, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		var resp coltracepb.ExportTraceServiceResponse
		if err := proto.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		ps := resp.GetPartialSuccess()
		if ps.GetRejectedSpans() != 2 || !strings.Contains(ps.GetErrorMessage(), "span 2: trace_id has 3 bytes, want 16") {
			t.Errorf("%q: partial success %v", cenc, ps)
		}
	}
	_, app, spans := sk.got()
	if app != "shop" {
		t.Errorf("callback app %q", app)
	}
	checkSample(t, "shop", spans[:2])
	checkSample(t, "shop", spans[2:])
	if st := r.Stats(); st.Requests != 2 || st.Spans != 4 || st.Rejected != 4 {
		t.Errorf("stats %+v", st)
	}
}

// sampleJSON is sampleRequest as an OTLP/JSON exporter writes it: hex
// IDs, enums as numbers or names, 64-bit integers as strings, unknown
// fields.
var sampleJSON = `{"resourceSpans":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"checkout"}},
  {"key":"noops.app","value":{"stringValue":"bank"}},{"key":"host.name","value":{"stringValue":"box"}}]},
 "scopeSpans":[{"scope":{"name":"net/http"},"spans":[
  {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","parentSpanId":"","name":"GET /cart","kind":2,
   "startTimeUnixNano":"%d","endTimeUnixNano":%d,"futureField":{"x":1},
   "attributes":[{"key":"http.request.method","value":{"stringValue":"GET"}},{"key":"url.path","value":{"stringValue":"/cart"}}],
   "status":{"code":"STATUS_CODE_OK"}},
  {"traceId":"4BF92F3577B34DA6A3CE929D0E0E4736","spanId":"53995c3f42cd8ad8","parentSpanId":"00f067aa0ba902b7","name":"SELECT carts","kind":"SPAN_KIND_CLIENT",
   "startTimeUnixNano":"%d","endTimeUnixNano":"%d",
   "attributes":[{"key":"db.statement","value":{"stringValue":"SELECT * FROM carts WHERE id = $1"}},
    {"key":"db.rows","value":{"intValue":"42"}},{"key":"retry","value":{"boolValue":true}},{"key":"ratio","value":{"doubleValue":0.5}},
    {"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":1}]}}},
    {"key":"peer","value":{"kvlistValue":{"values":[{"key":"host","value":{"stringValue":"db"}}]}}},
    {"key":"blob","value":{"bytesValue":"AQID"}}],
   "events":[{"name":"exception","timeUnixNano":"%d","attributes":[{"key":"exception.message","value":{"stringValue":"timeout"}}]}],
   "status":{"code":2,"message":"timeout"}},
  {"traceId":"010203","spanId":"00f067aa0ba902b7","name":"bad trace","startTimeUnixNano":"%d"},
  {"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"zzzzzzzzzzzzzzzz","name":"bad span","startTimeUnixNano":"%d"}
 ]}]}]}`

func sampleJSONBody() []byte {
	return fmt.Appendf(nil, sampleJSON, ns(0), ns(120*time.Millisecond), ns(10*time.Millisecond), ns(60*time.Millisecond), ns(59*time.Millisecond), ns(0), ns(0))
}

func TestHTTPJSON(t *testing.T) {
	t.Parallel()
	sk := &sink{}
	r := newTestReceiver(t, Config{}, sk)
	w := post(t, r, path, "shop", "application/json; charset=utf-8", "gzip", gzipped(t, sampleJSONBody()))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != js {
		t.Fatalf("status %d, type %q, body %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	var resp coltracepb.ExportTraceServiceResponse
	if err := protojson.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("response %s: %v", w.Body, err)
	}
	if ps := resp.GetPartialSuccess(); ps.GetRejectedSpans() != 2 || !strings.Contains(ps.GetErrorMessage(), "trace_id has 1 bytes") {
		t.Errorf("partial success %v", ps)
	}
	_, _, spans := sk.got()
	checkSample(t, "shop", spans)
}

func TestHTTPRefusals(t *testing.T) {
	t.Parallel()
	good, _ := proto.Marshal(sampleRequest())
	// 16 MiB of zeros in 16 KiB: gzip members one after the other form one
	// stream.
	bomb := bytes.Repeat(gzipped(t, make([]byte, 1<<20)), 16)
	truncated := good[:len(good)-9]
	cases := []struct {
		name       string
		method     string
		path       string
		app        string
		ctype      string
		cenc       string
		body       []byte
		want       int
		wantCode   codes.Code
		wantSubstr string
	}{
		{"GET", http.MethodGet, path, "shop", pb, "", nil, 405, codes.Unimplemented, "POSTed"},
		{"unknown path", http.MethodPost, "/.noops/otlp/v1/profiles", "shop", pb, "", good, 404, codes.NotFound, "no OTLP endpoint"},
		{"logs not served", http.MethodPost, "/v1/logs", "shop", pb, "", good, 404, codes.NotFound, "no OTLP endpoint"},
		{"no certificate", http.MethodPost, path, "", pb, "", good, 401, codes.Unauthenticated, "no workload certificate"},
		{"forbidden app", http.MethodPost, path, "intruder", pb, "", good, 403, codes.PermissionDenied, "may not export"},
		{"text/plain", http.MethodPost, path, "shop", "text/plain", "", good, 415, codes.InvalidArgument, "Content-Type"},
		{"no content type", http.MethodPost, path, "shop", "", "", good, 415, codes.InvalidArgument, "Content-Type"},
		{"brotli", http.MethodPost, path, "shop", pb, "br", good, 415, codes.InvalidArgument, "Content-Encoding"},
		{"garbage protobuf", http.MethodPost, path, "shop", pb, "", []byte("\xff\xff\xff\xff garbage"), 400, codes.InvalidArgument, "decoding the trace export"},
		{"truncated protobuf", http.MethodPost, path, "shop", pb, "", truncated, 400, codes.InvalidArgument, "decoding the trace export"},
		{"bad JSON", http.MethodPost, path, "shop", js, "", []byte(`{"resourceSpans":[{`), 400, codes.InvalidArgument, "reading JSON"},
		{"JSON of the wrong shape", http.MethodPost, path, "shop", js, "", []byte(`{"resourceSpans":"no"}`), 400, codes.InvalidArgument, "decoding"},
		{"two JSON values", http.MethodPost, path, "shop", js, "", []byte(`{} {}`), 400, codes.InvalidArgument, "after the top-level value"},
		{"not gzip", http.MethodPost, path, "shop", pb, "gzip", good, 400, codes.InvalidArgument, "not gzip"},
		{"truncated gzip", http.MethodPost, path, "shop", pb, "gzip", gzipped(t, good)[:40], 400, codes.InvalidArgument, "decompressing"},
		{"oversized", http.MethodPost, path, "shop", pb, "", make([]byte, 1<<20+1), 413, codes.InvalidArgument, "over 1048576 bytes"},
		{"gzip bomb", http.MethodPost, path, "shop", pb, "gzip", bomb, 413, codes.InvalidArgument, "decompresses to more than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sk := &sink{}
			r := newTestReceiver(t, Config{MaxBody: 1 << 20}, sk)
			req := httptest.NewRequest(tc.method, tc.path, bytes.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.cenc != "" {
				req.Header.Set("Content-Encoding", tc.cenc)
			}
			if tc.app != "" {
				req.Header.Set(appHeader, tc.app)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d; body %q", w.Code, tc.want, w.Body)
			}
			var st statuspb.Status
			dec := proto.Unmarshal
			if tc.ctype == js {
				dec = protojson.Unmarshal
			}
			if err := dec(w.Body.Bytes(), &st); err != nil {
				t.Fatalf("error body %q is not a google.rpc.Status: %v", w.Body, err)
			}
			if codes.Code(st.Code) != tc.wantCode || !strings.Contains(st.Message, tc.wantSubstr) {
				t.Errorf("status body %v, want code %v and %q", &st, tc.wantCode, tc.wantSubstr)
			}
			if tc.want == 405 && w.Header().Get("Allow") != "POST" {
				t.Errorf("Allow %q", w.Header().Get("Allow"))
			}
			if calls, _, _ := sk.got(); calls != 0 {
				t.Errorf("the callback ran %d times", calls)
			}
		})
	}
}

func TestHTTPCallbackErrors(t *testing.T) {
	t.Parallel()
	body, _ := proto.Marshal(sampleRequest())
	cases := []struct {
		name  string
		err   error
		want  int
		retry bool
	}{
		{"busy", fmt.Errorf("queue full: %w", ErrBusy), 429, true},
		{"too many", errkind.Errorf(errkind.TooMany, "slow down"), 429, true},
		{"unavailable", errkind.Errorf(errkind.Unavailable, "store closed"), 503, true},
		{"invalid", errkind.Errorf(errkind.Invalid, "bad span"), 400, false},
		{"internal", errBoom, 500, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sk := &sink{err: tc.err}
			r := newTestReceiver(t, Config{RetryAfter: 3 * time.Second}, sk)
			w := post(t, r, path, "shop", pb, "", body)
			if w.Code != tc.want || (w.Header().Get("Retry-After") == "3") != tc.retry {
				t.Errorf("status %d, Retry-After %q; want %d, retry %v", w.Code, w.Header().Get("Retry-After"), tc.want, tc.retry)
			}
			if tc.want == 500 && strings.Contains(w.Body.String(), "fire") {
				t.Errorf("internal cause leaked: %q", w.Body)
			}
		})
	}
}

// TestHTTPIntoStore is the receiver backed by a real store, as the
// platform wires it: spans land, a full store answers 503, and the trace
// prints as a waterfall.
func TestHTTPIntoStore(t *testing.T) {
	t.Parallel()
	store, err := tracestore.Open(t.TempDir(), tracestore.Options{Now: func() time.Time { return t0.Add(time.Minute) }, FlushEvery: time.Hour, MaxBuffer: 2 << 10, BlockSpans: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r := newTestReceiver(t, Config{Spans: func(ctx context.Context, app string, spans []tracestore.Span) error { return store.Add(spans...) }}, nil)
	body, _ := proto.Marshal(sampleRequest())
	if w := post(t, r, path, "shop", pb, "", body); w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	spans, err := store.Trace(context.Background(), traceAHex)
	if err != nil {
		t.Fatal(err)
	}
	checkSample(t, "shop", spans)
	var b strings.Builder
	if err := tracestore.Waterfall(&b, spans, 20); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "  SELECT carts  checkout [app shop]") {
		t.Errorf("waterfall:\n%s", b.String())
	}
	// The buffer (2 KiB) is now full: the next export is told to retry.
	rec := post(t, r, path, "shop", pb, "", body)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" || !strings.Contains(rec.Body.String(), "behind") {
		t.Errorf("full store: status %d, Retry-After %q, body %q", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}

func TestHTTPLogsAndMetrics(t *testing.T) {
	t.Parallel()
	var logs *collogspb.ExportLogsServiceRequest
	var metrics *colmetricspb.ExportMetricsServiceRequest
	var apps []string
	r := newTestReceiver(t, Config{
		Logs: func(ctx context.Context, app string, req *collogspb.ExportLogsServiceRequest) error {
			logs, apps = req, append(apps, app)
			return nil
		},
		Metrics: func(ctx context.Context, app string, req *colmetricspb.ExportMetricsServiceRequest) error {
			metrics, apps = req, append(apps, app)
			return nil
		},
	}, &sink{})
	logJSON := `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1","severityNumber":"SEVERITY_NUMBER_ERROR","body":{"stringValue":"boom"},
		"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7"}]}]}]}`
	w := post(t, r, "/.noops/otlp/v1/logs", "shop", js, "", []byte(logJSON))
	if w.Code != 200 {
		t.Fatalf("logs: %d %s", w.Code, w.Body)
	}
	rec := logs.GetResourceLogs()[0].GetScopeLogs()[0].GetLogRecords()[0]
	if !bytes.Equal(rec.GetTraceId(), traceA) || !bytes.Equal(rec.GetSpanId(), rootID) || rec.GetBody().GetStringValue() != "boom" {
		t.Errorf("log record %v", rec)
	}
	var resp collogspb.ExportLogsServiceResponse
	if err := protojson.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Errorf("logs response %q: %v", w.Body, err)
	}
	m := &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{ScopeMetrics: []*metricspb.ScopeMetrics{{
		Metrics: []*metricspb.Metric{{Name: "requests", Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{DataPoints: []*metricspb.NumberDataPoint{{Value: &metricspb.NumberDataPoint_AsInt{AsInt: 7}}}}}}},
	}}}}}
	body, _ := proto.Marshal(m)
	if w := post(t, r, "/v1/metrics", "shop", pb, "", body); w.Code != 200 {
		t.Fatalf("metrics: %d %s", w.Code, w.Body)
	}
	if !proto.Equal(metrics, m) || len(apps) != 2 || apps[1] != "shop" {
		t.Errorf("metrics %v, apps %v", metrics, apps)
	}
}

func TestNewRequiresCallbacks(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("New(empty) = %v", err)
	}
}

func TestConvertBounds(t *testing.T) {
	req := sampleRequest()
	sp := req.ResourceSpans[0].ScopeSpans[0].Spans[1]
	sp.Name = strings.Repeat("n", 10000)
	for i := range 200 {
		sp.Attributes = append(sp.Attributes, str(fmt.Sprintf("k%03d", i), strings.Repeat("v", 10000)))
	}
	for range 100 {
		sp.Events = append(sp.Events, sp.Events[0])
	}
	deep := &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "x"}}
	for range 1000 {
		deep = &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{deep}}}}
	}
	sp.Attributes[0].Value = deep
	spans, rejected, _ := Convert("shop", req)
	if rejected != 2 || len(spans) != 2 {
		t.Fatalf("%d spans, %d rejected", len(spans), rejected)
	}
	c := spans[1]
	if len(c.Name) != tracestore.MaxNameLen || len(c.Attributes) != tracestore.MaxAttributes || len(c.Events) != tracestore.MaxEvents {
		t.Errorf("name %d bytes, %d attributes, %d events", len(c.Name), len(c.Attributes), len(c.Events))
	}
	for k, v := range c.Attributes {
		if len(v) > tracestore.MaxAttrValueLen {
			t.Errorf("attribute %s has %d bytes", k, len(v))
		}
	}
	if v := c.Attributes["db.statement"]; !strings.HasPrefix(v, "[[[[") || !strings.Contains(v, "…") {
		t.Errorf("deep value %.60q", v)
	}
}
