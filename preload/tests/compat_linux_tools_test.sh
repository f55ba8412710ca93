#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The ways of today's tools, with Debian's bpftool under `bpffsctl run`, on a compat=linux mount
# beside a kernel bpffs. Both must give the same outcome:
# - a map pinned at the root beside directories;
# - `prog load ... pinmaps DIR/maps` next to the program (the seed's terminal rule refuses it);
# - an unprivileged user re-pinning a map it may read into a directory it may write;
# - a dotted name.
source "$(dirname "$0")/lib.sh"
command -v bpftool >/dev/null || fail "bpftool is not installed (tools/deps.txt)"

OURS=$WORK/ours
KERN=$WORK/kernel
start_bpffs "$OURS" -o compat=linux
start_kernel_bpffs "$KERN"
run() { "$BPFFSCTL" run -- "$@"; }
before=$(work_mounts)

# The outcome of a command: "ok", or its exit status and the last line bpftool printed, with
# the mount's own path taken out so that both sides read alike.
outcome() {
    local root=$1
    shift
    local out
    if out=$("$@" 2>&1); then
        echo ok
    else
        echo "exit $?: $(tail -1 <<<"$out" | sed "s|$root|ROOT|g")"
    fi
}

# The tree below a mount as `find` lists it, without the kernel's own preload pins.
tree_of() {
    (cd "$1" && find . -mindepth 1 | grep -v -e '^./maps.debug$' -e '^./progs.debug$' | sort)
}

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
echo "kernel bpffs:"
echo "$want"
[ "$got" = "$want" ] || fail "compat=linux differs from the kernel bpffs: $(diff <(echo "$want") <(echo "$got"))"
echo "ok: every step as on the kernel bpffs"
expect "/proc/mounts at the end" "$(work_mounts)" "$before"
echo "passed"
