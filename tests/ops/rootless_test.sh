#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Rootless (issue 20, docs/rootless.md), for real: an unprivileged uid (65534) runs bpffs-fuse
# inside `unshare -Urm`, with /dev/fuse usable (made 0666 for the test, Debian's default, and
# put back). It proves, step by step as the doc says:
#   - the daemon mounts with allow_other (it holds CAP_SYS_ADMIN in its own user namespace),
#     and the mount exists only in that mount namespace;
#   - root creates a map on its own bpffs-fuse mount and hands it down as fd 3 with
#     `bpffsctl exec ... -- setpriv ... unshare -Urm`; the user pins that fd on the rootless mount
#     (`bpffsctl pin --fd 3`, and ops_fd_tool's bpffs_obj_pin), gets it back with the kernel id root's map has, updates it
#     under the shim (`bpffsctl run -- bpftool map update`), and root sees the value by id;
#   - the user also pins from a kernel bpffs path it may open (`bpffsctl pin --from`);
#   - what does not work: read-only and write-only gets, pin --map-id (EPERM: the daemon cannot
#     open objects by id), creating a map (EPERM);
#   - from outside: root reaches it with `nsenter -t PID -U -m`, the user with `nsenter -t PID
#     -U -m --preserve-credentials`; /proc/PID/root/..., nsenter without -U and root's nsenter
#     --preserve-credentials do not;
#   - `nsenter -t PID -U -m umount MNT` ends the daemon.
#
#   rootless_test.sh BPFFS_FUSE BPFFSCTL FD_TOOL PRELOAD
# The test runs itself again as the user inside the namespaces: rootless_test.sh --inside T ID KID
if [ "${1:-}" = "--inside" ]; then OPS_NAME="rootless_test (inside)"; fi
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"


# The user's part, as uid 0 of the new user namespace (uid 65534 outside), fd 3 being root's
# map (kernel id ID); KID: the id of the map on the kernel bpffs at $T/kbpf.
inside() {
    local T=$1 id=$2 kid=$3 mnt=$1/mnt out
    [ "$(id -u)" = 0 ] || fail "inside: not uid 0 of the namespace"
    "$T/bin/bpffs-fuse" "$mnt" -o compat=linux,mode=0755 --log-file "$T/log" 2>"$T/mount.err" \
        3<&- || fail "the user's daemon did not mount: $(cat "$T/mount.err")"
    "$T/bin/bpffsctl" status "$mnt" | field pid >"$T/pid"
    log "daemon pid $(cat "$T/pid"), mount options $(findmnt -rn -o OPTIONS --mountpoint "$mnt")"
    expect "no 'without allow_other' warning" bash -c "! grep -q 'without allow_other' '$T/mount.err'"
    expect "mounted as uid 0 of the namespace, with allow_other" bash -c \
        "findmnt -rn -o OPTIONS --mountpoint '$mnt' | grep -q 'user_id=0,group_id=0,default_permissions,allow_other'"

    mkdir "$mnt/d"
    expect "the user pins the inherited fd 3" "$T/bin/bpffsctl" pin --fd 3 "$mnt/d/m"
    expect_eq "and again with its own program (libbpffs)" \
        "$("$T/bin/ops_fd_tool" pin 3 "$mnt/d/m2")" "ops_fd_tool: pin $mnt/d/m2: id $id"
    expect_eq "bpffsctl get: root's map" "$("$T/bin/bpffsctl" get "$mnt/d/m" | field id)" "$id"
    expect "the user updates it through the shim" "$T/bin/bpffsctl" run -- \
        bpftool map update pinned "$mnt/d/m" key 1 0 0 0 value 7 0 0 0
    expect "the user pins from the kernel's bpffs" "$T/bin/bpffsctl" pin --from "$T/kbpf/k" \
        "$mnt/d/k"
    expect_eq "bpffsctl get: the kernel bpffs's map" \
        "$("$T/bin/bpffsctl" get "$mnt/d/k" | field id)" "$kid"

    expect_eq "a read-only get" "$("$T/bin/ops_fd_tool" get --rdonly "$mnt/d/m")" \
        "ops_fd_tool: get $mnt/d/m: Operation not permitted"
    expect_eq "a write-only get" "$("$T/bin/ops_fd_tool" get --wronly "$mnt/d/m")" \
        "ops_fd_tool: get $mnt/d/m: Operation not permitted"
    refused "pin --map-id" "map id $id: Operation not permitted" \
        "$T/bin/bpffsctl" pin --map-id "$id" "$mnt/d/by_id"
    refused "creating a map" "map create failed: Operation not permitted" \
        "$T/bin/bpffsctl" run -- bpftool map create "$mnt/d/new" type hash key 4 value 4 \
        entries 8 name rootless_new
    out=$("$T/bin/bpffsctl" ls "$mnt/d" | tr '\n' ' ')
    expect_eq "what the user's mount holds" "$out" "k m m2 "
}

if [ "${1:-}" = "--inside" ]; then
    [ $# -eq 4 ] || fail "usage: rootless_test.sh --inside T ID KID"
    inside "$2" "$3" "$4"
    exit 0
fi

[ $# -eq 4 ] || fail "usage: rootless_test.sh BPFFS_FUSE BPFFSCTL FD_TOOL PRELOAD"
need setpriv "util-linux"
need unshare "util-linux"
need nsenter "util-linux"
need bpftool "bpftool"
need jq "jq"

# Everything the user runs is copied where it may read it, laid out as an install (bpffsctl
# run finds the shim in ../lib/bpffs/); the build tree may be where that user cannot go.
make_tmpdir
mkdir -p "$T/bin" "$T/lib/bpffs" "$T/ops" "$T/host" "$T/kbpf" "$T/mnt"
cp "$(realpath "$1")" "$(realpath "$2")" "$T/bin/"
cp "$(realpath "$3")" "$T/bin/ops_fd_tool"
cp "$(realpath "$4")" "$T/lib/bpffs/libbpffs-preload.so"
cp "$(realpath "$0")" "$(dirname "$(realpath "$0")")/lib.sh" "$T/ops/"
chown 65534:65534 "$T/mnt"
touch "$T/log" "$T/pid" "$T/mount.err"
chown 65534:65534 "$T/log" "$T/pid" "$T/mount.err"
MNT=$T/mnt
old_mode=$(stat -c %a /dev/fuse)
defer chmod "$old_mode" /dev/fuse
chmod 0666 /dev/fuse

# Root's side: its own mount with the map, and a kernel bpffs with another one the user may open.
mount_daemon "$T/bin/bpffs-fuse" "$T/bin/bpffsctl" "$T/host" -o compat=linux,mode=0755
mkdir "$T/host/share"
"$T/bin/bpffsctl" run -- bpftool map create "$T/host/share/m" type hash key 4 value 4 \
    entries 8 name rootless || fail "root could not create the map"
ID=$("$T/bin/bpffsctl" get "$T/host/share/m" | field id)
mount -t bpf -o mode=0755 bpf "$T/kbpf" || fail "cannot mount a kernel bpffs"
defer umount "$T/kbpf"
bpftool map create "$T/kbpf/k" type array key 4 value 4 entries 1 name rootless_k ||
    fail "root could not create the kernel bpffs's map"
chmod 0666 "$T/kbpf/k"
KID=$(bpftool -j map show pinned "$T/kbpf/k" | jq .id)
log "root's map: id $ID; on the kernel bpffs: id $KID"

# The user's daemon outlives the namespace's shell: stopped by its pid, also on failure.
stop_inside() { if [ -s "$T/pid" ]; then stop_pid "$(cat "$T/pid")"; fi; }
defer stop_inside
expect "the user's part, in unshare -Urm" "$T/bin/bpffsctl" exec "$T/host/share/m" -- \
    setpriv --reuid=65534 --regid=65534 --clear-groups \
    unshare -Urm "$T/ops/rootless_test.sh" --inside "$T" "$ID" "$KID"
P=$(cat "$T/pid")
[ -n "$P" ] || fail "no daemon pid from inside"

expect "the mount is not in root's mount namespace" not_mounted "$MNT"
expect_eq "root sees the user's update by id" \
    "$(bpftool -j map lookup id "$ID" key 1 0 0 0 | jq -c .value)" '["0x07","0x00","0x00","0x00"]'
refused "root through /proc/PID/root" "Permission denied" ls "/proc/$P/root$MNT/d"
refused "root with nsenter -m only" "Permission denied" \
    nsenter -t "$P" -m ls "$MNT/d"
refused "root with nsenter -U -m --preserve-credentials" "Value too large for defined data type" \
    nsenter -t "$P" -U -m --preserve-credentials ls "$MNT/d"
expect_eq "root with nsenter -U -m: get" \
    "$(nsenter -t "$P" -U -m "$T/bin/bpffsctl" get "$MNT/d/m" | field id)" "$ID"
expect_eq "root with nsenter -U -m: ls" \
    "$(nsenter -t "$P" -U -m "$T/bin/bpffsctl" ls "$MNT/d" | tr '\n' ' ')" "k m m2 "
# The user's own uid is mapped: it keeps it (setgroups is denied in the namespace, so nsenter
# cannot switch to uid 0 there).
refused "the user with nsenter -U -m" "setgroups failed: Operation not permitted" \
    setpriv --reuid=65534 --regid=65534 --clear-groups nsenter -t "$P" -U -m true
expect_eq "the user with nsenter -U -m --preserve-credentials: get" \
    "$(setpriv --reuid=65534 --regid=65534 --clear-groups nsenter -t "$P" -U -m \
        --preserve-credentials "$T/bin/bpffsctl" get "$MNT/d/m" | field id)" "$ID"
expect "nsenter -U -m umount ends the user's mount" nsenter -t "$P" -U -m umount "$MNT"
wait_until 10 proc_gone "$P" || fail "the user's daemon did not exit after the unmount"
