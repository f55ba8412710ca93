#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What the shim leaves alone, and how it is built: system calls other than BPF_OBJ_PIN /
# BPF_OBJ_GET on the mount go to the kernel with all six arguments and errno as the kernel set
# it (or untouched on success), also with bad pointers (EFAULT, not a crash) and oversized
# attrs; statfs elsewhere is the real one. None of those calls allocates. Many threads making
# gets and statfs calls at once all get the right answers. The library needs nothing but libc
# and exports only the five interposed functions.
source "$(dirname "$0")/lib.sh"

MNT=$WORK/mnt
start_bpffs "$MNT"
mkdir "$MNT/d"
expect "pin" "$(shim "$PROBE" pin "$MNT/d/m")" ok

expect "untouched calls, a directory on the mount" "$(shim "$PROBE" untouched "$MNT/d")" ok
expect "untouched calls, a directory elsewhere" "$(shim "$PROBE" untouched "$WORK")" ok
expect "the probe agrees without the shim" "$("$PROBE" untouched "$WORK")" ok
for p in "$WORK" /proc /sys /dev /nonexistent; do
    expect "statfs $p: as without the shim" "$(shim "$PROBE" statfs "$p")" "$("$PROBE" statfs "$p")"
done
expect "a program that makes no bpf call" "$(shim ls "$MNT/d")" m

KB=$WORK/kbpf
start_kernel_bpffs "$KB"
expect "pin on the kernel bpffs" "$("$PROBE" pin "$KB/m")" ok
expect "no allocation in the calls the shim does not serve" \
    "$(shim "$PROBE" noalloc "$KB/m" "$MNT/d" "$WORK")" "0 allocations"
out=$(shim "$PROBE" noalloc "$MNT/d/m" "$MNT/d" "$WORK") &&
    fail "a served get made no allocation: the count does not count ($out)"
echo "ok: (the count counts: served gets allocate, $out)"

expect "8 threads x 300 rounds of get and statfs" \
    "$(shim "$PROBE" stress "$MNT/d/m" "$WORK" 8 300 | cut -d' ' -f1)" ok

# How the library is built.
needed=$(readelf -d "$BPFFS_PRELOAD" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort | tr '\n' ' ')
[[ $needed =~ ^(ld-linux[^ ]*\ )?libc\.so\.6\ $ ]] || fail "the shim needs more than libc: $needed"
echo "ok: the shim needs libc only ($needed)"
exported=$(nm -D --defined-only "$BPFFS_PRELOAD" | awk '{print $3}' | sort | tr '\n' ' ')
expect "the shim exports the five interposed functions only" "$exported" \
    "fstatfs fstatfs64 statfs statfs64 syscall "
echo "passed"
