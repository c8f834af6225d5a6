// Command hello is the example app that `noops demo` deploys: a small web
// server with a health check and a page that shows which release and
// sandbox answered. It traces its requests with OpenTelemetry when the
// platform gives it an OTLP endpoint (tracing.go).
package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>hello from noops</title></head>
<body>
<h1>Hello from noops</h1>
<p>Release <b>{{.Release}}</b>, served by sandbox <code>{{.Host}}</code> as uid {{.UID}}.</p>
<p>Built from source, running in a runc sandbox with no capabilities, a read-only root and seccomp.</p>
</body></html>
`))

// Stopping: the platform sends SIGKILL 10 s after SIGTERM, so requests in
// flight get drainTimeout and the spans left to export flushTimeout.
const (
	drainTimeout = 5 * time.Second
	flushTimeout = 3 * time.Second
)

func main() {
	if err := run(); err != nil {
		log.Fatalf("hello: %v", err)
	}
}

func run() error {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	host, _ := os.Hostname()
	release := os.Getenv("NOOPS_RELEASE")
	if release == "" {
		release = "unknown"
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	tr, err := newTracing(ctx)
	if err != nil {
		// The page matters more than its traces: serve without them.
		log.Printf("hello: tracing off: %v", err)
		tr = &tracing{}
	}
	srv := &http.Server{Addr: ":" + port, Handler: newHandler(release, host, tr.tracer()), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	log.Printf("hello: release %s listening on :%s", release, port)

	select {
	case err = <-served:
	case <-ctx.Done():
		drain, cancel := context.WithTimeout(context.Background(), drainTimeout)
		err = srv.Shutdown(drain)
		cancel()
	}
	flush, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if ferr := tr.shutdown(flush); ferr != nil {
		log.Printf("hello: exporting the last spans: %v", ferr)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Printf("hello: stopped")
	return nil
}

// newHandler is the app: GET /healthz and the page at GET /, each request
// in a server span from tracer.
func newHandler(release, host string, tracer trace.Tracer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Release", release)
		_, span := tracer.Start(r.Context(), "render page")
		defer span.End()
		if err := page.Execute(w, map[string]any{"Release": release, "Host": host, "UID": os.Getuid()}); err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "rendering the page")
		}
	})
	return traced(tracer, mux)
}
