#!/usr/bin/env bash
# The network-namespace lab: dsrlb's whole job on one machine, no NIC.
#
#   data segment 10.99.0.0/24 (Linux bridge br-data in namespace dsr-sw):
#     dsr-client  eth0   10.99.0.1    02:99:00:00:00:01
#     dsr-lb      data0  (no kernel address: dsrlb drives it through net_af_packet
#                        and owns the real address 10.99.0.2)  02:99:00:00:00:02
#     dsr-t1      eth0   10.99.0.11   02:99:00:00:00:0b   VIP 10.99.0.100/32 on lo
#     dsr-t2      eth0   10.99.0.12   02:99:00:00:00:0c   VIP 10.99.0.100/32 on lo
#   and dual-stack: fd00:99::/64 on the same segment, client fd00:99::1, targets
#     fd00:99::11 and ::12, VIP fd00:99::100/128 on their lo, dsrlb's IPv6 real
#     address fd00:99::2 (IPv6 stays off in dsr-lb's kernel)
#   management segment 10.99.1.0/24 (bridge br-mgmt in dsr-sw), for health probes:
#     dsr-lb 10.99.1.2, dsr-t1 10.99.1.11, dsr-t2 10.99.1.12   (all on mgmt0)
#   targets run HTTP on :80 (both families) and a UDP echo on VIP:5353 and
#   [VIP6]:5353, each answering its name.
#
#   lab.sh up --scale-out   instead: two appliances behind a BGP/ECMP router (below)
#   lab.sh up --ha          instead: an active/standby pair elected by keepalived (below)
#   lab.sh up --vlan        the lab with dsrlb's link an 802.1Q trunk of VLAN 10 (up_vlan)
#   lab.sh up       build it (rebuilds from scratch if any part exists)
#   lab.sh down     remove it (also a half-built one), killing what runs inside
#   lab.sh status   what exists and whether the services answer
#   lab.sh service t1|t2 http|udp stop|start   stop or start one target's service
#
# Scale-out (up --scale-out): clients reach the VIP through a router that spreads
# flows over two appliances by ECMP, each announcing the VIP by BGP from BIRD in its
# own namespace (next hop: its real address on the data segment):
#   client segment 10.99.2.0/24 (br-client): dsr-client eth0 10.99.2.1 (default
#     route via the router), dsr-rtr cl0 10.99.2.254
#   data segment 10.99.0.0/24 (br-data): dsr-rtr d0 10.99.0.254; dsr-lb1 data0
#     (dsrlb, real address 10.99.0.2, 02:99:00:00:00:02); dsr-lb2 data0 (10.99.0.3,
#     02:99:00:00:00:03); t1 10.99.0.11 and t2 10.99.0.12 as above, default route via
#     the router, so replies go client-ward through it and never through dsrlb
#   IPv6 as well, without BGP: client fd00:99:2::1 (default via the router's
#     fd00:99:2::fe), router fd00:99::fe on the data segment, targets fd00:99::11 and
#     ::12 (default via the router), the IPv6 VIP fd00:99::100 on their lo
#   management 10.99.1.0/24 (br-mgmt): dsr-rtr 10.99.1.254 (BIRD, AS 65000, merge
#     paths on, BFD), dsr-lb1 10.99.1.2, dsr-lb2 10.99.1.3 (BIRD, AS 65001, config
#     written by dsrlb bird-config from config/examples/scale-out-lb1.toml / -lb2.toml;
#     DSRLB=path picks the dsrlb binary, default target/release/dsrlb), targets.
#
# Active/standby (up --ha): the data segment as above, with two appliances instead of
# one, sharing the real address 10.99.0.2 and the VIP: dsr-lb1 data0
# (02:99:00:00:00:02) and dsr-lb2 data0 (02:99:00:00:00:03), management 10.99.1.2
# and 10.99.1.3 (mgmt0), keepalived in each (VRRP v3 unicast over management, config
# written by dsrlb keepalived-config from config/examples/ha-lb1.toml / ha-lb2.toml,
# the pair's floating management address 10.99.1.10). Each appliance keeps its own
# MAC; the active's gratuitous ARP moves the client's entry. DSRLB as above.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
NAMESPACES=(dsr-client dsr-lb dsr-t1 dsr-t2 dsr-sw)
SCALE_OUT=(dsr-client dsr-rtr dsr-lb1 dsr-lb2 dsr-t1 dsr-t2 dsr-sw)
PAIR=(dsr-client dsr-lb1 dsr-lb2 dsr-t1 dsr-t2 dsr-sw)
ALL_NAMESPACES=(dsr-client dsr-lb dsr-rtr dsr-lb1 dsr-lb2 dsr-t1 dsr-t2 dsr-sw)
RUN=/run/dsrlb-lab
VIP=10.99.0.100
VIP6=fd00:99::100

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

quiet_sysctl() { nsx "$1" sysctl -q -w "$2=$3" >/dev/null 2>&1 || true; }

down() {
  # Services whose namespace was deleted under them are reached by their pid files.
  for pidfile in "$RUN"/*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for ns in "${ALL_NAMESPACES[@]}"; do
    if ip netns list | grep -qw "^$ns"; then
      local pids
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      if [ -n "$pids" ]; then
        kill $pids 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do
          pids=$(ip netns pids "$ns" 2>/dev/null || true)
          [ -z "$pids" ] && break
          sleep 0.2
        done
        [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
      fi
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  rm -rf "$RUN"
}

# Bridges (in dsr-sw) for the segments named.
bridges() {
  for br in "$@"; do
    ip -n dsr-sw link add "$br" type bridge stp_state 0 mcast_snooping 0
    ip -n dsr-sw link set "$br" up
  done
}

# The targets' links: eth0 on the data segment, mgmt0 on the management one.
target_links() {
  link dsr-t1 eth0  d-t1 br-data 02:99:00:00:00:0b
  link dsr-t2 eth0  d-t2 br-data 02:99:00:00:00:0c
  link dsr-t1 mgmt0 m-t1 br-mgmt 02:99:01:00:00:0b
  link dsr-t2 mgmt0 m-t2 br-mgmt 02:99:01:00:00:0c
}

# Full checksums at both ends of each "NS IFACE BRIDGE-PORT" link given.
checksummed() {
  for pair in "$@"; do
    set -- $pair
    offloads_off "$1" "$2"
    offloads_off dsr-sw "$3"
  done
}

# Static FDB entries, each "MAC BRIDGE-PORT": a target that only receives must not
# age out and get its frames flooded.
static_fdb() {
  for entry in "$@"; do
    set -- $entry
    bridge -n dsr-sw fdb replace "$1" dev "$2" master static
  done
}

# dsr-lb1 and dsr-lb2: the kernel kept off their data0, management 10.99.1.2 and .3.
two_appliances() {
  for lb in lb1 lb2; do
    quiet_sysctl "dsr-$lb" net.ipv4.ip_forward 0
    nsx "dsr-$lb" "$HERE/data-port.sh" data0 >/dev/null
  done
  nsx dsr-lb1 ip addr add 10.99.1.2/24 dev mgmt0
  nsx dsr-lb2 ip addr add 10.99.1.3/24 dev mgmt0
}

# veth between a bridge port in dsr-sw and an interface in namespace $ns.
link() {
  local ns=$1 ifname=$2 port=$3 bridge=$4 mac=$5
  ip -n dsr-sw link add "$port" type veth peer name "$ifname" netns "$ns"
  nsx "$ns" ip link set "$ifname" address "$mac"
  ip -n dsr-sw link set "$port" master "$bridge" up
  nsx "$ns" ip link set "$ifname" up
}

# Kernel-built frames are CHECKSUM_PARTIAL on veth; af_packet would hand them on
# with a bad TCP checksum. Full checksums in software on the data segment.
offloads_off() {
  nsx "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true
}

# Fresh namespaces, each with lo up and IPv6 off.
namespaces() {
  down
  mkdir -p "$RUN"
  for ns in "$@"; do
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    quiet_sysctl "$ns" net.ipv6.conf.all.disable_ipv6 1
    quiet_sysctl "$ns" net.ipv6.conf.default.disable_ipv6 1
  done
  quiet_sysctl dsr-sw net.bridge.bridge-nf-call-iptables 0
  quiet_sysctl dsr-sw net.bridge.bridge-nf-call-arptables 0
}

# IPv6 back on in these namespaces, for the interfaces created after this: no
# duplicate address detection (addresses usable at once) and no router
# solicitations (no router here).
ipv6_on() {
  for ns in "$@"; do
    for key in all default; do
      quiet_sysctl "$ns" "net.ipv6.conf.$key.disable_ipv6" 0
      quiet_sysctl "$ns" "net.ipv6.conf.$key.accept_dad" 0
      quiet_sysctl "$ns" "net.ipv6.conf.$key.router_solicitations" 0
    done
  done
}

# Whether the kernel in namespace $1 has IPv6 on.
has_ipv6() { [ "$(nsx "$1" sysctl -n net.ipv6.conf.default.disable_ipv6 2>/dev/null)" = 0 ]; }

# The targets on the data and management segments, VIP on lo, services running.
targets() {
  local i=1
  for t in t1 t2; do
    local last=$((10 + i))
    nsx "dsr-$t" ip addr add "10.99.0.$last/24" dev eth0
    nsx "dsr-$t" ip addr add "10.99.1.$last/24" dev mgmt0
    nsx "dsr-$t" "$HERE/target-setup.sh" "$VIP"
    if has_ipv6 "dsr-$t"; then
      nsx "dsr-$t" ip -6 addr add "fd00:99::$last/64" dev eth0 nodad
      nsx "dsr-$t" "$HERE/target-setup.sh" "$VIP6"
    fi
    service "$t" http start
    service "$t" udp start
    i=$((i + 1))
  done
}

up() {
  namespaces "${NAMESPACES[@]}"
  ipv6_on dsr-client dsr-t1 dsr-t2
  # The balancer's kernel sees every frame dsrlb sees: it must not route them.
  quiet_sysctl dsr-lb net.ipv4.ip_forward 0

  bridges br-data br-mgmt

  link dsr-client eth0  d-client br-data 02:99:00:00:00:01
  link dsr-lb     data0 d-lb     br-data 02:99:00:00:00:02
  link dsr-lb     mgmt0 m-lb     br-mgmt 02:99:01:00:00:02
  target_links

  checksummed "dsr-client eth0 d-client" "dsr-lb data0 d-lb" "dsr-t1 eth0 d-t1" "dsr-t2 eth0 d-t2"
  static_fdb "02:99:00:00:00:01 d-client" "02:99:00:00:00:02 d-lb" "02:99:00:00:00:0b d-t1" "02:99:00:00:00:0c d-t2"

  # dsrlb's data port: the kernel in dsr-lb must not answer on the data segment.
  nsx dsr-lb "$HERE/data-port.sh" data0 >/dev/null
  nsx dsr-client ip addr add 10.99.0.1/24 dev eth0
  nsx dsr-client ip -6 addr add fd00:99::1/64 dev eth0 nodad
  nsx dsr-lb ip addr add 10.99.1.2/24 dev mgmt0
  targets
  echo "lab up: client 10.99.0.1 and fd00:99::1, dsrlb's port data0 in dsr-lb (real addresses 10.99.0.2, fd00:99::2), targets t1 10.99.0.11 and fd00:99::11, t2 10.99.0.12 and fd00:99::12, VIP $VIP and $VIP6"
}

# The lab with dsrlb's link to the switch made an 802.1Q trunk tagged with VLAN 10:
# d-lb leaves the bridge and a tagger (lab-vlan.py) relays between it and d-lbv,
# which takes its place; the client and targets stay untagged (access ports of VLAN
# 10). Frames dsrlb sends untagged or on another VLAN go nowhere, counted in
# $RUN/vlan-counts.json.
up_vlan() {
  up
  ip -n dsr-sw link set d-lb nomaster
  ip -n dsr-sw link add d-lbv type veth peer name d-lbt
  ip -n dsr-sw link set d-lbv master br-data up
  ip -n dsr-sw link set d-lbt up
  offloads_off dsr-sw d-lbv
  offloads_off dsr-sw d-lbt
  static_fdb "02:99:00:00:00:02 d-lbv"
  nsx dsr-sw setsid python3 "$HERE/lab-vlan.py" --trunk d-lb --access d-lbt --vid 10 \
    --counts "$RUN/vlan-counts.json" > "$RUN/vlan.log" 2>&1 < /dev/null &
  echo $! > "$RUN/vlan.pid"
  for _ in $(seq 1 50); do [ -f "$RUN/vlan-counts.json" ] && break; sleep 0.1; done
  [ -f "$RUN/vlan-counts.json" ] || { echo "lab.sh: the VLAN tagger did not start" >&2; cat "$RUN/vlan.log" >&2; exit 1; }
  echo "lab up with dsrlb's port on a trunk tagged VLAN 10 (client and targets untagged): as lab.sh up otherwise"
}

# The router's BIRD: a session to each appliance, ECMP into the kernel, BFD (unless
# ROUTER_BFD=off: a silent appliance is then noticed after the hold time).
router_bird() {
  local bfd=${ROUTER_BFD:-on}
  cat > "$RUN/bird-rtr.conf" <<CONF
log stderr all;
router id 10.99.1.254;
protocol device { scan time 10; }
protocol kernel {
  ipv4 { import none; export all; };
  merge paths on;
}
protocol bfd {
  interface "m0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}
template bgp appliance {
  local 10.99.1.254 as 65000;
  hold time 3;
  keepalive time 1;
  connect retry time 1;
  error wait time 1, 5;
  bfd $bfd;
  ipv4 { import all; export none; };
}
protocol bgp lb1 from appliance { neighbor 10.99.1.2 as 65001; }
protocol bgp lb2 from appliance { neighbor 10.99.1.3 as 65001; }
CONF
  nsx dsr-rtr bird -c "$RUN/bird-rtr.conf" -s "$RUN/bird-rtr.ctl" -P "$RUN/bird-rtr.pid"
}

# The dsrlb binary that writes the daemons' configurations.
dsrlb_binary() {
  local dsrlb=${DSRLB:-$HERE/../target/release/dsrlb}
  [ -x "$dsrlb" ] || { echo "lab.sh: no dsrlb at $dsrlb (cargo build --release, or DSRLB=path)" >&2; exit 1; }
  echo "$dsrlb"
}

# An appliance's BIRD, configured by dsrlb from its own config file.
appliance_bird() {
  local lb=$1 dsrlb
  dsrlb=$(dsrlb_binary)
  "$dsrlb" bird-config --config "$HERE/../config/examples/scale-out-$lb.toml" > "$RUN/bird-$lb.conf"
  nsx "dsr-$lb" bird -c "$RUN/bird-$lb.conf" -s "$RUN/bird-$lb.ctl" -P "$RUN/bird-$lb.pid"
}

up_scale_out() {
  namespaces "${SCALE_OUT[@]}"
  ipv6_on dsr-client dsr-rtr dsr-t1 dsr-t2
  bridges br-data br-mgmt br-client
  link dsr-client eth0  c-client br-client 02:99:02:00:00:01
  link dsr-rtr    cl0   c-rtr    br-client 02:99:02:00:00:fe
  link dsr-rtr    d0    d-rtr    br-data   02:99:00:00:00:fe
  link dsr-lb1    data0 d-lb1    br-data   02:99:00:00:00:02
  link dsr-lb2    data0 d-lb2    br-data   02:99:00:00:00:03
  link dsr-rtr    m0    m-rtr    br-mgmt   02:99:01:00:00:fe
  link dsr-lb1    mgmt0 m-lb1    br-mgmt   02:99:01:00:00:02
  link dsr-lb2    mgmt0 m-lb2    br-mgmt   02:99:01:00:00:03
  target_links
  # Every frame on the data and client segments carries a full checksum (the router
  # forwards client frames whose checksums the veth would leave unfinished).
  checksummed "dsr-client eth0 c-client" "dsr-rtr cl0 c-rtr" "dsr-rtr d0 d-rtr" "dsr-lb1 data0 d-lb1" \
              "dsr-lb2 data0 d-lb2" "dsr-t1 eth0 d-t1" "dsr-t2 eth0 d-t2"
  static_fdb "02:99:00:00:00:fe d-rtr" "02:99:00:00:00:02 d-lb1" "02:99:00:00:00:03 d-lb2" \
               "02:99:00:00:00:0b d-t1" "02:99:00:00:00:0c d-t2"
  nsx dsr-client ip addr add 10.99.2.1/24 dev eth0
  nsx dsr-client ip route add default via 10.99.2.254
  nsx dsr-rtr ip addr add 10.99.2.254/24 dev cl0
  nsx dsr-rtr ip addr add 10.99.0.254/24 dev d0
  nsx dsr-rtr ip addr add 10.99.1.254/24 dev m0
  quiet_sysctl dsr-rtr net.ipv4.ip_forward 1
  quiet_sysctl dsr-rtr net.ipv4.fib_multipath_hash_policy 1
  quiet_sysctl dsr-rtr net.ipv4.conf.all.rp_filter 0
  quiet_sysctl dsr-rtr net.ipv4.conf.default.rp_filter 0
  # IPv6 too (no BGP for it: a test routes the IPv6 VIP to an appliance itself).
  nsx dsr-client ip -6 addr add fd00:99:2::1/64 dev eth0 nodad
  nsx dsr-client ip -6 route add default via fd00:99:2::fe
  nsx dsr-rtr ip -6 addr add fd00:99:2::fe/64 dev cl0 nodad
  nsx dsr-rtr ip -6 addr add fd00:99::fe/64 dev d0 nodad
  quiet_sysctl dsr-rtr net.ipv6.conf.all.forwarding 1
  two_appliances
  targets
  for t in t1 t2; do
    nsx "dsr-$t" ip route add default via 10.99.0.254
    nsx "dsr-$t" ip -6 route add default via fd00:99::fe
  done
  # A second VIP, 10.99.0.101, that t1 alone serves (scale-out-lb*.toml's "solo").
  nsx dsr-t1 "$HERE/target-setup.sh" 10.99.0.101
  router_bird
  appliance_bird lb1
  appliance_bird lb2
  echo "lab up (scale-out): client 10.99.2.1 -> router 10.99.2.254 -> ECMP over dsr-lb1 (10.99.0.2) and dsr-lb2 (10.99.0.3) -> t1 10.99.0.11, t2 10.99.0.12; VIP $VIP"
}

# keepalived lbN start|stop: an appliance's keepalived (VRRP only), configured by
# dsrlb from its own config file; its log in $RUN/keepalived-lbN.log.
keepalived_ctl() {
  local lb=$1 action=$2 conf="$RUN/keepalived-$1.conf" pidfile="$RUN/keepalived-$1.pid"
  case "$lb" in lb1|lb2) ;; *) echo "lab.sh: no appliance $lb" >&2; exit 2 ;; esac
  case "$action" in
    stop)
      for f in "$pidfile" "$RUN/keepalived-$lb-vrrp.pid"; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
      done
      for _ in $(seq 1 50); do
        [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null || break
        sleep 0.05
      done ;;
    start)
      local dsrlb
      dsrlb=$(dsrlb_binary)
      "$dsrlb" keepalived-config --config "$HERE/../config/examples/ha-$lb.toml" > "$conf"
      rm -f "$pidfile" "$RUN/keepalived-$lb-vrrp.pid"
      nsx "dsr-$lb" setsid keepalived --vrrp -n -l -D -G -f "$conf" -p "$pidfile" \
        -r "$RUN/keepalived-$lb-vrrp.pid" >> "$RUN/keepalived-$lb.log" 2>&1 < /dev/null &
      for _ in $(seq 1 50); do [ -s "$RUN/keepalived-$lb-vrrp.pid" ] && return 0; sleep 0.05; done
      echo "lab.sh: keepalived in dsr-$lb did not start" >&2; cat "$RUN/keepalived-$lb.log" >&2; exit 1 ;;
    *) echo "lab.sh: keepalived action is start or stop" >&2; exit 2 ;;
  esac
}

up_ha() {
  namespaces "${PAIR[@]}"
  bridges br-data br-mgmt
  link dsr-client eth0  d-client br-data 02:99:00:00:00:01
  link dsr-lb1    data0 d-lb1    br-data 02:99:00:00:00:02
  link dsr-lb2    data0 d-lb2    br-data 02:99:00:00:00:03
  link dsr-lb1    mgmt0 m-lb1    br-mgmt 02:99:01:00:00:02
  link dsr-lb2    mgmt0 m-lb2    br-mgmt 02:99:01:00:00:03
  target_links
  checksummed "dsr-client eth0 d-client" "dsr-lb1 data0 d-lb1" "dsr-lb2 data0 d-lb2" \
              "dsr-t1 eth0 d-t1" "dsr-t2 eth0 d-t2"
  static_fdb "02:99:00:00:00:01 d-client" "02:99:00:00:00:02 d-lb1" "02:99:00:00:00:03 d-lb2" \
               "02:99:00:00:00:0b d-t1" "02:99:00:00:00:0c d-t2"
  nsx dsr-client ip addr add 10.99.0.1/24 dev eth0
  two_appliances
  targets
  keepalived_ctl lb1 start
  keepalived_ctl lb2 start
  echo "lab up (ha): client 10.99.0.1 -> VIP $VIP on the active of dsr-lb1 (02:99:00:00:00:02) and dsr-lb2 (02:99:00:00:00:03), real address 10.99.0.2 shared -> t1 10.99.0.11, t2 10.99.0.12; keepalived in each"
}

# service T http|udp start|stop: one target's HTTP server (:80 on every address) or
# UDP echo (VIP:5353, and the management address for probes).
service() {
  local t=$1 svc=$2 action=$3 pidfile="$RUN/$1-$2.pid"
  case "$t" in t1|t2) ;; *) echo "lab.sh: no target $t" >&2; exit 2 ;; esac
  case "$action" in
    stop)
      if [ -f "$pidfile" ]; then
        local pid
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        rm -f "$pidfile"
      fi ;;
    start)
      [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && return 0
      local args
      case "$svc" in
        http) args=(--http 0.0.0.0:80) ;;
        udp) args=(--udp "$VIP:5353" --udp "10.99.1.1${t#t}:5353") ;;
        *) echo "lab.sh: no service $svc (http or udp)" >&2; exit 2 ;;
      esac
      if has_ipv6 "dsr-$t"; then
        case "$svc" in
          http) args=(--http "[::]:80") ;;
          udp) args+=(--udp "[$VIP6]:5353") ;;
        esac
      fi
      rm -f "$pidfile"
      nsx "dsr-$t" setsid python3 "$HERE/lab-server.py" --name "$t" --pidfile "$pidfile" "${args[@]}" \
        >> "$RUN/$t-$svc.log" 2>&1 < /dev/null &
      for _ in $(seq 1 50); do [ -s "$pidfile" ] && break; sleep 0.05; done
      if [ "$svc" = http ]; then
        for _ in $(seq 1 50); do
          nsx "dsr-$t" curl -s -m 1 "http://10.99.1.1${t#t}/" >/dev/null 2>&1 && return 0
          sleep 0.1
        done
        echo "lab.sh: $t's HTTP server does not answer" >&2; cat "$RUN/$t-$svc.log" >&2; exit 1
      fi ;;
    *) echo "lab.sh: service action is start or stop" >&2; exit 2 ;;
  esac
}

status() {
  local missing=0
  for ns in "${NAMESPACES[@]}"; do
    if ip netns list | grep -qw "^$ns"; then
      printf '%-11s %s\n' "$ns" "$(nsx "$ns" ip -brief -4 addr show | grep -v '^lo ' | awk '{print $1" "$3}' | paste -sd' ' -)"
    else
      printf '%-11s missing\n' "$ns"; missing=1
    fi
  done
  [ "$missing" = 0 ] || { echo "lab: down or half-built (lab.sh up rebuilds it)"; return 1; }
  for t in t1 t2; do
    local addr=10.99.1.1${t#t} answer
    answer=$(nsx dsr-lb curl -s -m 1 "http://$addr/" 2>/dev/null || true)
    printf '%s HTTP via management %s: %s\n' "$t" "$addr" "${answer:-no answer}"
  done
  local lb
  lb=$(ip netns pids dsr-lb 2>/dev/null | xargs -r ps -o comm= -p 2>/dev/null | grep -c dsrlb || true)
  echo "dsrlb processes in dsr-lb: $lb"
}

[ "$(id -u)" = 0 ] || { echo "lab.sh: run as root" >&2; exit 1; }
case "${1:-}" in
  up)
    case "${2:-}" in
      --scale-out) up_scale_out ;;
      --ha) up_ha ;;
      --vlan) up_vlan ;;
      "") up ;;
      *) echo "usage: $0 up [--scale-out|--ha|--vlan]" >&2; exit 2 ;;
    esac ;;
  keepalived) [ $# -eq 3 ] || { echo "usage: $0 keepalived lb1|lb2 start|stop" >&2; exit 2; }; keepalived_ctl "$2" "$3" ;;
  down) down; echo "lab down" ;;
  status) status ;;
  service) [ $# -eq 4 ] || { echo "usage: $0 service t1|t2 http|udp stop|start" >&2; exit 2; }; service "$2" "$3" "$4" ;;
  *) echo "usage: $0 up [--scale-out|--ha|--vlan]|down|status|service ...|keepalived ..." >&2; exit 2 ;;
esac
