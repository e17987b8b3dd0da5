#!/usr/bin/env bash
# Runs every dsrlb test on this machine, after installing what they need (as root).
#   unit tests over bytes (wire, Maglev, flow table, decide), DPDK in-process tests
#   on real mbufs (ring and pcap vdevs), the dsrlb binary end to end on net_pcap, and
#   the namespace lab end to end (real curl and UDP through dsrlb on a veth, by
#   af_packet and by af_xdp),
#   and the benchmark harness's smoke run (bench/run.sh --quick --reps 2) and a short
#   run of its lab part (bench/lab-peers.sh, two reps of 3 s); then each fuzz target
#   for 10 s (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

scripts/setup.sh

# Test processes each start one in-process EAL that lives until the process exits;
# EAL leaves an empty runtime directory per process: remove ours afterwards.
cleanup() {
  rm -rf /var/run/dpdk/dsrlb-test-* 2>/dev/null || true
  scripts/lab.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

cargo build --workspace --all-targets
log=$(mktemp)
status=0
# --include-ignored: the lab test is marked ignored for plain `cargo test` runs
# without root; here it runs. --no-fail-fast: one failing binary does not hide
# the results of the others.
cargo test --workspace --no-fail-fast -- --include-ignored 2>&1 | tee "$log" || status=$?
# Every fuzz target briefly from its seed corpus (scripts/fuzz.sh): a crash fails
# the run. FUZZ_SECONDS=0 leaves it out.
if [[ ${FUZZ_SECONDS:-10} -gt 0 ]]; then
  scripts/fuzz.sh "${FUZZ_SECONDS:-10}" || status=1
fi
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "dsrlb tests: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
