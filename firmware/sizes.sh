#!/usr/bin/env bash
# Flash and RAM of the firmware images, and the code each rule adds, from the release
# builds (run `cargo build --release --bins --target <target>` in firmware/ first).
#
# The bench image calls every rule through its own non-inlined `bench::step::<Rule>`;
# a rule's code is that function plus what LLVM kept out of line of it: the rule's
# `<Rule as Rule>::step::<f32>`, its element loop `<Rule as Rule>::run::<f32, …>`, its
# `validate` and its own helpers (`NAdam::coeffs`) (Adam's are shared by AdamW; before
# session 23 only `step` was counted, and the loop of Adam, 8 KB on the Cortex-M4F, was
# in no row). Lookahead's rows are the bench's
# `step_lookahead::<Rule>` (the inner rule's step inlined into it) and the slow-weights
# sync loop that every wrapped rule shares. What every rule shares (the f64 per-step
# math: soft-float double arithmetic, `pow`, `sqrt`, the integer powers) is listed apart.
# Usage: firmware/sizes.sh [target ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")"

nm_tool=$(command -v llvm-nm || command -v nm)
size_tool=$(command -v llvm-size || command -v size)
targets=("$@")
((${#targets[@]})) || targets=(thumbv7em-none-eabihf thumbv6m-none-eabi)

for target in "${targets[@]}"; do
    dir=${CARGO_TARGET_DIR:-target}/$target/release
    echo "== $target"
    for image in train bench; do
        [[ -f $dir/$image ]] || { echo "$dir/$image missing: build it first" >&2; exit 1; }
        # Berkeley format: text (flash: code, read-only data, vector table), data, bss.
        "$size_tool" -B "$dir/$image" | awk -v img="$image" 'NR == 2 {
            printf "%s: flash %d bytes (text + data), RAM %d bytes (data + bss + uninit)\n", img, $1 + $2, $2 + $3 }'
    done
    "$size_tool" -A "$dir/train" | awk '$1 == ".uninit" { printf "train: of which RAM-backed flash store (.uninit) %d bytes\n", $2 }'
    echo "code per rule (bytes, bench image):"
    "$nm_tool" -C -S -t d --size-sort "$dir/bench" | awk '
        function rule(s) { sub(/.*rules::[a-z_]+::/, "", s); sub(/[> ].*/, "", s); return s }
        / bench::step::</ { r = rule($0); size[r] += ($2 + 0) }
        / as gradstep::rules::Rule>::(step|run|validate)(::<|$| )/ { r = rule($0); size[r] += ($2 + 0) }
        /<gradstep::rules::[a-z_]+::[A-Za-z]+>::/ { r = rule($0); size[r] += ($2 + 0) }
        / bench::step_lookahead::</ { r = "Lookahead<" rule($0) ">"; size[r] += ($2 + 0) }
        /gradstep::lookahead::Sync</ { size["Lookahead-sync"] += ($2 + 0) }
        /gradstep::power::|__aeabi_d|__adddf3|__subdf3|__muldf3|__divdf3|libm::math::(pow|sqrt)::|__aeabi_[fd]2|__aeabi_[ui]2d|__aeabi_dcmp|__(eq|ne|lt|le|gt|ge|unord)df2|__extendsfdf2|__truncdfsf2|__fix.*df|__float.*df/ {
            shared += ($2 + 0) }
        END {
            for (r in size) printf "  %-10s %6d\n", r, size[r]
            printf "  shared f64 per-step math (soft-float double, pow, sqrt, integer powers): %d\n", shared
        }' | sort
done
