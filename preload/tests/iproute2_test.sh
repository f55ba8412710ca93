#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# iproute2 (Debian 12's tc and ip, which load objects with libbpf) under `bpffsctl run` on a
# compat=linux mount beside a kernel bpffs, each side in a network namespace of its own with a
# veth pair. Both sides must give the same outcome:
# - `tc filter ... bpf obj` makes iproute2's hierarchy (tc/, tc/globals/, and xdp/ and ip/ as
#   symlinks to tc/) and pins the object's map at tc/globals/shared_counts;
# - `ip link set dev X xdp obj` finds that map through xdp/globals/ and shares it, and a second
#   tc load reuses it: every program sees the pinned map's id;
# - no mount is left behind: on a filesystem that refuses symlink(2), iproute2 falls back to a
#   bind mount of tc/ on xdp/ and ip/ (lib/bpf_legacy.c, bpf_gen_slave), and with no bpffs it
#   can recognise, it mounts one itself.
# iproute2 finds its bpffs by $TC_BPF_MNT and statfs (the shim answers the bpf magic); the
# mount table, its other way, lists our mount as fuse.bpffs-fuse, so the variable is needed.
source "$(dirname "$0")/lib.sh"
need_tools tc ip bpftool nsenter
need_bpf_objects BPF_OBJ_SHARED

start_both_sides
before=$(work_mounts)
sys_bpf_before=$(grep -c ' /sys/fs/bpf ' /proc/mounts || true)

# A command in network namespace $1, under the shim.
ns_run() {
    local ns=$1
    shift
    run nsenter --net="/run/netns/$ns" "$@"
}

# The id of the program tc runs on ingress of device $2 in namespace $1 / XDP runs on it.
tc_prog() { ns_run "$1" tc filter show dev "$2" ingress | sed -n 's/.* id \([0-9]*\) .*/\1/p'; }
xdp_prog() { ns_run "$1" ip link show dev "$2" | sed -n 's|.*prog/xdp id \([0-9]*\) .*|\1|p'; }
# The ids of the maps program $1 uses; the id of the map pinned at $1.
prog_maps() { run bpftool prog show id "$1" -j | sed -n 's/.*"map_ids":\[\([0-9,]*\)\].*/\1/p'; }
pinned_map() { run bpftool map show pinned "$1" -j | json_id; }

# Runs the same steps on mount $1 in namespace $2; prints one outcome per step.
steps() {
    local root=$1 ns=$2
    export TC_BPF_MNT=$root
    outcome "$root" ns_run "$ns" tc qdisc add dev v0 clsact
    outcome "$root" ns_run "$ns" tc filter add dev v0 ingress bpf da obj "$BPF_OBJ_SHARED" sec tc
    outcome "$root" ns_run "$ns" ip link set dev v0 xdp obj "$BPF_OBJ_SHARED" sec xdp
    outcome "$root" ns_run "$ns" tc qdisc add dev v1 clsact
    outcome "$root" ns_run "$ns" tc filter add dev v1 ingress bpf da obj "$BPF_OBJ_SHARED" sec tc
    echo "mounts left below the mount: $(stray_mounts | sed "s|$root|ROOT|g" | tr '\n' ' ')"
    tree_of "$root"
    local pinned
    pinned=$(pinned_map "$root/tc/globals/shared_counts")
    echo "the map through xdp/: $(same "$(pinned_map "$root/xdp/globals/shared_counts")" "$pinned")"
    echo "tc on v0 uses the pinned map: $(same "$(prog_maps "$(tc_prog "$ns" v0)")" "$pinned")"
    echo "xdp on v0 uses the pinned map: $(same "$(prog_maps "$(xdp_prog "$ns" v0)")" "$pinned")"
    echo "tc on v1 uses the pinned map: $(same "$(prog_maps "$(tc_prog "$ns" v1)")" "$pinned")"
    # Detaching leaves the pinned map (and the hierarchy) where it is.
    outcome "$root" ns_run "$ns" ip link set dev v0 xdp off
    outcome "$root" ns_run "$ns" tc qdisc del dev v0 clsact
    echo "pinned after detaching: $(same "$(pinned_map "$root/tc/globals/shared_counts")" "$pinned")"
    unset TC_BPF_MNT
}

# The namespaces are made here, not in `steps` (a subshell), so that the EXIT trap knows them.
for ns in "bpffs-k$$" "bpffs-o$$"; do
    add_netns "$ns"
    ip -n "$ns" link add v0 type veth peer name v1 || fail "veth in $ns"
done
want=$(steps "$KERN" "bpffs-k$$")
got=$(steps "$OURS" "bpffs-o$$")
compare_sides "$want" "$got"
expect "/proc/mounts below the test's directory at the end" "$(work_mounts)" "$before"
expect "bpffs mounts on /sys/fs/bpf at the end" \
    "$(grep -c ' /sys/fs/bpf ' /proc/mounts || true)" "$sys_bpf_before"
echo "passed"
