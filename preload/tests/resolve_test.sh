#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The shim finds the mount from the filesystem, not from the path's text: statfs, statfs64,
# fstatfs and fstatfs64 report the bpf magic, and pins and gets are served, for the mount's
# root, directories and objects named by relative paths, through symlinks from elsewhere,
# through a bind mount of a subdirectory, in another mount namespace where the mount's own
# path is gone, and without /proc. Paths elsewhere keep their real f_type.
source "$(dirname "$0")/lib.sh"

MNT=$WORK/mnt
start_bpffs "$MNT" -o mode=0755
mkdir "$MNT/d"
expect "pin" "$(shim "$PROBE" pin "$MNT/d/m")" ok
id=$("$BPFFSCTL" get "$MNT/d/m" | sed -n 's/^id: //p')
ln -s "$MNT/d" "$WORK/dirlink"
ln -s "$MNT/d/m" "$WORK/objlink"
bind_mount "$MNT/d" "$WORK/bind"

BPF="statfs 0xcafe4a11
statfs64 0xcafe4a11
fstatfs 0xcafe4a11
fstatfs64 0xcafe4a11"

statfs_expect() {  # WHAT PATH [DIR to run in]
    expect "statfs: $1" "$(cd "${3:-/}" && shim "$PROBE" statfs "$2")" "$BPF"
}
statfs_expect "the mount's root" "$MNT"
statfs_expect "a directory" "$MNT/d"
statfs_expect "an object" "$MNT/d/m"
statfs_expect "a relative path" d "$MNT"
statfs_expect "a relative object path" m "$MNT/d"
statfs_expect "." . "$MNT/d"
statfs_expect "a symlink to a directory" "$WORK/dirlink"
statfs_expect "a symlink to an object" "$WORK/objlink"
statfs_expect "a bind mount of a subdirectory" "$WORK/bind"
statfs_expect "an object through a bind mount" "$WORK/bind/m"
statfs_expect "a path with // and a trailing /" "$MNT//d/"
chmod 0700 "$MNT/d"
# As nobody, with copies where nobody may go: the build tree may be where only root can (a
# checkout under /root).
chmod 0711 "$WORK"
mkdir -m 0755 "$WORK/others"
cp "$PROBE" "$BPFFS_PRELOAD" "$WORK/others/"
expect "statfs: a directory the caller cannot search (judged by its parent)" \
    "$(setpriv --reuid=65534 --regid=65534 --clear-groups \
        env LD_PRELOAD="$WORK/others/$(basename "$BPFFS_PRELOAD")" \
        "$WORK/others/$(basename "$PROBE")" statfs "$MNT/d")" "$BPF"
chmod 0755 "$MNT/d"
expect "statfs: elsewhere, the real f_type" \
    "$(shim "$PROBE" statfs "$WORK")" "$("$PROBE" statfs "$WORK")"
expect "statfs: the mount point's parent, the real f_type" \
    "$(shim "$PROBE" statfs "$MNT/..")" "$("$PROBE" statfs "$WORK")"
expect "statfs: a missing path, the real error" \
    "$(shim "$PROBE" statfs "$MNT/d/missing")" "$("$PROBE" statfs "$MNT/d/missing")"

get_expect() {  # WHAT PATH [DIR to run in]
    expect "get: $1" "$(cd "${3:-/}" && shim "$PROBE" get "$2")" "ok id=$id"
}
get_expect "a relative path" m "$MNT/d"
get_expect "a relative path with .." ../d/m "$MNT/d"
get_expect "a symlink to the object" "$WORK/objlink"
get_expect "through a symlinked directory" "$WORK/dirlink/m"
get_expect "through a bind mount" "$WORK/bind/m"
get_expect "a path with //" "$MNT//d//m"

pin_expect() {  # WHAT PATH [DIR to run in]: the pin is served and the object lands in $MNT/d
    expect "pin: $1" "$(cd "${3:-/}" && shim "$PROBE" pin "$2")" ok
    [ -e "$MNT/d/$(basename "$2")" ] || fail "pin: $1: not in $MNT/d"
}
pin_expect "a relative path" rel "$MNT/d"
pin_expect "through a symlinked directory" "$WORK/dirlink/sym"
pin_expect "through a bind mount" "$WORK/bind/bound"
pin_expect "a path with //" "$MNT//d//slashes"

# Another mount namespace, where only a bind mount of the directory is left: no path of the
# mount's own is known there, the filesystem is.
mkdir "$WORK/ns"
out=$(unshare --mount --propagation private sh -c '
    mount --bind "$1/d" "$2" && umount -l "$1" || exit 99
    LD_PRELOAD="$3" "$4" statfs "$2"
    LD_PRELOAD="$3" "$4" get "$2/m"
    LD_PRELOAD="$3" "$4" pin "$2/ns"
' sh "$MNT" "$WORK/ns" "$BPFFS_PRELOAD" "$PROBE")
expect "another mount namespace: statfs, get, pin" "$out" "$BPF
ok id=$id
ok"
[ -e "$MNT/d/ns" ] || fail "the pin from the other namespace is not in $MNT/d"

# Without /proc (hidden in another namespace, as in a bare chroot): symlinks, relative and
# chained, are followed from the path itself.
ln -s mnt/d/m "$WORK/rellink"
ln -s objlink "$WORK/chain"
out=$(unshare --mount --propagation private sh -c '
    mount -t tmpfs none /proc || exit 99
    for p in "$1/objlink" "$1/rellink" "$1/chain"; do
        LD_PRELOAD="$2" "$3" statfs "$p" | head -1
        LD_PRELOAD="$2" "$3" get "$p"
    done
' sh "$WORK" "$BPFFS_PRELOAD" "$PROBE")
expect "no /proc: statfs and get through absolute, relative and chained symlinks" "$out" \
    "$(for i in 1 2 3; do printf 'statfs 0xcafe4a11\nok id=%s\n' "$id"; done)"

# bpftool through the bind mount: served, and no bpffs mounted over it.
before=$(work_mounts)
"$BPFFSCTL" run -- bpftool map create "$WORK/bind/tool" type hash key 4 value 8 entries 16 name t
expect "bpftool map create through a bind mount: /proc/mounts unchanged" "$(work_mounts)" "$before"
[ -e "$MNT/d/tool" ] || fail "bpftool's pin through the bind mount is not in $MNT/d"
echo "ok: bpftool map create through a bind mount"
echo "passed"
