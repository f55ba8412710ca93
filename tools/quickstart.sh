#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One entry point for a fresh Debian 12 machine (run as root):
#   tools/quickstart.sh mount MOUNTPOINT [bpffs-fuse options]   install deps, build, mount
#   tools/quickstart.sh test [ctest options]                     install deps, build, run all tests
#   tools/quickstart.sh build                                    install deps, build
# The build goes to ./build (override with BUILD_DIR). Debian packages are installed only when
# one of tools/deps.txt is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}

die() { echo "quickstart: error: $*" >&2; exit 1; }

deps() {
    local missing=()
    while read -r pkg; do
        [ -z "$pkg" ] && continue
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$pkg")
    done < tools/deps.txt
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}): run as root to install them"
    echo "quickstart: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
}

build() {
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-} >/dev/null
    cmake --build "$BUILD_DIR" -j "$(nproc)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    mount)
        [ $# -ge 1 ] || die "usage: tools/quickstart.sh mount MOUNTPOINT [bpffs-fuse options]"
        deps; build
        mkdir -p "$1"
        exec "$BUILD_DIR/bpffs-fuse" "$@"
        ;;
    test)
        deps; build
        exec ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
        ;;
    build)
        deps; build
        ;;
    *)
        echo "usage: tools/quickstart.sh {mount MOUNTPOINT [options] | test [ctest options] | build}" >&2
        exit 2
        ;;
esac
