package otlp

import (
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// collectorTraces is sampleRequest's two valid spans and one with a
// zero span ID, built with the OpenTelemetry Collector's pdata: an
// encoder written independently of the generated protobuf types (its
// JSON in particular is its own, with hex IDs).
func collectorTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	rs.Resource().Attributes().PutStr("noops.app", "bank")
	rs.Resource().Attributes().PutStr("host.name", "box")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("net/http")
	ts := func(d time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t0.Add(d)) }

	root := ss.Spans().AppendEmpty()
	root.SetTraceID(pcommon.TraceID(traceA))
	root.SetSpanID(pcommon.SpanID(rootID))
	root.SetName("GET /cart")
	root.SetKind(ptrace.SpanKindServer)
	root.SetStartTimestamp(ts(0))
	root.SetEndTimestamp(ts(120 * time.Millisecond))
	root.Attributes().PutStr("http.request.method", "GET")
	root.Attributes().PutStr("url.path", "/cart")
	root.Status().SetCode(ptrace.StatusCodeOk)

	child := ss.Spans().AppendEmpty()
	child.SetTraceID(pcommon.TraceID(traceA))
	child.SetSpanID(pcommon.SpanID(childID))
	child.SetParentSpanID(pcommon.SpanID(rootID))
	child.SetName("SELECT carts")
	child.SetKind(ptrace.SpanKindClient)
	child.SetStartTimestamp(ts(10 * time.Millisecond))
	child.SetEndTimestamp(ts(60 * time.Millisecond))
	a := child.Attributes()
	a.PutStr("db.statement", "SELECT * FROM carts WHERE id = $1")
	a.PutInt("db.rows", 42)
	a.PutBool("retry", true)
	a.PutDouble("ratio", 0.5)
	tags := a.PutEmptySlice("tags")
	tags.AppendEmpty().SetStr("a")
	tags.AppendEmpty().SetInt(1)
	a.PutEmptyMap("peer").PutStr("host", "db")
	a.PutEmptyBytes("blob").FromRaw([]byte{1, 2, 3})
	ev := child.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(ts(59 * time.Millisecond))
	ev.Attributes().PutStr("exception.message", "timeout")
	child.Status().SetCode(ptrace.StatusCodeError)
	child.Status().SetMessage("timeout")

	bad := ss.Spans().AppendEmpty()
	bad.SetTraceID(pcommon.TraceID(traceA))
	bad.SetName("zero span")
	bad.SetStartTimestamp(ts(0))
	return td
}

func TestCollectorPdataInterop(t *testing.T) {
	t.Parallel()
	req := ptraceotlp.NewExportRequestFromTraces(collectorTraces())
	pbBody, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	jsonBody, err := req.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, ctype, cenc string
		body              []byte
	}{
		{"protobuf", pb, "", pbBody},
		{"json", js, "", jsonBody},
		{"json gzip", js, "gzip", gzipped(t, jsonBody)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sk := &sink{}
			r := newTestReceiver(t, Config{}, sk)
			w := post(t, r, "/v1/traces", "shop", tc.ctype, tc.cenc, tc.body)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			// The collector's decoder reads our response.
			resp := ptraceotlp.NewExportResponse()
			unmarshal := resp.UnmarshalProto
			if tc.ctype == js {
				unmarshal = resp.UnmarshalJSON
			}
			if err := unmarshal(w.Body.Bytes()); err != nil {
				t.Fatalf("the collector cannot read the response %q: %v", w.Body, err)
			}
			if n := resp.PartialSuccess().RejectedSpans(); n != 1 {
				t.Errorf("rejected %d spans, want 1 (%q)", n, resp.PartialSuccess().ErrorMessage())
			}
			_, _, spans := sk.got()
			checkSample(t, "shop", spans)
		})
	}
}
