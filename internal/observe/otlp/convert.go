package otlp

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"noops/internal/observe/tracestore"
)

// unknownService is the service of spans whose resource names none, as
// the OpenTelemetry specification says SDKs default to.
const unknownService = "unknown_service"

// maxValueDepth bounds the nesting of array and map values flattened to
// text.
const maxValueDepth = 8

var kinds = map[tracepb.Span_SpanKind]string{
	tracepb.Span_SPAN_KIND_UNSPECIFIED: "internal", // as the specification allows
	tracepb.Span_SPAN_KIND_INTERNAL:    "internal",
	tracepb.Span_SPAN_KIND_SERVER:      "server",
	tracepb.Span_SPAN_KIND_CLIENT:      "client",
	tracepb.Span_SPAN_KIND_PRODUCER:    "producer",
	tracepb.Span_SPAN_KIND_CONSUMER:    "consumer",
}

// rejection counts the spans refused while converting a request and
// keeps the first reason, for partial_success.
type rejection struct {
	n     int64
	first string
}

func (r *rejection) add(format string, args ...any) {
	if r.n == 0 {
		r.first = fmt.Sprintf(format, args...)
	}
	r.n++
}

func (r *rejection) message() string {
	if r.n == 0 {
		return ""
	}
	if r.n == 1 {
		return "1 span rejected: " + r.first
	}
	return fmt.Sprintf("%d spans rejected; the first: %s", r.n, r.first)
}

// Convert turns an export request into store spans of app: App is always
// app (never taken from the request), Service is the resource's
// service.name. Span attributes come first, then the resource's (as
// "resource.KEY") and the instrumentation scope's name
// ("otel.scope.name"), within tracestore.MaxAttributes; values are
// flattened to text and cut to the store's bounds. Spans with a trace ID
// that is not 16 bytes or is all zero, a span ID that is not 8 bytes or
// is all zero, a parent ID of another length than 0 or 8 bytes, or no
// start time, are left out and counted in the returned number, with the
// first one's reason. An all-zero parent ID means a root span.
func Convert(app string, req *coltracepb.ExportTraceServiceRequest) (spans []tracestore.Span, rejected int64, reason string) {
	var rej rejection
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	spans = make([]tracestore.Span, 0, n)
	idx := 0
	for _, rs := range req.GetResourceSpans() {
		service := unknownService
		var resAttrs []kv
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				if s := a.GetValue().GetStringValue(); s != "" {
					service = tracestore.Truncate(s, tracestore.MaxNameLen)
				}
				continue
			}
			if len(resAttrs) < tracestore.MaxAttributes && a.GetKey() != "" {
				resAttrs = append(resAttrs, kv{"resource." + a.GetKey(), valueText(a.GetValue())})
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			scope := ss.GetScope().GetName()
			for _, sp := range ss.GetSpans() {
				i := idx
				idx++
				s, err := convertSpan(sp)
				if err != "" {
					rej.add("span %d: %s", i, err)
					continue
				}
				s.App, s.Service = app, service
				s.Attributes = attributes(sp.GetAttributes(), resAttrs, scope, tracestore.MaxAttributes)
				spans = append(spans, s)
			}
		}
	}
	return spans, rej.n, rej.message()
}

type kv struct{ k, v string }

func idText(b []byte, n int, what string) (string, string) {
	if len(b) != n {
		return "", fmt.Sprintf("%s has %d bytes, want %d", what, len(b), n)
	}
	for _, c := range b {
		if c != 0 {
			return hex.EncodeToString(b), ""
		}
	}
	return "", what + " is all zero"
}

func convertSpan(sp *tracepb.Span) (tracestore.Span, string) {
	var s tracestore.Span
	var why string
	if s.TraceID, why = idText(sp.GetTraceId(), 16, "trace_id"); why != "" {
		return s, why
	}
	if s.SpanID, why = idText(sp.GetSpanId(), 8, "span_id"); why != "" {
		return s, why
	}
	if p := sp.GetParentSpanId(); len(p) != 0 {
		id, why := idText(p, 8, "parent_span_id")
		switch {
		case why == "parent_span_id is all zero": // a root, as some clients send it
		case why != "":
			return s, why
		default:
			s.ParentID = id
		}
	}
	start, end := sp.GetStartTimeUnixNano(), sp.GetEndTimeUnixNano()
	if start == 0 || start > math.MaxInt64 {
		return s, "no valid start_time_unix_nano"
	}
	if end < start || end > math.MaxInt64 {
		end = start
	}
	s.Start, s.End = time.Unix(0, int64(start)).UTC(), time.Unix(0, int64(end)).UTC()
	s.Name = tracestore.Truncate(sp.GetName(), tracestore.MaxNameLen)
	s.Kind = kinds[sp.GetKind()]
	if s.Kind == "" {
		s.Kind = "internal"
	}
	switch sp.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_OK:
		s.StatusCode = "ok"
	case tracepb.Status_STATUS_CODE_ERROR:
		s.StatusCode = "error"
	default:
		s.StatusCode = "unset"
	}
	s.StatusMessage = tracestore.Truncate(sp.GetStatus().GetMessage(), tracestore.MaxStatusLen)
	if evs := sp.GetEvents(); len(evs) > 0 {
		s.Events = make([]tracestore.SpanEvent, 0, min(len(evs), tracestore.MaxEvents))
		for _, e := range evs[:min(len(evs), tracestore.MaxEvents)] {
			t := s.Start
			if ns := e.GetTimeUnixNano(); ns != 0 && ns <= math.MaxInt64 {
				t = time.Unix(0, int64(ns)).UTC()
			}
			s.Events = append(s.Events, tracestore.SpanEvent{
				Name:       tracestore.Truncate(e.GetName(), tracestore.MaxNameLen),
				Time:       t,
				Attributes: attributes(e.GetAttributes(), nil, "", tracestore.MaxEventAttributes),
			})
		}
	}
	return s, ""
}

// attributes flattens attrs, then extra and the scope name, into at most
// n entries; an earlier key wins.
func attributes(attrs []*commonpb.KeyValue, extra []kv, scope string, n int) map[string]string {
	if len(attrs)+len(extra) == 0 && scope == "" {
		return nil
	}
	m := make(map[string]string, min(len(attrs)+len(extra)+1, n))
	put := func(k, v string) {
		if len(m) >= n || k == "" {
			return
		}
		k = tracestore.Truncate(k, tracestore.MaxAttrKeyLen)
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	for _, a := range attrs {
		if len(m) >= n {
			break
		}
		put(a.GetKey(), valueText(a.GetValue()))
	}
	for _, e := range extra {
		put(e.k, e.v)
	}
	if scope != "" {
		put("otel.scope.name", tracestore.Truncate(scope, tracestore.MaxAttrValueLen))
	}
	return m
}

// valueText flattens a value to text of at most MaxAttrValueLen bytes:
// strings as they are, numbers and booleans as Go prints them, bytes in
// base64, arrays and maps as JSON-like text.
func valueText(v *commonpb.AnyValue) string {
	if s, ok := scalarText(v); ok {
		return tracestore.Truncate(s, tracestore.MaxAttrValueLen)
	}
	w := limitedText{max: tracestore.MaxAttrValueLen}
	w.value(v, 0, false)
	return tracestore.Truncate(w.b.String(), tracestore.MaxAttrValueLen)
}

// scalarText is the text of a value that is not an array, a map or bytes.
func scalarText(v *commonpb.AnyValue) (string, bool) {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue, true
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue), true
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10), true
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64), true
	case *commonpb.AnyValue_ArrayValue, *commonpb.AnyValue_KvlistValue, *commonpb.AnyValue_BytesValue:
		return "", false
	}
	return "", true // none, or a string table index (profiles only)
}

// limitedText writes nested values, stopping once max bytes are written.
type limitedText struct {
	b   strings.Builder
	max int
}

func (w *limitedText) full() bool { return w.b.Len() >= w.max }

func (w *limitedText) str(s string) {
	if !w.full() {
		w.b.WriteString(strconv.Quote(tracestore.Truncate(s, w.max-w.b.Len())))
	}
}

func (w *limitedText) value(v *commonpb.AnyValue, depth int, quote bool) {
	if w.full() {
		return
	}
	if depth > maxValueDepth {
		w.b.WriteString("…")
		return
	}
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		if quote {
			w.str(x.StringValue)
		} else {
			w.b.WriteString(tracestore.Truncate(x.StringValue, w.max))
		}
	case *commonpb.AnyValue_BytesValue:
		n := min(len(x.BytesValue), w.max) // base64 is longer: enough
		w.b.WriteString(base64.StdEncoding.EncodeToString(x.BytesValue[:n]))
	case *commonpb.AnyValue_ArrayValue:
		w.b.WriteByte('[')
		for i, e := range x.ArrayValue.GetValues() {
			if w.full() {
				break
			}
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.value(e, depth+1, true)
		}
		w.b.WriteByte(']')
	case *commonpb.AnyValue_KvlistValue:
		w.b.WriteByte('{')
		for i, e := range x.KvlistValue.GetValues() {
			if w.full() {
				break
			}
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.str(e.GetKey())
			w.b.WriteByte(':')
			w.value(e.GetValue(), depth+1, true)
		}
		w.b.WriteByte('}')
	case nil:
		if quote {
			w.b.WriteString("null")
		}
	default:
		t, _ := scalarText(v)
		w.b.WriteString(tracestore.Truncate(t, w.max))
	}
}
