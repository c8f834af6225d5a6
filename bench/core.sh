#!/usr/bin/env bash
# Benchmarks of issue 2, each side by side with its peer in the same run:
#   1. `noops deploy` of an unchanged examples/hello-go until it serves,
#      against `go build` of the same app alone (target: ratio <= 1.5).
#   2. HTTPS keep-alive requests through the noops gateway against nginx as a
#      TLS reverse proxy to the same upstream sandbox, same client (wrk)
#      (target: ratio >= 0.8).
# Traffic goes to loopback only. Needs root; installs its peers through
# scripts/setup.sh (NOOPS_SETUP_BENCH=1). Results: bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/bench/out
mkdir -p "$out"
NOOPS_SETUP_BENCH=1 ./scripts/setup.sh
export PATH="/usr/local/go/bin:$PATH"
[ -x bin/noops ] || make build

RUNS=${BENCH_RUNS:-10}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNS:-64}
HTTPS_PORT=${BENCH_HTTPS_PORT:-18443}
NGINX_PORT=${BENCH_NGINX_PORT:-18444}

work=$(mktemp -d /tmp/noops-bench.XXXXXX)
data=$work/data
server_pid=""
nginx_pid=""
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> starting noops server (data $data, https 127.0.0.1:$HTTPS_PORT)"
# --flood -1: the load below comes from one address and would be banned.
bin/noops server --data "$data" --https "127.0.0.1:$HTTPS_PORT" --http off --stop-sandboxes --flood -1 \
  >"$out/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [ -S "$data/api.sock" ] && break; sleep 0.1; done
noops() { bin/noops --data "$data" "$@"; }
# The proxies are compared without a WAF (nginx has none; bench/waf.sh
# measures the WAF).
app=$work/hello-go
cp -r examples/hello-go "$app"
echo 'waf: { mode: off }' >>"$app/noops.yaml"
noops deploy "$app" >/dev/null 2>&1   # first deploy: builds and warms caches

# 1. Deploy of unchanged source vs go build alone (both with warm caches).
(cd "$app" && go build -o "$work/hello-bin" .)
echo "==> deploy of unchanged hello-go vs go build of it ($RUNS runs each)"
hyperfine --warmup 1 --runs "$RUNS" --export-json "$out/deploy.json" \
  -n "noops deploy" "bin/noops --data $data deploy $app" \
  -n "go build" "cd $app && go build -o $work/hello-bin ." | tee "$out/deploy.txt"
deploy_ratio=$(jq -r '(.results[0].mean / .results[1].mean * 100 | round) / 100' "$out/deploy.json")
deploy_mean=$(jq -r '.results[0].mean * 1000 | round' "$out/deploy.json")
build_mean=$(jq -r '.results[1].mean * 1000 | round' "$out/deploy.json")

# 2. Gateway vs nginx, same upstream sandbox, same wrk.
upstream=$(noops ps hello --json | jq -r '[.[] | select(.state=="healthy")][0].addr')
noops ca root >"$work/ca.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=hello.localhost" \
  -addext "subjectAltName=DNS:hello.localhost" -keyout "$work/nginx.key" -out "$work/nginx.crt" 2>/dev/null
cat >"$work/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx-body;
  proxy_temp_path $work/nginx-proxy;
  upstream app { server $upstream; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    server_name hello.localhost;
    ssl_certificate $work/nginx.crt;
    ssl_certificate_key $work/nginx.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto https;
    }
  }
}
NGINX
nginx -c "$work/nginx.conf" &
nginx_pid=$!
sleep 0.5

# wrk sends SNI and Host from the URL, so hello.localhost must resolve: a
# private mount namespace gets its own /etc/hosts; the system's is untouched.
printf '127.0.0.1 localhost hello.localhost\n' >"$work/hosts"
run_wrk() { # name url path
  unshare --mount sh -c "mount --bind $work/hosts /etc/hosts && wrk -t2 -c$CONNS -d$DURATION --latency $2$3" >"$out/wrk-$1.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$out/wrk-$1.txt")
  p50=$(awk '$1=="50%" {print $2}' "$out/wrk-$1.txt")
  p99=$(awk '$1=="99%" {print $2}' "$out/wrk-$1.txt")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' "$out/wrk-$1.txt" | tr '\n' ' ')
  printf '%-8s %-9s %10s req/s  p50 %8s  p99 %8s  %s\n' "$1" "$3" "$rps" "$p50" "$p99" "$errs" >&2
  echo "$rps"
}
echo "==> HTTPS keep-alive through the gateway vs nginx to upstream $upstream (wrk -c$CONNS -d$DURATION, alternating)"
declare -A best
for path in /healthz /; do
  for round in 1 2; do
    for who in noops nginx; do
      port=$HTTPS_PORT; [ "$who" = nginx ] && port=$NGINX_PORT
      rps=$(run_wrk "$who" "https://hello.localhost:$port" "$path")
      key="$who$path"
      if [ -z "${best[$key]:-}" ] || awk "BEGIN{exit !($rps > ${best[$key]})}"; then best[$key]=$rps; fi
    done
  done
done

{
  echo "deploy unchanged hello-go: ${deploy_mean} ms, go build alone: ${build_mean} ms, ratio ${deploy_ratio} (target <= 1.5)"
  for path in /healthz /; do
    r=$(awk "BEGIN{printf \"%.2f\", ${best[noops$path]} / ${best[nginx$path]}}")
    echo "gateway GET $path: noops ${best[noops$path]} req/s, nginx ${best[nginx$path]} req/s, ratio $r (target >= 0.8)"
  done
} | tee "$out/summary.txt"
