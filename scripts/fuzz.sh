#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each):
#   scripts/fuzz.sh [SECONDS]
# Needs a nightly Rust toolchain (libFuzzer instrumentation); installs
# cargo-fuzz from crates.io if it is missing. Crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! rustup toolchain list | grep -q nightly; then
    echo "fuzzing needs a nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
total=0
for target in validators server_rules wire search csv_import; do
    echo "== fuzz $target for ${seconds}s"
    out="$(cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" 2>&1 | tail -n 20)"
    echo "$out" | grep -E "^Done|stat::number_of_executed_units|#[0-9]+.*DONE" || true
    runs="$(echo "$out" | grep -oE 'Done [0-9]+ runs' | grep -oE '[0-9]+' || echo 0)"
    total=$((total + runs))
done
echo "fuzz: $total executions, no crash"
