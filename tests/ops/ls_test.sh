#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bpffsctl ls on a running daemon (issue 20): names sorted, directories with '/', -R as paths
# under the directory, -l with modes, owners, kinds, kernel ids and each object's facts (the ids
# are those bpffsctl get reports), --json as one array; an object the caller may not fetch is
# listed with the reason; a path off any bpffs-fuse mount is an error that says so.
#
#   ls_test.sh BPFFS_FUSE BPFFSCTL CONSUMER
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -eq 3 ] || fail "usage: ls_test.sh BPFFS_FUSE BPFFSCTL CONSUMER"
BPFFS_FUSE=$(realpath "$1")
BPFFSCTL=$(realpath "$2")
CONSUMER=$3
need setpriv "util-linux"

make_tmpdir
MNT=$T/mnt
mount_daemon "$BPFFS_FUSE" "$BPFFSCTL" "$MNT" -o mode=0755
mkdir -p "$MNT/objs" "$MNT/tree/leaf"
out=$("$CONSUMER" --keep "$MNT/objs") || fail "the consumer did not pin"
MAP_ID=$(sed -n 's/.*map_id=\([0-9]*\).*/\1/p' <<<"$out")
PROG_ID=$(sed -n 's/.*prog_id=\([0-9]*\).*/\1/p' <<<"$out")
expect_eq "get and the consumer agree" "$("$BPFFSCTL" get "$MNT/objs/consumer_map" | field id)" \
    "$MAP_ID"

expect_eq "ls: sorted, directories marked" "$("$BPFFSCTL" ls "$MNT" | tr '\n' ' ')" "objs/ tree/ "
expect_eq "ls -R: paths under the directory" "$("$BPFFSCTL" ls -R "$MNT" | tr '\n' ' ')" \
    "objs/ objs/consumer_map objs/consumer_prog tree/ tree/leaf/ "
long=$("$BPFFSCTL" ls -l "$MNT/objs")
log "ls -l: $long"
expect "ls -l: the map, its id and facts" grep -qE \
    "^-rw------- +0 +0 map +$MAP_ID consumer_map  \(name=consumer map_type=hash key_size=4 value_size=8 max_entries=4 map_flags=0\)$" \
    <<<"$long"
expect "ls -l: the program and its id" grep -qE \
    "^-rw------- +0 +0 prog +$PROG_ID consumer_prog  \(name=consumer prog_type=socket_filter tag=" \
    <<<"$long"
expect "ls -l: a directory" grep -qE "^drwxr-xr-x +0 +0 dir +- leaf/$" <<<"$("$BPFFSCTL" ls -l "$MNT/tree")"
json=$("$BPFFSCTL" ls --json "$MNT/objs")
log "ls --json: $json"
expect_eq "ls --json: one array, the map first" "${json:0:2}" '[{'
expect "ls --json: the map's entry" grep -qF \
    "{\"path\":\"consumer_map\",\"kind\":\"map\",\"mode\":\"0600\",\"uid\":0,\"gid\":0,\"object\":{\"id\":$MAP_ID,\"name\":\"consumer\",\"map_type\":\"hash\"" \
    <<<"$json"
# A user may list (the directories are 0755) but not fetch (0600 objects): the reason is shown.
cp "$BPFFSCTL" "$T/bpffsctl"
user=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$T/bpffsctl" ls -l "$MNT/objs") ||
    fail "ls -l as a user failed"
log "ls -l as a user: $user"
expect "an object a user cannot fetch: the reason" grep -qE \
    "^-rw------- +0 +0 object +- consumer_map  \(Permission denied\)$" <<<"$user"
if "$BPFFSCTL" ls "$T" >"$T/out" 2>&1; then fail "ls off the mount succeeded"; fi
expect "ls off the mount says so" grep -qF "$T is not on a bpffs-fuse mount" "$T/out"
