#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A service hands a tree to a user (issue 20): root makes it with `bpffsctl mkdir -p --mode
# --owner` and pins objects into it with `bpffsctl pin --mode --owner`; the user then pins and
# fetches there as its own, and gives its objects only to groups it is in. Each new directory
# gets the owner and mode, existing ones are left alone; a refused mkdir leaves nothing. The
# rules themselves are compared with the kernel's pin + chmod + chown in
# tests/compat_linux_test.cpp; this is the command line over a real mount.
#
#   owner_mode_test.sh BPFFS_FUSE BPFFSCTL
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || fail "usage: owner_mode_test.sh BPFFS_FUSE BPFFSCTL"
BPFFS_FUSE=$(realpath "$1")
BPFFSCTL=$(realpath "$2")
need setpriv "util-linux"

make_tmpdir
MNT=$T/mnt
KMNT=$T/kernel
mount_daemon "$BPFFS_FUSE" "$BPFFSCTL" "$MNT" -o compat=linux,mode=0755
kernel_map "$KMNT" owner_test
chmod 0666 "$KMNT/m"  # the user fetches it there, to have something to pin
cp "$BPFFSCTL" "$T/bpffsctl"
as_nobody() { setpriv --reuid=65534 --regid=65534 --groups=65533 "$@"; }

mkdir "$MNT/apps"
chmod 0711 "$MNT/apps"
expect "root makes the user's tree" \
    "$BPFFSCTL" mkdir -p --mode 0750 --owner 65534:65534 "$MNT/apps/nobody/maps"
expect_eq "the existing parent is left alone" "$(owner_mode "$MNT/apps")" "0711 0 0"
expect_eq "each new directory has the owner and mode" \
    "$(owner_mode "$MNT/apps/nobody") $(owner_mode "$MNT/apps/nobody/maps")" \
    "0750 65534 65534 0750 65534 65534"
expect "-p of an existing tree is no error" "$BPFFSCTL" mkdir -p --mode 0700 "$MNT/apps/nobody"
expect_eq "and changes nothing" "$(owner_mode "$MNT/apps/nobody")" "0750 65534 65534"

expect "root pins an object for the user" \
    "$BPFFSCTL" pin --from "$KMNT/m" --mode 0640 --owner 65534:65533 "$MNT/apps/nobody/maps/m"
expect_eq "the object has the owner and mode" "$(owner_mode "$MNT/apps/nobody/maps/m")" \
    "0640 65534 65533"
kid=$(bpftool map show pinned "$KMNT/m" | sed -n 's/^\([0-9]*\): .*/\1/p')
expect_eq "the user fetches it: the same kernel map" \
    "$(as_nobody "$T/bpffsctl" get "$MNT/apps/nobody/maps/m" | field id)" "$kid"
expect "the user pins its own, for a group it is in" \
    as_nobody "$T/bpffsctl" pin --from "$KMNT/m" --mode 0604 --owner :65533 "$MNT/apps/nobody/maps/n"
expect_eq "with that group and mode" "$(owner_mode "$MNT/apps/nobody/maps/n")" "0604 65534 65533"
expect "the user makes a directory of its own with a mode" \
    as_nobody "$T/bpffsctl" mkdir --mode 0700 "$MNT/apps/nobody/private"
expect_eq "as asked, whatever its umask" "$(owner_mode "$MNT/apps/nobody/private")" \
    "0700 65534 65534"
if as_nobody "$T/bpffsctl" mkdir -p --owner :0 "$MNT/apps/nobody/x/y" 2>"$T/err"; then
    fail "the user gave a directory to root's group"
fi
log "refused: $(cat "$T/err")"
expect "a refused mkdir -p leaves none of the directories it made" \
    test ! -e "$MNT/apps/nobody/x"
if as_nobody "$T/bpffsctl" pin --from "$KMNT/m" --owner 0 "$MNT/apps/nobody/maps/o" 2>"$T/err"
then
    fail "the user gave an object to root"
fi
expect "a refused pin leaves no name" test ! -e "$MNT/apps/nobody/maps/o"
expect "root reads the tree with ls -l" "$BPFFSCTL" ls -l -R "$MNT/apps"
