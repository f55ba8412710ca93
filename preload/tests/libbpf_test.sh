#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An ordinary libbpf program (libbpf_pin.c: an object whose map is declared with BTF and
# LIBBPF_PIN_BY_NAME, opened with pin_root_path on the mount) run twice under the shim: the
# first run creates and pins the map (libbpf's bpf_map__pin, after its statfs check for the bpf
# magic), the second reuses it (bpf_obj_get): same kernel id, and it sees the first run's value.
# Without clang -target bpf the map is made through libbpf's API (bpf_map_create, bpf_obj_pin,
# bpf_obj_get) instead. The same runs on a kernel bpffs give the same answers.
source "$(dirname "$0")/lib.sh"
[ -n "${LIBBPF_PIN:-}" ] || fail "\$LIBBPF_PIN is not set"

if [ -n "${BPF_OBJ:-}" ]; then
    mode=$BPF_OBJ
else
    mode=--api
    echo "note: no BPF object (clang -target bpf unavailable): libbpf's API only"
fi

MNT=$WORK/mnt
start_bpffs "$MNT"
mkdir "$MNT/app"
before=$(work_mounts)

first=$(shim "$LIBBPF_PIN" "$mode" "$MNT/app" 41)
[[ $first =~ ^id=([0-9]+)\ old=none$ ]] || fail "first run: '$first'"
id=${BASH_REMATCH[1]}
echo "ok: first run created and pinned map $id"
expect "pinned by name at pin_root_path" "$(ls "$MNT/app")" counters
expect "bpffsctl get: the same map" \
    "$("$BPFFSCTL" get "$MNT/app/counters" | sed -n 's/^id: //p')" "$id"
expect "second run: the same map, the first run's value" \
    "$(shim "$LIBBPF_PIN" "$mode" "$MNT/app" 42)" "id=$id old=41"
expect "third run" "$(shim "$LIBBPF_PIN" "$mode" "$MNT/app" 43)" "id=$id old=42"
expect "/proc/mounts (no bpffs mounted)" "$(work_mounts)" "$before"

# Without the shim libbpf refuses the FUSE path (its statfs check, or the kernel's EACCES).
if "$LIBBPF_PIN" "$mode" "$MNT/app" 44 >/dev/null 2>&1; then
    fail "without the shim the libbpf program reached the pinned map"
fi
echo "ok: without the shim, libbpf cannot use the mount"

# On a kernel bpffs, with and without the shim: the same behaviour.
KB=$WORK/kbpf
start_kernel_bpffs "$KB"
mkdir "$KB/with" "$KB/without"
k1=$(shim "$LIBBPF_PIN" "$mode" "$KB/with" 7)
[[ $k1 =~ ^id=([0-9]+)\ old=none$ ]] || fail "kernel bpffs, shim, first run: '$k1'"
expect "kernel bpffs, shim, second run" "$(shim "$LIBBPF_PIN" "$mode" "$KB/with" 8)" \
    "id=${BASH_REMATCH[1]} old=7"
k2=$("$LIBBPF_PIN" "$mode" "$KB/without" 7)
[[ $k2 =~ ^id=([0-9]+)\ old=none$ ]] || fail "kernel bpffs, no shim, first run: '$k2'"
expect "kernel bpffs, no shim, second run" "$("$LIBBPF_PIN" "$mode" "$KB/without" 8)" \
    "id=${BASH_REMATCH[1]} old=7"
echo "passed"
