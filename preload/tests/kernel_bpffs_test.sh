#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# On a real kernel bpffs the shim changes nothing: one scenario (bpftool's map and prog
# commands, their errors, bpf(2) pins and gets through libc's syscall() as root and as an
# unprivileged user, statfs) runs once with the shim and once without, in two directories of
# the same kernel bpffs, and the transcripts (output, errors, exit codes; kernel ids and the
# directory masked) must be identical. No mount appears or disappears.
source "$(dirname "$0")/lib.sh"
command -v bpftool >/dev/null || fail "bpftool is not installed (tools/deps.txt)"

KB=$WORK/kbpf
start_kernel_bpffs "$KB" -o mode=0755
NOBODY=(env PROBE_UID=65534)

# step CMD...: runs CMD and prints a transcript entry.
step() {
    local out rc=0
    out=$("$@" 2>&1) || rc=$?
    printf '$ %s\n%s\n[exit %d]\n' "$*" "$out" "$rc"
}

# scenario DIR RUNNER...: the commands, each run through RUNNER (env, or env LD_PRELOAD=...).
scenario() {
    local d=$1
    shift
    mkdir -m 0755 "$d"
    step "$@" bpftool map create "$d/m" type hash key 4 value 8 entries 16 name m
    step "$@" bpftool map update pinned "$d/m" key 1 0 0 0 value 2 0 0 0 0 0 0 0
    step "$@" bpftool map lookup pinned "$d/m" key 1 0 0 0
    step "$@" bpftool map show pinned "$d/m"
    step "$@" bpftool -j map show pinned "$d/m"
    step "$@" bpftool map dump pinned "$d/m"
    step "$@" bpftool map create "$d/m" type hash key 4 value 8 entries 16 name m
    step "$@" bpftool map create "$d/.m" type hash key 4 value 8 entries 16 name m
    step "$@" bpftool map show pinned "$d/missing"
    step "$@" bpftool map show pinned "$d"
    step "$@" "$PROBE" statfs "$d"
    step "$@" "$PROBE" statfs "$d/m"
    step "$@" "$PROBE" pin "$d/p"
    step "$@" "$PROBE" pin "$d/p"
    step "$@" "$PROBE" pin "$d/.p"
    step "$@" "$PROBE" pin "$d/missing/p"
    step "$@" "$PROBE" pin-fd 0 "$d/q"
    step "$@" "$PROBE" pin-fd 999 "$d/q"
    step "$@" "$PROBE" get "$d/p"
    step "$@" "$PROBE" get "$d/p" 8
    step "$@" "$PROBE" get "$d"
    step "$@" "$PROBE" get "$d/missing"
    step "${NOBODY[@]}" "$@" "$PROBE" get "$d/p"
    step "${NOBODY[@]}" "$@" "$PROBE" pin "$d/r"
    step "$@" "$PROBE" untouched "$d"
    if [ -n "${BPF_OBJ_NOPIN:-}" ]; then
        step "$@" bpftool prog load "$BPF_OBJ_NOPIN" "$d/prog"
        step "$@" bpftool -j prog show pinned "$d/prog"
        step "$@" bpftool prog loadall "$BPF_OBJ_NOPIN" "$d/all" pinmaps "$d/maps"
        step "$@" ls "$d/all" "$d/maps"
    fi
    step "$@" ls "$d"
}

# Masks what differs between two runs by nature: the directory, kernel ids, load times.
normalize() {
    sed -E -e 's/ LD_PRELOAD=[^ ]*//' -e "s|$1|DIR|g" -e 's/"id":[0-9]+/"id":N/g' \
        -e 's/^[0-9]+: /N: /' -e 's/ env / /g' -e "s| $BPFFSCTL run --seccomp --||g" \
        -e 's/\bid=[0-9]+/id=N/g' -e 's/"(loaded_at|btf_id|bytes_memlock|map_ids)":[^,}]*/"\1":X/g'
}

before=$(work_mounts)
# Under the shim, or (BPFFS_VIA=seccomp) under the seccomp supervisor.
if [ "${BPFFS_VIA:-}" = seccomp ]; then
    with=$(scenario "$KB/with" "$BPFFSCTL" run --seccomp -- | normalize "$KB/with")
else
    with=$(scenario "$KB/with" env LD_PRELOAD="$BPFFS_PRELOAD" | normalize "$KB/with")
fi
without=$(scenario "$KB/without" env | normalize "$KB/without")
expect "/proc/mounts unchanged" "$(work_mounts)" "$before"
if [ "$with" != "$without" ]; then
    diff -u <(echo "$without") <(echo "$with") | sed 's/LD_PRELOAD=[^ ]* //' >&2 || true
    fail "the kernel bpffs behaves differently under ${BPFFS_VIA:-the shim} (diff: without, with)"
fi
echo "$with" | sed 's/^/  /'
echo "ok: identical transcripts with and without ${BPFFS_VIA:-the shim}"
echo "passed"
