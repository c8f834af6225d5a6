// Command hello is the example app that `noops demo` deploys: a small web
// server with a health check and a page that shows which release and
// sandbox answered.
package main

import (
	"context"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>hello from noops</title></head>
<body>
<h1>Hello from noops</h1>
<p>Release <b>{{.Release}}</b>, served by sandbox <code>{{.Host}}</code> as uid {{.UID}}.</p>
<p>Built from source, running in a runc sandbox with no capabilities, a read-only root and seccomp.</p>
</body></html>
`))

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	host, _ := os.Hostname()
	release := os.Getenv("NOOPS_RELEASE")
	if release == "" {
		release = "unknown"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Release", release)
		_ = page.Execute(w, map[string]any{"Release": release, "Host": host, "UID": os.Getuid()})
	})
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("hello: release %s listening on :%s", release, port)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
	log.Printf("hello: stopped")
}
