#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Errors keep their errno through the shim: bpf(2) BPF_OBJ_PIN / BPF_OBJ_GET made through libc's
# syscall() by an unmodified program (the probe) on the mount give the errno of the seed's rules
# (docs/semantics.md; bpffs_obj_pin/bpffs_obj_get), as root and as an unprivileged user.
# Without the shim the same calls get the kernel's answers for a FUSE path (EPERM, EACCES).
source "$(dirname "$0")/lib.sh"

MNT=$WORK/mnt
start_bpffs "$MNT" -o mode=0755
mkdir "$MNT/d" "$MNT/busy" "$MNT/busy/sub"
NOBODY=(env PROBE_UID=65534)

# probe_expect WHAT EXPECTED PROBE-ARGS... (run under the shim)
probe_expect() {
    local what=$1 want=$2
    shift 2
    expect "$what" "$(shim "$PROBE" "$@")" "$want"
}

probe_expect "pin a new name" ok pin "$MNT/d/m"
id=$("$BPFFSCTL" get "$MNT/d/m" | sed -n 's/^id: //p')
probe_expect "get: a new fd for the same map" "ok id=$id" get "$MNT/d/m"

# pin, in the seed's order
probe_expect "pin an existing name: EEXIST" EEXIST pin "$MNT/d/m"
probe_expect "pin a dotted name: EPERM" EPERM pin "$MNT/d/.m"
probe_expect "pin below a missing directory: ENOENT" ENOENT pin "$MNT/missing/m"
probe_expect "pin below an object: ENOTDIR" ENOTDIR pin "$MNT/d/m/x"
probe_expect "pin a new name with a trailing slash: ENOENT" ENOENT pin "$MNT/d/n/"
probe_expect "pin into a directory with subdirectories: EBUSY" EBUSY pin "$MNT/busy/m"
expect "pin a closed fd: EBADF" "$(shim "$PROBE" pin-fd 9 "$MNT/d/n" 9<&-)" EBADF
expect "pin an fd that is not a map or program: EINVAL" \
    "$(shim "$PROBE" pin-fd 9 "$MNT/d/n" 9</dev/null)" EINVAL
expect "pin without CAP_SYS_ADMIN: EPERM" "$(shim "${NOBODY[@]}" "$PROBE" pin "$MNT/d/n")" EPERM

# get
probe_expect "get a missing name: ENOENT" ENOENT get "$MNT/d/missing"
probe_expect "get below an object: ENOTDIR" ENOTDIR get "$MNT/d/m/x"
probe_expect "get a directory: EACCES" EACCES get "$MNT/d"
probe_expect "get with BPF_F_RDONLY (the seed has no flags): EINVAL" EINVAL get "$MNT/d/m" 8
expect "get without write permission (0600, another user): EACCES" \
    "$(shim "${NOBODY[@]}" "$PROBE" get "$MNT/d/m")" EACCES
chmod 0602 "$MNT/d/m"
expect "get with write permission only (0602): the map" \
    "$(shim "${NOBODY[@]}" "$PROBE" get "$MNT/d/m")" "ok id=$id"
chmod 0700 "$MNT/d"
expect "get without search permission on the directory: EACCES" \
    "$(shim "${NOBODY[@]}" "$PROBE" get "$MNT/d/m")" EACCES
chmod 0755 "$MNT/d"

# A read-only mount (the per-mount flag): pins are EROFS, gets still work.
mount -o bind,remount,ro "$MNT" || fail "cannot make $MNT read-only"
probe_expect "pin on a read-only mount: EROFS" EROFS pin "$MNT/d/n"
probe_expect "get on a read-only mount: the map" "ok id=$id" get "$MNT/d/m"
mount -o bind,remount,rw "$MNT"

# Without the shim: the kernel's own answers for a FUSE path.
expect "without the shim, pin: the kernel's EPERM" "$("$PROBE" pin "$MNT/d/k")" EPERM
expect "without the shim, get: the kernel's EACCES" "$("$PROBE" get "$MNT/d/m")" EACCES
echo "passed"
