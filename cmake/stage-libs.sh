#!/usr/bin/env bash
# Turns cargo's libgradstep.a and libgradstep.so into the libraries gradstep installs,
# in OUTDIR (ELF targets, GNU binutils):
#   libgradstep.so.VERSION   stripped; its SONAME (set by frontend-ffi/build.rs) names
#   libgradstep.so.ABI       a symlink to it (the name programs load at run time)
#   libgradstep.so           a symlink to it (the name the linker finds with -lgradstep)
#   libgradstep.a            one relocatable object in which every symbol but the
#                            gradstep_* functions is local (the Rust runtime, core, alloc,
#                            std and their dependencies cannot clash with another Rust
#                            static library), without debug info.
# Used by scripts/install.sh and the top-level CMakeLists.txt.
# Usage: cmake/stage-libs.sh CARGO_RELEASE_DIR OUTDIR VERSION
set -euo pipefail
release=$1 out=$2 version=$3
mkdir -p "$out"
# Nothing to do when both are newer than cargo's (CMake runs this on every build).
if [[ $out/libgradstep.a -nt $release/libgradstep.a && -L $out/libgradstep.so &&
    $out/libgradstep.so.$version -nt $release/libgradstep.so ]]; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The shared library: rustc already exports only the #[no_mangle] gradstep_* functions.
soname=$(readelf -d "$release/libgradstep.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
if [[ -z $soname ]]; then
    echo "stage-libs: $release/libgradstep.so has no SONAME" >&2
    exit 1
fi
rm -f "$out"/libgradstep.so*
strip --strip-unneeded -o "$out/libgradstep.so.$version" "$release/libgradstep.so"
[[ $soname == "libgradstep.so.$version" ]] || ln -s "libgradstep.so.$version" "$out/$soname"
ln -s "$soname" "$out/libgradstep.so"

# The static library: all members linked into one object (`ld -r`), so that the symbols
# they share can become local to it. Some members carry embedded LLVM bitcode
# (.llvmbc): concatenated, it is no longer valid bitcode, and binutils' LLVM plugin (if
# installed) aborts on it, so it is dropped.
printf 'SECTIONS { /DISCARD/ : { *(.llvmbc) *(.llvmcmd) } }\n' >"$tmp/discard.ld"
ld -r --whole-archive "$release/libgradstep.a" -T "$tmp/discard.ld" -o "$tmp/all.o"
nm -g --defined-only "$tmp/all.o" | awk 'NF == 3 && $3 ~ /^gradstep_/ { print $3 }' \
    >"$tmp/keep"
if [[ ! -s $tmp/keep ]]; then
    echo "stage-libs: no gradstep_* symbol in $release/libgradstep.a" >&2
    exit 1
fi
objcopy --keep-global-symbols="$tmp/keep" --strip-debug "$tmp/all.o" "$tmp/gradstep.o"
rm -f "$out/libgradstep.a"
ar rcs "$out/libgradstep.a" "$tmp/gradstep.o"
