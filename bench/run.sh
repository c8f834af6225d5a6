#!/usr/bin/env bash
# Runs the benchmarks, each side by side with its peer in the same run:
#   core     issue 2: deploy vs go build, gateway vs nginx   (bench/core.sh)
#   builds   issue 3: image size and rebuild vs ko, rebase   (bench/builds.sh)
# With no argument runs both, core first, and fails if either failed.
# Needs root. Results and summaries: bench/out/. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-all}" in
core) exec ./core.sh ;;
builds) exec ./builds.sh ;;
all)
  rc=0
  ./core.sh || rc=$?
  ./builds.sh || rc=$?
  exit "$rc"
  ;;
*)
  echo "usage: bench/run.sh [core|builds]" >&2
  exit 2
  ;;
esac
