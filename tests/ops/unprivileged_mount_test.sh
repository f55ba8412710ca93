#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An unprivileged user mounts through fusermount3 (issue 20): without user_allow_other in
# /etc/fuse.conf, bpffs-fuse mounts without allow_other and says what that means, instead of
# fusermount3 refusing the whole mount; the user uses the mount (status, mkdir) and unmounts it
# (fusermount3 -uz); root, as FUSE decides without allow_other, is kept out.
# /dev/fuse is made 0666 for the test (Debian's default; this machine's may be 0600), and put
# back.
#
#   unprivileged_mount_test.sh BPFFS_FUSE BPFFSCTL
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || fail "usage: unprivileged_mount_test.sh BPFFS_FUSE BPFFSCTL"
need setpriv "util-linux"
need fusermount3 "fuse3"
if grep -qE '^[[:space:]]*user_allow_other' /etc/fuse.conf 2>/dev/null; then
    log "skipped: /etc/fuse.conf has user_allow_other here, so allow_other is kept"
    exit 0
fi

make_tmpdir
cp "$(realpath "$1")" "$(realpath "$2")" "$T/"
BPFFS_FUSE=$T/bpffs-fuse
BPFFSCTL=$T/bpffsctl
MNT=$T/mnt
mkdir "$MNT"
chown 65534:65534 "$MNT"
touch "$T/log"
chown 65534:65534 "$T/log"
defer unmount_quietly "$MNT"
old_mode=$(stat -c %a /dev/fuse)
defer chmod "$old_mode" /dev/fuse
chmod 0666 /dev/fuse
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

as_nobody "$BPFFS_FUSE" "$MNT" -o compat=linux,mode=0755 --log-file "$T/log" 2>"$T/err" ||
    fail "nobody could not mount: $(cat "$T/err")"
log "stderr: $(cat "$T/err")"
expect "the mount says it is without allow_other" grep -q "mounting without allow_other" "$T/err"
opts=$(findmnt -rn -o OPTIONS --mountpoint "$MNT")
expect "no allow_other in the mount's options ($opts)" bash -c "! grep -q allow_other <<<'$opts'"
expect "the mounter's uid" grep -q "user_id=65534" <<<"$opts"
PID=$(as_nobody "$BPFFSCTL" status "$MNT" | field pid)
[ -n "$PID" ] || fail "nobody's status failed"
defer stop_pid "$PID"
expect "nobody makes a directory" as_nobody mkdir "$MNT/d"
expect "root is kept out (no allow_other)" bash -c "! stat '$MNT/d' 2>/dev/null"
expect "nobody unmounts it" as_nobody fusermount3 -uz "$MNT"
wait_until 10 proc_gone "$PID" || fail "the daemon did not exit after the unmount"
