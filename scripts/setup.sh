#!/usr/bin/env bash
# Installs the machine packages noops needs, from the distribution's archive,
# only when they are missing. Idempotent.
set -euo pipefail

need=()
command -v runc >/dev/null 2>&1 || need+=(runc)
if [ ! -x /usr/lib/cni/bridge ] && [ ! -x /opt/cni/bin/bridge ]; then need+=(containernetworking-plugins); fi
command -v ip >/dev/null 2>&1 || need+=(iproute2)
[ -f /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
[ -d /usr/share/zoneinfo ] || need+=(tzdata)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v git >/dev/null 2>&1 || need+=(git)
# The browser tests drive headless Chromium (Debian's package is chromium;
# some distributions call the program chromium-browser).
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then need+=(chromium); fi
# Benchmarks compare against these peers.
if [ "${NOOPS_SETUP_BENCH:-0}" = 1 ]; then
  command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  command -v jq >/dev/null 2>&1 || need+=(jq)
  command -v podman >/dev/null 2>&1 || need+=(podman)
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "setup: Go is not installed; noops builds Go apps with the host's Go toolchain (install Go 1.22+)" >&2
  exit 1
fi

# The app firewall keeps sandboxes apart on their bridge: with the kernel's
# bridge meta expression, or else with br_netfilter handing bridged frames
# to nftables. Load the module when the kernel has it as one.
if [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && [ "$(id -u)" = 0 ] && command -v modprobe >/dev/null 2>&1; then
  modprobe br_netfilter 2>/dev/null || true
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "setup: runc, CNI plugins and iproute2 are present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup: missing ${need[*]}; run as root: sudo make setup" >&2
  exit 1
fi
echo "setup: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
