#!/usr/bin/env bash
# dsrlb's benchmarks, side by side in one run. Writes raw results, a summary and
# plots under bench/results/<stamp>/ and prints the summary.
#
#   bench/run.sh            full run (about 15 minutes)
#   bench/run.sh --quick    smoke run (1 rep of 3 s, 1 and 1k flows, no lab peers)
#   bench/run.sh --no-lab   skip the lab peer comparison (Pen, testpmd on the lab veth)
#   bench/run.sh --out DIR  write the results to DIR instead (the tests' smoke run)
#   bench/run.sh --reps N   N alternated runs of each forwarder instead of 3 (1 with
#                           --quick): more for steadier medians on a noisy host
#   bench/run.sh --floors   also run dsrlb-floor's four modes in each rep: the least
#                           a balancer can do a frame, stateless, with a
#                           connection table, and with packet path v2's checks
#                           (adds about 11 minutes to a full run)
#   bench/run.sh --ipv6     also replay the same flows as TCP over IPv6 through dsrlb
#                           in each rep (dsrlb-ipv6: 74-byte frames to an IPv6 VIP)
#
# 1. packet rate per worker core: dsrlb against dpdk-testpmd mac-forward (its ceiling)
#    on the same port: net_pcap replaying a file of 64-byte frames from memory
#    (infinite_rx=1) into the PMD's drop queue, forwarder on CPU 1, runs alternated.
# 2. in the namespace lab: dsrlb and testpmd mac-forward (each on net_af_packet and on
#    net_af_xdp) and Pen in DSR mode on the dsr-lb data veth, fed by the same
#    generator, counted at the targets.
# 3. control-plane figures (Maglev build, flow-table memory, decide() ns/packet) and
#    the health prober's schedule with 1000 targets.
# Needs root (hugepages, namespaces). Every load is bounded in time.
set -euo pipefail
. "$(dirname "$0")/window.sh"

QUICK=0 LAB=1 OUT="" REPS_ASKED="" FLOORS=0 IPV6=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; LAB=0 ;;
    --no-lab) LAB=0 ;;
    --floors) FLOORS=1 ;;
    --ipv6) IPV6=1 ;;
    --out) [ $# -ge 2 ] || { echo "$0: --out needs a directory" >&2; exit 2; }; OUT=$(realpath -m -- "$2"); shift ;;
    --reps)
      [ $# -ge 2 ] && [[ "$2" =~ ^[1-9][0-9]?$ ]] || { echo "$0: --reps needs a number of runs from 1 to 99" >&2; exit 2; }
      REPS_ASKED=$2; shift ;;
    *) echo "usage: $0 [--quick] [--no-lab] [--out DIR] [--reps N] [--floors] [--ipv6]" >&2; exit 2 ;;
  esac
  shift
done
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if [ "$QUICK" = 1 ]; then DUR=3 REPS=1 FLOWS="1 1000"; else DUR=10 REPS=3 FLOWS="1 1000 100000 1000000"; fi
# BENCH_FLOWS="1000000" measures those flow counts only (a check between full runs).
FLOWS=${BENCH_FLOWS:-$FLOWS}
# The largest flow count (the last listed), measured during a change too; frames a flow.
LARGEST_FLOWS=${FLOWS##* }
PACKETS_A_FLOW=8
REPS=${REPS_ASKED:-$REPS}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-bench/results/$STAMP}
WORK=$(mktemp -d /tmp/dsrlb-bench.XXXXXX)
mkdir -p "$OUT"
cleanup() {
  pkill -INT -f "dsrlb-bench-" 2>/dev/null || true
  pkill -INT -x dsrlb-floor 2>/dev/null || true
  [ "$LAB" = 1 ] && scripts/lab.sh down >/dev/null 2>&1 || true
  # testpmd leaves its EAL runtime directories behind.
  rm -rf "$WORK" /var/run/dpdk/dsrlb-bench-*
  [ -n "${HUGEPAGES_BEFORE:-}" ] && echo "$HUGEPAGES_BEFORE" > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages || true
}
trap cleanup EXIT

scripts/setup.sh
# The replay holds every frame in an mbuf of about 704 bytes (512 of data, the mbuf
# and the pool's header): 8M frames at 1M flows take 5.7 GB. Reserved for the run,
# given back at its end.
HUGEPAGES_BEFORE=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages)
HUGEPAGES_NEEDED=$(( (LARGEST_FLOWS * PACKETS_A_FLOW + 65536) * 704 / 2097152 + 256 ))
[ "$HUGEPAGES_NEEDED" -gt "$HUGEPAGES_BEFORE" ] && scripts/hugepages.sh "$HUGEPAGES_NEEDED"
cargo build --release -p control -p bench 2>&1 | tail -1
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') x $(nproc)"
  echo "dpdk: $(dpkg-query -W -f='${Version}' libdpdk-dev 2>/dev/null)"
  echo "quick: $QUICK"
  echo "floors: $FLOORS"
  echo "ipv6: $IPV6"
} > "$OUT/machine.txt"

PORT_MAC=02:00:00:00:00:02
echo "impl,flows,rep,mpps" > "$OUT/pps.csv"
echo "impl,flows,rep,pmd_share_pct" > "$OUT/share.csv"

# While a forwarder runs, samples CPU 1 (perf cpu-clock) from second SAMPLE_AT for
# SAMPLE_FOR seconds. The share of samples in the pcap PMD (its replay and its drop
# queue: the same work a frame for testpmd and dsrlb) gives the forwarders' time a
# frame relative to each other: dsrlb / testpmd ~ dsrlb's share / testpmd's share.
# The host taking CPU away shortens the run but moves both parts of it alike, so
# this ratio holds still where the rates themselves jump between reps.
# The sampler starts when the forwarder's measuring window opens (bench/window.sh).
SAMPLE_AT=$(( DUR > 5 ? 3 : 1 )); SAMPLE_FOR=$(( DUR - SAMPLE_AT - 1 ))
start_sampling() { # perf.data
  ( sleep "$SAMPLE_AT"; perf record -q -e cpu-clock -F 4999 -C 1 -o "$1" -- sleep "$SAMPLE_FOR" ) >/dev/null 2>&1 &
  SAMPLER=$!
}
# measure PERF LOG READY SECONDS CMD...: runs CMD, samples CPU 1 once CMD is forwarding,
# and stops CMD SECONDS after that (or when it ends by itself).
measure() {
  local perf=$1 log=$2 ready=$3 secs=$4
  shift 4
  start_windowed "$log" "$ready" "$@" || return 0
  start_sampling "$perf"
  close_window "$secs"
  wait "$SAMPLER" || true
}
pmd_share() { # perf.data (its sampler waited for) -> percent of samples in the pcap PMD, or nan
  local share
  share=$(perf report -i "$1" --stdio --sort dso 2>/dev/null | awk '/librte_net_pcap/ { sub("%", "", $1); print $1; exit }')
  rm -f "$1"
  echo "${share:-nan}"
}

# Rates from `dsrlb run --stats-interval 1` log lines: forwarded packets between
# consecutive lines over their timestamps; the first two intervals are warm-up.
dsrlb_rate() {
  python3 - "$1" <<'PY'
import re, sys, datetime, statistics
pts = []
for line in open(sys.argv[1]):
    m = re.match(r"\[(\S+) .*\] rx \d+ forwarded (\d+)", line)
    if m:
        t = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
        pts.append((t, int(m.group(2))))
rates = [(b[1] - a[1]) / (b[0] - a[0]) / 1e6 for a, b in zip(pts, pts[1:]) if b[0] > a[0]][2:]
print(f"{statistics.median(rates):.3f}" if rates else "nan")
PY
}

testpmd_rate() {
  python3 - "$1" <<'PY'
import re, sys, statistics
rates = [int(m.group(1)) / 1e6 for m in re.finditer(r"Tx-pps:\s+(\d+)", open(sys.argv[1]).read())][2:]
print(f"{statistics.median(rates):.3f}" if rates else "nan")
PY
}

# Each forwarder runs DUR s after two warm-up seconds and one to spare, counted from
# when it forwards (its first statistics, its worker launched).
run_testpmd() { # pcap mbufs log perf
  measure "$4" "$3" "Tx-pps" $((DUR + 3)) taskset -c 0,1 stdbuf -oL dpdk-testpmd -l 0,1 --in-memory \
    --file-prefix=dsrlb-bench-tp --no-pci --vdev "net_pcap0,rx_pcap=$1,infinite_rx=1" -- \
    --forward-mode=mac --port-topology=loop --eth-peer=0,02:00:00:00:00:0b --stats-period 1 \
    --no-flush-rx --nb-cores=1 --mbuf-size=512 --total-num-mbufs="$2"
}

# dsrlb_config pcap mbufs flows targets: the config run_dsrlb runs, with that many
# targets, on the IPv4 VIP and on the IPv6 one (each replay reaches one of them).
dsrlb_config() {
  cat > "$WORK/dsrlb.toml" <<TOML
[appliance]
address = "10.99.0.2"
address6 = "fd00:99::2"
[dataplane]
worker_lcores = [1]
hugepages = true
mbufs = $2
mbuf_data_room = 512
file_prefix = "dsrlb-bench-lb"
idle_sleep_max_us = 0
[[ports]]
name = "bench"
device = "net_pcap0,rx_pcap=$1,infinite_rx=1"
mtu = 366   # 64-byte frames in 512-byte mbufs: 512 - 128 headroom - 18
mac = "$PORT_MAC"
[flows]
capacity = $(( $3 * 2 > 4096 ? $3 * 2 : 4096 ))
ipv6_capacity = $(( $3 * 2 > 4096 ? $3 * 2 : 4096 ))
[[services]]
vip = "10.99.0.100"
port = 80
protocol = "tcp"
targets = [
$(for i in $(seq 1 "$4"); do printf '  { address = "10.99.1.%d", mac = "02:00:00:00:01:%02x" },\n' "$i" "$i"; done)
]
[[services]]
vip = "fd00:99::100"
port = 80
protocol = "tcp"
targets = [
$(for i in $(seq 1 "$4"); do printf '  { address = "fd00:99:1::%x", mac = "02:00:00:00:01:%02x" },\n' "$i" "$i"; done)
]
TOML
}

run_dsrlb() { # pcap mbufs flows log perf
  dsrlb_config "$1" "$2" "$3" 16
  measure "$5" "$4" "worker on lcore" $((DUR + 3)) \
    taskset -c 0,1 target/release/dsrlb run --config "$WORK/dsrlb.toml" --stats-interval 1
}

# dsrlb during a change: started with 16 targets, then a 17th added by a reload
# (SIGHUP) a second after it forwards. That moves about 1/17 of the Maglev slots to
# the new target and marks them with their previous one (the issue asks for 1/16);
# frames there are looked up in the flow table. The window opens at the reload and
# lasts far less than the marks (they stand flows.tcp_established_timeout_secs, 300 s).
run_dsrlb_changed() { # pcap mbufs flows log perf
  rm -f "$4"
  dsrlb_config "$1" "$2" "$3" 16
  (
    until grep -q "worker on lcore" "$4" 2>/dev/null; do sleep 0.05; done
    sleep 1
    dsrlb_config "$1" "$2" "$3" 17
    pkill -HUP -f -- "--config $WORK/dsrlb.toml" || true
  ) &
  local changer=$!
  measure "$5" "$4" "reloaded" $((DUR + 3)) \
    taskset -c 0,1 target/release/dsrlb run --config "$WORK/dsrlb.toml" --stats-interval 1
  kill "$changer" 2>/dev/null || true
  wait "$changer" 2>/dev/null || true
}

# run_floor MODE pcap mbufs flows perf -> its median rate (dsrlb-floor prints it last)
run_floor() {
  # One that fails or hangs gives nan, as testpmd and dsrlb do, not the end of the run.
  measure "$5" "$WORK/floor.log" "^forwarding" $((DUR + 5)) taskset -c 0,1 target/release/dsrlb-floor \
    --mode "$1" --pcap "$2" --mbufs "$3" --flows "$4" --seconds "$DUR"
  awk '/^median/ { m = $2 } END { print (m == "" ? "nan" : m) }' "$WORK/floor.log"
}

# record IMPL FLOWS REP MPPS SHARE: one run's rate and PMD share, a row of each CSV.
record() {
  echo "$1,$2,$3,$4" >> "$OUT/pps.csv"
  echo "$1,$2,$3,$5" >> "$OUT/share.csv"
}

# CPU time the hypervisor gave to other guests (/proc/stat's steal), as a share of
# all CPU time: on a shared VM it says how far to trust the rates below.
cpu_times() { awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t}' /proc/stat; }
read -r steal0 total0 < <(cpu_times)
echo "== 1. packet rate per worker core: dsrlb vs testpmd mac-forward (net_pcap infinite_rx -> drop), ${DUR}s x $REPS"
for flows in $FLOWS; do
  # TCP as the packet path sees it: a SYN for each flow, then seven data frames.
  packets=$(( flows * PACKETS_A_FLOW > 4096 ? flows * PACKETS_A_FLOW : 4096 ))
  pcap="$WORK/f$flows.pcap"
  target/release/dsrlb-traffic --out "$pcap" --flows "$flows" --packets "$packets" --dst-mac "$PORT_MAC" 2>/dev/null
  pcap6="$WORK/f$flows-ipv6.pcap"
  [ "$IPV6" = 1 ] && target/release/dsrlb-traffic --out "$pcap6" --flows "$flows" --packets "$packets" \
    --dst-mac "$PORT_MAC" --ipv6-vip fd00:99::100 2>/dev/null
  mbufs=$(( packets + 65536 ))
  for rep in $(seq 1 "$REPS"); do
    run_testpmd "$pcap" "$mbufs" "$WORK/tp.log" "$WORK/tp.perf"
    tp=$(testpmd_rate "$WORK/tp.log")
    tp_share=$(pmd_share "$WORK/tp.perf")
    run_dsrlb "$pcap" "$mbufs" "$flows" "$WORK/lb.log" "$WORK/lb.perf"
    lb=$(dsrlb_rate "$WORK/lb.log")
    lb_share=$(pmd_share "$WORK/lb.perf")
    [ "$tp" = nan ] && { echo "testpmd gave no rate:"; tail -5 "$WORK/tp.log"; }
    [ "$lb" = nan ] && { echo "dsrlb gave no rate:"; tail -5 "$WORK/lb.log"; }
    record testpmd "$flows" "$rep" "$tp" "$tp_share"
    record dsrlb "$flows" "$rep" "$lb" "$lb_share"
    printf '  %8s flows  rep %d  testpmd %7s Mpps (PMD %s%%)  dsrlb %7s Mpps (PMD %s%%)\n' \
      "$flows" "$rep" "$tp" "$tp_share" "$lb" "$lb_share"
    if [ "$flows" = "$LARGEST_FLOWS" ]; then
      run_dsrlb_changed "$pcap" "$mbufs" "$flows" "$WORK/lb.log" "$WORK/lb.perf"
      lb=$(dsrlb_rate "$WORK/lb.log")
      lb_share=$(pmd_share "$WORK/lb.perf")
      [ "$lb" = nan ] && { echo "dsrlb (change) gave no rate:"; tail -5 "$WORK/lb.log"; }
      record dsrlb-change "$flows" "$rep" "$lb" "$lb_share"
      printf '  %8s flows  rep %d  dsrlb during a change %7s Mpps (PMD %s%%)\n' "$flows" "$rep" "$lb" "$lb_share"
    fi
    if [ "$IPV6" = 1 ]; then
      run_dsrlb "$pcap6" "$mbufs" "$flows" "$WORK/lb.log" "$WORK/lb.perf"
      lb=$(dsrlb_rate "$WORK/lb.log")
      lb_share=$(pmd_share "$WORK/lb.perf")
      [ "$lb" = nan ] && { echo "dsrlb (IPv6) gave no rate:"; tail -5 "$WORK/lb.log"; }
      record dsrlb-ipv6 "$flows" "$rep" "$lb" "$lb_share"
      printf '  %8s flows  rep %d  dsrlb on IPv6 %7s Mpps (PMD %s%%)\n' "$flows" "$rep" "$lb" "$lb_share"
    fi
    if [ "$FLOORS" = 1 ]; then
      for mode in swap maglev table checked; do
        rate=$(run_floor "$mode" "$pcap" "$mbufs" "$flows" "$WORK/floor.perf")
        share=$(pmd_share "$WORK/floor.perf")
        record "floor-$mode" "$flows" "$rep" "$rate" "$share"
        printf '  %8s flows  rep %d  floor-%-6s %7s Mpps (PMD %s%%)\n' "$flows" "$rep" "$mode" "$rate" "$share"
      done
    fi
  done
  rm -f "$pcap" "$pcap6"
done

read -r steal1 total1 < <(cpu_times)
awk -v s="$((steal1 - steal0))" -v t="$((total1 - total0))" \
  'BEGIN { printf "cpu stolen by the host during the packet-rate runs: %.1f%%\n", (t > 0 ? 100 * s / t : 0) }' \
  | tee -a "$OUT/machine.txt"

echo "== 3. control plane and decide() (dsrlb-micro, pinned to CPU 1)"
taskset -c 1 target/release/dsrlb-micro $([ "$QUICK" = 1 ] && echo --quick) | tee "$OUT/micro.txt"
echo "== 3b. health prober schedule, 1000 targets at 1 s"
(ulimit -n 8192; target/release/dsrlb-probe-schedule --targets 1000 --secs $([ "$QUICK" = 1 ] && echo 3 || echo 10)) | tee "$OUT/probe-schedule.txt"

if [ "$LAB" = 1 ]; then
  bench/lab-peers.sh "$OUT" "$DUR" "$REPS"
fi

python3 bench/analyze.py "$OUT" | tee "$OUT/summary.md"
echo "results: $OUT"
