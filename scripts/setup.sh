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
# The pcap tests record real FTP transfers: vsftpd (run by the tests with
# their own configuration on loopback, never as a service) and tcpdump.
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
[ -x /usr/sbin/vsftpd ] || need+=(vsftpd)
# Benchmarks compare against these peers.
if [ "${NOOPS_SETUP_BENCH:-0}" = 1 ]; then
  command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  command -v jq >/dev/null 2>&1 || need+=(jq)
  command -v podman >/dev/null 2>&1 || need+=(podman)
  command -v tshark >/dev/null 2>&1 || need+=(tshark)
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
# Installing vsftpd must not start an FTP server on port 21: tell
# invoke-rc.d (and deb-systemd-invoke) to start no service meanwhile.
policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1
fi
apt-get install -y -q --no-install-recommends "${need[@]}"
if [ -n "$policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled vsftpd >/dev/null 2>&1; then
  systemctl disable --now vsftpd >/dev/null 2>&1 || true
fi
