#!/usr/bin/env bash
# Benchmark of issue 8: span ingest per core. OTLP/HTTP protobuf exports
# of BENCH_SPANS_PER_REQUEST (100) realistic spans (one service's batch of
# traces of 10 spans with OpenTelemetry's HTTP, database and messaging
# attributes, random IDs) POSTed on 127.0.0.1 from BENCH_SPANS_CLIENTS (4)
# keep-alive connections to a server process run with GOMAXPROCS=1, its
# CPU time read with getrusage before and after each round:
#   - store:    noops/internal/observe/otlp's receiver handing the spans to
#               noops/internal/observe/tracestore (defaults), as the
#               platform wires them;
#   - receiver: the same receiver dropping the spans (the store's cost is
#               the difference);
#   - decode:   net/http and proto.Unmarshal only (the ceiling).
# BENCH_SPANS_ROUNDS (3) rounds of BENCH_SPANS_REQUESTS (1000) exports per
# side, sides taking turns, after BENCH_SPANS_WARMUP (100) exports each;
# the median round by spans per CPU second counts. The store must hold
# every span sent and a sample of traces must read back whole; bytes per
# span on disk is the store's size over its spans.
# Target: store >= 20000 spans per CPU second. No peer is packaged by
# Debian (no jaeger, opentelemetry-collector, otelcol, tempo, zipkin).
# Needs Go only, no root. Results: bench/out/spans.json, spans-summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/bench/out
mkdir -p "$out"
export PATH="/usr/local/go/bin:$PATH"

SPANS=${BENCH_SPANS_PER_REQUEST:-100}
REQUESTS=${BENCH_SPANS_REQUESTS:-1000}
ROUNDS=${BENCH_SPANS_ROUNDS:-3}
WARMUP=${BENCH_SPANS_WARMUP:-100}
CLIENTS=${BENCH_SPANS_CLIENTS:-4}
TIMEOUT=${BENCH_SPANS_TIMEOUT:-5m}

work=$(mktemp -d /tmp/noops-bench-spans.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> building the driver (bench/spans)"
go build -o "$work/spans" ./bench/spans

echo "==> $ROUNDS rounds of $REQUESTS exports of $SPANS spans per side, $CLIENTS clients, servers at GOMAXPROCS=1"
TMPDIR=$work "$work/spans" --spans "$SPANS" --requests "$REQUESTS" --rounds "$ROUNDS" --warmup "$WARMUP" \
  --clients "$CLIENTS" --timeout "$TIMEOUT" --out-dir "$out" \
  2> >(tee "$out/spans.log" >&2) | tee "$out/spans-summary.txt"
