package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the run's results, printed as tables and saved as JSON.
type report struct {
	Date       string            `json:"date"`
	Modules    map[string]string `json:"modules"`
	CPUs       int               `json:"cpus"`
	ServerProc int               `json:"server_gomaxprocs"`
	Spans      int               `json:"spans_per_request"`
	Requests   int               `json:"requests_per_round"`
	Rounds     int               `json:"rounds"`
	Warmup     int               `json:"warmup_requests"`
	Clients    int               `json:"clients"`
	Reported   string            `json:"reported"`
	Sides      []*sideResult     `json:"sides"`
	// Store results, from the store side at the end.
	StoredSpans   int64   `json:"stored_spans"`
	StoredBytes   int64   `json:"stored_bytes"`
	BytesPerSpan  float64 `json:"bytes_per_span_on_disk"`
	TracesChecked int     `json:"traces_read_back"`
	// TargetMet: the store side's spans per CPU second >= 20000.
	Target    float64 `json:"target_spans_per_cpu_second"`
	TargetMet bool    `json:"target_met"`
	Peer      string  `json:"peer"`
}

type sideResult struct {
	Name   string        `json:"name"`
	What   string        `json:"what"`
	Rounds []roundResult `json:"rounds"`
	Median roundResult   `json:"median_round"`
}

var descriptions = map[string]string{
	sideStore:    "otlp.Receiver -> tracestore.Store.Add (defaults), as the platform wires them",
	sideReceiver: "the same receiver, spans dropped by the callback",
	sideDecode:   "net/http + proto.Unmarshal of the request, empty response (ceiling)",
}

const peerNote = "none packaged: Debian has no jaeger, opentelemetry-collector, otelcol, tempo or zipkin package (apt-cache policy); the decode side is the ceiling instead"

func run(cfg config) (*report, error) {
	dir, err := os.MkdirTemp("", "noops-bench-spans-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rep := &report{Date: time.Now().UTC().Format(time.RFC3339), Modules: modules(), CPUs: runtime.NumCPU(), ServerProc: 1,
		Spans: cfg.spans, Requests: cfg.requests, Rounds: cfg.rounds, Warmup: cfg.warmup, Clients: cfg.clients,
		Reported: "median round by spans per server CPU second", Target: target, Peer: peerNote}
	var servers []*server
	defer func() {
		for _, s := range servers {
			_ = s.stop()
		}
	}()
	res := map[string]*sideResult{}
	for _, name := range cfg.sides {
		s, err := startServer(name, dir)
		if err != nil {
			return nil, err
		}
		servers = append(servers, s)
		r := &sideResult{Name: name, What: descriptions[name]}
		res[name] = r
		rep.Sides = append(rep.Sides, r)
	}
	c := newClient(cfg.clients)
	for i, s := range servers {
		if cfg.warmup > 0 {
			if _, err := s.round(c, cfg, uint64(1000+i), cfg.warmup); err != nil {
				return nil, fmt.Errorf("warm-up of %s: %w", s.name, err)
			}
		}
	}
	for round := range cfg.rounds {
		for i := range servers {
			s := servers[(i+round)%len(servers)]
			r, err := s.round(c, cfg, uint64(round*100+i+1), cfg.requests)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round+1, s.name, err)
			}
			res[s.name].Rounds = append(res[s.name].Rounds, r)
			fmt.Fprintf(os.Stderr, "round %d %-8s %7.0f spans per CPU s (%.1f µs/span), %7.0f spans/s wall, p50 %.2f ms, p99 %.2f ms\n",
				round+1, s.name, r.SpansPerCPU, r.CPUPerSpanUs, r.SpansPerSec, r.P50ms, r.P99ms)
		}
	}
	for _, r := range rep.Sides {
		sorted := slices.Clone(r.Rounds)
		slices.SortFunc(sorted, func(a, b roundResult) int { return cmpF(a.SpansPerCPU, b.SpansPerCPU) })
		r.Median = sorted[(len(sorted)-1)/2]
	}
	for _, s := range servers {
		if s.name != sideStore {
			continue
		}
		spans, size, checked, err := s.verify(c)
		if err != nil {
			return nil, err
		}
		rep.StoredSpans, rep.StoredBytes, rep.TracesChecked = spans, size, checked
		rep.BytesPerSpan = float64(size) / float64(spans)
		rep.TargetMet = res[sideStore].Median.SpansPerCPU >= target
	}
	return rep, nil
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (rep *report) write(cfg config) error {
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.outDir, "spans.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	rep.print(os.Stdout)
	return nil
}

func (rep *report) print(w io.Writer) {
	fmt.Fprintf(w, "Span ingest, OTLP/HTTP protobuf on 127.0.0.1: %d exports of %d spans per round and side, %d keep-alive clients\n",
		rep.Requests, rep.Spans, rep.Clients)
	fmt.Fprintf(w, "%d rounds, sides taking turns (the order rotating), %d warm-up exports each; reported: %s\n", rep.Rounds, rep.Warmup, rep.Reported)
	fmt.Fprintf(w, "each side a server process of its own with GOMAXPROCS %d (its CPU time from getrusage); %d CPUs shared by everything; %s\n",
		rep.ServerProc, rep.CPUs, rep.Modules["go"])
	for _, s := range rep.Sides {
		fmt.Fprintf(w, "  %-9s %s\n", s.Name+":", s.What)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "side\tspans/CPU-s\tround by round\tµs CPU/span\tspans/s wall\tp50 ms\tp99 ms\tbytes/request\t")
	for _, s := range rep.Sides {
		var rr []string
		for _, r := range s.Rounds {
			rr = append(rr, fmt.Sprintf("%.0f", r.SpansPerCPU))
		}
		m := s.Median
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.1f\t%.0f\t%.2f\t%.2f\t%d\t\n", s.Name, m.SpansPerCPU, strings.Join(rr, " "), m.CPUPerSpanUs, m.SpansPerSec, m.P50ms, m.P99ms, m.RequestBytes)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	if rep.StoredSpans > 0 {
		verdict := "no"
		if rep.TargetMet {
			verdict = "yes"
		}
		var store sideResult
		for _, s := range rep.Sides {
			if s.Name == sideStore {
				store = *s
			}
		}
		fmt.Fprintf(w, "store: %.0f spans per CPU second (one core); target >= %.0f: %s\n", store.Median.SpansPerCPU, rep.Target, verdict)
		fmt.Fprintf(w, "on disk: %d spans in %d bytes, %.1f bytes per span (zstd blocks + trace tables); %d sampled traces read back whole (10 spans each)\n",
			rep.StoredSpans, rep.StoredBytes, rep.BytesPerSpan, rep.TracesChecked)
	}
	fmt.Fprintf(w, "peer: %s\n", rep.Peer)
}

func modules() map[string]string {
	m := map[string]string{"go": runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return m
	}
	for _, d := range bi.Deps {
		for _, name := range []string{"google.golang.org/protobuf", "github.com/klauspost/compress", "go.opentelemetry.io/proto/otlp"} {
			if d.Path == name {
				m[name[strings.LastIndex(name, "/")+1:]] = d.Version
			}
		}
	}
	return m
}
