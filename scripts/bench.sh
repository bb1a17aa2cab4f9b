#!/usr/bin/env bash
# The speed table of the README: every rule per instruction-set level, the
# `-C target-cpu=native` build, the plain C loop (Adam), the owning optimizer on one and
# two threads, and the roofline, measured in one run (benches/speed.rs).
# Usage: scripts/bench.sh [ROUNDS] [more arguments of benches/speed.rs]
# The native variant is built into $CARGO_TARGET_DIR/native (target/native by default).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-7}
shift || true
target=${CARGO_TARGET_DIR:-target}

# Prints the path of the `speed` bench executable that `cargo bench` builds.
bench_exe() {
    cargo bench --bench speed --no-run "$@" 2>&1 |
        sed -n 's/.*Executable benches\/speed.rs (\(.*\))$/\1/p' | tail -n 1
}

default_exe=$(bench_exe)
native_exe=$(CARGO_TARGET_DIR="$target/native" RUSTFLAGS="-C target-cpu=native" bench_exe)
if [[ -z $default_exe || -z $native_exe ]]; then
    echo "bench.sh: building the speed bench failed" >&2
    cargo bench --bench speed --no-run
    exit 1
fi
grep -m1 'model name' /proc/cpuinfo 2>/dev/null || true
echo "cores: $(nproc)"
"$default_exe" --rounds "$rounds" --native "$native_exe" --multi "$@"
