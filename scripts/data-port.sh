#!/usr/bin/env bash
# Keeps the kernel off a data interface that dsrlb drives through af_packet or
# af_xdp (the kernel still owns such an interface and would otherwise answer ARP on
# it for any of its addresses, the management one included, and take IP for them):
#   - no address on it,
#   - arp_ignore = 8: no ARP answers on it,
#   - rp_filter = 1: with no route through it, strict reverse-path filtering drops
#     every IPv4 packet arriving on it (counted as TcpExtIPReversePathFilter),
#   - disable_ipv6 = 1.
# dsrlb sets the three sysctls itself at start and warns of a route through the
# interface; this script also removes the addresses, and checks.
#
#   scripts/data-port.sh IFACE           apply (as root, in the interface's namespace)
#   scripts/data-port.sh IFACE --check   say what is not so; exit 1 if anything
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 IFACE [--check]" >&2; exit 2; }
IFACE=$1 MODE=${2:-apply}
[ -d "/sys/class/net/$IFACE" ] || { echo "$0: no interface $IFACE here" >&2; exit 1; }
SYSCTLS="ipv4/conf/$IFACE/arp_ignore=8 ipv4/conf/$IFACE/rp_filter=1 ipv6/conf/$IFACE/disable_ipv6=1"

if [ "$MODE" = --check ]; then
  wrong=0
  for kv in $SYSCTLS; do
    path=/proc/sys/net/${kv%=*} want=${kv#*=}
    have=$(cat "$path" 2>/dev/null || echo missing)
    [ "$have" = "$want" ] || { echo "$IFACE: ${kv%=*} is $have, wants $want"; wrong=1; }
  done
  if [ "$(cat /proc/sys/net/ipv4/conf/all/rp_filter)" = 2 ]; then
    echo "$IFACE: net.ipv4.conf.all.rp_filter is 2, which makes the interface's filter loose"; wrong=1
  fi
  addrs=$(ip -o addr show dev "$IFACE" | awk '{print $4}' | tr '\n' ' ')
  [ -z "$addrs" ] || { echo "$IFACE: has addresses $addrs"; wrong=1; }
  [ "$wrong" = 0 ] && echo "$IFACE: the kernel stays off it"
  exit "$wrong"
fi

ip addr flush dev "$IFACE"
for kv in $SYSCTLS; do
  echo "${kv#*=}" > "/proc/sys/net/${kv%=*}"
done
echo "$IFACE: no address, no ARP answers, IPv4 input dropped, no IPv6"
