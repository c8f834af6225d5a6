package gateway

import (
	"net/http"
	"strings"
	"time"

	"noops/internal/errkind"
	"noops/internal/observe/trace"
)

// Deliver sends a request of the platform itself (an event, a cron tick,
// an asynchronous invocation) to one of app's sandboxes, through the same
// route, activator (an app at zero is woken) and connection pools as the
// requests of clients, but not through the Guard and the Shield: those
// judged the request when it entered the platform. Failures are answers:
// 502 when the app did not answer, 503 when it has no sandbox.
func (g *Gateway) Deliver(w http.ResponseWriter, r *http.Request, app string) error {
	app = strings.ToLower(app)
	rt := g.routes.get(app)
	if rt == nil {
		return errkind.Errorf(errkind.NotFound, "delivering to %s: the app has no live release", app)
	}
	if r.Host == "" {
		r.Host = app + g.suffix
	}
	if r.RemoteAddr == "" {
		r.RemoteAddr = "127.0.0.1:0" // the platform
	}
	id := requestID(r.Header)
	rw := getWriter(w)
	defer putWriter(rw)
	rw.Header()["X-Request-Id"] = []string{id}
	g.serveApp(rw, r, rt, id, time.Now())
	return nil
}

// traced makes sure a request to an app carries a W3C trace context: a
// valid traceparent is passed on, anything else replaced by a new trace.
func traced(h http.Header) {
	if v := h["Traceparent"]; len(v) == 1 {
		if _, ok := trace.Parse(v[0]); ok {
			return
		}
	}
	h["Traceparent"] = []string{trace.New().String()}
	delete(h, "Tracestate")
}
