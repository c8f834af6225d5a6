#!/usr/bin/env bash
# Benchmark of issue 9: `noops pcap extract` against `tshark
# --export-objects` (http, ftp-data, imf, tftp) on the same captures, in
# the same run. The driver (bench/pcap) generates, deterministically from
# BENCH_PCAP_SEED (1), a pcapng capture carrying BENCH_PCAP_BYTES
# (1.1e9) bytes of objects (the file is about 4% larger): HTTP/1.1
# keep-alive sessions (Content-Length or chunked, text sometimes gzip'd),
# FTP sessions as vsftpd answers them (PASV, RETR and some STOR), SMTP
# messages with base64 attachments and TFTP reads, six at a time with
# their packets interleaved; objects of 1 KB to BENCH_PCAP_MAX_OBJECT
# (5e7) bytes with known SHA-256s (bench/out/pcap/capture.expected.json).
# It then runs noops and tshark on it one after the other from a warm
# page cache, each at its defaults: wall time, CPU time and peak RSS of
# the tool (GNU time), capture MB/s and how many of the known objects
# each wrote with the right SHA-256. Target: noops >= 3x tshark's MB/s.
# The same again on a second capture without HTTP (FTP, SMTP and TFTP;
# BENCH_PCAP_NOHTTP_BYTES, 3e8; 0 skips it), where tshark reassembles no
# bodies. Then seven small cases (out-of-order segments, a server-only
# capture, FTP on port 2121, an HTTP 206 download in two ranges, a base64
# flag in a tar in a tar, a retransmission with different bytes, a
# capture cut mid-transfer), each run through both tools and judged by
# SHA-256.
# BENCH_PCAP_TIMEOUT (1h) bounds each tool's run; BENCH_PCAP_KEEP=1 keeps
# the large captures (deleted otherwise; outputs are deleted after
# hashing). BENCH_TSHARK_BIN picks the tshark binary. Nothing touches the
# network. Needs Go and tshark (installed from Debian if missing and run
# as root). About 15 minutes on 2 cores, mostly tshark.
# Results: bench/out/pcap.json, pcap-summary.txt, pcap.log.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$PWD/bench/out
mkdir -p "$out"
export PATH="/usr/local/go/bin:$PATH"

BYTES=${BENCH_PCAP_BYTES:-1.1e9}
NOHTTP_BYTES=${BENCH_PCAP_NOHTTP_BYTES:-3e8}
MAX_OBJECT=${BENCH_PCAP_MAX_OBJECT:-5e7}
SEED=${BENCH_PCAP_SEED:-1}
TIMEOUT=${BENCH_PCAP_TIMEOUT:-1h}
TSHARK=${BENCH_TSHARK_BIN:-tshark}
case "${BENCH_PCAP_KEEP:-0}" in
1 | on | true) KEEP=--keep ;;
*) KEEP= ;;
esac

work=$(mktemp -d /tmp/noops-bench-pcap.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! command -v "$TSHARK" >/dev/null; then
  if [ "$TSHARK" = tshark ] && [ "$(id -u)" = 0 ]; then
    echo "==> installing tshark from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y tshark >"$work/apt.log" 2>&1 ||
      { tail -n 20 "$work/apt.log" >&2; echo "bench: installing tshark failed" >&2; exit 1; }
  else
    echo "bench: $TSHARK not found (apt-get install tshark, or BENCH_TSHARK_BIN)" >&2
    exit 1
  fi
fi
kinds=$("$TSHARK" --export-objects help 2>&1 || true)
for k in http ftp-data imf tftp; do
  grep -qw -- "$k" <<<"$kinds" || { echo "bench: $TSHARK cannot export $k objects" >&2; exit 1; }
done

echo "==> building noops (make build) and the driver (bench/pcap)"
make -s build
if ! bin/noops pcap extract --help >/dev/null 2>&1; then
  echo "bench: bin/noops has no 'pcap extract' command" >&2
  exit 1
fi
go build -o "$work/pcap" ./bench/pcap

echo "==> captures carrying $BYTES and (without HTTP) $NOHTTP_BYTES bytes of objects (seed $SEED): noops, then tshark, on each; then the cases"
"$work/pcap" --noops "$PWD/bin/noops" --tshark "$TSHARK" --bytes "$BYTES" --no-http-bytes "$NOHTTP_BYTES" \
  --max-object "$MAX_OBJECT" --seed "$SEED" --timeout "$TIMEOUT" \
  --out-dir "$out" $KEEP 2> >(tee "$out/pcap.log" >&2) | tee "$out/pcap-summary.txt"
