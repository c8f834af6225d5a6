#!/usr/bin/env bash
# Benchmark of issue 8's log store: BENCH_LOGS_LINES (1000000) realistic
# access-log lines (noops/internal/observe/logstore/synth, seed
# BENCH_LOGS_SEED, 1) ingested into the embedded log store on one core
# (GOMAXPROCS=1): lines/s per core and bytes on disk per line (targets
# >= 100000 and <= 30); the same lines as text, gzip'd and zstd'd, for
# reference; and, when a Grafana Loki binary can be had, the same lines
# pushed to Loki on 127.0.0.1 in the same run (lines/s, CPU of the loki
# process, bytes per line after its chunks are flushed).
# Loki: BENCH_LOKI_BIN, or a `loki` on PATH, that says "loki, version";
# failing that, Debian's package named loki is installed only if it is
# Grafana Loki. (In Debian bookworm it is not: that `loki` is a program
# for genetic linkage analysis, and Grafana Loki is not packaged; the run
# then reports noops alone and says why.)
# Needs Go; root only to install a package. Results: bench/out/logs.json,
# logs-summary.txt, logs.log (and logs-loki.log when Loki ran).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/bench/out
mkdir -p "$out"
export PATH="/usr/local/go/bin:$PATH"

LINES=${BENCH_LOGS_LINES:-1000000}
SEED=${BENCH_LOGS_SEED:-1}
BATCH=${BENCH_LOKI_BATCH:-10000}

work=$(mktemp -d /tmp/noops-bench-logs.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

is_grafana_loki() { "$1" -version 2>&1 | grep -q '^loki, version'; }

loki="" skip=""
if [ -n "${BENCH_LOKI_BIN:-}" ]; then
  if is_grafana_loki "$BENCH_LOKI_BIN"; then loki=$BENCH_LOKI_BIN; else skip="BENCH_LOKI_BIN=$BENCH_LOKI_BIN is not Grafana Loki"; fi
elif command -v loki >/dev/null && is_grafana_loki "$(command -v loki)"; then
  loki=$(command -v loki)
else
  desc=$(apt-cache show loki 2>/dev/null | sed -n 's/^Description[^:]*: //p' | head -n 1 || true)
  case "$desc" in
  *[Ll]og*aggregat* | *Grafana*)
    echo "==> installing Grafana Loki from Debian"
    if apt-get install -y loki >"$work/apt.log" 2>&1 && is_grafana_loki "$(command -v loki)"; then
      loki=$(command -v loki)
    else
      skip="installing Debian's loki failed: $(tail -n 1 "$work/apt.log")"
    fi
    ;;
  "") skip="Grafana Loki is not installed and Debian has no package named loki (apt-get update?)" ;;
  *) skip="Grafana Loki is not packaged in this Debian: its package named loki is \"$desc\"; give a Grafana Loki binary with BENCH_LOKI_BIN" ;;
  esac
fi
[ -z "$skip" ] || echo "==> loki: not run: $skip"

echo "==> building the driver (bench/logs)"
go build -o "$work/logs" ./bench/logs
rm -f "$out/logs-loki.log"

echo "==> $LINES access-log lines: noops on one core${loki:+, then $loki}"
"$work/logs" --lines "$LINES" --seed "$SEED" --batch "$BATCH" --out-dir "$out" \
  ${loki:+--loki "$loki"} ${skip:+--loki-skip "$skip"} \
  2> >(tee "$out/logs.log" >&2) | tee "$out/logs-summary.txt"
