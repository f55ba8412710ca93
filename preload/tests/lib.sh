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
    local i
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

# Runs a command with the shim preloaded, as `bpffsctl run` does.
shim() {
    LD_PRELOAD="$BPFFS_PRELOAD" "$@"
}

# The mounts below $WORK, as /proc/mounts lists them.
work_mounts() {
    grep -F " $WORK" /proc/mounts || true
}

# The kernel id in `bpftool -j ... show` output.
json_id() {
    sed -n 's/^{"id":\([0-9]*\),.*/\1/p'
}
