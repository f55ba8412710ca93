#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Names of pins with coreutils, on a compat=linux mount beside a kernel bpffs: `mv` (renameat2
# with RENAME_NOREPLACE first, then rename over an existing pin), `ln` (a hard link: one object,
# two names), `ln -s` and `readlink` (a symlink to a pin, which bpftool follows under `bpffsctl
# run`), and `stat -c '%h %a %U %F'` of each. Both sides must give the same outcome, and the
# same kernel object must stand behind the same names: an object is released when its last
# name goes, by rm or by a rename over it.
source "$(dirname "$0")/lib.sh"
need_tools bpftool

start_both_sides
before=$(work_mounts)

map_at() { run bpftool map show pinned "$1" -j 2>/dev/null | json_id; }
# stat of each path, with the mount's path ($1) taken out.
stat_of() {
    local root=$1
    shift
    stat -c '%n: %h %a %U %F' "$@" 2>&1 | sed "s|$root|ROOT|g"
}

# Runs the same steps on mount $1; prints one outcome per step.
steps() {
    local root=$1 a b
    mkdir "$root/d" "$root/e"
    outcome "$root" run bpftool map create "$root/m" type hash key 4 value 8 entries 4 name a
    outcome "$root" run bpftool map create "$root/n" type hash key 4 value 8 entries 4 name b
    a=$(map_at "$root/m")
    b=$(map_at "$root/n")
    outcome "$root" mv "$root/m" "$root/d/m"
    stat_of "$root" "$root/m" "$root/d/m"
    echo "moved: $(same "$(map_at "$root/d/m")" "$a")"
    outcome "$root" ln "$root/d/m" "$root/h"
    stat_of "$root" "$root/h" "$root/d/m"
    echo "the hard link: $(same "$(map_at "$root/h")" "$a")"
    outcome "$root" ln -s d/m "$root/s"
    echo "readlink: $(readlink "$root/s")"
    stat_of "$root" "$root/s"
    echo "through the symlink: $(same "$(map_at "$root/s")" "$a")"
    outcome "$root" mv -n "$root/n" "$root/h"  # RENAME_NOREPLACE: nothing moves
    echo "mv -n kept both: $(same "$(map_at "$root/h")" "$a") $(same "$(map_at "$root/n")" "$b")"
    outcome "$root" mv "$root/n" "$root/h"  # over the hard link: d/m keeps the first map
    stat_of "$root" "$root/h" "$root/d/m"
    echo "renamed over: $(same "$(map_at "$root/h")" "$b") $(same "$(map_at "$root/d/m")" "$a")"
    outcome "$root" mv "$root/d" "$root/e/d"  # a directory with a pin inside
    echo "the symlink now: $(outcome "$root" run bpftool map show pinned "$root/s")"
    outcome "$root" ln -sfn e/d/m "$root/s"
    echo "through the new symlink: $(same "$(map_at "$root/s")" "$a")"
    outcome "$root" mv "$root/e/d/m" "$root/h"  # the last name of b goes: b is released
    echo "b: $(released map "$b"), a: $(same "$(map_at "$root/h")" "$a")"
    tree_of "$root"
    outcome "$root" rm "$root/h"
    echo "a: $(released map "$a")"
}

want=$(steps "$KERN")
got=$(steps "$OURS")
compare_sides "$want" "$got"
expect "/proc/mounts at the end" "$(work_mounts)" "$before"
echo "passed"
