# Sourced by bench/run.sh and bench/lab-peers.sh: a measuring window that opens when a
# process says it is forwarding, not when it was started. A DPDK process's start-up
# (EAL, hugepages, an af_xdp socket's BPF program) takes a few hundred milliseconds on
# a warm machine and seconds on a fresh one; a window timed from the launch then holds
# too few per-second figures, and a rate made of them is nan.
#
#   start_windowed LOG READY CMD...   runs CMD in the background, its output in LOG, and
#                                     waits until a line of LOG matches READY (an ERE):
#                                     sets WINDOWED (its pid) and WINDOW_OPENED (a time).
#                                     Returns 1, with CMD stopped, if CMD exits first or
#                                     READY does not show within READY_LIMIT seconds.
#   close_window SECONDS              SIGINT to WINDOWED SECONDS after the window opened,
#                                     unless it has ended by itself (SIGKILL if it still
#                                     runs 10 s later); sets WINDOW_SECONDS, the window's
#                                     measured length.
READY_LIMIT=${READY_LIMIT:-60}

now() { date +%s.%N; }

start_windowed() {
  local log=$1 ready=$2
  shift 2
  "$@" > "$log" 2>&1 &
  WINDOWED=$!
  local deadline=$((SECONDS + READY_LIMIT))
  until grep -qE "$ready" "$log" 2>/dev/null; do
    if ! kill -0 "$WINDOWED" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "$* was not ready within ${READY_LIMIT}s (no line matching '$ready'):" >&2
      tail -5 "$log" >&2
      stop_windowed
      return 1
    fi
    sleep 0.01
  done
  WINDOW_OPENED=$(now)
}

close_window() {
  local closes
  closes=$(awk -v o="$WINDOW_OPENED" -v s="$1" 'BEGIN { printf "%.3f", o + s }')
  while kill -0 "$WINDOWED" 2>/dev/null && awk -v c="$closes" -v n="$(now)" 'BEGIN { exit !(n < c) }'; do
    sleep 0.05
  done
  WINDOW_SECONDS=$(awk -v o="$WINDOW_OPENED" -v n="$(now)" 'BEGIN { printf "%.3f", n - o }')
  stop_windowed
}

# SIGINT stops testpmd, dsrlb and dsrlb-floor cleanly; anything still running 10 s on
# is killed.
stop_windowed() {
  kill -INT "$WINDOWED" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$WINDOWED" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$WINDOWED" 2>/dev/null || true
  wait "$WINDOWED" 2>/dev/null || true
}
