#!/usr/bin/env bash
# Builds the C library (cargo, release) and installs it under PREFIX, for users without
# CMake (with CMake: `cmake -B build && cmake --build build && cmake --install build
# --prefix PREFIX` installs the same files):
#   PREFIX/include/gradstep.h, gradstep.hpp (the header-only C++17 wrapper)
#   PREFIX/lib/libgradstep.a               only gradstep_* symbols global, no debug info
#   PREFIX/lib/libgradstep.so.VERSION      stripped, SONAME libgradstep.so.ABI
#   PREFIX/lib/libgradstep.so.ABI -> libgradstep.so.VERSION, libgradstep.so -> .ABI
#   PREFIX/lib/pkgconfig/gradstep.pc
#   PREFIX/lib/cmake/gradstep/gradstepConfig.cmake, gradstepConfigVersion.cmake
# (ABI is 0.MINOR while the version is 0.x, else MAJOR.) The .pc and CMake files are
# relocatable: the installed tree can be moved.
# Usage: scripts/install.sh PREFIX
#        CARGO_TARGET_DIR is honoured (cargo's default: target/ in the repository).
set -euo pipefail
if [[ $# -ne 1 || -z $1 ]]; then
    echo "usage: scripts/install.sh PREFIX" >&2
    exit 2
fi
mkdir -p "$1"
prefix=$(cd "$1" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
release=${CARGO_TARGET_DIR:-$root/target}/release

cargo build --release -p gradstep-ffi --manifest-path "$root/Cargo.toml"
version=$(sed -n 's/^#define GRADSTEP_VERSION_STRING "\(.*\)"/\1/p' "$root/include/gradstep.h")

mkdir -p "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/gradstep"
"$root/cmake/stage-libs.sh" "$release" "$prefix/lib" "$version"
install -m 644 "$root/include/gradstep.h" "$root/include/gradstep.hpp" "$prefix/include/"
soname=$(readelf -d "$prefix/lib/libgradstep.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
pointer=$(getconf LONG_BIT)
fill() {
    sed -e "s|@VERSION@|$version|g" -e "s|@SONAME@|$soname|g" \
        -e "s|@LIBDIR@|lib|g" -e "s|@INCLUDEDIR@|include|g" \
        -e "s|@PC_PREFIX@|../..|g" -e "s|@CONFIG_PREFIX@|../../..|g" \
        -e "s|@SIZEOF_VOID_P@|$((pointer / 8))|g" "$root/cmake/$1.in" >"$2"
}
fill gradstep.pc "$prefix/lib/pkgconfig/gradstep.pc"
fill gradstepConfig.cmake "$prefix/lib/cmake/gradstep/gradstepConfig.cmake"
fill gradstepConfigVersion.cmake "$prefix/lib/cmake/gradstep/gradstepConfigVersion.cmake"
echo "installed gradstep $version in $prefix"
