#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The ways of today's tools, with Debian's bpftool under `bpffsctl run`, on a compat=linux mount
# beside a kernel bpffs. Both must give the same outcome:
# - a map pinned at the root beside directories;
# - `prog load ... pinmaps DIR/maps` next to the program (the seed's terminal rule refuses it);
# - an unprivileged user re-pinning a map it may read into a directory it may write;
# - a dotted name.
source "$(dirname "$0")/lib.sh"
need_tools bpftool

start_both_sides
before=$(work_mounts)

# Runs the same steps on mount $1; prints one outcome per step.
steps() {
    local root=$1
    mkdir -p "$root/tc" "$root/open"
    chmod 1777 "$root/open"
    outcome "$root" run bpftool map create "$root/m" type hash key 4 value 8 entries 4 name m
    chmod 0666 "$root/m"  # others may fetch it (a get asks read and write)
    if [ -n "${BPF_OBJ_NOPIN:-}" ]; then
        outcome "$root" run bpftool prog load "$BPF_OBJ_NOPIN" "$root/tc/prog" \
            pinmaps "$root/tc/maps"
    fi
    outcome "$root" run setpriv --reuid=nobody --regid=nogroup --clear-groups \
        bpftool map pin pinned "$root/m" "$root/open/m2"
    stat -c '%n %a %U' "$root/open/m2" | sed "s|$root|ROOT|"
    outcome "$root" run setpriv --reuid=nobody --regid=nogroup --clear-groups \
        bpftool map pin pinned "$root/m" "$root/tc/m3"
    outcome "$root" run bpftool map create "$root/tc/a.b" type hash key 4 value 8 entries 4 \
        name d
    tree_of "$root"
}

want=$(steps "$KERN")
got=$(steps "$OURS")
compare_sides "$want" "$got"
expect "/proc/mounts at the end" "$(work_mounts)" "$before"
echo "passed"
