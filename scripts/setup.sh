#!/usr/bin/env bash
# Host set-up for building, testing and running dsrlb on Debian 12: packages and
# hugepages. Idempotent; needs root. Used by test.sh and demo.sh.
set -euo pipefail

PACKAGES=(
  libdpdk-dev dpdk dpdk-dev   # DPDK 22.11: headers, libraries, PMDs, dpdk-testpmd
  libclang-dev clang          # bindgen
  g++                         # libfuzzer-sys builds libFuzzer (scripts/fuzz.sh)
  pkg-config                  # finds DPDK's flags
  libpcap-dev                 # the net_pcap PMD's library
  tcpdump iproute2 ethtool curl python3 procps   # the namespace lab and the demo
  python3-scapy               # the lab's neighbour discovery cases (scripts/lab-ndp.py)
  systemd                     # systemd-analyze checks scripts/dsrlb.service
  linux-perf                  # the benchmark's PMD share (its smoke run is a test)
  pen nftables                # the benchmark's lab peer and its packet sinks (a test)
  driverctl                   # bind-nic.sh --persist (its dry run is a test)
  bird2                       # BGP scale-out: dsrlb drives BIRD 2 (a lab test runs it)
  keepalived                  # active/standby: keepalived elects (a lab test runs it)
)

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: run as root (it installs packages and reserves hugepages)" >&2
    exit 1
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  need_root
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "setup.sh: cargo is in ~/.cargo/bin; add it to PATH" >&2
  else
    echo "setup.sh: no Rust toolchain: install one with rustup (Rust 1.80 or newer)" >&2
  fi
  exit 1
fi

# 2 MiB hugepages for production runs (tests and the vdev demo use --no-huge).
"$(dirname "$0")/hugepages.sh" "${DSRLB_HUGEPAGES:-1024}"
