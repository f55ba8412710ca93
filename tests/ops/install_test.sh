#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `cmake --install` into a DESTDIR, and a program outside the project built against what was
# installed, as a distribution's package and a user's program would be:
#   - DESTDIR=... cmake --install BUILD --prefix /usr puts every piece under DESTDIR/usr and
#     nothing elsewhere: binaries, libbpffs (shared + static), headers, bpffs.pc, the CMake
#     package, the systemd units, the man pages; the paths inside them are the prefix's;
#   - a tiny C consumer (tests/ops/consumer) builds once with pkg-config and once with
#     find_package(bpffs) (bpffs::bpffs and bpffs::bpffs_static), links the installed library,
#     and pins and fetches a real map and program on a mount of the *installed* daemon, which
#     the installed bpffsctl then inspects.
#
#   install_test.sh BUILD_DIR SOURCE_DIR [SANITIZERS]
# SANITIZERS: the build's BPFFS_SANITIZE (an instrumented libbpffs needs an instrumented
# consumer). Run as root.
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -ge 2 ] || fail "usage: install_test.sh BUILD_DIR SOURCE_DIR [SANITIZERS]"
BUILD=$1
SRC=$2
SAN=${3:-}
SANFLAGS=""
[ -n "$SAN" ] && SANFLAGS="-fsanitize=$SAN"
need cmake "cmake"
need pkg-config "pkg-config"
need cc "build-essential"
need nm "binutils"
need readelf "binutils"
need groff "groff-base"

make_tmpdir
D=$T/dest

log "installing $BUILD into DESTDIR=$D with --prefix /usr"
if ! DESTDIR=$D cmake --install "$BUILD" --prefix /usr >"$T/install.log" 2>&1; then
    cat "$T/install.log"
    fail "cmake --install failed"
fi

# --- the layout -----------------------------------------------------------------------------
outside=$(cd "$D" && find . -mindepth 1 -maxdepth 1 ! -name usr)
expect_eq "nothing is installed outside the prefix" "$outside" ""
pc=$(find "$D/usr" -name bpffs.pc -path '*/pkgconfig/*')
[ -n "$pc" ] || fail "no bpffs.pc installed"
LIBDIR=$(dirname "$(dirname "$pc")")
log "libdir: ${LIBDIR#"$D"}"
for f in usr/bin/bpffs-fuse usr/bin/bpffsctl; do
    expect "$f is an executable" test -x "$D/$f" -a -f "$D/$f"
done
for f in libbpffs.so libbpffs.so.0 libbpffs.a cmake/bpffs/bpffsConfig.cmake \
    cmake/bpffs/bpffsConfigVersion.cmake cmake/bpffs/bpffsTargets.cmake; do
    expect "${LIBDIR#"$D"}/$f is installed" test -e "$LIBDIR/$f"
done
expect "libbpffs.so links to its soname" test "$(readlink "$LIBDIR/libbpffs.so")" = libbpffs.so.0
for f in include/bpffs/bpffs.h include/bpffs/bpffs.hpp lib/systemd/system/bpffs-fuse@.service \
    lib/systemd/system/mnt-bpf.mount share/man/man8/bpffs-fuse.8 share/man/man8/bpffsctl.8 \
    share/man/man3/bpffs.3; do
    expect "/usr/$f is installed" test -f "$D/usr/$f"
done
# The manifest lists the paths without DESTDIR.
while read -r f; do
    [ -e "$D$f" ] || [ -L "$D$f" ] || fail "install_manifest.txt lists $f, which was not installed"
done <"$BUILD/install_manifest.txt"
log "ok: every file of install_manifest.txt exists"

# The paths written into installed files are the prefix's, never the build's or /usr/local.
expect_eq "bpffs.pc's prefix" "$(sed -n 's/^prefix=//p' "$pc")" /usr
expect_eq "the service's ExecStart" \
    "$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$D/usr/lib/systemd/system/bpffs-fuse@.service")" \
    /usr/bin/bpffs-fuse
leaks=$(grep -rlF -e "$(cd "$BUILD" && pwd -P)" -e "$(cd "$SRC" && pwd -P)" \
    "$D/usr/lib/systemd" "$LIBDIR/pkgconfig" "$LIBDIR/cmake" "$D/usr/share/man" || true)
expect_eq "no installed text file names the build or source tree" "$leaks" ""
leaks=$(grep -rlF /usr/local "$D/usr/lib/systemd" "$LIBDIR/pkgconfig" "$LIBDIR/cmake" || true)
expect_eq "no unit, .pc or CMake file names /usr/local (the configure-time prefix)" "$leaks" ""
for f in "$D/usr/bin/bpffs-fuse" "$D/usr/bin/bpffsctl" "$LIBDIR/libbpffs.so.0"; do
    rpath=$(readelf -d "$f" | grep -E 'RPATH|RUNPATH' || true)
    expect_eq "${f#"$D"} has no build-tree RPATH" "$rpath" ""
done

# The shared library exports the C API and none of the project's C++ internals.
exports=$(nm -D --defined-only "$LIBDIR/libbpffs.so.0")
expect "libbpffs.so exports bpffs_obj_pin" grep -q ' T bpffs_obj_pin$' <<<"$exports"
expect "libbpffs.so exports bpffs_obj_get" grep -q ' T bpffs_obj_get$' <<<"$exports"
internal=$(grep -E '_ZN5bpffs|_ZNK5bpffs' <<<"$exports" || true)
expect_eq "libbpffs.so exports no bpffs:: internals" "$internal" ""

# The man pages format without warnings.
for m in "$D"/usr/share/man/man*/*; do
    warnings=$(groff -man -ww -z "$m" 2>&1 || echo "groff failed")
    expect_eq "${m#"$D"} formats cleanly" "$warnings" ""
done

# --- a consumer built with pkg-config -------------------------------------------------------
# The .pc file spells /usr, as a package's does; PKG_CONFIG_SYSROOT_DIR maps it into DESTDIR,
# and PKG_CONFIG_LIBDIR keeps every other .pc file (a bpffs.pc elsewhere) out of the search.
pcq() { PKG_CONFIG_SYSROOT_DIR=$D PKG_CONFIG_LIBDIR=$LIBDIR/pkgconfig pkg-config "$@"; }
version=$("$D/usr/bin/bpffs-fuse" --version | awk '{print $2}')
expect_eq "pkg-config --modversion bpffs matches bpffs-fuse --version" \
    "$(pcq --modversion bpffs)" "$version"
bpffs_flags=$(pcq --cflags --libs bpffs)
libbpf_flags=$(pkg-config --cflags --libs libbpf)
log "pkg-config bpffs: $bpffs_flags"
# shellcheck disable=SC2086
expect "the consumer builds with pkg-config" \
    cc -std=c11 -Wall -Werror $SANFLAGS -o "$T/consumer_pkgconfig" \
    "$SRC/tests/ops/consumer/consumer.c" $bpffs_flags $libbpf_flags -Wl,-rpath,"$LIBDIR"

# --- a consumer built with find_package(bpffs) ----------------------------------------------
log "configuring tests/ops/consumer with CMAKE_PREFIX_PATH=$D/usr"
if ! cmake -S "$SRC/tests/ops/consumer" -B "$T/consumer-build" -DCMAKE_PREFIX_PATH="$D/usr" \
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_C_FLAGS="-Wall -Werror $SANFLAGS" \
    -DCMAKE_EXE_LINKER_FLAGS="$SANFLAGS" >"$T/consumer-cmake.log" 2>&1 ||
    ! cmake --build "$T/consumer-build" >>"$T/consumer-cmake.log" 2>&1; then
    cat "$T/consumer-cmake.log"
    fail "the find_package consumer does not build"
fi
log "ok: the consumer builds with find_package(bpffs) (shared and static)"
expect_eq "find_package found the installed package" \
    "$(sed -n 's/^bpffs_DIR:PATH=//p' "$T/consumer-build/CMakeCache.txt")" "$LIBDIR/cmake/bpffs"

# Each consumer uses the installed library: the shared ones load it from DESTDIR, the static
# one carries it.
for c in "$T/consumer_pkgconfig" "$T/consumer-build/consumer_shared"; do
    resolved=$(ldd "$c" | awk '$1 == "libbpffs.so.0" {print $3}')
    expect_eq "${c#"$T"/} loads the installed libbpffs" "$resolved" "$LIBDIR/libbpffs.so.0"
done
static_deps=$(ldd "$T/consumer-build/consumer_static" | grep libbpffs || true)
expect_eq "consumer_static needs no libbpffs.so" "$static_deps" ""

# --- they work: the installed daemon, the installed bpffsctl ---------------------------------
MNT=$T/mnt
mkdir "$MNT"
defer unmount_quietly "$MNT"
log "mounting the installed bpffs-fuse on $MNT"
"$D/usr/bin/bpffs-fuse" "$MNT" -o mode=0755 || fail "the installed bpffs-fuse did not mount"
expect "$MNT is a bpffs-fuse mount" is_bpffs_mount "$MNT"
status=$("$D/usr/bin/bpffsctl" status "$MNT") || fail "the installed bpffsctl status failed"
pid=$(field pid <<<"$status")
defer stop_pid "$pid"
expect_eq "the daemon is the installed binary" "$(readlink "/proc/$pid/exe")" \
    "$D/usr/bin/bpffs-fuse"

for c in "$T/consumer_pkgconfig" "$T/consumer-build/consumer_shared" \
    "$T/consumer-build/consumer_static"; do
    name=$(basename "$c")
    mkdir "$MNT/$name"
    expect "$name pins and fetches a map and a program" "$c" "$MNT/$name"
done
expect "consumer_shared --keep leaves its objects pinned" \
    "$T/consumer-build/consumer_shared" --keep "$MNT/consumer_shared"
status=$("$D/usr/bin/bpffsctl" status "$MNT")
expect_eq "bpffsctl status counts the kept map" "$(field maps <<<"$status")" 1
expect_eq "bpffsctl status counts the kept program" "$(field programs <<<"$status")" 1
got=$("$D/usr/bin/bpffsctl" get "$MNT/consumer_shared/consumer_map")
expect_eq "bpffsctl get sees the consumer's map" "$(field type <<<"$got")" map
expect_eq "... by its name" "$(field name <<<"$got")" consumer

umount "$MNT"
expect "the daemon exits after umount" wait_until 15 proc_gone "$pid"
