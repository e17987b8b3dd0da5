#!/usr/bin/env bash
# dsrlb on DPDK vdevs, no NIC and no namespaces needed: replays a pcap of client traffic (1000 TCP flows
# to a VIP, plus an ARP request, a ping, and junk) through net_pcap, records what dsrlb
# sends, stops dsrlb with Ctrl-C and shows its counters and the rewritten frames.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

DEMO=/tmp/dsrlb-demo   # the paths config/examples/demo.toml names
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -INT "$pid"; wait "$pid" || true; fi
}
trap cleanup EXIT INT TERM

scripts/setup.sh
cargo build --release -p control -p bench
rm -rf "$DEMO" && mkdir -p "$DEMO"

echo "== traffic: 1000 TCP flows x 20 packets to 10.99.0.100:80, and 5 other frames"
target/release/dsrlb-traffic --out "$DEMO/in.pcap" --flows 1000 --packets 20000 --mix

echo "== dsrlb run --config config/examples/demo.toml"
target/release/dsrlb run --config config/examples/demo.toml --stats-interval 1 > "$DEMO/counters.txt" &
pid=$!
for _ in $(seq 1 50); do
  sleep 0.2
  if [ -s "$DEMO/out.pcap" ] && [ "$(stat -c %s "$DEMO/out.pcap")" -ge 1500000 ]; then break; fi
done
sleep 1
kill -INT "$pid"
wait "$pid"
pid=""
cat "$DEMO/counters.txt"

echo "== first frames dsrlb sent (tcpdump -e): destination MAC rewritten to a target"
tcpdump -nn -e -r "$DEMO/out.pcap" 2>/dev/null | head -6
echo "== frames per destination MAC"
tcpdump -nn -e -r "$DEMO/out.pcap" 2>/dev/null | awk '{print $4}' | sort | uniq -c
echo "(02:00:00:00:00:0b is target 10.99.0.11, 02:00:00:00:00:0c is 10.99.0.12, 02:cc:00:00:00:01 the client: ARP and echo replies)"
