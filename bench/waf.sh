#!/usr/bin/env bash
# Benchmark of issue 6: the gateway's web application firewall (the shield:
# Coraza with the OWASP CRS v4, block mode, paranoia level 1) side by side
# in the same run with
#   - coraza: Coraza's own net/http middleware (coraza/v3/http.WrapHandler)
#     with the same rules, around the same app handler;
#   - off:    the same gateway with the WAF off for the app.
# The driver (bench/waf) starts the three servers as processes of their
# own and measures, on 127.0.0.1 only, over HTTPS (one ECDSA P-256
# certificate, TLS 1.3, HTTP/1.1 keep-alive):
#   1. requests/s, p50 and p99 of a GET with a query string and browser
#      headers and of a 4 KB form POST on all three, BENCH_WAF_CONNS (32)
#      connections, BENCH_WAF_ROUNDS (3) rounds of BENCH_WAF_DURATION (5s)
#      per server and kind after BENCH_WAF_WARMUP (1s), servers taking
#      turns, the best round counting (target: noops/coraza >= 1.0);
#   2. the cost of 1, 4, 16 and 64 KB form POSTs on noops and coraza
#      (BENCH_WAF_SIZES, in KB): requests/s, µs per request and the
#      server's CPU µs per request.
# Every answer must be a 200; any other fails the run.
# BENCH_WAF_PROFILE: auto (default: when noops is slower than coraza
# somewhere), 1 or 0: afterwards, load noops and coraza alone and save
# their CPU profiles and allocations (bench/out/waf-SERVER-KIND-*).
# Needs Go only, no root. Results: bench/out/waf.json, waf-summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/bench/out
mkdir -p "$out"
export PATH="/usr/local/go/bin:$PATH"

CONNS=${BENCH_WAF_CONNS:-32}
DURATION=${BENCH_WAF_DURATION:-5s}
ROUNDS=${BENCH_WAF_ROUNDS:-3}
WARMUP=${BENCH_WAF_WARMUP:-1s}
SIZES=${BENCH_WAF_SIZES:-1,4,16,64}
case "${BENCH_WAF_PROFILE:-auto}" in
1 | on) PROFILE=on ;;
0 | off) PROFILE=off ;;
*) PROFILE=auto ;;
esac

work=$(mktemp -d /tmp/noops-bench-waf.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> building the driver and servers (bench/waf)"
go build -o "$work/waf" ./bench/waf
rm -f "$out"/waf-*-cpu*.out "$out"/waf-*-cpu*.txt "$out"/waf-*-allocs*.out "$out"/waf-*-allocs.txt

echo "==> $ROUNDS rounds of $DURATION per server and kind, $CONNS keep-alive connections, form sizes $SIZES KB"
"$work/waf" --conns "$CONNS" --duration "$DURATION" --rounds "$ROUNDS" --warmup "$WARMUP" --sizes "$SIZES" \
  --profile "$PROFILE" --out-dir "$out" 2> >(tee "$out/waf.log" >&2) | tee "$out/waf-summary.txt"

shopt -s nullglob
for cpu in "$out"/waf-*-cpu.out; do
  base=${cpu%-cpu.out}
  go tool pprof -top "$work/waf" "$cpu" >"$base-cpu.txt" 2>/dev/null
  go tool pprof -top -cum "$work/waf" "$cpu" >"$base-cpu-cum.txt" 2>/dev/null
  go tool pprof -top -sample_index=alloc_space -base "$base-allocs0.out" "$work/waf" "$base-allocs.out" \
    >"$base-allocs.txt" 2>/dev/null
done
for cpu in "$out"/waf-noops-*-cpu.txt; do
  echo "==> $(basename "$cpu"): the noops server's CPU, flat (cumulative in ${cpu%.txt}-cum.txt)"
  sed -n '4,5p;7,27p' "$cpu"
done
