package main

// Tracing with the OpenTelemetry SDK. noops' gateway starts or continues a
// W3C trace for every request and passes it on in traceparent; the app
// continues it with a server span per request and sends its spans to the
// platform over OTLP/HTTP, which the platform points it at with the
// standard OTEL_* variables (see README.md).

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerName names the instrumentation scope of the app's spans.
const tracerName = "example.com/hello"

// tracing is the app's tracer provider: the SDK's with an OTLP exporter,
// or none (tracing off), when no endpoint is configured.
type tracing struct {
	sdk *sdktrace.TracerProvider // nil when tracing is off
}

// newTracing configures tracing from the environment. With neither
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT nor OTEL_EXPORTER_OTLP_ENDPOINT set
// (the app runs outside noops), or with OTEL_SDK_DISABLED=true, tracing is
// off and nothing is exported. Otherwise spans go through a batch span
// processor to the OTLP/HTTP exporter, which takes the endpoint, protocol,
// headers and timeout from the OTEL_EXPORTER_OTLP_* variables. With
// NOOPS_IDENTITY_DIR set, the exporter's TLS uses the sandbox identity
// files, read again as the platform rotates them; without it, the SDK's
// own certificate variables (read once) apply.
func newTracing(ctx context.Context) (*tracing, error) {
	endpoint := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		endpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if endpoint == "" || strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return &tracing{}, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("parsing the OTLP endpoint %q: not an absolute URL", endpoint)
	}
	// Later sources win: the name below only when OTEL_SERVICE_NAME is unset.
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName("hello")),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	switch {
	case errors.Is(err, resource.ErrPartialResource):
		// A malformed OTEL_RESOURCE_ATTRIBUTES: keep what was understood.
		log.Printf("hello: tracing: %v", err)
	case err != nil:
		return nil, fmt.Errorf("reading the resource attributes: %w", err)
	}
	var opts []otlptracehttp.Option
	if dir := os.Getenv("NOOPS_IDENTITY_DIR"); dir != "" && u.Scheme == "https" {
		opts = append(opts, otlptracehttp.WithTLSClientConfig(newIdentity(dir).tlsConfig(u.Hostname())))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("creating the OTLP exporter: %w", err)
	}
	return &tracing{sdk: sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))}, nil
}

// tracer is the tracer for the app's spans.
func (t *tracing) tracer() trace.Tracer {
	if t.sdk == nil {
		return noop.NewTracerProvider().Tracer(tracerName)
	}
	return t.sdk.Tracer(tracerName)
}

// flush exports the spans that have ended so far.
func (t *tracing) flush(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.ForceFlush(ctx)
}

// shutdown exports what is left and stops the exporter.
func (t *tracing) shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// traced serves mux with a server span per request that continues the
// caller's traceparent and is named after the route that matched
// ("GET /"), except health checks that come without a traceparent.
// Requests other than health checks are logged with their trace ID.
func traced(tracer trace.Tracer, mux *http.ServeMux) http.Handler {
	prop := propagation.TraceContext{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		_, pattern := mux.Handler(r)
		route := routeOf(pattern)
		if route == "/healthz" && !trace.SpanContextFromContext(ctx).IsValid() {
			// The platform's own health probes (every few seconds, not
			// through the gateway, so with no trace to continue) would
			// each start a trace of their own: served untraced.
			mux.ServeHTTP(w, r)
			return
		}
		method, known := methodOf(r.Method)
		name := method
		if !known {
			name = "HTTP"
		}
		if route != "" {
			name += " " + route
		}
		attrs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(method), semconv.URLPath(r.URL.Path)}
		if !known {
			attrs = append(attrs, semconv.HTTPRequestMethodOriginal(r.Method))
		}
		if route != "" {
			attrs = append(attrs, semconv.HTTPRoute(route))
		}
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		defer span.End()

		sw := &statusWriter{ResponseWriter: w}
		mux.ServeHTTP(sw, r.WithContext(ctx))
		code := sw.status()
		span.SetAttributes(semconv.HTTPResponseStatusCode(code))
		if code >= 500 {
			span.SetStatus(codes.Error, http.StatusText(code))
		}
		if route != "/healthz" {
			logRequest(r, code, time.Since(start), span.SpanContext())
		}
	})
}

// logRequest writes one line per request, with the trace ID when there is
// one so that the line and the trace can be found from each other.
func logRequest(r *http.Request, code int, took time.Duration, sc trace.SpanContext) {
	line := fmt.Sprintf("hello: %s %q %d %s", r.Method, r.URL.Path, code, took.Round(time.Microsecond))
	if sc.HasTraceID() {
		line += " trace_id=" + sc.TraceID().String()
	}
	log.Print(line)
}

// routeOf is the http.route of a ServeMux pattern: without the method and
// host, and without the {$} that anchors a path ("GET /{$}" is "/").
func routeOf(pattern string) string {
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	if i := strings.IndexByte(pattern, '/'); i > 0 {
		pattern = pattern[i:] // drop a host
	}
	if strings.HasSuffix(pattern, "/{$}") {
		pattern = strings.TrimSuffix(pattern, "{$}")
	}
	return pattern
}

// methodOf is the http.request.method of a request: one of the standard
// methods, or "_OTHER" (false) so that arbitrary methods do not become
// span names.
func methodOf(m string) (string, bool) {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m, true
	}
	return "_OTHER", false
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 { // 1xx are informational, not the status
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status is the code sent: 200 when the handler wrote nothing.
func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
