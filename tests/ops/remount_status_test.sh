#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bpffsctl status and bpffsctl remount against a running daemon:
#   - status prints the options in effect, uid/gid/mode, the counts of directories, maps and
#     programs (following mkdir, pin, unlink, rmdir), the daemon's pid and version, from any
#     directory of the mount, also as JSON; a directory off the mount is an error;
#   - remount -o uid=,gid=,mode= changes the root directory as stat sees it at once (the kernel's
#     cached attributes, valid for an hour otherwise, are invalidated), with the kernel's
#     rule that mode returns to 0700 when not given while uid and gid stay; subdirectories keep
#     theirs;
#   - remount validates like mount (invalid values, unknown options and mount flags are usage
#     errors, exit 2, nothing changes) and is privileged (EPERM, exit 1, for a user and for root
#     without CAP_SYS_ADMIN); the broker itself does both for a client that skips bpffsctl
#     (ops_remount_raw speaks the protocol directly).
#
#   remount_status_test.sh BPFFS_FUSE BPFFSCTL CONSUMER REMOUNT_RAW
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -eq 4 ] || fail "usage: remount_status_test.sh BPFFS_FUSE BPFFSCTL CONSUMER REMOUNT_RAW"
BPFFS_FUSE=$(realpath "$1")
BPFFSCTL=$2
CONSUMER=$3
REMOUNT_RAW=$4
need setpriv "util-linux"

make_tmpdir
MNT=$T/mnt
mkdir "$MNT"
defer unmount_quietly "$MNT"
"$BPFFS_FUSE" "$MNT" -o uid=1000,gid=1000,mode=0750 || fail "bpffs-fuse did not mount"

status() { "$BPFFSCTL" status "$@" || fail "bpffsctl status $* failed"; }
# counts DIRS MAPS PROGS: what status reports.
counts() {
    local s
    s=$(status "$MNT")
    expect_eq "directories, maps, programs" \
        "$(field directories <<<"$s") $(field maps <<<"$s") $(field programs <<<"$s")" "$1 $2 $3"
}

# --- status ---------------------------------------------------------------------------------------
s=$(status "$MNT")
printf '%s\n' "$s"
PID=$(field pid <<<"$s")
defer stop_pid "$PID"
expect_eq "options" "$(field options <<<"$s")" "uid=1000,gid=1000,mode=750"
expect_eq "uid" "$(field uid <<<"$s")" 1000
expect_eq "gid" "$(field gid <<<"$s")" 1000
expect_eq "mode" "$(field mode <<<"$s")" 0750
expect_eq "the pid is the daemon's" "$(readlink "/proc/$PID/exe")" "$BPFFS_FUSE"
expect "... the one serving $MNT" grep -qF "$MNT" "/proc/$PID/cmdline"
expect_eq "the version is the daemon's" "$(field version <<<"$s")" \
    "$("$BPFFS_FUSE" --version | awk '{print $2}')"
counts 1 0 0

mkdir "$MNT/maps" "$MNT/tree" "$MNT/tree/leaf"
counts 4 0 0
expect "a map and a program are pinned" "$CONSUMER" --keep "$MNT/maps"
counts 4 1 1
expect_eq "status from a subdirectory is the mount's" \
    "$(status "$MNT/tree/leaf" | field directories)" 4
json=$(status --json "$MNT")
log "status --json: $json"
expect "the JSON has the counts" grep -q '"directories":4,"maps":1,"programs":1' <<<"$json"
expect "the JSON has the pid" grep -q "\"pid\":$PID" <<<"$json"
if "$BPFFSCTL" status "$T" >"$T/out" 2>&1; then fail "status of a directory off the mount succeeded"; fi
expect "status off the mount says so" grep -q "not on a bpffs-fuse mount" "$T/out"

# --- remount --------------------------------------------------------------------------------------
expect_eq "the root before remount (cached by the kernel now)" "$(owner_mode "$MNT")" "0750 1000 1000"
sub_before=$(owner_mode "$MNT/maps")
expect "remount -o uid=2000,gid=3000,mode=0711" \
    "$BPFFSCTL" remount "$MNT" -o uid=2000,gid=3000,mode=0711
expect_eq "stat sees the new root at once" "$(owner_mode "$MNT")" "0711 2000 3000"
# shellcheck disable=SC2012 # ls -l is the point: what a user sees
expect_eq "ls sees it too" "$(ls -ldn "$MNT" | awk '{print $1, $3, $4}')" "drwx--x--x 2000 3000"
expect_eq "status shows the new options" "$(status "$MNT" | field options)" \
    "uid=2000,gid=3000,mode=711"
expect_eq "a subdirectory keeps its mode and owner" "$(owner_mode "$MNT/maps")" "$sub_before"

expect "remount -o uid=5" "$BPFFSCTL" remount "$MNT" -o uid=5
expect_eq "mode returns to 0700, gid stays" "$(owner_mode "$MNT")" "0700 5 3000"

expect "remount -o mode=0755" "$BPFFSCTL" remount "$MNT" -o mode=0755
expect_eq "only the mode changed" "$(owner_mode "$MNT")" "0755 5 3000"

# Validation: usage errors (exit 2), and nothing changes.
for bad in mode=abc uid=-1 gid=x bogus ro nosuid; do
    rc=0
    "$BPFFSCTL" remount "$MNT" -o "$bad" >"$T/out" 2>&1 || rc=$?
    expect_eq "remount -o $bad is a usage error ($(tr '\n' ' ' <"$T/out"))" "$rc" 2
done
expect_eq "the root did not change" "$(owner_mode "$MNT")" "0755 5 3000"

# Privilege: a user, and root without CAP_SYS_ADMIN, are refused by the broker.
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups -- \
    "$BPFFSCTL" remount "$MNT" -o mode=0777 >"$T/out" 2>&1 || rc=$?
expect_eq "remount as an unprivileged user fails ($(tr '\n' ' ' <"$T/out"))" "$rc" 1
expect "... with EPERM" grep -q "Operation not permitted" "$T/out"
rc=0
setpriv --inh-caps=-all --bounding-set=-sys_admin -- \
    "$BPFFSCTL" remount "$MNT" -o mode=0777 >"$T/out" 2>&1 || rc=$?
expect_eq "remount as root without CAP_SYS_ADMIN fails ($(tr '\n' ' ' <"$T/out"))" "$rc" 1
expect "... with EPERM" grep -q "Operation not permitted" "$T/out"
expect_eq "the root did not change" "$(owner_mode "$MNT")" "0755 5 3000"

# The broker's own checks, for a client that skips bpffsctl's.
for bad in mode=abc uid=-1 bogus ro nosuid,mode=0777; do
    rc=0
    out=$("$REMOUNT_RAW" "$MNT" "$bad" 2>&1) || rc=$?
    expect_eq "the broker refuses remount '$bad' ($out)" "$rc $out" "1 remount: Invalid argument"
done
rc=0
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups -- "$REMOUNT_RAW" "$MNT" mode=0777 2>&1) ||
    rc=$?
expect_eq "the broker refuses remount from a user ($out)" "$rc $out" \
    "1 remount: Operation not permitted"
expect_eq "the root did not change" "$(owner_mode "$MNT")" "0755 5 3000"
out=$("$REMOUNT_RAW" "$MNT" gid=0x10,mode=0751) || fail "the broker refused a valid remount: $out"
expect_eq "a valid list sent directly applies (C integer syntax)" \
    "$(owner_mode "$MNT")" "0751 5 16"

# --- the counts follow unlink and rmdir -----------------------------------------------------------
rm "$MNT/maps/consumer_map" "$MNT/maps/consumer_prog"
counts 4 0 0
rmdir "$MNT/tree/leaf" "$MNT/tree" "$MNT/maps"
counts 1 0 0

umount "$MNT"
expect "the daemon exits after umount" wait_until 15 proc_gone "$PID"
