package otlp

import (
	"context"
	"net/http"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"noops/internal/observe/tracestore"
)

// FuzzReceiveTraces posts arbitrary bodies with a content type and an
// optional gzip encoding: the receiver must answer 200 with a response,
// or 400, 413 or 415 with a google.rpc.Status, and every span it passes
// on must be valid for the store.
func FuzzReceiveTraces(f *testing.F) {
	good, _ := proto.Marshal(sampleRequest())
	f.Add(good, pb, false)
	f.Add(gzipped(f, good), pb, true)
	f.Add(sampleJSONBody(), js, false)
	f.Add(gzipped(f, sampleJSONBody()), "application/json; charset=utf-8", true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"zz"}]}]}]}`), js, false)
	f.Add([]byte{0x0a, 0x80, 0x80, 0x80, 0x80, 0x08}, pb, false)
	f.Add([]byte("\x1f\x8b\x08\x00"), pb, true)
	f.Add([]byte("hello"), "text/plain", false)
	f.Fuzz(func(t *testing.T, body []byte, ctype string, gz bool) {
		sk := &sink{}
		r := newTestReceiver(t, Config{MaxBody: 64 << 10}, sk)
		cenc := ""
		if gz {
			cenc = "gzip"
		}
		w := post(t, r, "/v1/traces", "shop", ctype, cenc, body)
		enc, _ := requestEncoding(ctype)
		dec := proto.Unmarshal
		if enc == encJSON {
			dec = protojson.Unmarshal
		}
		switch w.Code {
		case http.StatusOK:
			if err := dec(w.Body.Bytes(), &coltracepb.ExportTraceServiceResponse{}); err != nil {
				t.Fatalf("200 with an unreadable response %q: %v", w.Body, err)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			if err := dec(w.Body.Bytes(), &statuspb.Status{}); err != nil {
				t.Fatalf("%d with an unreadable status %q: %v", w.Code, w.Body, err)
			}
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		_, _, spans := sk.got()
		for _, s := range spans {
			if len(s.TraceID) != 32 || len(s.SpanID) != 16 || s.App != "shop" || s.Start.IsZero() || s.End.Before(s.Start) {
				t.Fatalf("invalid span passed on: %+v", s)
			}
		}
	})
}

// BenchmarkReceiveTraces is the OTLP/HTTP path for a 100-span protobuf
// export: reading, decoding and converting, without a store.
func BenchmarkReceiveTraces(b *testing.B) {
	req := sampleRequest()
	ss := req.ResourceSpans[0].ScopeSpans[0]
	valid := ss.Spans[:2]
	ss.Spans = nil
	for i := range 50 {
		for _, sp := range valid {
			c := proto.Clone(sp).(*tracepb.Span)
			c.SpanId = []byte{1, 2, 3, 4, 5, 6, byte(i), c.SpanId[7]}
			ss.Spans = append(ss.Spans, c)
		}
	}
	body, _ := proto.Marshal(req)
	r := newTestReceiver(b, Config{Spans: func(context.Context, string, []tracestore.Span) error { return nil }}, nil)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if w := post(b, r, "/v1/traces", "shop", pb, "", body); w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/span")
}
