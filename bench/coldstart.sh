#!/usr/bin/env bash
# Benchmark of issue 4: the cold start of examples/hello-go at zero
# replicas, request to first byte, BENCH_SAMPLES (50) samples, p50 and
# p99, beside two peers in the same run on the same image:
#   - `runc run -d` of a bundle of the image (runc's default spec, on the
#     host's network: no namespace to set up, which favours runc), polled
#     every millisecond until it answers;
#   - `podman run -d` (Debian's) of the image, on the host's network (with
#     explicit nofile and nproc limits: its defaults exceed what this
#     machine lets a container set).
# Targets: noops p50 <= 0.3x runc's, and noops p50 <= 25 ms.
# Traffic goes to loopback and the server's own sandbox network only.
# Needs root. Results: bench/out/coldstart-*.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/bench/out
mkdir -p "$out"
NOOPS_SETUP_BENCH=1 ./scripts/setup.sh
export PATH="/usr/local/go/bin:$PATH"
make -s build

SAMPLES=${BENCH_SAMPLES:-50}
HTTPS_PORT=${BENCH_COLD_PORT:-18463}
APP_PORT=${BENCH_COLD_APP_PORT:-18464} # where the peers' copies listen
DOMAIN=noops.test
CRANE=github.com/google/go-containerregistry/cmd/crane@v0.22.1
debs=${NOOPS_STACK_DEBS:-${TMPDIR:-/tmp}/noops-test-debs}

work=$(mktemp -d /tmp/noops-bench-cold.XXXXXX)
log=$out/coldstart-server.log
# shellcheck source=bench/lib.sh
source bench/lib.sh
podman_image=""
finish() {
  [ -z "$podman_image" ] || podman rmi -f "$podman_image" >/dev/null 2>&1 || true
  cleanup
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> tools: the sampler (bench/coldstart) and crane ($CRANE)"
go build -o "$work/coldstart" ./bench/coldstart
(cd "$work" && GOFLAGS= GOBIN=$work/tools go install "$CRANE") >"$out/coldstart-tools.log" 2>&1 ||
  fail "installing crane failed" "$out/coldstart-tools.log"
crane=$work/tools/crane

echo "==> starting noops server (data $data, https 127.0.0.1:$HTTPS_PORT, domain $DOMAIN)"
mkdir -p "$debs"
start_server "$DOMAIN" "$HTTPS_PORT" --stack-debs "$debs"
app=$work/hello-go
cp -r examples/hello-go "$app"
printf 'name: lazy\nrun:\n  health: /healthz\n  memory: 64Mi\n  scale: { min: 0, max: 1, idle: 1s, window: 6s }\naccess: { policy: public }\nwaf: { mode: off }\n' >"$app/noops.yaml"
echo "==> deploying hello-go as lazy, which scales to zero after 1 s idle"
noops deploy "$app" >"$out/coldstart-deploy.log" 2>&1 || fail "deploying hello-go failed" "$out/coldstart-deploy.log"
printf '127.0.0.1 localhost registry.%s lazy.%s\n' "$DOMAIN" "$DOMAIN" >"$work/hosts"
noops ca root >"$work/ca.pem"

echo "==> noops: $SAMPLES cold starts (each waits for zero replicas and a ready standby)"
in_hosts "$work/coldstart" noops --data "$data" --app lazy --url "https://lazy.$DOMAIN:$HTTPS_PORT/" \
  --ca "$work/ca.pem" --samples "$SAMPLES" >"$out/coldstart-noops.json" 2>"$out/coldstart-noops.log" ||
  fail "sampling noops failed" "$out/coldstart-noops.log"
noops scale lazy --json >"$out/coldstart-noops-gateway.json"

echo "==> the same image for the peers, from the noops registry"
export SSL_CERT_FILE=$work/ca.pem DOCKER_CONFIG=$work/docker
mkdir -p "$DOCKER_CONFIG"
reg=$(noops registry --json | jq -r .host)
noops registry token | in_hosts "$crane" auth login "$reg" -u noops --password-stdin >/dev/null 2>&1
digest=$(noops releases lazy --json | jq -r '[.[] | select(.status == "live")][0].image')
ref=$reg/lazy@$digest
bundle=$work/bundle
mkdir -p "$bundle/rootfs"
in_hosts "$crane" export "$ref" - | tar -x -C "$bundle/rootfs"
in_hosts "$crane" pull "$ref" "$work/image.tar"
config=$(in_hosts "$crane" config "$ref")
entry=$(echo "$config" | jq -c '.config.Entrypoint + (.config.Cmd // [])')
stop_server # the peers run alone

echo "==> runc: $SAMPLES runs of the bundle (runc's default spec, host network, user 65532, read-only root)"
(cd "$bundle" && runc spec)
jq --argjson args "$entry" --arg port "PORT=$APP_PORT" '
  .process.args = $args | .process.env += [$port] | .process.terminal = false |
  .process.user = {uid: 65532, gid: 65532} | .root.readonly = true |
  .linux.namespaces |= map(select(.type != "network"))' "$bundle/config.json" >"$bundle/config.tmp"
mv "$bundle/config.tmp" "$bundle/config.json"
runc_root=$work/runc
"$work/coldstart" exec --name runc --url "http://127.0.0.1:$APP_PORT/" --samples "$SAMPLES" \
  --cleanup "runc --root $runc_root delete --force bench-cold >/dev/null 2>&1 || true" -- \
  runc --root "$runc_root" run -d --bundle "$bundle" bench-cold >"$out/coldstart-runc.json" 2>"$out/coldstart-runc.log" ||
  fail "sampling runc failed" "$out/coldstart-runc.log"

echo "==> podman: $SAMPLES runs of the image ($(podman --version))"
podman_image=$(podman load -q -i "$work/image.tar" | sed -n 's/^Loaded image: //p' | tail -n 1)
[ -n "$podman_image" ] || fail "podman load gave no image"
"$work/coldstart" exec --name podman --url "http://127.0.0.1:$APP_PORT/" --samples "$SAMPLES" \
  --cleanup "podman rm -f -t 0 bench-cold >/dev/null 2>&1 || true" -- \
  podman run -d --name bench-cold --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --user 65532 -e "PORT=$APP_PORT" "$podman_image" \
  >"$out/coldstart-podman.json" 2>"$out/coldstart-podman.log" ||
  fail "sampling podman failed" "$out/coldstart-podman.log"

p() { jq -r ".$2" "$out/coldstart-$1.json"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ok() { awk -v c="$1" 'BEGIN { exit !(c) }' && echo yes || echo no; }
n50=$(p noops p50_ms) r50=$(p runc p50_ms) d50=$(p podman p50_ms)
{
  echo "cold start of hello-go, request to first byte, $SAMPLES samples each:"
  echo "  noops (zero replicas, standby sandbox): p50 $n50 ms, p99 $(p noops p99_ms) ms; the gateway measured p50 $(jq -r .cold_starts.p50_ms "$out/coldstart-noops-gateway.json") ms"
  echo "  runc run -d:                           p50 $r50 ms, p99 $(p runc p99_ms) ms"
  echo "  podman run -d:                         p50 $d50 ms, p99 $(p podman p99_ms) ms"
  echo "  noops/runc p50 ratio $(ratio "$n50" "$r50") (target <= 0.3: $(ok "$n50 <= 0.3 * $r50")); noops/podman $(ratio "$n50" "$d50"); noops p50 <= 25 ms: $(ok "$n50 <= 25")"
} | tee "$out/coldstart-summary.txt"
