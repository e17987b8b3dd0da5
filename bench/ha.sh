#!/usr/bin/env bash
# Takeover figures of the active/standby lab (README, "Active/standby"): with dsr-lb1
# active and a UDP request to the VIP every 10 ms from the client, how long until
# dsr-lb2's first gratuitous ARP for the VIP is on the wire, and the longest time the
# client went without an answer, after
#   kill       SIGKILL of the active's dsrlb (its tap goes: keepalived yields at once);
#   keepalived SIGKILL of the active's keepalived (the peer misses its adverts);
#   silent     a silent death of the active box: its data and management links cut;
#   graceful   SIGTERM of the active's dsrlb (it tells keepalived, then hands over).
# After each, dsr-lb1 is restored and takes the VIP back (preempt).
#   bench/ha.sh [REPS]   (default 3)
# Needs root, keepalived and a release build (cargo build --release). Tears the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-3}
DSRLB=${DSRLB:-$PWD/target/release/dsrlb}
[ -x "$DSRLB" ] || { echo "ha.sh: build first: cargo build --release" >&2; exit 1; }
WORK=$(mktemp -d /tmp/dsrlb-ha.XXXXXX)
trap 'pkill -INT -f "dsrlb run --config config/examples/ha-lb" 2>/dev/null; sleep 1; scripts/lab.sh down >/dev/null 2>&1; rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
start() { # lb
  ip netns exec "dsr-$1" "$DSRLB" run --config "config/examples/ha-$1.toml" --stats-interval 0 \
    >> "$WORK/$1.out" 2>> "$WORK/$1.log" &
  echo $! > "$WORK/$1.pid"
}
# wait_log lb TEXT N: until lb's log has more than N lines with TEXT (30 s at most).
wait_log() {
  for _ in $(seq 1 3000); do
    [ "$(grep -c "$2" "$WORK/$1.log" || true)" -gt "$3" ] && return 0
    sleep 0.01
  done
  echo "ha.sh: no new \"$2\" from $1" >&2; tail -5 "$WORK/$1.log" >&2; exit 1
}
actives() { grep -c 'ha: active' "$WORK/$1.log" || true; }
# garp_after T: ms from T to lb2's first GARP for the VIP after it, once captured.
garp_after() {
  for _ in $(seq 1 300); do
    local at
    at=$(tcpdump -r "$WORK/lb2.pcap" -tt -nn 'ether src 02:99:00:00:00:03' 2>/dev/null \
      | awk -v t="$1" '/who-has 10.99.0.100 tell 10.99.0.100/ && $1 >= t {print $1; exit}')
    [ -n "$at" ] && { awk -v a="$at" -v t="$1" 'BEGIN {printf "%d", (a - t) * 1000}'; return 0; }
    sleep 0.01
  done
  echo "ha.sh: no GARP from lb2" >&2; exit 1
}
pings() { ip netns exec dsr-client python3 scripts/lab-client.py pings --ms 10 --secs 4 2>/dev/null; }
gap_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["longest_gap_ms"])' < "$1"; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[1] " / " a[int((NR+1)/2)] " / " a[NR]}'; }

DSRLB=$DSRLB scripts/lab.sh up --ha >/dev/null
ip netns exec dsr-sw tcpdump -i d-lb2 -U -n -w "$WORK/lb2.pcap" arp 2>/dev/null & echo $! > "$WORK/tcpdump.pid"
start lb1; start lb2
wait_log lb1 'ha: active' 0
wait_log lb2 'ha: ready to serve' 0

declare -A garp gap
# event NAME: does it to lb1 once lb1 is active; restore NAME: undoes it.
event() {
  case "$1" in
    kill) kill -9 "$(cat "$WORK/lb1.pid")"; { wait "$(cat "$WORK/lb1.pid")"; } 2>/dev/null || true ;;
    keepalived) kill -9 $(cat /run/dsrlb-lab/keepalived-lb1.pid /run/dsrlb-lab/keepalived-lb1-vrrp.pid) ;;
    # Management first: with the data link cut first, dsrlb could still tell
    # keepalived, whose priority-0 advert would make it a graceful handover.
    silent) ip -n dsr-sw link set m-lb1 down; ip -n dsr-sw link set d-lb1 down ;;
    graceful) kill -TERM "$(cat "$WORK/lb1.pid")" ;;
  esac
}
restore() {
  local n
  n=$(actives lb1)
  case "$1" in
    kill|graceful) { wait "$(cat "$WORK/lb1.pid")"; } 2>/dev/null || true; n=$(actives lb1); start lb1 ;;
    keepalived) DSRLB=$DSRLB scripts/lab.sh keepalived lb1 start >/dev/null ;;
    # lb1's dsrlb never stopped being active: its next GARP (2 s) takes the VIP back.
    silent) ip -n dsr-sw link set d-lb1 up; ip -n dsr-sw link set m-lb1 up; sleep 3; return ;;
  esac
  wait_log lb1 'ha: active' "$n"
  sleep 1
}
for rep in $(seq 1 "$REPS"); do
  for what in kill keepalived silent graceful; do
    pings > "$WORK/pings.json" & p=$!
    sleep 1
    t=$(now); event "$what"
    garp[$what]+="$(garp_after "$t") "
    wait "$p" 2>/dev/null
    gap[$what]+="$(gap_of "$WORK/pings.json") "
    restore "$what"
  done
done

echo "active/standby takeover, ms (min / median / max of $REPS; keepalived advert_int 0.1 s)"
for what in kill keepalived silent graceful; do
  printf '  %-11s to the peer'"'"'s GARP %-16s longest client gap (UDP every 10 ms) %s\n' \
    "$what" "$(echo "${garp[$what]}" | median)" "$(echo "${gap[$what]}" | median)"
done
