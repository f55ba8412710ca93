#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Mounting through mount(8) and mount.fuse3, as an operator and fstab do:
#   - `mount -t fuse.bpffs-fuse bpffs DIR -o mode=0750`;
#   - the fstab line `bpffs DIR fuse.bpffs-fuse uid=1000,mode=0750 0 0`, mounted with
#     `mount -T FSTAB DIR`, and a line with the options fstab lines carry for other tools
#     (noauto, nofail, _netdev, x-systemd.*), which mount(8) and mount.fuse3 strip;
#   - ro, nosuid, nodev reach the mount;
#   - an unknown option makes mount(8) fail and leaves nothing mounted;
#   - mount(8) returns once the mount serves requests, and `umount` stops the daemon.
#
# mount(8) drops $PATH before it runs a helper, and mount.fuse3 starts "bpffs-fuse" through
# /bin/sh with the default search path, so the daemon under test must be found there. The test
# runs in a private mount namespace (unshare) where /usr/local/sbin, first in that path, is a
# bind mount of a temp dir holding a link to the build's bpffs-fuse: nothing is installed on the
# host, and every mount of the test disappears with the namespace.
#
#   mount_helper_test.sh BPFFS_FUSE BPFFSCTL
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || fail "usage: mount_helper_test.sh BPFFS_FUSE BPFFSCTL"
BPFFS_FUSE=$(realpath "$1")
BPFFSCTL=$(realpath "$2")

if [ -z "${BPFFS_OPS_PRIVATE_NS:-}" ]; then
    need unshare "util-linux"
    trap - EXIT
    BPFFS_OPS_PRIVATE_NS=1 exec unshare --mount --propagation private -- "$0" "$@"
fi
need mount.fuse3 "fuse3"
need findmnt "util-linux"

make_tmpdir
mkdir "$T/bin"
ln -s "$BPFFS_FUSE" "$T/bin/bpffs-fuse"
mount --bind "$T/bin" /usr/local/sbin || fail "cannot bind $T/bin on /usr/local/sbin"
defer umount -l /usr/local/sbin

# What mount(8) will run: our daemon, not one installed on the machine.
found=$(env -i /bin/sh -c 'command -v bpffs-fuse')
expect_eq "sh's default search path finds the daemon under test" "$found" \
    /usr/local/sbin/bpffs-fuse

# mounted DIR: checks that DIR is served by the daemon under test; sets PID to its pid.
mounted() {
    local status
    expect "$1 is a fuse.bpffs-fuse mount" is_bpffs_mount "$1"
    expect_eq "its source" "$(findmnt -rn -o SOURCE --mountpoint "$1")" bpffs
    status=$("$BPFFSCTL" status "$1") || fail "bpffsctl status $1 failed right after mount"
    PID=$(field pid <<<"$status")
    defer stop_pid "$PID"
    expect_eq "the daemon is the binary under test" "$(readlink "/proc/$PID/exe")" "$BPFFS_FUSE"
}
# unmounted DIR: umount stops the daemon $PID.
unmounted() {
    expect "umount $1" umount "$1"
    expect "the daemon exits after umount" wait_until 15 proc_gone "$PID"
}

# --- mount -t -----------------------------------------------------------------------------------
A=$T/a
mkdir "$A"
defer unmount_quietly "$A"
expect "mount -t fuse.bpffs-fuse bpffs $A -o mode=0750" \
    mount -t fuse.bpffs-fuse bpffs "$A" -o mode=0750
mounted "$A"
expect_eq "the root's mode and owner" "$(owner_mode "$A")" "0750 0 0"
expect "the mount accepts a directory" mkdir "$A/dir"
unmounted "$A"

# --- fstab ----------------------------------------------------------------------------------------
B=$T/b
C=$T/c
mkdir "$B" "$C"
defer unmount_quietly "$B"
defer unmount_quietly "$C"
cat >"$T/fstab" <<EOF
# test fstab
bpffs $B fuse.bpffs-fuse uid=1000,mode=0750 0 0
bpffs $C fuse.bpffs-fuse noauto,nofail,_netdev,x-systemd.requires=local-fs.target,gid=1000,mode=01777,ro,nosuid,nodev 0 0
EOF
expect "mount -T fstab $B" mount -T "$T/fstab" "$B"
mounted "$B"
expect_eq "the root's mode and owner from fstab" "$(owner_mode "$B")" "0750 1000 0"
expect_eq "bpffsctl status shows the fstab options" \
    "$("$BPFFSCTL" status "$B" | field options)" "uid=1000,mode=750"
unmounted "$B"

expect "mount -T fstab $C (noauto, nofail, _netdev, x-systemd.*, ro, nosuid, nodev)" \
    mount -T "$T/fstab" "$C"
mounted "$C"
expect_eq "the root's mode and owner" "$(owner_mode "$C")" "1777 0 1000"
opts=$(findmnt -rn -o VFS-OPTIONS --mountpoint "$C")
for o in ro nosuid nodev; do
    case ",$opts," in
    *",$o,"*) log "ok: the mount is $o ($opts)" ;;
    *) fail "the mount is not $o ($opts)" ;;
    esac
done
if mkdir "$C/dir" 2>"$T/err"; then fail "mkdir on a read-only mount succeeded"; fi
expect "mkdir on the read-only mount is EROFS" grep -q "Read-only file system" "$T/err"
unmounted "$C"

# --- failures -------------------------------------------------------------------------------------
D=$T/d
mkdir "$D"
defer unmount_quietly "$D"
if mount -t fuse.bpffs-fuse bpffs "$D" -o mode=0750,bogus 2>"$T/err"; then
    fail "mount with an unknown option succeeded"
fi
log "mount(8) said: $(tr '\n' ' ' <"$T/err")"
expect "the error names the option" grep -q "bogus" "$T/err"
expect "nothing is mounted" not_mounted "$D"
if mount -t fuse.bpffs-fuse bpffs "$D" -o mode=abc 2>"$T/err"; then
    fail "mount with an invalid mode succeeded"
fi
expect "an invalid mode is refused" grep -q "mode" "$T/err"
expect "nothing is mounted" not_mounted "$D"
