#!/usr/bin/env bash
# Failover figures of the scale-out lab (README, "Scale-out"): how long the router
# (dsr-rtr) keeps an appliance as a next hop for the VIP after
#   kill    SIGKILL of its dsrlb (the tap it held goes, BIRD withdraws);
#   silent  a silent death of the box: its data and management links cut, so BIRD
#           and dsrlb run on but nothing reaches the router (BFD notices);
#   hold    the same with BFD off on the router (the hold time notices);
# and, after kill, how long from dsrlb ready (its "announcing" log line) to the
# router's next hop back.
#   bench/scale-out.sh [REPS]   (default 3; hold runs once)
# Needs root, bird2 and a release build (cargo build --release). Tears the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-3}
DSRLB=${DSRLB:-$PWD/target/release/dsrlb}
[ -x "$DSRLB" ] || { echo "scale-out.sh: build first: cargo build --release" >&2; exit 1; }
WORK=$(mktemp -d /tmp/dsrlb-scale-out.XXXXXX)
trap 'pkill -INT -f "dsrlb run --config config/examples/scale-out" 2>/dev/null; sleep 1; scripts/lab.sh down >/dev/null 2>&1; rm -rf "$WORK"' EXIT

ms() { echo $(( $(date +%s%N) / 1000000 )); }
has_lb2() { ip -n dsr-rtr route show 10.99.0.100 | grep -q 'via 10.99.0.3'; }
# until_lb2 yes|no LIMIT_S: waits for the router to have (or not) lb2 as next hop.
until_lb2() {
  local want=$1 end=$(( $(ms) + $2 * 1000 ))
  while true; do
    if has_lb2; then [ "$want" = yes ] && return 0; else [ "$want" = no ] && return 0; fi
    [ "$(ms)" -lt "$end" ] || { echo "scale-out.sh: lb2 never $want within $2 s" >&2; exit 1; }
    sleep 0.002
  done
}
start() { # lb
  ip netns exec "dsr-$1" "$DSRLB" run --config "config/examples/scale-out-$1.toml" \
    >> "$WORK/$1.out" 2>> "$WORK/$1.log" &
  echo $! > "$WORK/$1.pid"
}
# announced_at lb: the time (ms) of its latest "announcing 10.99.0.100" line, once written.
wait_announced() {
  local n0=$2 end=$(( $(ms) + 30000 ))
  until [ "$(grep -c 'announcing 10.99.0.100' "$WORK/$1.log")" -gt "$n0" ]; do
    [ "$(ms)" -lt "$end" ] || { echo "scale-out.sh: $1 never announced" >&2; exit 1; }
    sleep 0.002
  done
  ms
}
lab_up() { # on|off
  ROUTER_BFD=$1 DSRLB=$DSRLB scripts/lab.sh up --scale-out >/dev/null
  start lb1; start lb2
  wait_announced lb2 0 >/dev/null
  until_lb2 yes 10
}
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[1] " / " a[int((NR+1)/2)] " / " a[NR]}'; }

lab_up on
kill_ms=() back_ms=() silent_ms=()
for _ in $(seq 1 "$REPS"); do
  t0=$(ms); kill -9 "$(cat "$WORK/lb2.pid")"; until_lb2 no 5; kill_ms+=($(( $(ms) - t0 )))
  { wait "$(cat "$WORK/lb2.pid")"; } 2>/dev/null || true
  sleep 1
  n=$(grep -c 'announcing 10.99.0.100' "$WORK/lb2.log" || true)
  start lb2; ready=$(wait_announced lb2 "$n"); until_lb2 yes 5; back_ms+=($(( $(ms) - ready )))
  sleep 1
  t0=$(ms); ip -n dsr-sw link set d-lb2 down; ip -n dsr-sw link set m-lb2 down
  until_lb2 no 10; silent_ms+=($(( $(ms) - t0 )))
  ip -n dsr-sw link set d-lb2 up; ip -n dsr-sw link set m-lb2 up
  until_lb2 yes 30
done
pkill -INT -f "dsrlb run --config config/examples/scale-out" || true; sleep 1
lab_up off
t0=$(ms); ip -n dsr-sw link set d-lb2 down; ip -n dsr-sw link set m-lb2 down
until_lb2 no 10; hold_ms=$(( $(ms) - t0 ))

echo "scale-out failover, ms (min / median / max of $REPS; router polled every 2 ms)"
echo "  kill -9 of dsrlb -> next hop gone:        $(echo "${kill_ms[*]}" | median)"
echo "  dsrlb ready -> next hop back:             $(echo "${back_ms[*]}" | median)"
echo "  silent box death, BFD 100 ms x 3:         $(echo "${silent_ms[*]}" | median)"
echo "  silent box death, no BFD (hold time 3 s): $hold_ms"
