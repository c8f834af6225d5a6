package gateway

import (
	"net/http"
	"time"

	"noops/internal/observe/trace"
)

// Served is what the gateway tells Config.Observe about one request to an
// app it answered: the access log line, the RED metric sample and the
// gateway's span are made from it and from the request.
type Served struct {
	App      string
	Start    time.Time
	Duration time.Duration
	Status   int    // 0 when the client went away before an answer
	BytesOut int64  // response body bytes written
	Backend  string // the backend's address, or who answered: "access", "shield", "platform"
	// Span is the gateway's span: the request's trace and the span its
	// app's spans descend from (the traceparent the app received).
	Span trace.Parent
	// Parent is the caller's span ID; HasParent is false when the gateway
	// began the trace.
	Parent    [8]byte
	HasParent bool
}

// startSpan begins the gateway's span of a request to an app: a child of
// the caller's valid traceparent, or a new trace. The client learns it
// from the response's traceresponse header (W3C Trace Context Level 2),
// so that it can ask for the trace. The request goes on
// with the gateway's span as its traceparent; a tracestate is kept only
// with the caller's trace.
func startSpan(h http.Header) (span trace.Parent, parent [8]byte) {
	if v := h["Traceparent"]; len(v) == 1 {
		if in, ok := trace.Parse(v[0]); ok {
			span = in.Child()
			h["Traceparent"] = []string{span.String()}
			return span, in.SpanID
		}
	}
	span = trace.New()
	h["Traceparent"] = []string{span.String()}
	delete(h, "Tracestate")
	return span, parent
}

// observe reports a request to a known app to Config.Observe.
func (g *Gateway) observe(rt *route, r *http.Request, rw *respWriter, start time.Time) {
	if g.cfg.Observe == nil || rt == nil {
		return
	}
	s := Served{App: rt.app, Start: start, Duration: time.Since(start), Status: rw.status, BytesOut: rw.written,
		Backend: rw.backend, Span: rw.span, Parent: rw.parent, HasParent: rw.parent != [8]byte{}}
	if s.Span.TraceID == [16]byte{} { // a path that did not begin a span
		s.Span, s.Parent = startSpan(r.Header)
		s.HasParent = s.Parent != [8]byte{}
	}
	g.cfg.Observe(r, &s)
}
