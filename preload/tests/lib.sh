# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the preload tests. CTest passes the paths in the environment:
#   BPFFS_FUSE (the daemon), BPFFSCTL, BPFFS_PRELOAD (the shim in the build tree; bpffsctl run
#   reads the same variable), PROBE, LIBBPF_PIN, BPF_OBJ and BPF_OBJ_NOPIN (empty when clang
#   cannot build BPF objects).
# Every test works in its own $WORK; the EXIT trap undoes every mount it made, stops the daemons
# and removes $WORK, on failure too.
set -euo pipefail

for v in BPFFS_FUSE BPFFSCTL BPFFS_PRELOAD PROBE; do
    [ -n "${!v:-}" ] || { echo "FAIL: \$$v is not set (run through ctest)" >&2; exit 1; }
done
export BPFFS_PRELOAD
unset LD_PRELOAD BPFFS_SOCKET

WORK=$(mktemp -d /tmp/bpffs-preload-XXXXXX)
chmod 755 "$WORK"  # unprivileged test users must reach the mounts inside
MOUNTS=()       # kernel bpffs and bind mounts, undone newest first
FUSE_MOUNTS=()  # bpffs-fuse mounts, and their daemons' pids
DAEMONS=()
NETNS=()        # network namespaces (ip netns add), deleted with their devices and qdiscs
CGROUPS=()      # cgroup directories, removed once the pins of links into them are gone

# Waits up to 10 s for process $1 to exit; false if it is still there.
wait_gone() {
    local deadline=$((SECONDS + 10))
    while kill -0 "$1" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# The daemons are stopped with SIGTERM, as a service manager would: they unmount themselves.
cleanup() {
    local rc=$?
    set +e
    local i m
    # Mounts a tool under test left below $WORK (iproute2's bind-mount fallback, say), newest
    # first: they would keep the ones below from going. A test that cares checks for them.
    while read -r m; do
        umount -l "$m" 2>/dev/null
    done < <(stray_mounts | tac)
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}"
    done
    for pid in "${DAEMONS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
        wait_gone "$pid" || { echo "daemon $pid ignored SIGTERM" >&2; kill -9 "$pid"; rc=1; }
    done
    for m in "${FUSE_MOUNTS[@]}"; do
        if grep -qF " $m " /proc/mounts; then
            echo "$m still mounted after its daemon stopped" >&2
            umount -l "$m"
            rc=1
        fi
    done
    for n in "${NETNS[@]}"; do
        ip netns del "$n"
    done
    for c in "${CGROUPS[@]}"; do
        rmdir "$c"
    done
    if [ "$rc" -ne 0 ] && [ -s "$WORK/daemon.log" ]; then
        echo "--- daemon log" >&2
        cat "$WORK/daemon.log" >&2
    fi
    # Never descend into a mount that could not be undone.
    rm -rf --one-file-system "$WORK"
    exit "$rc"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# expect WHAT ACTUAL EXPECTED
expect() {
    [ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
    echo "ok: $1"
}

# Mounts bpffs-fuse on $1 (created) with the options that follow, in the foreground (as the
# suite's other mount tests do); returns once it serves requests (the broker answers).
start_bpffs() {
    local dir=$1
    shift
    mkdir -p "$dir"
    "$BPFFS_FUSE" -f "$dir" "$@" >>"$WORK/daemon.log" 2>&1 &
    local pid=$!
    DAEMONS+=("$pid")
    FUSE_MOUNTS+=("$dir")
    local deadline=$((SECONDS + 20))
    until "$BPFFSCTL" status "$dir" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || fail "bpffs-fuse did not mount $dir"
        [ "$SECONDS" -lt "$deadline" ] || fail "bpffs-fuse on $dir not ready after 20 s"
        sleep 0.05
    done
}

# The programs named, or the test fails: they are the project's dependencies (tools/deps.txt).
need_tools() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null || fail "$t is not installed (tools/deps.txt)"
    done
}

# The BPF objects whose variables are named (BPF_OBJ_SHARED...), or the test is skipped (exit
# 77, which ctest reports as skipped): they are empty when clang cannot build BPF code.
need_bpf_objects() {
    local v
    for v in "$@"; do
        if [ -z "${!v:-}" ]; then
            echo "skipped: \$$v is empty (clang -target bpf unavailable)"
            exit 77
        fi
    done
}

# A differential test's two sides: bpffs-fuse -o compat=linux at $OURS and a kernel bpffs at
# $KERN.
start_both_sides() {
    OURS=$WORK/ours
    KERN=$WORK/kernel
    start_bpffs "$OURS" -o compat=linux
    start_kernel_bpffs "$KERN"
}

# compare_sides WANT GOT: the outcomes of the same steps on the kernel bpffs and on ours,
# which must be the same, line for line.
compare_sides() {
    echo "kernel bpffs:"
    echo "$1"
    [ "$2" = "$1" ] || fail "compat=linux differs from the kernel bpffs: $(diff <(echo "$1") <(echo "$2"))"
    echo "ok: every step as on the kernel bpffs"
}

# Mounts a real kernel bpffs on $1 (created) with the options that follow.
start_kernel_bpffs() {
    local dir=$1
    shift
    mkdir -p "$dir"
    mount -t bpf "$@" bpf "$dir" || fail "cannot mount a kernel bpffs on $dir"
    MOUNTS+=("$dir")
}

# A bind mount of $1 at $2 (created).
bind_mount() {
    mkdir -p "$2"
    mount --bind "$1" "$2" || fail "cannot bind-mount $1 at $2"
    MOUNTS+=("$2")
}

# Runs a command the way the test is about: with the shim preloaded, as `bpffsctl run --preload`
# does; or, with BPFFS_VIA=seccomp (the same tests registered again), under `bpffsctl run
# --seccomp`, which must do for the same commands what the shim does.
shim() {
    if [ "${BPFFS_VIA:-}" = seccomp ]; then
        "$BPFFSCTL" run --seccomp -- "$@"
    else
        LD_PRELOAD="$BPFFS_PRELOAD" "$@"
    fi
}

# Runs a command under `bpffsctl run` (the shim preloaded, as a user would).
run() {
    "$BPFFSCTL" run -- "$@"
}

# The mounts below $WORK, as /proc/mounts lists them.
work_mounts() {
    grep -F " $WORK" /proc/mounts || true
}

# The mount points below $WORK that this script did not make, as /proc/mounts lists them
# (octal escapes left as they are: $WORK has none).
stray_mounts() {
    local m own
    awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | while read -r m; do
        own=no
        for o in "${MOUNTS[@]}" "${FUSE_MOUNTS[@]}"; do
            [ "$m" != "$o" ] || own=yes
        done
        [ "$own" = yes ] || echo "$m"
    done
}

# A new network namespace named $1 (unique to this test run), deleted by the EXIT trap.
add_netns() {
    ip netns add "$1" || fail "ip netns add $1"
    NETNS+=("$1")
}

# A new cgroup below the cgroup2 mount (its `unified` child on a hybrid hierarchy), its path in
# $CGROUP (not printed: a command substitution's subshell would keep it from the trap). Removed
# by the EXIT trap, after the mounts that may pin links into it.
add_cgroup() {
    local root
    root=$(awk '$3 == "cgroup2" { print $2 }' /proc/mounts | sort | head -1)
    [ -n "$root" ] || fail "no cgroup2 mount"
    CGROUP=$(mktemp -d "$root/bpffs-preload-XXXXXX") || fail "mkdir in $root"
    CGROUPS+=("$CGROUP")
}

# The outcome of a command: "ok", or its exit status and the last line it printed, with the
# mount's own path ($1) taken out so that both sides of a comparison read alike.
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

# The tree below a mount as `find` lists it (type, path, a symlink's target with the mount's
# path taken out), without the kernel's own preload pins.
tree_of() {
    (cd "$1" && find . -mindepth 1 -printf '%y %p %l\n' | sed "s|$1|ROOT|g" |
        grep -v -e '^. ./maps.debug ' -e '^. ./progs.debug ' | sort)
}

# "yes" if $1 is set and equals $2, else "no" with both (ids differ between a kernel bpffs and
# ours, so an outcome to compare says only whether two ids match).
same() {
    if [ -n "$1" ] && [ "$1" = "$2" ]; then echo yes; else echo "no ('$1' against '$2')"; fi
}

# "released" once the kernel has no $1 (map, prog, link) with id $2, within 10 s; else "held".
released() {
    local deadline=$((SECONDS + 10))
    while bpftool "$1" show id "$2" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || { echo held; return; }
        sleep 0.05
    done
    echo released
}

# The kernel id in `bpftool -j ... show` output.
json_id() {
    sed -n 's/^{"id":\([0-9]*\),.*/\1/p'
}
