#!/usr/bin/env bash
# The kernels have no panic path on the Cortex-M images: no call or branch to a panic
# or a bounds/length-failure function of `core` comes from kernel code, wherever LLVM
# put that code. With fat LTO most of a kernel is inlined into the firmware's own
# functions (`train::Optimizer::step`, `main`), so each such branch is traced through
# the debug line tables' inlining chain (`llvm-addr2line -i`): it is kernel code's if
# any frame of the chain is in `kernels/src` (or the function is a `gradstep::` one
# or a bench `step` wrapper). Every branch form counts (`bl`, `b.w` tail calls,
# conditional `bne.w`). A check the compiler could not prove away (an index, a split,
# a `copy_from_slice` after a length check it cannot see) shows here as such a
# branch, a reachable one or not; the kernels use checked forms instead. The
# firmware's own code (training, formatting, the bench's harness) may panic and is
# not checked. Run after `cargo build --release --bins --target <target>` in
# firmware/ (the release profile keeps line tables).
# Usage: firmware/no_panics.sh [target ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")"

objdump=$(command -v llvm-objdump) || {
    echo "no_panics.sh: llvm-objdump is missing (Debian: apt-get install llvm)" >&2
    exit 1
}
addr2line=$(command -v llvm-addr2line) || {
    echo "no_panics.sh: llvm-addr2line is missing (Debian: apt-get install llvm)" >&2
    exit 1
}
targets=("$@")
((${#targets[@]})) || targets=(thumbv7em-none-eabihf thumbv6m-none-eabi)

status=0
for target in "${targets[@]}"; do
    for image in bench train; do
        file=${CARGO_TARGET_DIR:-target}/$target/release/$image
        [[ -f $file ]] || { echo "$file missing: build it first" >&2; exit 1; }
        # Each branch to a panicking function: its address and the function it is in
        # (not the `$t`/`$d` mapping symbols).
        branches=$("$objdump" -d -C --no-show-raw-insn "$file" | awk '
            /^[0-9a-f]+ <.*>:$/ && !/<\$[a-z][^>]*>:$/ {
                fn = $0; sub(/^[0-9a-f]+ </, "", fn); sub(/>:$/, "", fn) }
            /^ *[0-9a-f]+: *\tb[a-z.]*\t.*<[^>]*(panic|_fail)[^>]*>/ {
                addr = $1; sub(/:$/, "", addr); print "0x" addr "\t" fn }')
        kernel=""
        if [[ -n $branches ]]; then
            # The inlining chain of each address: "0x…" then function and file:line per
            # frame, innermost first.
            kernel=$(cut -f1 <<<"$branches" | "$addr2line" -a -i -f -C -e "$file" | awk -v list="$branches" '
                BEGIN { n = split(list, rows, "\n"); for (i = 1; i <= n; i++) {
                            split(rows[i], f, "\t"); owner[f[1]] = f[2] } }
                /^0x[0-9a-f]+$/ { a = $0; sub(/^0x0*/, "0x", a); at = a; next }
                { line[at] = line[at] "\n      " $0 }
                /kernels\/src\// || /^(gradstep::|bench::step)/ { hit[at] = 1 }
                END { for (a in owner) {
                          k = a; sub(/^0x0*/, "0x", k)
                          if (hit[k] || owner[a] ~ /^<?(gradstep::|bench::step)/)
                              printf "  %s in %s%s\n", a, owner[a], line[k] } }')
        fi
        if [[ -n $kernel ]]; then
            printf '%s %s: kernel code with a panic path:\n%s\n' "$target" "$image" "$kernel"
            status=1
        else
            printf '%s %s: no panic path in kernel code (%d branches to a panic outside it)\n' \
                "$target" "$image" "$(grep -c . <<<"$branches")"
        fi
    done
done
exit $status
