#!/usr/bin/env bash
# bench/lab-peers.sh OUT DUR REPS   (called by bench/run.sh)
# In the namespace lab, one generator and three forwarders, one after another:
#   generator  dsr-client: dpdk-testpmd txonly on net_af_xdp (eth0; faster here than
#              af_packet: about 0.49 against 0.28 Mpps), 64-byte UDP to
#              the VIP, source addresses varied (--txonly-multi-flow), on CPU 0
#   forwarders dsr-lb data0, on CPU 1: dpdk-testpmd mac-forward (to t1) and dsrlb, each
#              on net_af_packet and on net_af_xdp (copy mode on veth; the kernel
#              work per frame differs, so each is compared with testpmd on the same
#              driver), and Pen in DSR mode (-O "dsr_if data0", UDP)
# The benchmark's frames go from switch port to switch port by tc rules, past br-data
# (see switch_port below). Forwarded = the benchmark's frames arriving on t1's and
# t2's data interfaces (the sinks' counters below: the interfaces' own counters also
# take the lab's ARP and IPv6 chatter, which testpmd forwards too, so once they
# counted more frames forwarded than sent) while the generator runs; drops = generator's sent -
# forwarded, and of those, lost at the forwarder = frames that reached dsr-lb's data0
# (its receive counter, before any socket) but were not forwarded: the forwarder did
# not take them off its ring or socket in time. Appends to OUT/lab.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/window.sh
export PATH="$HOME/.cargo/bin:$PATH"
[ $# = 3 ] || { echo "usage: $0 OUT DUR REPS" >&2; exit 2; }
OUT=$1 DUR=$2 REPS=$3
for tool in dpdk-testpmd pen nft; do
  command -v "$tool" >/dev/null || { echo "$0: no $tool: run scripts/setup.sh" >&2; exit 1; }
done
# Run alone it needs the release binaries too (bench/run.sh has built them already).
cargo build --release -p control -p bench 2>&1 | tail -1
WORK=$(mktemp -d /tmp/dsrlb-lab-bench.XXXXXX)
fw=""
echoes=()
# The echoes must be gone before the lab: a process keeps its namespace alive.
stop_echoes() {
  for e in "${echoes[@]}"; do kill "$e" 2>/dev/null || true; wait "$e" 2>/dev/null || true; done
  echoes=()
}
cleanup() {
  [ -n "$fw" ] && { kill -INT "$fw" 2>/dev/null; sleep 1; kill -9 "$fw" 2>/dev/null; wait "$fw" 2>/dev/null; } || true
  pkill -9 -x pen 2>/dev/null || true
  stop_echoes
  rm -rf "$WORK" /var/run/dpdk/dsrlb-bench-*
}
trap cleanup EXIT

scripts/lab.sh up > /dev/null
# In a veth lab the kernel work of every namespace runs on the CPUs of the senders:
# each forwarded frame's IP receive at a target (route lookup, UDP lookup, an ICMP
# port-unreachable) ran on the forwarder's CPU, and the kernel IP layer in dsr-lb
# (which sees every frame the forwarders see) on the generator's. The benchmark's
# UDP to port 9 is dropped at netdev ingress instead: after the interface counts it,
# and after af_packet's taps (the forwarders' sockets) have had it, so the rates
# measure the forwarders rather than the lab's IP stacks.
sink() {
  ip netns exec "$1" nft -f - <<NFT
table netdev bench {
  chain sink {
    type filter hook ingress device "$2" priority 0;
    udp dport 9 counter drop
  }
}
NFT
}
sink dsr-t1 eth0; sink dsr-t2 eth0; sink dsr-lb data0
# sunk NAMESPACE: the benchmark's frames the namespace's sink has counted.
sunk() {
  ip netns exec "$1" nft list chain netdev bench sink | awk '/counter packets/ {
    for (i = 1; i < NF; i++) if ($i == "packets") n += $(i + 1) } END {print n + 0}'
}
# The same holds for the switch: the bridge forwards each frame on the CPU of whoever
# sent it, so through br-data every forwarded frame's bridging ran on the forwarder's
# CPU and every generated frame's on the generator's, work a hardware switch does for
# free. The benchmark's unicast IPv4 goes from switch port to switch port by tc
# (u32 on the destination MAC, which sits 14 bytes before the IP header at ingress),
# like a static FDB entry; ARP and everything else still crosses the bridge.
# switch_port PORT MAC TO: frames entering the switch at PORT for MAC leave at TO.
switch_port() {
  local port=$1 hex=${2//:/} to=$3
  ip netns exec dsr-sw tc qdisc replace dev "$port" clsact
  ip netns exec dsr-sw tc filter add dev "$port" ingress protocol ip u32 \
    match u16 "0x${hex:0:4}" 0xffff at -14 match u32 "0x${hex:4:8}" 0xffffffff at -12 \
    action mirred egress redirect dev "$to"
}
switch_port d-client 02:99:00:00:00:02 d-lb   # client -> balancer
switch_port d-lb 02:99:00:00:00:0b d-t1       # balancer -> t1
switch_port d-lb 02:99:00:00:00:0c d-t2       # balancer -> t2
# Frames the u32 rules took past the bridge on PORT (a rate with no such frames would
# be a rate through the bridge, not the one this harness describes).
switched() {
  ip netns exec dsr-sw tc -s filter show dev "$1" ingress | awk '/Sent [0-9]+ bytes/ {n += $4} END {print n + 0}'
}
echo "impl,rep,sent,forwarded,generator_pps,forwarded_pps,drop_pct,arrived,lost_at_forwarder_pct" > "$OUT/lab.csv"
# rx NAMESPACE [IFACE]: frames the interface has received.
rx() { ip netns exec "$1" cat "/sys/class/net/${2:-eth0}/statistics/rx_packets"; }

cat > "$WORK/dsrlb.toml" <<TOML
[appliance]
address = "10.99.0.2"
[dataplane]
worker_lcores = [1]
hugepages = true
mbufs = 16383
file_prefix = "dsrlb-bench-lab"
idle_sleep_max_us = 0   # poll like testpmd does
[[ports]]
name = "data"
device = "DEVICE"
[[services]]
vip = "10.99.0.100"
port = 0
protocol = "udp"
targets = [{ address = "10.99.0.11", mac = "02:99:00:00:00:0b" }, { address = "10.99.0.12", mac = "02:99:00:00:00:0c" }]
TOML

AF_PACKET="net_af_packet0,iface=data0"
AF_XDP="net_af_xdp0,iface=data0,start_queue=0,queue_count=1"

# start_forwarder testpmd|dsrlb|dsrlb-backoff|pen [DEVICE]: returns once it forwards
# (testpmd's first statistics, dsrlb's worker launched; Pen has no start-up to wait
# for) and one second more for the port to settle, however long its start took.
start_forwarder() {
  local device=${2:-$AF_PACKET}
  case "$1" in
    testpmd)
      start_windowed "$WORK/fw.log" "Tx-pps" ip netns exec dsr-lb stdbuf -oL dpdk-testpmd -l 0,1 \
        --in-memory --file-prefix=dsrlb-bench-fw --no-pci --vdev "$device" -- --forward-mode=mac \
        --port-topology=loop --eth-peer=0,02:99:00:00:00:0b --stats-period 5 ;;
    dsrlb|dsrlb-backoff)
      local sleep_us=0
      [ "$1" = dsrlb-backoff ] && sleep_us=100
      sed -e "s#DEVICE#$device#" -e "s/^idle_sleep_max_us = 0.*/idle_sleep_max_us = $sleep_us/" \
        "$WORK/dsrlb.toml" > "$WORK/dsrlb-run.toml"
      start_windowed "$WORK/fw.log" "worker on lcore" ip netns exec dsr-lb target/release/dsrlb run \
        --config "$WORK/dsrlb-run.toml" --stats-interval 0 ;;
    pen)
      ip netns exec dsr-lb taskset -c 1 pen -f -U -O "dsr_if data0" -r 10.99.0.100:9 10.99.0.11 10.99.0.12 \
        > "$WORK/fw.log" 2>&1 &
      WINDOWED=$! ;;
  esac
  fw=$WINDOWED
  sleep 1
}

# SIGINT stops testpmd and dsrlb; Pen ignores it, so escalate after 5 s.
stop_forwarder() {
  kill -INT "$fw" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$fw" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$fw" 2>/dev/null && { pkill -TERM -x pen 2>/dev/null; kill -9 "$fw" 2>/dev/null; } || true
  wait "$fw" 2>/dev/null || true
  pkill -9 -x pen 2>/dev/null || true
  fw=""
  sleep 1
}

echo "== 2. lab peers: testpmd mac-forward and dsrlb on af_packet and af_xdp, Pen DSR; ${DUR}s x $REPS"
for rep in $(seq 1 "$REPS"); do
  # testpmd first in odd reps, dsrlb first in even ones: each driver's pair in turn,
  # so that a drift of the generator's rate within a round favours neither.
  if [ $((rep % 2)) = 1 ]; then
    order="testpmd/af_packet dsrlb/af_packet testpmd/af_xdp dsrlb/af_xdp pen"
  else
    order="dsrlb/af_packet testpmd/af_packet dsrlb/af_xdp testpmd/af_xdp pen"
  fi
  for impl in $order; do
    case "$impl" in
      */af_xdp) start_forwarder "${impl%/*}" "$AF_XDP" ;;
      *) start_forwarder "${impl%/*}" "$AF_PACKET" ;;
    esac
    before=$(( $(sunk dsr-t1) + $(sunk dsr-t2) ))
    arrived_before=$(rx dsr-lb data0)
    # The generator sends for DUR s from its first statistics (it is sending by then),
    # however long its start took.
    WINDOW_SECONDS=nan
    if start_windowed "$WORK/gen.log" "Tx-pps" ip netns exec dsr-client stdbuf -oL dpdk-testpmd \
      --lcores '0@0,1@0' --in-memory --file-prefix=dsrlb-bench-gen --no-pci \
      --vdev net_af_xdp0,iface=eth0,start_queue=0,queue_count=1 -- --forward-mode=txonly \
      --txonly-multi-flow --tx-ip=10.99.0.1,10.99.0.100 --tx-udp=9,9 --eth-peer=0,02:99:00:00:00:02 \
      --nb-cores=1 --stats-period 1; then
      close_window "$DUR"
    fi
    sleep 0.5
    after=$(( $(sunk dsr-t1) + $(sunk dsr-t2) ))
    arrived=$(( $(rx dsr-lb data0) - arrived_before ))
    stop_forwarder
    sent=$(grep -oE "TX-packets: [0-9]+" "$WORK/gen.log" | tail -1 | grep -oE "[0-9]+" || echo 0)
    # The generator's rate: what it sent over the window it sent in, from its first
    # statistics to its SIGINT; forwarded frames arrive at that rate times the share
    # that got through.
    python3 - "$impl" "$rep" "$sent" "$((after - before))" "$WINDOW_SECONDS" "$arrived" >> "$OUT/lab.csv" <<'PY'
import sys
impl, rep, sent, fwd = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
window, arrived = float(sys.argv[5]), int(sys.argv[6])
gen = sent / window if sent and window > 0 else float("nan")
share = min(fwd, sent) / sent if sent else float("nan")
at_forwarder = max(min(arrived, sent) - fwd, 0) / sent if sent else float("nan")
print(f"{impl},{rep},{sent},{fwd},{gen:.0f},{gen * share:.0f},{100 * (1 - share):.2f},{arrived},{100 * at_forwarder:.2f}")
PY
    tail -1 "$OUT/lab.csv" | awk -F, '{printf "  rep %s  %-17s sent %9d  forwarded %9d  generator %8.0f pps  forwarded %8.0f pps  drops %5.1f%% (%.1f%% at the forwarder)\n", $2, $1, $3, $4, $5, $6, $7, $9}'
  done
done
for port in d-client d-lb; do
  frames=$(switched "$port")
  echo "  switched past the bridge at $port: $frames frames"
  [ "$frames" -gt 0 ] || { echo "lab-peers.sh: no frame took the tc path at $port" >&2; exit 1; }
done
# 4. Latency: UDP round trips with dsrlb-rtt (compiled: Python added tens of
# microseconds a round trip) against an echo on port 7 in each target, bound to the
# VIP and to the target's own address. Under each forwarder, 3000 round trips 0.5 ms
# apart to t1's own address (direct: client -> switch -> t1 -> client, no forwarder
# hop), then 3000 to the VIP (client -> forwarder -> target -> client direct): the
# difference is what the forwarder's hop adds, on a CPU that forwarder keeps as busy
# as it does in service.
# testpmd answers no ARP: the client is given the VIP's MAC for every forwarder alike.
ip -n dsr-client neigh replace 10.99.0.100 lladdr 02:99:00:00:00:02 dev eth0 nud permanent
for t in 1 2; do
  ip netns exec "dsr-t$t" target/release/dsrlb-rtt echo --bind 10.99.0.100:7 --bind "10.99.0.1$t:7" \
    --secs 300 > "$WORK/echo-t$t.log" 2>&1 &
  echoes+=("$!")
done
sleep 0.5
rtt() { ip netns exec dsr-client target/release/dsrlb-rtt ping --to "$1:7" --src 10.99.0.1 --count 3000 --gap-us 500; }
echo "impl,p50_us,p99_us,lost,direct_p50_us,direct_p99_us,direct_lost" > "$OUT/latency.csv"
echo "== 4. latency: UDP round trips through the forwarder and direct to t1 (3000 x each, 0.5 ms apart)"
for impl in testpmd dsrlb dsrlb-backoff; do
  start_forwarder "$impl"
  direct=$(rtt 10.99.0.11)
  via=$(rtt 10.99.0.100)
  stop_forwarder
  python3 -c "import json,sys; v=json.loads(sys.argv[2]); d=json.loads(sys.argv[3]); print(f\"{sys.argv[1]},{v['p50_us']},{v['p99_us']},{v['lost']},{d['p50_us']},{d['p99_us']},{d['lost']}\")" "$impl" "$via" "$direct" >> "$OUT/latency.csv"
  printf '  %-14s via the forwarder %s\n  %-14s direct to t1      %s\n' "$impl" "$via" "" "$direct"
done
stop_echoes
scripts/lab.sh down > /dev/null
