#!/usr/bin/env bash
# Configures a Linux target (real server) for dsrlb's Direct Server Return:
#   - the VIP on the loopback interface (/32), so the target accepts traffic to it;
#   - arp_ignore=1: answer ARP only for addresses on the interface asked on, so the
#     target never answers ARP for the VIP (dsrlb does);
#   - arp_announce=2: never use the VIP as the source of its own ARP requests;
#   - rp_filter loose (2) where it was strict (1), so traffic to the VIP is not
#     dropped when the client's route leaves by another interface.
# Idempotent. Needs root.
#
#   target-setup.sh VIP [VIP...]            apply now
#   target-setup.sh VIP [VIP...] --persist  apply now and at every boot
#   target-setup.sh VIP [VIP...] --undo     remove the VIPs (and the persisted files)
set -euo pipefail

usage() { echo "usage: $0 VIP [VIP...] [--persist | --undo]" >&2; exit 2; }

vips=()
mode=apply
for arg in "$@"; do
  case "$arg" in
    --persist) mode=persist ;;
    --undo) mode=undo ;;
    -h|--help) usage ;;
    *)
      if [[ ! "$arg" =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]]; then
        echo "target-setup.sh: '$arg' is not an IPv4 address" >&2; exit 2
      fi
      for octet in "${BASH_REMATCH[@]:1}"; do
        [ "$octet" -le 255 ] || { echo "target-setup.sh: '$arg' is not an IPv4 address" >&2; exit 2; }
      done
      vips+=("$arg") ;;
  esac
done
[ "${#vips[@]}" -gt 0 ] || usage
[ "$(id -u)" = 0 ] || { echo "target-setup.sh: run as root" >&2; exit 1; }

# DSRLB_TARGET_ROOT prefixes the files --persist writes (tests write into a temp dir).
ROOT=${DSRLB_TARGET_ROOT:-}
SYSCTL_FILE=$ROOT/etc/sysctl.d/90-dsrlb-dsr.conf
UNIT_FILE=$ROOT/etc/systemd/system/dsrlb-vip.service

set_sysctl() { sysctl -q -w "$1=$2" >/dev/null; }

apply() {
  ip link set lo up
  for vip in "${vips[@]}"; do
    ip -4 addr show dev lo | grep -q " $vip/32 " || ip addr add "$vip/32" dev lo
  done
  set_sysctl net.ipv4.conf.all.arp_ignore 1
  set_sysctl net.ipv4.conf.all.arp_announce 2
  for key in all default; do
    if [ "$(sysctl -n net.ipv4.conf.$key.rp_filter)" = 1 ]; then set_sysctl "net.ipv4.conf.$key.rp_filter" 2; fi
  done
}

persist() {
  mkdir -p "$(dirname "$SYSCTL_FILE")"
  cat > "$SYSCTL_FILE" <<CONF
# Written by dsrlb's target-setup.sh: Direct Server Return target.
net.ipv4.conf.all.arp_ignore = 1
net.ipv4.conf.all.arp_announce = 2
net.ipv4.conf.all.rp_filter = 2
net.ipv4.conf.default.rp_filter = 2
CONF
  local adds=""
  for vip in "${vips[@]}"; do adds+="ExecStart=/sbin/ip addr replace $vip/32 dev lo"$'\n'; done
  mkdir -p "$(dirname "$UNIT_FILE")"
  cat > "$UNIT_FILE" <<UNIT
# Written by dsrlb's target-setup.sh: the VIPs on loopback for Direct Server Return.
[Unit]
Description=dsrlb DSR VIPs on loopback
After=network-pre.target
Before=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
${adds}
[Install]
WantedBy=multi-user.target
UNIT
  if [ -z "$ROOT" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl daemon-reload && systemctl enable dsrlb-vip.service >/dev/null
  fi
}

undo() {
  for vip in "${vips[@]}"; do
    ip -4 addr show dev lo | grep -q " $vip/32 " && ip addr del "$vip/32" dev lo
  done
  # Other /32s left on lo may still be VIPs: keep the ARP settings for them.
  if ! ip -4 addr show dev lo | grep -v ' 127\.' | grep -q '/32 '; then
    set_sysctl net.ipv4.conf.all.arp_ignore 0
    set_sysctl net.ipv4.conf.all.arp_announce 0
  fi
  if [ -f "$UNIT_FILE" ]; then
    if [ -z "$ROOT" ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      systemctl disable dsrlb-vip.service >/dev/null 2>&1 || true
    fi
    rm -f "$UNIT_FILE"
  fi
  rm -f "$SYSCTL_FILE"
}

case "$mode" in
  apply) apply ;;
  persist) apply; persist ;;
  undo) undo ;;
esac
