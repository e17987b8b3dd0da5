#!/usr/bin/env bash
# Coverage-guided fuzzing of dsrlb's inputs with libFuzzer (libfuzzer-sys) on the
# stable toolchain: SanitizerCoverage comes from rustc's stable -C passes/-C
# llvm-args flags, so no nightly and no cargo-fuzz are needed.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Runs each target (all five by default: decide, wire, config, control_request,
# metrics_http) for SECONDS (default 60) from a temporary copy of its seed corpus
# fuzz/corpus/TARGET, and prints per target: executions, rate, edges covered out of
# those instrumented, features, corpus size. A crash (panic, failed check, timeout,
# out of memory) fails the run and keeps the input in FUZZ_ARTIFACTS (default: a
# temporary directory, printed). FUZZ_KEEP=DIR keeps the grown corpora there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

seconds=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(decide wire config control_request metrics_http)
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "fuzz.sh: SECONDS must be a positive integer, not '$seconds'" >&2; exit 2; }

# .cargo/config.toml's rustflags are replaced by RUSTFLAGS, so the CPU level is
# repeated here. With --target, RUSTFLAGS reach only the targets' code, not build
# scripts and proc macros (they would not link without libFuzzer).
export RUSTFLAGS="-C target-cpu=x86-64-v2 --cfg fuzzing -C passes=sancov-module \
 -C llvm-args=-sanitizer-coverage-level=4 -C llvm-args=-sanitizer-coverage-inline-8bit-counters \
 -C llvm-args=-sanitizer-coverage-pc-table -C llvm-args=-sanitizer-coverage-trace-compares"
triple=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --manifest-path fuzz/Cargo.toml --bins --locked --target "$triple"
bin=fuzz/target/$triple/release

work=$(mktemp -d /tmp/dsrlb-fuzz.XXXXXX)
artifacts=${FUZZ_ARTIFACTS:-$work/crashes}
mkdir -p "$artifacts"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

failed=()
for target in "${targets[@]}"; do
  [[ -d fuzz/corpus/$target ]] || { echo "fuzz.sh: no target '$target' (fuzz/corpus/$target)" >&2; exit 2; }
  corpus=$work/corpus/$target
  mkdir -p "$corpus"
  cp fuzz/corpus/"$target"/* "$corpus"/
  log=$work/$target.log
  status=0
  # -timeout: one input may take at most 10 s (a reload builds tables);
  # -rss_limit_mb: the appliance's tables are small here, 2 GiB is a leak.
  "$bin/$target" "$corpus" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$target-" \
    >"$log" 2>&1 || status=$?
  edges=$(sed -n 's/.*Loaded [0-9]* modules *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  units=$(find "$corpus" -type f | wc -l)
  if [[ $status -ne 0 ]]; then
    failed+=("$target")
    echo "fuzz $target: FAILED (exit $status) after ${execs:-?} executions; input kept in $artifacts"
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -8 || true
    cp "$log" "$artifacts/$target.log"
  else
    echo "fuzz $target: ${seconds} s, ${execs} executions (${rate}/s), cov ${cov} of ${edges} edges, ft ${ft}, corpus ${units}, 0 crashes"
  fi
  if [[ -n ${FUZZ_KEEP:-} ]]; then mkdir -p "$FUZZ_KEEP/$target" && cp "$corpus"/* "$FUZZ_KEEP/$target"/; fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  trap - EXIT
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]} (inputs and logs in $artifacts)"
  exit 1
fi
echo "fuzz: ${#targets[@]} target(s), 0 crashes"
