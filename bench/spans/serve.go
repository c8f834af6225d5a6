package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"noops/internal/observe/otlp"
	"noops/internal/observe/tracestore"
)

// serverStats is what a side's server reports at /stats.
type serverStats struct {
	CPUNs int64             `json:"cpu_ns"` // user + system time of the whole process
	Store *tracestore.Stats `json:"store,omitempty"`
	OTLP  *otlp.Stats       `json:"otlp,omitempty"`
}

// serve runs one side's server on 127.0.0.1 until its standard input
// closes (the driver's end): `spans serve --side SIDE --dir DIR`.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	side := fs.String("side", sideStore, "store, receiver or decode")
	dir := fs.String("dir", "", "the trace store's folder (side store)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mux := http.NewServeMux()
	var store *tracestore.Store
	var rcv *otlp.Receiver
	switch *side {
	case sideStore, sideReceiver:
		take := func(context.Context, string, []tracestore.Span) error { return nil }
		if *side == sideStore {
			var err error
			if store, err = tracestore.Open(*dir, tracestore.Options{Logger: log}); err != nil {
				return err
			}
			defer store.Close()
			take = func(_ context.Context, _ string, spans []tracestore.Span) error { return store.Add(spans...) }
		}
		var err error
		rcv, err = otlp.New(otlp.Config{
			Caller:     func(context.Context, *http.Request) (string, error) { return "bench", nil },
			CallerGRPC: func(context.Context) (string, error) { return "bench", nil },
			Spans:      take,
			Logger:     log,
		})
		if err != nil {
			return err
		}
		mux.Handle("/v1/traces", rcv)
	case sideDecode:
		mux.HandleFunc("/v1/traces", decodeOnly)
	default:
		return fmt.Errorf("unknown side %q", *side)
	}
	mux.HandleFunc("/flush", func(w http.ResponseWriter, r *http.Request) {
		if store != nil {
			if err := store.Flush(); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		st := serverStats{CPUNs: cpuNs()}
		if store != nil {
			s := store.Stats()
			st.Store = &s
		}
		if rcv != nil {
			s := rcv.Stats()
			st.OTLP = &s
		}
		_ = json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("/trace", func(w http.ResponseWriter, r *http.Request) {
		if store == nil {
			http.NotFound(w, r)
			return
		}
		spans, err := store.Trace(r.Context(), r.URL.Query().Get("id"))
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		fmt.Fprintln(w, len(spans))
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	fmt.Printf("listening %s\n", lis.Addr())
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin)) // until the driver closes it
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// decodeOnly is the ceiling: net/http and protobuf decoding of the same
// request, nothing else.
func decodeOnly(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func cpuNs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
