#!/usr/bin/env bash
# Benchmarks of issue 3 (builds, stacks, rebase), each beside its peer in
# the same run where there is one:
#   1. image size of examples/hello-go as noops builds it against
#      `ko build --push=false --tarball` of the same app on the same base
#      image (target: noops <= ko + 1 MB);
#   2. `noops deploy` of an unchanged hello-go against `ko build` of it
#      (target: ratio <= 1.0), and a real rebuild where only README.md
#      changed between runs; hello-node the same two (reported);
#   3. rebase of one app and of 20 apps one after another, and of hello-node
#      (target: < 1 s per app, whatever the app's size): BenchmarkRebase in
#      internal/testenv.
# ko cannot pull its default base (cgr.dev/chainguard/static) here, so its
# base is noops's own static stack run image (Debian's ca-certificates,
# tzdata, netbase: what distroless/static is made of), pulled from the noops
# registry endpoint: both images share the base and differ by the app layer.
# Traffic goes to loopback and the server's own sandbox networks, and to the
# Go module proxy once for ko and crane. Needs root. Results: bench/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/bench/out
mkdir -p "$out"
NOOPS_SETUP_BENCH=1 ./scripts/setup.sh
export PATH="/usr/local/go/bin:$PATH"
make -s build # the binary must match the tree: the registry endpoint is recent

RUNS=${BENCH_RUNS:-10}
HTTPS_PORT=${BENCH_BUILDS_PORT:-18453}
DOMAIN=noops.test # not *.localhost: crane and ko would talk plain HTTP to it
KO=github.com/google/ko@v0.19.1
CRANE=github.com/google/go-containerregistry/cmd/crane@v0.22.1
# The .deb cache the integration tests share, so stacks build offline after once.
debs=${NOOPS_STACK_DEBS:-${TMPDIR:-/tmp}/noops-test-debs}

work=$(mktemp -d /tmp/noops-bench-builds.XXXXXX)
tools=$work/tools
log=$out/builds-server.log
# shellcheck source=bench/lib.sh
source bench/lib.sh
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> ko and crane from the Go module proxy ($KO, $CRANE)"
# Installed once rather than timed through `go run`, which spends 2-7 s per
# call checking that its build is up to date.
(cd "$work" && GOFLAGS= GOBIN=$tools go install "$KO" && GOFLAGS= GOBIN=$tools go install "$CRANE") \
  >"$out/builds-tools.log" 2>&1 || fail "installing ko and crane failed" "$out/builds-tools.log"
ko=$tools/ko
crane=$tools/crane

echo "==> starting noops server (data $data, https 127.0.0.1:$HTTPS_PORT, domain $DOMAIN)"
mkdir -p "$debs"
start_server "$DOMAIN" "$HTTPS_PORT" --stack-debs "$debs"

go_app=$work/hello-go     # app "hello" (its noops.yaml)
node_app=$work/hello-node # app "hello-node"
cp -r examples/hello-go "$go_app"
cp -r examples/hello-node "$node_app"
echo "==> first deploys of hello-go and hello-node (builds the stacks, warms the caches)"
for app in "$go_app" "$node_app"; do
  noops deploy "$app" >>"$out/builds-first-deploys.log" 2>&1 ||
    fail "deploying $app failed" "$out/builds-first-deploys.log"
done

# crane, ko and curl find registry.noops.test and the apps through a private
# mount namespace's /etc/hosts (in_hosts); the system's file is untouched.
printf '127.0.0.1 localhost registry.%s hello.%s hello-node.%s\n' "$DOMAIN" "$DOMAIN" "$DOMAIN" >"$work/hosts"
noops ca root >"$work/ca.pem"
export SSL_CERT_FILE=$work/ca.pem DOCKER_CONFIG=$work/docker
mkdir -p "$DOCKER_CONFIG"
reg=$(noops registry --json | jq -r .host) # registry.noops.test:PORT
noops registry token | in_hosts "$crane" auth login "$reg" -u noops --password-stdin >/dev/null 2>&1
serves() { # app
  in_hosts curl -fsS -o /dev/null --max-time 10 --cacert "$SSL_CERT_FILE" "https://$1.$DOMAIN:$HTTPS_PORT/" ||
    fail "$1 does not answer over HTTPS" "$out/builds-server.log"
}
serves hello

# Sizes are the sums of the compressed layer sizes in the manifests, as the
# registry serves them; layers lists a manifest's layer digests.
size() { in_hosts "$crane" manifest "$1" | jq '[.layers[].size] | add'; }
layers() { in_hosts "$crane" manifest "$1" | jq -r '.layers[].digest'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e6 }'; }

# 1. Image size.
run_digest=$(noops stack list --json | jq -r '.[] | select(.name == "static") | .run.digest')
base=$reg/noops/static-run@$run_digest
go_digest=$(noops releases hello --json | jq -r '[.[] | select(.status == "live")][0].image')
[ -n "$run_digest" ] && [ -n "$go_digest" ] && [ "$go_digest" != null ] || fail "no static run image or no live hello release"
noops_ref=$reg/hello@$go_digest

export KO_DOCKER_REPO=$reg/ko-hello KO_DEFAULTBASEIMAGE=$base
ko_build() { # dir tarball: ko's defaults, plus the base, no push, a tarball
  (cd "$1" && "$ko" build --bare --push=false --tarball="$2" .)
}
# The same app with noops's linker flags (-s -w: no symbol table, no DWARF),
# which ko does not use by default.
ko_sw=$work/hello-go-ko-sw
cp -r examples/hello-go "$ko_sw"
printf 'builds:\n- id: hello\n  main: .\n  ldflags: ["-s", "-w"]\n' >"$ko_sw/.ko.yaml"
echo "==> image size: noops's hello-go against ko's, both on the static run image $run_digest"
in_hosts bash -c "$(declare -f ko_build); ko=$ko; ko_build $go_app $work/ko.tar && ko_build $ko_sw $work/ko-sw.tar" \
  >"$out/builds-ko.log" 2>&1 || fail "ko build failed" "$out/builds-ko.log"
push() { in_hosts "$crane" push "$1" "$2" 2>>"$out/builds-ko.log"; } # prints repo@digest
ko_ref=$(push "$work/ko.tar" "$reg/ko-hello:default")
ko_sw_ref=$(push "$work/ko-sw.tar" "$reg/ko-hello:sw")

base_size=$(size "$base")
noops_size=$(size "$noops_ref")
ko_size=$(size "$ko_ref")
ko_sw_size=$(size "$ko_sw_ref")
base_layers=$(layers "$base")
n=$(echo "$base_layers" | wc -l)
for ref in "$noops_ref" "$ko_ref" "$ko_sw_ref"; do
  [ "$(layers "$ref" | head -n "$n")" = "$base_layers" ] || fail "$ref does not start with the base's layers"
done
{
  echo "base (static run image) $(mb "$base_size") MB, $n layer(s); noops and both ko images start with its layers"
  for who in noops ko ko-sw; do
    case $who in
    noops) s=$noops_size ref=$noops_ref what="noops (go build -trimpath -ldflags='-s -w')" ;;
    ko) s=$ko_size ref=$ko_ref what="ko $KO defaults (-trimpath)" ;;
    ko-sw) s=$ko_sw_size ref=$ko_sw_ref what="ko with ldflags -s -w" ;;
    esac
    printf '%-44s %8s MB, app layers %7s MB, %d layers\n' "$what" "$(mb "$s")" "$(mb $((s - base_size)))" "$(layers "$ref" | wc -l)"
  done
} | tee "$out/builds-size.txt"
diff_b=$((noops_size - ko_size))
size_ok=no
[ "$diff_b" -le 1000000 ] && size_ok=yes

# 2. Rebuild times, with warm caches: noops's build cache and Go cache in its
# data folder, ko's the host's Go cache.
ratio() { jq -r ".results[0].mean / .results[$2].mean * 100 | round / 100" "$1"; }
mean_ms() { jq -r ".results[$2].mean * 1000 | round" "$1"; }
readme() { echo "date +%s%N > $1/README.md"; } # a change that is not code
echo "==> unchanged hello-go: noops deploy vs ko build ($RUNS runs each)"
in_hosts hyperfine --warmup 1 --runs "$RUNS" --export-json "$out/builds-go-unchanged.json" \
  -n "noops deploy" "$root/bin/noops --data $data deploy $go_app" \
  -n "ko build" "cd $go_app && $ko build --bare --push=false --tarball=$work/ko.tar ." | tee "$out/builds-go-unchanged.txt"
serves hello
echo "==> hello-go with README.md changed before each run: noops deploy (rebuilds) vs ko build ($RUNS runs each)"
in_hosts hyperfine --warmup 1 --runs "$RUNS" --export-json "$out/builds-go-readme.json" --prepare "$(readme "$go_app")" \
  -n "noops deploy" "$root/bin/noops --data $data deploy $go_app" \
  -n "ko build" "cd $go_app && $ko build --bare --push=false --tarball=$work/ko.tar ." | tee "$out/builds-go-readme.txt"
serves hello
# One more such deploy, its output kept: where a rebuild's time goes.
eval "$(readme "$go_app")" && noops deploy "$go_app" >"$out/builds-go-readme-deploy.log" 2>&1
echo "==> hello-node: noops deploy unchanged, and with README.md changed before each run ($RUNS runs each)"
hyperfine --warmup 1 --runs "$RUNS" --export-json "$out/builds-node-unchanged.json" \
  -n "noops deploy hello-node, unchanged" "$root/bin/noops --data $data deploy $node_app" | tee "$out/builds-node-unchanged.txt"
hyperfine --warmup 1 --runs "$RUNS" --export-json "$out/builds-node-readme.json" --prepare "$(readme "$node_app")" \
  -n "noops deploy hello-node, README changed" "$root/bin/noops --data $data deploy $node_app" | tee "$out/builds-node-readme.txt"
serves hello-node
eval "$(readme "$node_app")" && noops deploy "$node_app" >"$out/builds-node-readme-deploy.log" 2>&1

# 3. Rebase, on a platform of its own (internal/testenv): this one stops first.
stop_server
echo "==> rebase: BenchmarkRebase (20 hello-static copies and hello-node)"
env -u SSL_CERT_FILE -u DOCKER_CONFIG -u KO_DOCKER_REPO -u KO_DEFAULTBASEIMAGE \
  go test -count=1 -timeout 30m -run '^$' -bench BenchmarkRebase -benchtime 1x ./internal/testenv/ |
  tee "$out/builds-rebase.txt"
metric() { awk -v u="$1" '/^BenchmarkRebase/ { for (i = 2; i <= NF; i++) if ($i == u) print $(i - 1) }' "$out/builds-rebase.txt"; }
r1=$(metric ms/app-1) rmean=$(metric ms/app-20-mean) rmax=$(metric ms/app-20-max) rnode=$(metric ms/app-node)
[ -n "$r1" ] && [ -n "$rmax" ] && [ -n "$rnode" ] || fail "BenchmarkRebase reported no results"
rebase_ok=no
awk -v a="$r1" -v b="$rmax" -v c="$rnode" 'BEGIN { exit !(a < 1000 && b < 1000 && c < 1000) }' && rebase_ok=yes

go_u=$out/builds-go-unchanged.json go_r=$out/builds-go-readme.json
{
  echo "ko's base is noops's static run image ($(mb "$base_size") MB), served by the noops registry: the sizes differ by the app layers"
  echo "image size hello-go: noops $(mb "$noops_size") MB, ko $(mb "$ko_size") MB, difference $(mb "$diff_b") MB (target <= ko + 1 MB: $size_ok); ko with -s -w $(mb "$ko_sw_size") MB"
  echo "unchanged hello-go: noops deploy $(mean_ms "$go_u" 0) ms, ko build $(mean_ms "$go_u" 1) ms, ratio $(ratio "$go_u" 1) (target <= 1.0)"
  echo "hello-go, README changed (real rebuild): noops deploy $(mean_ms "$go_r" 0) ms, ko build $(mean_ms "$go_r" 1) ms, ratio $(ratio "$go_r" 1) (report)"
  echo "hello-node: noops deploy unchanged $(mean_ms "$out/builds-node-unchanged.json" 0) ms, README changed $(mean_ms "$out/builds-node-readme.json" 0) ms (report)"
  echo "rebase: 1 app ${r1} ms; 20 apps mean ${rmean} ms, max ${rmax} ms per app; hello-node ${rnode} ms (target < 1000 ms per app: $rebase_ok)"
} | tee "$out/builds-summary.txt"
