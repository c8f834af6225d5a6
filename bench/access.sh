#!/usr/bin/env bash
# Benchmark of issue 5: the gateway's zero-trust access layer. Two copies
# of examples/hello-go on one server, side by side in the same run:
#   - pub, with access: { policy: public } (no checks);
#   - guard, with a Cedar policy file and min_trust 20, reached by a
#     device signed in with `noops login` (trust 20: password and device
#     certificate; the user has no TOTP).
# The load driver (bench/access) measures, on 127.0.0.1 only:
#   1. keep-alive HTTPS requests/s, p50 and p99, BENCH_ACCESS_CONNS (32)
#      connections per app, BENCH_ACCESS_ROUNDS (5) rounds of
#      BENCH_ACCESS_DURATION (5s) per app, alternating between the apps;
#      the device certificate goes to both, so the only difference is the
#      access layer's work (target: guard >= 0.9x pub's requests/s);
#   2. full TLS 1.3 handshakes/s, one GET on each connection, from
#      BENCH_HANDSHAKE_CONNS (8) goroutines: with the device certificate
#      to guard and to pub, without one to pub (report).
# BENCH_ACCESS_PROFILE=1 then loads each app alone for 12 s and takes a
# 10 s CPU profile of the server meanwhile, and what it allocated in
# those 10 s (bench/out/access-{guard,pub}-{cpu,allocs}.*).
# Needs root. Results: bench/out/access-*.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/bench/out
mkdir -p "$out"
NOOPS_SETUP_BENCH=1 ./scripts/setup.sh
export PATH="/usr/local/go/bin:$PATH"
make -s build

CONNS=${BENCH_ACCESS_CONNS:-32}
DURATION=${BENCH_ACCESS_DURATION:-5s}
ROUNDS=${BENCH_ACCESS_ROUNDS:-5}
HS_CONNS=${BENCH_HANDSHAKE_CONNS:-8}
HTTPS_PORT=${BENCH_ACCESS_PORT:-18473}
DOMAIN=noops.test
USER_NAME=bench

work=$(mktemp -d /tmp/noops-bench-access.XXXXXX)
log=$out/access-server.log
# shellcheck source=bench/lib.sh
source bench/lib.sh
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> tools: the load driver (bench/access)"
go build -o "$work/access" ./bench/access

echo "==> starting noops server (data $data, https 127.0.0.1:$HTTPS_PORT, domain $DOMAIN)"
start_server "$DOMAIN" "$HTTPS_PORT"

# The same app twice; only the access section differs.
for app in pub guard; do
  cp -r examples/hello-go "$work/$app"
  printf 'name: %s\nrun:\n  port: 8080\n  health: /healthz\n  memory: 64Mi\n' "$app" >"$work/$app/noops.yaml"
done
echo 'waf: { mode: off }' >>"$work/pub/noops.yaml"   # the access layer alone (bench/waf.sh measures the WAF)
echo 'waf: { mode: off }' >>"$work/guard/noops.yaml"
echo 'access: { policy: public }' >>"$work/pub/noops.yaml"
echo 'access: { policy: guard.cedar, min_trust: 20 }' >>"$work/guard/noops.yaml"
cat >"$work/guard/guard.cedar" <<'CEDAR'
// Admins may read, from a device signed in to this platform.
@id("admins-read")
permit (principal in Role::"admin", action in [Action::"GET", Action::"HEAD"], resource)
  when { context.trust >= 20 && context.device != "" };

// Nothing is deleted through the gateway.
@id("no-delete")
forbid (principal, action == Action::"DELETE", resource);

// Nobody without a client certificate.
@id("require-mtls")
forbid (principal, action, resource) when { context.mtls == "" };

// example: allow user=ann roles=admin trust=20 mtls=spiffe://noops.test/user/ann/device/d1 device=d1
// example: deny  user=ann roles=admin trust=20 mtls=spiffe://noops.test/user/ann/device/d1 device=d1 method=DELETE
// example: deny  user=ann roles=admin trust=20
// example: deny  user=bob trust=20 mtls=spiffe://noops.test/user/bob/device/d2 device=d2
CEDAR
noops policy test "$work/guard/guard.cedar" >"$out/access-deploy.log" 2>&1 ||
  fail "guard.cedar does not pass its own examples" "$out/access-deploy.log"

echo "==> deploying hello-go as pub (public) and as guard (Cedar, min_trust 20)"
for app in pub guard; do
  noops deploy "$work/$app" >>"$out/access-deploy.log" 2>&1 || fail "deploying $app failed" "$out/access-deploy.log"
done
noops ca root >"$work/ca.pem"

echo "==> user $USER_NAME (admin), and a device signed in for it"
password=$(head -c 18 /dev/urandom | base64)
echo "$password" | noops users add "$USER_NAME" --role admin >>"$out/access-deploy.log" 2>&1 ||
  fail "adding the user failed" "$out/access-deploy.log"
api=https://api.$DOMAIN:$HTTPS_PORT
export NOOPS_CONFIG=$work/config NOOPS_CONNECT=127.0.0.1:$HTTPS_PORT
echo "$password" | bin/noops login "$api" --user "$USER_NAME" --ca "$work/ca.pem" --name bench-device \
  >>"$out/access-deploy.log" 2>&1 || fail "noops login failed" "$out/access-deploy.log"
device=$NOOPS_CONFIG/devices/api.${DOMAIN}_$HTTPS_PORT
# Its trust is 20 (password +10, device certificate +10); guard's
# min_trust and policy let nothing lower through, and the driver counts
# only 200s. (`noops whoami` cannot show it: the platform API needs 30.)

echo "==> load: $ROUNDS rounds of $DURATION per app, $CONNS keep-alive connections; then $HS_CONNS goroutines of full handshakes"
"$work/access" --port "$HTTPS_PORT" --domain "$DOMAIN" --ca "$work/ca.pem" --cert "$device/cert.pem" --key "$device/key.pem" \
  --public pub --guarded guard --conns "$CONNS" --duration "$DURATION" --rounds "$ROUNDS" \
  --handshake-conns "$HS_CONNS" --handshake-duration "$DURATION" --json >"$out/access.json" 2>"$out/access.log" ||
  fail "the load driver failed" "$out/access.log"

p() { jq -r "$1" "$out/access.json"; }
r() { printf '%.0f' "$(p "$1")"; }
{
  echo "keep-alive HTTPS, $CONNS connections per app, GET $(p .path), $ROUNDS rounds of $DURATION per app, alternating; the device certificate to both:"
  echo "  public      (pub):   $(r .public.rps) req/s (median of rounds), p50 $(p .public.p50_ms) ms, p99 $(p .public.p99_ms) ms"
  echo "  mTLS+Cedar  (guard): $(r .guarded.rps) req/s (median of rounds), p50 $(p .guarded.p50_ms) ms, p99 $(p .guarded.p99_ms) ms"
  echo "  guard/pub ratio $(p '.ratio * 1000 | round / 1000') (rounds: $(p '[.pair_ratios[] | . * 100 | round / 100] | map(tostring) | join(" ")')); mTLS+Cedar keeps >= 90% of public requests/s: $(p 'if .target_met then "yes" else "no" end')"
  echo "full TLS 1.3 handshakes + one GET each, $HS_CONNS goroutines, $DURATION each (report):"
  echo "  guard, client certificate:    $(r .handshakes.guarded_client_cert.per_second)/s, p50 $(p .handshakes.guarded_client_cert.p50_ms) ms"
  echo "  pub, client certificate:      $(r .handshakes.public_client_cert.per_second)/s, p50 $(p .handshakes.public_client_cert.p50_ms) ms"
  echo "  pub, no client certificate:   $(r .handshakes.public_no_client_cert.per_second)/s, p50 $(p .handshakes.public_no_client_cert.p50_ms) ms"
} | tee "$out/access-summary.txt"

[ "${BENCH_ACCESS_PROFILE:-0}" = 1 ] || exit 0
pprof_get() { curl -sf --unix-socket "$data/api.sock" "http://x/debug/pprof/$1"; }
for app in guard pub; do
  echo "==> CPU profile of the server under $app's load alone (10 s)"
  "$work/access" --port "$HTTPS_PORT" --domain "$DOMAIN" --ca "$work/ca.pem" --cert "$device/cert.pem" --key "$device/key.pem" \
    --only "$app" --conns "$CONNS" --duration 12s >"$out/access-$app-alone.txt" 2>&1 &
  load=$!
  sleep 1
  pprof_get allocs >"$work/allocs-before.out"
  pprof_get "profile?seconds=10" >"$out/access-$app-cpu.out"
  pprof_get allocs >"$out/access-$app-allocs.out"
  wait "$load" || fail "loading $app alone failed" "$out/access-$app-alone.txt"
  go tool pprof -top -cum bin/noops "$out/access-$app-cpu.out" >"$out/access-$app-cpu.txt" 2>/dev/null
  go tool pprof -top -cum -sample_index=alloc_space -base "$work/allocs-before.out" bin/noops "$out/access-$app-allocs.out" \
    >"$out/access-$app-allocs.txt" 2>/dev/null
  cat "$out/access-$app-alone.txt"
done
