#!/usr/bin/env bash
# Runs the benchmarks, each side by side with its peer in the same run:
#   core     issue 2: deploy vs go build, gateway vs nginx   (bench/core.sh)
#   builds   issue 3: image size and rebuild vs ko, rebase   (bench/builds.sh)
#   cold     issue 4: cold start vs runc run and podman run  (bench/coldstart.sh)
#   access   issue 5: access layer vs public app, handshakes (bench/access.sh)
#   waf      issue 6: the gateway's WAF vs Coraza's middleware (bench/waf.sh)
#   events   issue 7: events end to end vs plain JetStream   (bench/events.sh)
#   spans    issue 8: span ingest per core, bytes per span   (bench/spans.sh)
#   logs     issue 8: log ingest per core, bytes per line vs Loki (bench/logs.sh)
#   pcap     issue 9: pcap extract vs tshark --export-objects (bench/pcap.sh)
# With no argument runs all nine in that order, and fails if one failed.
# Needs root (waf, events, spans, logs and pcap do not). Results and summaries: bench/out/.
# See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-all}" in
core) exec ./core.sh ;;
builds) exec ./builds.sh ;;
cold) exec ./coldstart.sh ;;
access) exec ./access.sh ;;
waf) exec ./waf.sh ;;
events) exec ./events.sh ;;
spans) exec ./spans.sh ;;
logs) exec ./logs.sh ;;
pcap) exec ./pcap.sh ;;
all)
  rc=0
  ./core.sh || rc=$?
  ./builds.sh || rc=$?
  ./coldstart.sh || rc=$?
  ./access.sh || rc=$?
  ./waf.sh || rc=$?
  ./events.sh || rc=$?
  ./spans.sh || rc=$?
  ./logs.sh || rc=$?
  ./pcap.sh || rc=$?
  exit "$rc"
  ;;
*)
  echo "usage: bench/run.sh [core|builds|cold|access|waf|events|spans|logs|pcap]" >&2
  exit 2
  ;;
esac
