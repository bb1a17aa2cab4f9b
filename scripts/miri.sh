#!/usr/bin/env bash
# Runs the unsafe code under Miri, once with Stacked Borrows and once with Tree Borrows
# (the two side by side, one core each; their outputs are printed when both are done):
# the kernel's driver, lanes and reductions (kernels/tests/unsafe_paths.rs: every length
# around each vector width, misaligned, for rules with one, two and three state slices,
# and the reductions) and the C boundary (frontend-ffi's unit tests and
# tests/hostile.rs, which call the exported functions the way a hostile C caller would).
# The kernel's own unit tests are numerics, not unsafe code (4 minutes under Miri).
# Usage: scripts/miri.sh        (scripts/test.sh runs it)
#        scripts/miri.sh --setup  (only install nightly's miri and build its std)
# Installs the nightly toolchain's miri and rust-src components if missing. libm's
# inline-assembly sqrt is swapped for its software one (feature soft-float-libm: the
# same correctly rounded results), which Miri can run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal --component miri,rust-src
fi
rustup +nightly component list --installed | grep -q '^miri' ||
    rustup +nightly component add miri rust-src
cargo +nightly miri setup >/dev/null 2>&1 || cargo +nightly miri setup
[[ ${1:-} == --setup ]] && exit 0

# proptest reads the working directory (its regression files): no isolation.
base="-Zmiri-disable-isolation"
kernel=(-p gradstep --features soft-float-libm --test unsafe_paths)
ffi=(-p gradstep-ffi --features kernels/soft-float-libm --lib --test hostile)

# Build once (the borrow model is a run-time flag: both runs use the same build), then
# run the two models side by side: Miri interprets on one core, and the test binaries
# run without holding cargo's lock on the target directory.
cargo +nightly miri test -q "${kernel[@]}" --no-run
cargo +nightly miri test -q "${ffi[@]}" --no-run
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
for model in "stacked borrows:" "tree borrows:-Zmiri-tree-borrows"; do
    name=${model%%:*}
    flags="$base ${model#*:}"
    (
        export MIRIFLAGS="$flags" PROPTEST_CASES=2
        start=$SECONDS
        cargo +nightly miri test -q "${kernel[@]}"
        cargo +nightly miri test -q "${ffi[@]}"
        echo "-- Miri, $name: passed in $((SECONDS - start)) s"
    ) >"$logs/${name// /-}.log" 2>&1 &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
for log in "$logs"/*.log; do
    printf '\n-- Miri, %s\n' "$(basename "$log" .log | tr - ' ')"
    cat "$log"
done
if ((failed)); then
    echo "miri: FAILED (see the output above)"
    exit 1
fi
