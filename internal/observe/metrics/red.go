package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RED metrics of the gateway, named as OpenTelemetry's HTTP semantic
// conventions name them (http.server.request.duration, exported to
// Prometheus as http_server_request_duration_seconds), with the app as a
// label and the request's trace ID as the exemplar of each observation:
// a chart's spike leads to a trace.

// durationBuckets are the semantic conventions' advice for
// http.server.request.duration.
var durationBuckets = []float64{.005, .01, .025, .05, .075, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10}

func newRequestDuration() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_server_request_duration_seconds",
		Help:    "Duration of HTTP server requests through the gateway, from arrival to the end of the response (OpenTelemetry http.server.request.duration).",
		Buckets: durationBuckets,
	}, []string{"app", "http_request_method", "http_route", "http_response_status_code"})
}

// knownMethods are kept as they are; any other method is "_OTHER", as the
// semantic conventions say, so that a client cannot make up series.
var knownMethods = map[string]string{"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "DELETE": "DELETE",
	"CONNECT": "CONNECT", "OPTIONS": "OPTIONS", "TRACE": "TRACE", "PATCH": "PATCH"}

// statusText caches the label of each status code.
var statusText [600]string

func init() {
	for i := range statusText {
		statusText[i] = strconv.Itoa(i)
	}
}

// Request records one request to an app that the gateway answered:
// method, path (its route template is a label: route.go), status, how
// long it took, and its trace ID in hex (the exemplar; "" for none).
func (m *Metrics) Request(app, method, path string, status int, d time.Duration, traceID string) {
	meth, ok := knownMethods[method]
	if !ok {
		meth = "_OTHER"
	}
	code := "0"
	if status > 0 && status < len(statusText) {
		code = statusText[status]
	}
	o := m.requests.WithLabelValues(app, meth, m.routes.of(app, path), code)
	if traceID != "" {
		o.(prometheus.ExemplarObserver).ObserveWithExemplar(d.Seconds(), prometheus.Labels{"trace_id": traceID})
		return
	}
	o.Observe(d.Seconds())
}
