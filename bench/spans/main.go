// Command spans is the benchmark of issue 8's span ingest: OTLP/HTTP
// protobuf exports of realistic spans POSTed on 127.0.0.1 to the
// platform's receiver (noops/internal/observe/otlp) backed by its trace
// store (noops/internal/observe/tracestore), the server limited to one
// core.
//
//	spans [--spans 100] [--requests 1000] [--rounds 3] [--warmup 100]
//	      [--clients 4] [--sides store,receiver,decode] [--timeout 5m]
//	      [--out-dir bench/out]
//
// Each side is a server process of its own (this binary, `spans serve`)
// run with GOMAXPROCS=1 on 127.0.0.1:
//
//   - store: otlp.Receiver (its defaults: 4 MiB body bound, conversion
//     with attribute bounds, partial success) handing spans to
//     tracestore.Store.Add (its defaults: 1 h partitions, zstd blocks,
//     background writer), as the platform wires them;
//   - receiver: the same receiver with a callback that drops the spans
//     (what the store costs is the difference);
//   - decode: net/http and proto.Unmarshal of the same request into the
//     generated types, an empty response: the ceiling of any Go OTLP/HTTP
//     receiver.
//
// A round POSTs --requests exports of --spans spans each (one service's
// batch of traces of 10 spans with OpenTelemetry's HTTP, database and
// messaging attributes, random IDs; built before the round) from
// --clients keep-alive connections, then asks the store side to Flush.
// Measured per round and side: the server process's CPU time
// (getrusage, read before and after), from which spans per CPU second,
// that is per core; spans/s of the wall clock; request latency p50 and
// p99. Sides take turns, the order rotating; each first gets --warmup
// exports. The median round by spans per CPU second is reported. At the
// end the store must hold every span sent (Stats().Spans), a sample of
// traces must read back whole (Trace, 10 spans each), and bytes per span
// on disk is the store's bytes over its spans. Target: store ≥ 20000
// spans per CPU second. Tables go to stdout, progress to stderr, results
// to OUT-DIR/spans.json.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

const (
	sideStore    = "store"
	sideReceiver = "receiver"
	sideDecode   = "decode"
	target       = 20000.0
)

type config struct {
	spans, requests, rounds, warmup, clients int
	sides                                    []string
	timeout                                  time.Duration
	outDir                                   string
}

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		err = serve(os.Args[2:])
	} else {
		err = drive(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "spans:", err)
		os.Exit(1)
	}
}

func drive(args []string) error {
	fs := flag.NewFlagSet("spans", flag.ContinueOnError)
	var cfg config
	var sides string
	fs.IntVar(&cfg.spans, "spans", 100, "spans per export (a multiple of 10)")
	fs.IntVar(&cfg.requests, "requests", 1000, "exports per round and side")
	fs.IntVar(&cfg.rounds, "rounds", 3, "rounds")
	fs.IntVar(&cfg.warmup, "warmup", 100, "warm-up exports per side")
	fs.IntVar(&cfg.clients, "clients", 4, "concurrent keep-alive connections")
	fs.StringVar(&sides, "sides", "store,receiver,decode", "sides to run")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Minute, "bound of one round")
	fs.StringVar(&cfg.outDir, "out-dir", "bench/out", "where results go")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.spans <= 0 || cfg.spans%10 != 0 || cfg.requests <= 0 || cfg.rounds <= 0 || cfg.clients <= 0 {
		return fmt.Errorf("--spans must be a positive multiple of 10; --requests, --rounds, --clients positive")
	}
	cfg.sides = strings.Split(sides, ",")
	rep, err := run(cfg)
	if err != nil {
		return err
	}
	return rep.write(cfg)
}
