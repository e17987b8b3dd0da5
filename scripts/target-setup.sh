#!/usr/bin/env bash
# Configures a Linux target (real server) for dsrlb's Direct Server Return:
#   - the VIP on the loopback interface (/32), so the target accepts traffic to it;
#   - arp_ignore=1: answer ARP only for addresses on the interface asked on, so the
#     target never answers ARP for the VIP (dsrlb does);
#   - arp_announce=2: never use the VIP as the source of its own ARP requests;
#   - rp_filter loose (2) where it was strict (1), so traffic to the VIP is not
#     dropped when the client's route leaves by another interface.
# An IPv6 VIP needs only the first (a /128 on lo): Linux answers a neighbour
# solicitation only for an address of the interface it came in on, and never takes a
# loopback address as the source of its own solicitations there, so no setting is
# needed to keep it from claiming the VIP (checked in the lab: a solicitation for a
# /128 on lo goes unanswered).
# Idempotent. Needs root.
#
#   target-setup.sh VIP [VIP...]            apply now
#   target-setup.sh VIP [VIP...] --persist  apply now and at every boot
#   target-setup.sh VIP [VIP...] --undo     remove the VIPs (and the persisted files)
#   target-setup.sh VIP [VIP...] --check [--port PORT[/udp]]
#       checks, changing nothing, what dsrlb's doctor sees from the other side: the
#       VIP on lo, arp_ignore and arp_announce, rp_filter, and a listener on the VIP
#       (on PORT if given); prints ok/FAIL a line, exits 1 if anything fails.
set -euo pipefail

usage() { echo "usage: $0 VIP [VIP...] [--persist | --undo | --check [--port PORT[/udp]]]" >&2; exit 2; }

vips=()
mode=apply
port=""
want_port=0
for arg in "$@"; do
  if [ "$want_port" = 1 ]; then
    [[ "$arg" =~ ^[0-9]{1,5}(/(tcp|udp))?$ ]] || { echo "target-setup.sh: --port wants PORT or PORT/udp, not '$arg'" >&2; exit 2; }
    port=$arg; want_port=0; continue
  fi
  case "$arg" in
    --persist) mode=persist ;;
    --undo) mode=undo ;;
    --check) mode=check ;;
    --port) want_port=1 ;;
    -h|--help) usage ;;
    *:*)
      if [[ ! "$arg" =~ ^[0-9a-fA-F:]{2,39}$ ]] || [[ "$arg" == *:::* ]]; then
        echo "target-setup.sh: '$arg' is not an IPv6 address" >&2; exit 2
      fi
      vips+=("$arg") ;;
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
[ "${#vips[@]}" -gt 0 ] && [ "$want_port" = 0 ] || usage
[ -z "$port" ] || [ "$mode" = check ] || usage
[ "$mode" = check ] || [ "$(id -u)" = 0 ] || { echo "target-setup.sh: run as root" >&2; exit 1; }

# DSRLB_TARGET_ROOT prefixes the files --persist writes (tests write into a temp dir).
ROOT=${DSRLB_TARGET_ROOT:-}
SYSCTL_FILE=$ROOT/etc/sysctl.d/90-dsrlb-dsr.conf
UNIT_FILE=$ROOT/etc/systemd/system/dsrlb-vip.service

set_sysctl() { sysctl -q -w "$1=$2" >/dev/null; }

# A VIP's family ("4" or "6") and its prefix on lo.
family() { [[ "$1" == *:* ]] && echo 6 || echo 4; }
prefix() { [ "$(family "$1")" = 6 ] && echo 128 || echo 32; }
# Whether VIP is on lo (IPv6 addresses as `ip` prints them: compressed, lower case).
on_lo() {
  local f
  f=$(family "$1")
  ip -"$f" -o addr show dev lo | awk '{print $4}' | grep -qix "$1/$(prefix "$1")"
}

# Whether any VIP is IPv4: only those need the ARP and rp_filter settings.
any_ipv4() {
  local vip
  for vip in "${vips[@]}"; do [ "$(family "$vip")" = 4 ] && return 0; done
  return 1
}

apply() {
  ip link set lo up
  for vip in "${vips[@]}"; do
    on_lo "$vip" || ip addr add "$vip/$(prefix "$vip")" dev lo
  done
  any_ipv4 || return 0
  set_sysctl net.ipv4.conf.all.arp_ignore 1
  set_sysctl net.ipv4.conf.all.arp_announce 2
  for key in all default; do
    if [ "$(sysctl -n net.ipv4.conf.$key.rp_filter)" = 1 ]; then set_sysctl "net.ipv4.conf.$key.rp_filter" 2; fi
  done
}

persist() {
  if any_ipv4; then
    mkdir -p "$(dirname "$SYSCTL_FILE")"
    cat > "$SYSCTL_FILE" <<CONF
# Written by dsrlb's target-setup.sh: Direct Server Return target.
net.ipv4.conf.all.arp_ignore = 1
net.ipv4.conf.all.arp_announce = 2
net.ipv4.conf.all.rp_filter = 2
net.ipv4.conf.default.rp_filter = 2
CONF
  fi
  local adds=""
  for vip in "${vips[@]}"; do adds+="ExecStart=/sbin/ip addr replace $vip/$(prefix "$vip") dev lo"$'\n'; done
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
    if on_lo "$vip"; then ip addr del "$vip/$(prefix "$vip")" dev lo; fi
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

# The value the kernel uses for an interface: the larger of conf/all and conf/IF.
effective() { # KEY IFACE
  local a i
  a=$(sysctl -n "net.ipv4.conf.all.$1")
  i=$(sysctl -n "net.ipv4.conf.$2.$1" 2>/dev/null || echo 0)
  echo $(( a > i ? a : i ))
}

failed=0
verdict() { # ok|FAIL TEXT
  echo "$1: $2"
  [ "$1" = ok ] || failed=1
}

check() {
  local ifaces vip iface v proto=tcp p=${port%/*}
  [[ $port == */udp ]] && proto=udp
  ifaces=$(ip -o -4 addr show | awk '$2 != "lo" {print $2}' | sort -u)
  for vip in "${vips[@]}"; do
    if on_lo "$vip"; then verdict ok "$vip on lo"
    else verdict FAIL "$vip is not on lo: the target drops every frame dsrlb forwards to it (ip addr add $vip/$(prefix "$vip") dev lo, or $0 $vip)"; fi
  done
  any_ipv4 || ifaces=""
  for iface in $ifaces; do
    v=$(effective arp_ignore "$iface")
    if [ "$v" = 1 ] || [ "$v" = 2 ]; then verdict ok "arp_ignore $v on $iface"
    else verdict FAIL "arp_ignore $v on $iface: the target answers ARP for the VIP there and clients may bypass dsrlb (sysctl -w net.ipv4.conf.all.arp_ignore=1)"; fi
    v=$(effective arp_announce "$iface")
    if [ "$v" = 2 ]; then verdict ok "arp_announce 2 on $iface"
    else verdict FAIL "arp_announce $v on $iface: its ARP requests may announce the VIP (sysctl -w net.ipv4.conf.all.arp_announce=2)"; fi
    v=$(effective rp_filter "$iface")
    if [ "$v" = 1 ]; then verdict FAIL "rp_filter 1 (strict) on $iface: frames to the VIP whose source is routed out of another interface are dropped (sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.$iface.rp_filter=2)"
    else verdict ok "rp_filter $v on $iface"; fi
  done
  for vip in "${vips[@]}"; do check_listener "$vip" "$proto" "$p"; done
}

check_listener() { # VIP tcp|udp PORT(or empty)
  local vip=$1 proto=$2 p=$3 flags=-Hltn local_col sockets
  [ "$proto" = udp ] && flags=-Hlun
  sockets=$(ss "$flags" | awk '{print $4}')
  local match="^($vip|0\.0\.0\.0|\*|\[::\]|\[::ffff:$vip\]):${p:-[0-9]+}$"
  [ "$(family "$vip")" = 6 ] && match="^(\[$vip\]|\*|\[::\]):${p:-[0-9]+}$"
  if grep -Eq "$match" <<<"$sockets"; then
    verdict ok "a $proto listener on $vip:${p:-*} (or on every address)"
  elif [ -n "$p" ] && grep -Eq ":$p$" <<<"$sockets"; then
    local_col=$(grep -E ":$p$" <<<"$sockets" | paste -sd, -)
    local any=0.0.0.0
    [ "$(family "$vip")" = 6 ] && any="::"
    verdict FAIL "$proto port $p listens on $local_col only, not on $vip: bind the service to $vip or $any"
  else
    verdict FAIL "no $proto listener on $vip${p:+:$p}"
  fi
}

case "$mode" in
  check) check; exit "$failed" ;;
  apply) apply ;;
  persist) apply; persist ;;
  undo) undo ;;
esac
