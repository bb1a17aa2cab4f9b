#!/usr/bin/env bash
# The kernels have no panic path on the Cortex-M images: no kernel function, and no
# bench `step` wrapper (which inlines a rule's step), calls a panic or a
# bounds/length-failure function of `core`. A check that the compiler could not prove
# away (an index, a split, a `copy_from_slice` after a length check it cannot see)
# shows here as such a call, a reachable one or not; the kernels use checked forms
# instead. The firmware's own code (training, formatting, the bench's harness) may
# panic and is not checked. Run after `cargo build --release --bins --target <target>`
# in firmware/.
# Usage: firmware/no_panics.sh [target ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")"

objdump=$(command -v llvm-objdump) || {
    echo "no_panics.sh: llvm-objdump is missing (Debian: apt-get install llvm)" >&2
    exit 1
}
targets=("$@")
((${#targets[@]})) || targets=(thumbv7em-none-eabihf thumbv6m-none-eabi)

status=0
for target in "${targets[@]}"; do
    for image in bench train; do
        file=${CARGO_TARGET_DIR:-target}/$target/release/$image
        [[ -f $file ]] || { echo "$file missing: build it first" >&2; exit 1; }
        # Functions (not the `$t`/`$d` mapping symbols) that branch to a panicking one.
        callers=$("$objdump" -d -C --no-show-raw-insn "$file" | awk '
            /^[0-9a-f]+ <.*>:$/ && !/<\$[a-z][^>]*>:$/ {
                fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn) }
            /\tbl?\t.*<[^>]*(panic|_fail)[^>]*>/ { print fn }' | sort -u)
        kernel=$(grep -E '^(<?gradstep::|bench::step)' <<<"$callers" || true)
        if [[ -n $kernel ]]; then
            printf '%s %s: kernel code with a panic path:\n%s\n' "$target" "$image" "$kernel"
            status=1
        else
            printf '%s %s: no panic path in kernel code (%d other functions may panic)\n' \
                "$target" "$image" "$(grep -c . <<<"$callers")"
        fi
    done
done
exit $status
