#!/usr/bin/env bash
# Benchmark of issue 7: events end to end, from a publisher to a
# function's HTTP handler, through the platform's bus
# (noops/internal/events on its embedded NATS server) side by side in
# the same run with plain JetStream on the same kind of embedded server.
# The driver (bench/events) runs everything in one process, on 127.0.0.1
# only, each side on an embedded server of its own (file storage in a
# temporary folder) with an HTTP handler of its own (net/http,
# keep-alive, answers 200 at once):
#   - noops:            bus.Publish from BENCH_EVENTS_PUBLISHERS (8)
#                       goroutines, each waiting for the ack; a function
#                       with concurrency BENCH_EVENTS_CONCURRENCY (32),
#                       the rest at its defaults (idempotency on),
#                       delivered over HTTP by events.HTTPTarget;
#   - noops-idem-off:   the same with `idempotency: off` (report only;
#                       BENCH_EVENTS_IDEM_OFF=0 leaves it out);
#   - jetstream:        js.Publish the same way; a durable pull consumer
#                       with explicit ack read with Messages by as many
#                       workers, each POSTing the event to the handler,
#                       then acking;
#   - jetstream-nohttp: the same workers without the POST (a ceiling).
# BENCH_EVENTS_ROUNDS (3) rounds of BENCH_EVENTS_COUNT (20000) events of
# BENCH_EVENTS_SIZE (256) bytes per side, sides taking turns, after
# BENCH_EVENTS_WARMUP (2000) events each; the median round by events/s
# counts. Reported per side: events/s (first publish to last receipt),
# p50 and p99 latency (publish call to the handler, monotonic time carried
# in the event), and a light-load run's latency (BENCH_EVENTS_LIGHT_COUNT
# (1000) events from one publisher at BENCH_EVENTS_LIGHT_RATE (500)/s).
# Target: noops/jetstream >= 0.7. Every event must be handled exactly
# once, as a 200, on its first attempt; anything else fails the run.
# BENCH_EVENTS_PROFILE: auto (default: when noops is under 0.7x), 1 or 0:
# afterwards, one more round (3x the count) of noops, noops-idem-off and
# jetstream under the CPU profiler (bench/out/events-SIDE-cpu*).
# Needs Go only, no root. Results: bench/out/events.json, events-summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/bench/out
mkdir -p "$out"
export PATH="/usr/local/go/bin:$PATH"

COUNT=${BENCH_EVENTS_COUNT:-20000}
SIZE=${BENCH_EVENTS_SIZE:-256}
PUBLISHERS=${BENCH_EVENTS_PUBLISHERS:-8}
CONCURRENCY=${BENCH_EVENTS_CONCURRENCY:-32}
ROUNDS=${BENCH_EVENTS_ROUNDS:-3}
WARMUP=${BENCH_EVENTS_WARMUP:-2000}
LIGHT_RATE=${BENCH_EVENTS_LIGHT_RATE:-500}
LIGHT_COUNT=${BENCH_EVENTS_LIGHT_COUNT:-1000}
TIMEOUT=${BENCH_EVENTS_TIMEOUT:-2m}
case "${BENCH_EVENTS_IDEM_OFF:-1}" in
0 | off) IDEM_OFF=false ;;
*) IDEM_OFF=true ;;
esac
case "${BENCH_EVENTS_PROFILE:-auto}" in
1 | on) PROFILE=on ;;
0 | off) PROFILE=off ;;
*) PROFILE=auto ;;
esac

work=$(mktemp -d /tmp/noops-bench-events.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> building the driver (bench/events)"
go build -o "$work/events" ./bench/events
rm -f "$out"/events-*-cpu*.out "$out"/events-*-cpu*.txt

echo "==> $ROUNDS rounds of $COUNT events of $SIZE bytes per side, $PUBLISHERS publishers, concurrency $CONCURRENCY"
"$work/events" --events "$COUNT" --size "$SIZE" --publishers "$PUBLISHERS" --concurrency "$CONCURRENCY" \
  --rounds "$ROUNDS" --warmup "$WARMUP" --light-rate "$LIGHT_RATE" --light-events "$LIGHT_COUNT" \
  --idem-off="$IDEM_OFF" --timeout "$TIMEOUT" --profile "$PROFILE" --out-dir "$out" \
  2> >(tee "$out/events.log" >&2) | tee "$out/events-summary.txt"

shopt -s nullglob
for cpu in "$out"/events-*-cpu.out; do
  base=${cpu%-cpu.out}
  go tool pprof -top "$work/events" "$cpu" >"$base-cpu.txt" 2>/dev/null
  go tool pprof -top -cum "$work/events" "$cpu" >"$base-cpu-cum.txt" 2>/dev/null
done
for cpu in "$out"/events-noops-cpu-cum.txt; do
  echo "==> $(basename "$cpu"): the whole process's CPU under noops, cumulative (flat in ${cpu%-cum.txt}.txt)"
  sed -n '4,5p;7,40p' "$cpu"
done
