#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Debian's bpftool, unmodified, under `bpffsctl run`: `map create` pins into the mount and no
# bpffs gets mounted over it; update, lookup, show, dump, getnext, delete, freeze, `map pin id`
# work on the pinned map and show the kernel id `bpffsctl get` reports; with a BPF object,
# `prog load`, `prog pin id`, `prog loadall ... pinmaps` and a prog_array update by pinned
# program too. bpftool's own error messages carry the errno of the seed's rules.
source "$(dirname "$0")/lib.sh"
command -v bpftool >/dev/null || fail "bpftool is not installed (tools/deps.txt)"

MNT=$WORK/mnt
start_bpffs "$MNT" -o mode=0755
mkdir "$MNT/tc"
M=$MNT/tc/m
before=$(work_mounts)

# The README's example.
run bpftool map create "$M" type hash key 4 value 8 entries 16 name m
expect "/proc/mounts after map create (no bpffs mounted over the directory)" \
    "$(work_mounts)" "$before"
expect "bpffsctl get sees the pinned map" "$("$BPFFSCTL" get "$M" | sed -n 's/^type: //p')" map

run bpftool map update pinned "$M" key 1 0 0 0 value 2 0 0 0 0 0 0 0
expect "map lookup pinned" "$(run bpftool map lookup pinned "$M" key 1 0 0 0)" \
    "key: 01 00 00 00  value: 02 00 00 00 00 00 00 00"
id=$(run bpftool -j map show pinned "$M" | json_id)
[ -n "$id" ] || fail "no id in bpftool -j map show pinned"
expect "map show pinned: the id bpffsctl get reports" \
    "$id" "$("$BPFFSCTL" get "$M" | sed -n 's/^id: //p')"
expect "map show pinned" "$(run bpftool map show pinned "$M" | head -1)" \
    "$id: hash  name m  flags 0x0"
expect "map show pinned, relative path" \
    "$(cd "$MNT" && run bpftool -j map show pinned tc/m | json_id)" "$id"
expect "map dump pinned" "$(run bpftool map dump pinned "$M")" \
    "key: 01 00 00 00  value: 02 00 00 00 00 00 00 00
Found 1 element"
expect "map getnext pinned" "$(run bpftool map getnext pinned "$M" | tr '\n' ' ')" \
    "key: None next key: 01 00 00 00 "
run bpftool map delete pinned "$M" key 1 0 0 0
expect "map dump pinned after delete" "$(run bpftool map dump pinned "$M")" "Found 0 elements"

run bpftool map pin id "$id" "$MNT/tc/m2"
expect "map pin id: the same map" "$(run bpftool -j map show pinned "$MNT/tc/m2" | json_id)" "$id"
run bpftool map freeze pinned "$MNT/tc/m2"
run bpftool map show pinned "$M" | grep -q frozen || fail "map freeze: not frozen"

# bpftool's own messages carry the errno.
out=$(run bpftool map create "$M" type hash key 4 value 8 entries 16 name m 2>&1) &&
    fail "map create over an existing name succeeded"
[[ $out == *"can't pin the object ($M): File exists"* ]] || fail "existing name: $out"
echo "ok: map create over an existing name: EEXIST"
out=$(run bpftool map create "$MNT/tc/.m" type hash key 4 value 8 entries 16 name m 2>&1) &&
    fail "map create of a dotted name succeeded"
[[ $out == *"Operation not permitted"* ]] || fail "dotted name: $out"
echo "ok: map create of a dotted name: EPERM"
out=$(run bpftool map create "$MNT/m" type hash key 4 value 8 entries 16 name m 2>&1) &&
    fail "map create in a directory with subdirectories succeeded"
[[ $out == *"Device or resource busy"* ]] || fail "directory with subdirectories: $out"
echo "ok: map create in a directory with subdirectories: EBUSY"

if [ -n "${BPF_OBJ_NOPIN:-}" ]; then
    mkdir "$MNT/prog" "$MNT/jmp"
    run bpftool prog load "$BPF_OBJ_NOPIN" "$MNT/prog/p"
    pid=$(run bpftool -j prog show pinned "$MNT/prog/p" | json_id)
    [ -n "$pid" ] || fail "no id in bpftool -j prog show pinned"
    expect "prog show pinned: the id bpffsctl get reports" \
        "$pid" "$("$BPFFSCTL" get "$MNT/prog/p" | sed -n 's/^id: //p')"
    run bpftool prog pin id "$pid" "$MNT/prog/p2"
    expect "prog pin id: the same program" \
        "$(run bpftool -j prog show pinned "$MNT/prog/p2" | json_id)" "$pid"
    run bpftool prog dump xlated pinned "$MNT/prog/p" >/dev/null
    echo "ok: prog dump xlated pinned"
    run bpftool prog loadall "$BPF_OBJ_NOPIN" "$MNT/all" pinmaps "$MNT/maps"
    expect "prog loadall: the programs" "$(ls "$MNT/all")" "count_packets"
    expect "prog loadall pinmaps: the maps" "$(ls "$MNT/maps")" "counters"
    run bpftool map create "$MNT/jmp/t" type prog_array key 4 value 4 entries 4 name t
    run bpftool map update pinned "$MNT/jmp/t" key 0 0 0 0 value pinned "$MNT/prog/p"
    expect "prog_array updated with a pinned program" \
        "$(run bpftool map dump pinned "$MNT/jmp/t" | tail -1)" "Found 1 element"
else
    echo "skipped: prog commands (no BPF object: clang -target bpf is not available)"
fi
expect "/proc/mounts at the end" "$(work_mounts)" "$before"

# Without the shim the kernel answers for the FUSE path itself: the shim made the difference.
out=$(bpftool map show pinned "$M" 2>&1) && fail "map show pinned worked without the shim"
[[ $out == *"not in bpf file system"* ]] || fail "without the shim: $out"
echo "ok: without the shim, map show pinned fails (the kernel's EACCES)"
echo "passed"
