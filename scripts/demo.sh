#!/usr/bin/env bash
# dsrlb doing its whole job on one machine: builds, brings up the namespace lab
# (scripts/lab.sh), runs dsrlb on the lab's af_packet veth, sends real HTTP and UDP
# requests to the VIP from the client namespace, shows both targets answering, proves
# the replies bypassed dsrlb, prints dsrlb's counters, and tears everything down
# (also on Ctrl-C or failure). Needs root (Debian 12).
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

scripts/setup.sh
cargo build --release -p control
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
echo "  replies the client got from 10.99.0.100, by sender MAC (t1 02:99:00:00:00:0b, t2 02:99:00:00:00:0c):"
tcpdump -nn -e -r "$DEMO/client.pcap" 'src host 10.99.0.100 and (tcp or udp)' 2>/dev/null | awk '{print $2}' | sort | uniq -c | sed 's/^/  /'
echo "== dsrlb's counters"
cat "$DEMO/counters.txt"
