#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time from its committed seeds.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   scripts/fuzz.sh            45 s each (what scripts/test.sh runs)
#   scripts/fuzz.sh 3600       an hour each: the longer run
#   scripts/fuzz.sh --build    only build them (scripts/test.sh builds them while Miri
#                              runs, then runs them with the build already done)
# Needs the nightly toolchain and cargo-fuzz (installed here if missing). The corpus
# grown by a run stays in fuzz/corpus/ (ignored by git); the committed seeds in
# fuzz/seeds/ are only read. A crash leaves its input in fuzz/artifacts/ and fails.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-45}
shift || true

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
# One build of every target, then the targets side by side, one per core (FUZZ_JOBS to
# change): each libFuzzer process runs on one core for the whole SECONDS_PER_TARGET.
cargo +nightly fuzz build -O
[[ $seconds == --build ]] && exit 0
jobs=${FUZZ_JOBS:-$(nproc)}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
fuzz_one() {
    local target=$1 log=$logs/$1.log
    mkdir -p "corpus/$target"
    local seeds=()
    [[ -d "seeds/$target" ]] && seeds=("seeds/$target")
    if ! cargo +nightly fuzz run -O "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $target FAILED (input in fuzz/artifacts/$target)"
        return 1
    fi
    local runs cov
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    printf 'fuzz: %-22s %10s runs in %ss, %s, corpus %s files\n' \
        "$target" "$runs" "$seconds" "$cov" "$(ls "corpus/$target" | wc -l)"
}
failed=0
running=0
for target in "${targets[@]}"; do
    if ((running >= jobs)); then
        wait -n || failed=1
        running=$((running - 1))
    fi
    fuzz_one "$target" &
    running=$((running + 1))
done
while ((running > 0)); do
    wait -n || failed=1
    running=$((running - 1))
done
((failed == 0)) || exit 1
