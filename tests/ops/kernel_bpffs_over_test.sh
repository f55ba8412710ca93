#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A kernel bpffs mounted on a directory of the mount is seen (issue 20): bpftool run without
# `bpffsctl run` finds no bpf filesystem at a bpffs-fuse path and mounts the kernel's over it,
# and its pin then lands there, exit 0. The daemon logs a warning naming the path, and
# `bpffsctl status` lists it, until it is unmounted; a mount point with a space in it too.
#
#   kernel_bpffs_over_test.sh BPFFS_FUSE BPFFSCTL
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || fail "usage: kernel_bpffs_over_test.sh BPFFS_FUSE BPFFSCTL"
BPFFS_FUSE=$(realpath "$1")
BPFFSCTL=$(realpath "$2")
need bpftool "bpftool"

make_tmpdir
MNT=$T/mnt
mount_daemon "$BPFFS_FUSE" "$BPFFSCTL" "$MNT" -o mode=0755 --log-file "$T/daemon.log"
mkdir "$MNT/tool" "$MNT/dir two"
expect_eq "none at first" "$("$BPFFSCTL" status "$MNT" | field kernel_bpffs_mounts)" 0

# A map to pin, made on a kernel bpffs of the test's own.
mkdir "$T/k"
mount -t bpf bpf "$T/k" || fail "mount -t bpf"
defer umount "$T/k"
bpftool map create "$T/k/m" type array key 4 value 4 entries 1 name over_test ||
    fail "bpftool map create"
ID=$(bpftool map show pinned "$T/k/m" | sed -n 's/^\([0-9]*\): .*/\1/p')
[ -n "$ID" ] || fail "no id for the map"
# bpftool, without the shim: it mounts a kernel bpffs at the pin's directory.
defer umount -l "$MNT/tool"
bpftool map pin id "$ID" "$MNT/tool/x" || fail "bpftool map pin"
expect_eq "bpftool's pin landed on the kernel's bpffs" "$(stat -f -c %T "$MNT/tool")" "bpf_fs"
defer umount "$MNT/dir two"
mount -t bpf bpf "$MNT/dir two" || fail "mount -t bpf"
wait_until 10 grep -qF "a kernel bpffs is mounted at $MNT/dir two, on this bpffs-fuse mount" \
    "$T/daemon.log" || fail "no warning for $MNT/dir two in the log"
expect "the warning for bpftool's" grep -qF "a kernel bpffs is mounted at $MNT/tool," "$T/daemon.log"
s=$("$BPFFSCTL" status "$MNT")
expect_eq "status counts them" "$(field kernel_bpffs_mounts <<<"$s")" 2
expect_eq "status names them" "$(field kernel_bpffs_at <<<"$s")" "$MNT/dir two, $MNT/tool"
umount "$MNT/dir two"
umount "$MNT/tool"
wait_until 10 sh -c "[ \"\$(\"$BPFFSCTL\" status \"$MNT\" | sed -n 's/^kernel_bpffs_mounts: //p')\" = 0 ]" ||
    fail "status still counts kernel bpffs mounts after they were unmounted"
