#!/usr/bin/env bash
# Where each rule's per-step cost goes on a Cortex-M core: runs the profiling image
# (src/bin/profile.rs: every rule stepped at N = 0 between two calls of
# `profile_marker`) under QEMU with one instruction per translation block and an
# execution trace, attributes every executed instruction to its function, and prints,
# per rule, the instructions per step and the functions that take them (soft-float
# library calls, the powers cache, the rule's own code).
#
# Usage: firmware/profile.sh [--m0] [--top K] [--forbid REGEX] [RULE ...]   (default:
# the Cortex-M4F, the top 8 functions, every rule). With --forbid it exits 1 if a
# listed rule's step runs a function whose name matches REGEX (Python syntax), and
# names it: a check that a per-step library call removed stays removed. Needs qemu-system-arm (7.2's -singlestep), python3
# and llvm-nm (or binutils' nm). The trace of every rule is about 40 MB.
set -euo pipefail
cd "$(dirname "$0")"

target=thumbv7em-none-eabihf cpu=cortex-m4 machine=mps2-an386 top=8 forbid=
while (($#)); do
    case $1 in
    --m0) target=thumbv6m-none-eabi cpu=cortex-m0 machine=microbit ;;
    --top) top=$2 && shift ;;
    --forbid) forbid=$2 && shift ;;
    -*) echo "profile.sh: unknown option $1" >&2 && exit 2 ;;
    *) break ;;
    esac
    shift
done

unset CARGO_TARGET_DIR
cargo build --quiet --release --target "$target" --bin profile
image=target/$target/release/profile
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
timeout 600 qemu-system-arm -cpu "$cpu" -machine "$machine" -nographic \
    -semihosting-config enable=on,target=native -icount shift=0 -singlestep \
    -d exec,nochain -D "$work/trace" -kernel "$image" >"$work/names"
if command -v llvm-nm >/dev/null; then
    llvm-nm -n --demangle "$image" >"$work/symbols"
else
    nm -n -C "$image" >"$work/symbols"
fi

python3 - "$work" "$top" "$forbid" "$@" <<'PY'
import bisect, collections, re, sys

work, top, forbid, wanted = sys.argv[1], int(sys.argv[2]), sys.argv[3], set(sys.argv[4:])
# Functions (text symbols), by address with the Thumb bit cleared; not ARM's mapping
# symbols ($t, $d).
funcs = []
for line in open(f"{work}/symbols"):
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) == 3 and parts[1] in "tT" and not parts[2].startswith("$"):
        funcs.append((int(parts[0], 16) & ~1, parts[2]))
funcs.sort()
starts = [a for a, _ in funcs]
marker = next(a for a, n in funcs if n == "profile_marker")
# The image prints its steps per window, then the rules' names in window order.
steps, *names = open(f"{work}/names").read().split()
steps = int(steps)

pc_of = re.compile(r"\[[0-9a-f]+/([0-9a-f]+)/")
windows, current = [], None
for line in open(f"{work}/trace"):
    m = pc_of.search(line)
    if not m:
        continue
    pc = int(m.group(1), 16) & ~1
    if pc == marker:
        # The marker's entry opens a window, and its next entry closes it.
        if current is None:
            current = collections.Counter()
        else:
            windows.append(current)
            current = None
        continue
    if current is not None:
        current[funcs[bisect.bisect_right(starts, pc) - 1][1]] += 1

failed = False
if len(windows) != len(names):
    sys.exit(f"profile.sh: {len(windows)} windows for {len(names)} rules")
for name, counts in zip(names, windows):
    if wanted and name not in wanted:
        continue
    # The marker's own instructions after its entry belong to no rule.
    counts.pop("profile_marker", None)
    total = sum(counts.values())
    print(f"== {name}: {total / steps:.0f} instructions per step (N = 0)")
    for func, k in counts.most_common(top):
        print(f"  {k / steps:8.1f}  {func[:110]}")
    if forbid:
        for func, k in counts.items():
            if re.search(forbid, func):
                print(f"profile.sh: {name}'s step runs {func} ({k / steps:.0f} per step)")
                failed = True
if failed:
    sys.exit(1)
PY
