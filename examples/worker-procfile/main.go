// Command worker-procfile is the noops example of process types: one
// binary, three processes declared in its Procfile. `serve` is the web
// process (routed), `work` a worker (runs unrouted, restarted if it exits)
// and `migrate` the release step that runs once before a release goes live
// (exit non-zero and the release is refused; set FAIL_RELEASE=1 to see it).
package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: worker-procfile serve|work|migrate")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	release := os.Getenv("NOOPS_RELEASE")
	switch os.Args[1] {
	case "serve":
		serve(ctx, release)
	case "work":
		work(ctx, release)
	case "migrate":
		if os.Getenv("FAIL_RELEASE") == "1" {
			log.Fatalf("migrate: release %s refused (FAIL_RELEASE=1)", release)
		}
		fmt.Printf("migrate: release %s: schema is up to date\n", release)
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

func serve(ctx context.Context, release string) {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "Hello from the web process of release %s; a worker runs beside it.\n", release)
	})
	srv := &http.Server{Addr: ":" + port, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(c)
	}()
	log.Printf("web: release %s listening on :%s", release, port)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

func work(ctx context.Context, release string) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			log.Printf("worker: release %s stopping after %d jobs", release, n-1)
			return
		case <-tick.C:
			log.Printf("worker: release %s did job %d", release, n)
		}
	}
}
