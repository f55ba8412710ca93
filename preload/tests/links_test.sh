#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# BPF links pinned and fetched by today's tools under `bpffsctl run`, on a compat=linux mount
# beside a kernel bpffs. Both sides must give the same outcome:
# - a libbpf program (libbpf_link.c) attaches a cgroup_skb program to a cgroup, bpf_link__pin's
#   the link and bpf_link__open's it again: the same link id, also from a second process and from
#   `bpftool link show pinned`;
# - `bpftool link pin id N` gives the same link a second name;
# - `bpftool iter pin` pins a task iterator's link, which `bpftool link show pinned` fetches: an
#   iter link of the iterator's program;
# - unlinking a link's last name releases it.
# Reading a pinned iterator (`cat`) runs it on a kernel bpffs; on ours an open of an object is
# EIO (docs/semantics.md), checked apart from the comparison.
source "$(dirname "$0")/lib.sh"
need_tools bpftool
[ -n "${LIBBPF_LINK:-}" ] || fail "\$LIBBPF_LINK is not set"
need_bpf_objects BPF_OBJ_LINK BPF_OBJ_ITER

start_both_sides
add_cgroup
before=$(work_mounts)

link_at() { run bpftool link show pinned "$1" -j | json_id; }
# "TYPE PROGRAM-NAME" of the link with id $1, asked by id (not through a path).
link_kind() {
    local json prog
    json=$(bpftool link show id "$1" -j)
    prog=$(sed -n 's/.*"prog_id":\([0-9]*\).*/\1/p' <<<"$json")
    echo "$(sed -n 's/.*"type":"\([a-z_]*\)".*/\1/p' <<<"$json")" \
        "$(bpftool prog show id "$prog" -j | sed -n 's/.*"name":"\([a-z_]*\)".*/\1/p')"
}
# Runs the same steps on mount $1; prints one outcome per step.
steps() {
    local root=$1 out pinned iter
    mkdir "$root/dir"
    if out=$(run "$LIBBPF_LINK" "$BPF_OBJ_LINK" "$CGROUP" "$root/l" 2>&1); then
        pinned=${out#pinned=}
        pinned=${pinned%% *}
        echo "bpf_link__pin, bpf_link__open: $(same "${out#* opened=}" "$pinned")"
    else
        echo "libbpf_link: $(sed "s|$root|ROOT|g" <<<"$out")"
    fi
    echo "bpf_link__open in another process: $(same "$(run "$LIBBPF_LINK" --open "$root/l")" "$pinned")"
    echo "bpftool link show pinned: $(same "$(link_at "$root/l")" "$pinned")"
    outcome "$root" run bpftool link pin id "$pinned" "$root/dir/l2"
    echo "the second name: $(same "$(link_at "$root/dir/l2")" "$pinned")"
    outcome "$root" run bpftool iter pin "$BPF_OBJ_ITER" "$root/it"
    iter=$(link_at "$root/it")
    echo "the pinned iterator: $(link_kind "$iter")"
    tree_of "$root"
    outcome "$root" rm "$root/l"
    echo "one name left: $(same "$(link_at "$root/dir/l2")" "$pinned")"
    outcome "$root" rm "$root/dir/l2" "$root/it"
    echo "the cgroup link: $(released link "$pinned"), the iterator: $(released link "$iter")"
}

want=$(steps "$KERN")
got=$(steps "$OURS")
compare_sides "$want" "$got"

# Reading a pinned iterator: the kernel runs it; our mount answers an open of an object EIO.
run bpftool iter pin "$BPF_OBJ_ITER" "$KERN/it" || fail "bpftool iter pin on the kernel bpffs"
run bpftool iter pin "$BPF_OBJ_ITER" "$OURS/it" || fail "bpftool iter pin on compat=linux"
expect "cat of the iterator on the kernel bpffs" "$(cat "$KERN/it")" "bpffs task iterator"
expect "cat of the iterator on compat=linux" "$(cat "$OURS/it" 2>&1 | sed "s|$OURS|ROOT|")" \
    "cat: ROOT/it: Input/output error"
expect "/proc/mounts at the end" "$(work_mounts)" "$before"
echo "passed"
