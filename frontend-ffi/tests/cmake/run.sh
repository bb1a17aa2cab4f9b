#!/usr/bin/env bash
# The installed library as a C/C++ user meets it (the test command runs this):
# scripts/install.sh and CMake's install write the same tree; the shared library has
# its SONAME, versioned symlinks, no debug info and exports only gradstep_*; the static
# library has no other global symbol; pkg-config, find_package (shared and static, also
# after the tree is moved) and FetchContent from the source tree all build and run
# tests/cmake/consumer (C, and C++ through gradstep.hpp).
# Usage: frontend-ffi/tests/cmake/run.sh   (CARGO_TARGET_DIR is honoured)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

version=$(sed -n 's/^#define GRADSTEP_VERSION_STRING "\(.*\)"/\1/p' "$root/include/gradstep.h")
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
if [[ $major == 0 ]]; then abi=0.$minor; else abi=$major; fi

echo "-- scripts/install.sh"
"$root/scripts/install.sh" "$work/a" >/dev/null
lib=$work/a/lib

echo "-- SONAME and symlinks"
soname=$(readelf -d "$lib/libgradstep.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[[ $soname == "libgradstep.so.$abi" ]] || fail "SONAME is '$soname', expected libgradstep.so.$abi"
[[ $(readlink "$lib/libgradstep.so") == "libgradstep.so.$abi" ]] || fail "libgradstep.so link"
[[ $(readlink "$lib/libgradstep.so.$abi") == "libgradstep.so.$version" ]] || fail ".so.$abi link"

echo "-- exported symbols (nm)"
# The functions the header declares (static inline helpers excepted).
grep -oE '^[a-z].*[ *](gradstep_[a-z0-9_]+)\(' "$root/include/gradstep.h" |
    grep -v '^static' | sed -E 's/.*[ *](gradstep_[a-z0-9_]+)\($/\1/' | sort -u >"$work/declared.txt"
[[ $(wc -l <"$work/declared.txt") -gt 40 ]] || fail "found only $(wc -l <"$work/declared.txt") declarations"
nm -D --defined-only "$lib/libgradstep.so" | awk '{ print $3 }' | sort -u >"$work/shared.txt"
diff "$work/declared.txt" "$work/shared.txt" || fail "the shared library exports other symbols than the header declares"
nm -g --defined-only "$lib/libgradstep.a" | awk 'NF == 3 { print $3 }' | sort -u >"$work/static.txt"
diff "$work/declared.txt" "$work/static.txt" || fail "the static library's global symbols are not the header's functions"

echo "-- no debug info"
for f in "$lib/libgradstep.so.$version" "$lib/libgradstep.a"; do
    if readelf -S -W "$f" | grep -q '\.debug_'; then fail "$f has debug info"; fi
done
printf 'sizes: libgradstep.a %s bytes, libgradstep.so %s bytes (cargo: %s, %s)\n' \
    "$(stat -c %s "$lib/libgradstep.a")" "$(stat -c %s "$lib/libgradstep.so.$version")" \
    "$(stat -c %s "${CARGO_TARGET_DIR:-$root/target}/release/libgradstep.a")" \
    "$(stat -c %s "${CARGO_TARGET_DIR:-$root/target}/release/libgradstep.so")"

consumer() { # NAME CMAKE-ARGS...: configure, build and run the consumer project
    local name=$1
    shift
    cmake -S "$here/consumer" -B "$work/build-$name" -DCMAKE_BUILD_TYPE=Debug "$@" >"$work/build-$name.log" 2>&1 ||
        { cat "$work/build-$name.log"; fail "$name: configure"; }
    cmake --build "$work/build-$name" >>"$work/build-$name.log" 2>&1 || { cat "$work/build-$name.log"; fail "$name: build"; }
    [[ $("$work/build-$name/consumer") == "consumer ok" ]] || fail "$name: consumer"
    [[ $("$work/build-$name/consumer_cpp") == "consumer ok" ]] || fail "$name: consumer_cpp"
}

echo "-- pkg-config"
PKG_CONFIG_PATH=$lib/pkgconfig
export PKG_CONFIG_PATH
[[ $(pkg-config --modversion gradstep) == "$version" ]] || fail "pkg-config version"
# shellcheck disable=SC2046
cc -std=c99 -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags gradstep) \
    "$here/consumer/main.c" $(pkg-config --libs gradstep) -lm \
    -Wl,-rpath,"$(pkg-config --variable=libdir gradstep)" -o "$work/pc"
[[ $("$work/pc") == "consumer ok" ]] || fail "pkg-config consumer"
unset PKG_CONFIG_PATH

echo "-- find_package: shared, static"
consumer shared -DGRADSTEP_FROM=package -DGRADSTEP_WANT="$major.$minor" -DCMAKE_PREFIX_PATH="$work/a"
ldd "$work/build-shared/consumer" >"$work/ldd.txt"
grep -q "libgradstep.so.$abi => $lib/" "$work/ldd.txt" || fail "shared: not linked to the installed libgradstep.so.$abi"
consumer static -DGRADSTEP_FROM=package -DGRADSTEP_WANT="$major.$minor" -DCMAKE_PREFIX_PATH="$work/a" -DGRADSTEP_STATIC=ON
ldd "$work/build-static/consumer" >"$work/ldd.txt"
if grep -q libgradstep "$work/ldd.txt"; then fail "static: linked to the shared library"; fi

echo "-- the version file: the same ABI only"
compatible() { # REQUESTED-VERSION: what the installed version file answers
    local v=$1
    printf 'set(PACKAGE_FIND_VERSION %s)\nstring(REPLACE . ";" p %s)\nlist(GET p 0 PACKAGE_FIND_VERSION_MAJOR)\nlist(GET p 1 PACKAGE_FIND_VERSION_MINOR)\ninclude("%s")\nmessage("${PACKAGE_VERSION_COMPATIBLE}")\n' \
        "$v" "$v" "$lib/cmake/gradstep/gradstepConfigVersion.cmake" >"$work/version.cmake"
    cmake -P "$work/version.cmake" 2>&1
}
[[ $(compatible "$major.$minor") == TRUE ]] || fail "version $major.$minor refused"
[[ $(compatible "$major.$((minor + 1))") == FALSE ]] || fail "a newer minor version accepted"
[[ $(compatible "$((major + 1)).0") == FALSE ]] || fail "a newer major version accepted"

echo "-- the installed tree, moved"
mv "$work/a" "$work/moved"
consumer moved -DGRADSTEP_FROM=package -DGRADSTEP_WANT="$major.$minor" -DCMAKE_PREFIX_PATH="$work/moved" -DGRADSTEP_STATIC=ON
[[ $(PKG_CONFIG_PATH=$work/moved/lib/pkgconfig pkg-config --variable=libdir gradstep) -ef $work/moved/lib ]] ||
    fail "pkg-config libdir after the move"

echo "-- CMake build and install of the source tree"
cmake -S "$root" -B "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "configure"; }
cmake --build "$work/build" >>"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "build"; }
cmake --install "$work/build" --prefix "$work/b" >>"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "install"; }
(cd "$work/moved" && find . | sort) >"$work/files.a"
(cd "$work/b" && find . | sed 's|/lib64|/lib|' | sort) >"$work/files.b"
diff "$work/files.a" "$work/files.b" || fail "cmake --install and scripts/install.sh install different files"
consumer cmake-installed -DGRADSTEP_FROM=package -DGRADSTEP_WANT="$major.$minor" -DCMAKE_PREFIX_PATH="$work/b"

echo "-- FetchContent from the source tree"
consumer fetch -DGRADSTEP_FROM=fetch -DGRADSTEP_SOURCE="$root"
echo "cmake: ok"
