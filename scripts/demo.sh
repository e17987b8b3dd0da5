#!/usr/bin/env bash
# dsrlb doing its whole job on one machine: builds, brings up the namespace lab
# (scripts/lab.sh), runs dsrlb on the lab's af_packet veth, sends real HTTP and UDP
# requests to the VIP from the client namespace, shows both targets answering, proves
# the replies bypassed dsrlb, prints dsrlb's counters, and tears everything down
# (also on Ctrl-C or failure). Needs root (Debian 12).
#   scripts/demo.sh --scale-out   instead: two appliances behind a BGP/ECMP router,
#   one killed with SIGKILL while long downloads run (see scale_out below).
#   scripts/demo.sh --ha          instead: an active/standby pair (keepalived); the
#   active killed with SIGKILL during downloads and a 10 ms UDP stream (see pair).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

DEMO=$(mktemp -d /tmp/dsrlb-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  scripts/lab.sh down >/dev/null 2>&1 || true
  rm -rf "$DEMO"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two appliances announce the VIP by BGP (BIRD); the router spreads flows over both;
# one is killed while downloads run: its route is withdrawn, the downloads finish.
scale_out() {
  scripts/lab.sh up --scale-out
  for lb in lb1 lb2; do
    ip netns exec "dsr-$lb" target/release/dsrlb run --config "config/examples/scale-out-$lb.toml" \
      --stats-interval 0 > "$DEMO/$lb.out" 2> "$DEMO/$lb.log" &
    pids+=($!)
  done
  local lb1=${pids[0]}
  for _ in $(seq 1 100); do
    [ "$(ip -n dsr-rtr route show 10.99.0.100 | grep -c nexthop)" = 2 ] && break
    sleep 0.1
  done
  for lb in lb1 lb2; do
    echo "== dsrlb ha status (dsr-$lb)"
    target/release/dsrlb ha status --config "config/examples/scale-out-$lb.toml" | sed 's/^/  /'
  done
  echo "== the router's route to the VIP: ip -n dsr-rtr route show 10.99.0.100"
  ip -n dsr-rtr route show 10.99.0.100 | sed 's/^/  /'
  echo "== 200 HTTP requests from the client (10.99.2.1): who answered"
  printf '  %s\n' "$(ip netns exec dsr-client python3 scripts/lab-client.py http --src 10.99.2.1 --count 200)"
  for lb in lb1 lb2; do
    printf '  dsr-%s forwarded: %s frames\n' "$lb" "$(target/release/dsrlb show stats --json \
      --config "config/examples/scale-out-$lb.toml" | python3 -c 'import json,sys; print(sum(w["forwarded"] for w in json.load(sys.stdin)["workers"]))')"
  done
  echo "== both appliances choose alike: dsrlb show digest"
  for lb in lb1 lb2; do
    printf '  dsr-%s %s\n' "$lb" "$(target/release/dsrlb show digest --config "config/examples/scale-out-$lb.toml" | head -1)"
  done
  echo "== 20 downloads (a line every 100 ms for 8 s each); dsr-lb1's dsrlb killed with SIGKILL after 2 s"
  ip netns exec dsr-client python3 scripts/lab-client.py streams --src 10.99.2.1 --count 20 --secs 8 --ms 100 \
    > "$DEMO/streams.json" 2>/dev/null &
  local downloads=$!
  sleep 2
  kill -KILL "$lb1"
  local t0 t1
  t0=$(date +%s%N)
  while ip -n dsr-rtr route show 10.99.0.100 | grep -q 10.99.0.2; do sleep 0.005; done
  t1=$(date +%s%N)
  { wait "$lb1"; } 2>/dev/null || true
  echo "  the router dropped dsr-lb1's next hop $(( (t1 - t0) / 1000000 )) ms after the kill:"
  ip -n dsr-rtr route show 10.99.0.100 | sed 's/^/    /'
  wait "$downloads"
  echo "  downloads: $(cat "$DEMO/streams.json")"
}

# An active/standby pair: keepalived elects, the active answers ARP for the VIP;
# the active is killed during downloads and a 10 ms UDP stream; the standby takes
# over by gratuitous ARP; then the first comes back and, with ha.preempt = true,
# takes the VIP back.
pair() {
  DSRLB=target/release/dsrlb scripts/lab.sh up --ha
  local lb
  start_member() {
    ip netns exec "dsr-$1" target/release/dsrlb run --config "config/examples/ha-$1.toml" \
      --stats-interval 0 > "$DEMO/$1.out" 2>> "$DEMO/$1.log" &
    pids+=($!)
  }
  wait_log() {  # wait_log FILE TEXT COUNT
    for _ in $(seq 1 300); do
      [ "$(grep -c "$2" "$1" || true)" -ge "$3" ] && return 0
      sleep 0.1
    done
    echo "demo: no \"$2\" in $1" >&2; cat "$1" >&2; exit 1
  }
  start_member lb1
  local lb1=${pids[-1]}
  start_member lb2
  wait_log "$DEMO/lb1.log" 'ha: active' 1
  wait_log "$DEMO/lb2.log" 'ha: ready to serve' 1
  for lb in lb1 lb2; do
    echo "== dsrlb show ha (dsr-$lb)"
    target/release/dsrlb show ha --config "config/examples/ha-$lb.toml" | sed 's/^/  /'
  done
  echo "== both choose alike: dsrlb show digest"
  for lb in lb1 lb2; do
    printf '  dsr-%s %s\n' "$lb" "$(target/release/dsrlb show digest --config "config/examples/ha-$lb.toml" | head -1)"
  done
  echo "== 200 HTTP requests from the client: who answered"
  printf '  %s\n' "$(ip netns exec dsr-client python3 scripts/lab-client.py http --count 200)"
  echo "== the client's neighbour entry for the VIP (dsr-lb1 is 02:99:00:00:00:02)"
  printf '  %s\n' "$(ip netns exec dsr-client ip neigh show 10.99.0.100)"
  echo "== 20 downloads (a line every 100 ms for 8 s) and a UDP request every 10 ms; dsr-lb1's dsrlb killed with SIGKILL after 2 s"
  ip netns exec dsr-client python3 scripts/lab-client.py streams --count 20 --secs 8 --ms 100 \
    > "$DEMO/streams.json" 2>/dev/null &
  local downloads=$!
  ip netns exec dsr-client python3 scripts/lab-client.py pings --ms 10 --secs 5 \
    > "$DEMO/pings.json" 2>/dev/null &
  local pings=$!
  sleep 2
  kill -KILL "$lb1"
  { wait "$lb1"; } 2>/dev/null || true
  wait_log "$DEMO/lb2.log" 'ha: active' 1
  echo "  dsr-lb2's log:"
  grep 'ha: active' "$DEMO/lb2.log" | sed 's/^/    /'
  printf '  the client'"'"'s neighbour entry now: %s\n' "$(ip netns exec dsr-client ip neigh show 10.99.0.100)"
  wait "$pings"
  echo "  UDP every 10 ms: $(cat "$DEMO/pings.json")  (longest_gap_ms: the client-visible gap)"
  wait "$downloads"
  echo "  downloads: $(cat "$DEMO/streams.json")"
  echo "== dsr-lb1 back: ha.preempt = true, so it takes the VIP back once its checks pass"
  start_member lb1
  wait_log "$DEMO/lb1.log" 'ha: active' 2
  wait_log "$DEMO/lb2.log" 'ha: standby' 1
  for lb in lb1 lb2; do
    printf '  dsr-%s: %s\n' "$lb" "$(target/release/dsrlb show ha --config "config/examples/ha-$lb.toml" | grep '^role')"
  done
  printf '  the client'"'"'s neighbour entry: %s\n' "$(ip netns exec dsr-client ip neigh show 10.99.0.100)"
}

scripts/setup.sh
cargo build --release -p control
case "${1:-}" in
  --scale-out) scale_out; exit 0 ;;
  --ha) pair; exit 0 ;;
  "") ;;
  *) echo "usage: $0 [--scale-out|--ha]" >&2; exit 2 ;;
esac
scripts/lab.sh up

ip netns exec dsr-lb tcpdump -i data0 -U -n -w "$DEMO/lb.pcap" 2>/dev/null & pids+=($!)
ip netns exec dsr-client tcpdump -i eth0 -U -n -w "$DEMO/client.pcap" 2>/dev/null & pids+=($!)
sleep 1

echo "== ip netns exec dsr-lb target/release/dsrlb run --config config/examples/lab.toml"
ip netns exec dsr-lb target/release/dsrlb run --config config/examples/lab.toml --stats-interval 0 \
  > "$DEMO/counters.txt" 2> "$DEMO/dsrlb.log" &
dsrlb=$!
for _ in $(seq 1 50); do
  [ "$(grep -c 'learned by ARP' "$DEMO/dsrlb.log" || true)" -ge 2 ] && break
  kill -0 "$dsrlb" 2>/dev/null || { cat "$DEMO/dsrlb.log"; exit 1; }
  sleep 0.2
done
grep -E 'port data|learned by ARP' "$DEMO/dsrlb.log" | sed 's/^\[[^]]*\] /  /'

echo "== curl http://10.99.0.100/ from dsr-client, six times"
for _ in 1 2 3 4 5 6; do
  printf '  %s\n' "$(ip netns exec dsr-client curl -s -m 3 http://10.99.0.100/)"
done
echo "== 200 HTTP requests, each from its own source port: who answered"
printf '  %s\n' "$(ip netns exec dsr-client python3 scripts/lab-client.py http --count 200)"
echo "== 200 UDP requests to 10.99.0.100:5353: who answered"
printf '  %s\n' "$(ip netns exec dsr-client python3 scripts/lab-client.py udp --count 200)"
echo "== the client's ARP entry for the VIP (dsrlb's port is 02:99:00:00:00:02)"
printf '  %s\n' "$(ip netns exec dsr-client ip neigh show 10.99.0.100)"
echo "== 200 HTTP requests to the IPv6 VIP [fd00:99::100]:80: who answered"
printf '  %s\n' "$(ip netns exec dsr-client python3 scripts/lab-client.py http --vip fd00:99::100 --count 200)"
echo "== the client's neighbour entry for fd00:99::100, learned from dsrlb by NDP"
printf '  %s\n' "$(ip netns exec dsr-client ip -6 neigh show fd00:99::100)"
sleep 1  # let the workers' flow-table walk catch up for FLOWS
for what in servers targets stats; do
  echo "== dsrlb show $what --config config/examples/lab.toml"
  target/release/dsrlb show "$what" --config config/examples/lab.toml | sed 's/^/  /'
done
echo "== metrics: curl http://10.99.1.2:9100/metrics (service counters)"
ip netns exec dsr-lb curl -s -m 3 http://10.99.1.2:9100/metrics | grep '^dsrlb_service_packets_total' | sed 's/^/  /'

kill -INT "$dsrlb"; wait "$dsrlb"
for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
pids=()

echo "== replies bypassed dsrlb"
echo "  frames from 10.99.0.100 to 10.99.0.1 that reached dsrlb's port: $(tcpdump -nn -r "$DEMO/lb.pcap" 'src host 10.99.0.100 and dst host 10.99.0.1' 2>/dev/null | wc -l)"
echo "  TCP from fd00:99::100 to fd00:99::1 that reached dsrlb's port: $(tcpdump -nn -r "$DEMO/lb.pcap" 'ip6 src host fd00:99::100 and ip6 dst host fd00:99::1 and tcp' 2>/dev/null | wc -l)"
echo "  replies the client got from 10.99.0.100, by sender MAC (t1 02:99:00:00:00:0b, t2 02:99:00:00:00:0c):"
tcpdump -nn -e -r "$DEMO/client.pcap" 'src host 10.99.0.100 and (tcp or udp)' 2>/dev/null | awk '{print $2}' | sort | uniq -c | sed 's/^/  /'
echo "== dsrlb's counters"
cat "$DEMO/counters.txt"
