# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# Shared by the ops tests (sourced): messages, a cleanup stack run on every exit, waiting on
# conditions with a timeout, mounts and processes.
#
# Each test registers what it makes with `defer CMD...` right after making it; the EXIT trap
# runs the deferred commands in reverse order whether the test passed or failed (set -e, a
# failed `expect`, a signal), so no mount, daemon or temp dir outlives a test.
set -euo pipefail

OPS_NAME=${OPS_NAME:-$(basename "$0" .sh)}
OPS_DEFERRED=()

log() { printf '%s: %s\n' "$OPS_NAME" "$*"; }
fail() {
    printf '%s: FAILED: %s\n' "$OPS_NAME" "$*" >&2
    exit 1
}
# A tool the test cannot do without: its absence is a failure, never a silent pass.
need() {
    command -v "$1" >/dev/null 2>&1 ||
        fail "'$1' is not installed; install $2 (tools/deps.txt lists the packages)"
}
# expect DESCRIPTION CMD...: runs CMD, fails the test with DESCRIPTION unless it succeeds.
expect() {
    local what=$1
    shift
    if "$@"; then
        log "ok: $what"
    else
        fail "$what (command: $*)"
    fi
}
# expect_eq DESCRIPTION GOT WANT
expect_eq() {
    if [ "$2" = "$3" ]; then
        log "ok: $1 ($2)"
    else
        fail "$1: got '$2', want '$3'"
    fi
}

# refused WHAT WANT CMD...: CMD fails (with exit status $REFUSED_STATUS when that is set, e.g. 1
# for bpffsctl's failures and 2 for its usage errors), and what it prints contains WANT.
refused() {
    local what=$1 want=$2 out rc=0
    shift 2
    out=$("$@" 2>&1) || rc=$?
    log "$what: $out"
    [ "$rc" -ne 0 ] || fail "$what: succeeded, want a failure saying '$want'"
    if [ -n "${REFUSED_STATUS:-}" ] && [ "$rc" -ne "$REFUSED_STATUS" ]; then
        fail "$what: exit status $rc, want $REFUSED_STATUS"
    fi
    grep -qF -- "$want" <<<"$out" || fail "$what: the message does not say '$want'"
    log "ok: $what"
}

defer() {
    local cmd
    printf -v cmd '%q ' "$@"
    OPS_DEFERRED+=("$cmd")
}
ops_exit() {
    local rc=$? i
    set +e
    trap - EXIT INT TERM
    for ((i = ${#OPS_DEFERRED[@]} - 1; i >= 0; i--)); do
        eval "${OPS_DEFERRED[i]}"
    done
    if [ "$rc" -eq 0 ]; then log "PASSED"; else log "FAILED (exit status $rc)"; fi
    exit "$rc"
}
trap ops_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_until SECONDS CMD...: polls CMD until it succeeds; fails (returns 1) after SECONDS.
wait_until() {
    local deadline=$((SECONDS + $1)) pause=0.01
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep "$pause"
        pause=0.1
    done
}

# The filesystem type mounted at PATH ("" when none).
fstype_at() { findmnt -rn -o FSTYPE --mountpoint "$1" 2>/dev/null | tail -n 1 || true; }
is_bpffs_mount() { [ "$(fstype_at "$1")" = "fuse.bpffs-fuse" ]; }
not_mounted() { [ -z "$(fstype_at "$1")" ]; }

# A process that has exited: gone, or a zombie nobody reaps (detached daemons are reparented).
proc_gone() {
    local state
    [ -e "/proc/$1" ] || return 0
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
    [ "$state" = "Z" ] || [ -z "$state" ]
}

# Unmounts PATH if anything is mounted there (lazily when busy). For cleanups.
unmount_quietly() {
    local i
    for i in 1 2 3; do
        not_mounted "$1" && return 0
        umount "$1" 2>/dev/null || true
        wait_until 5 not_mounted "$1" && return 0
    done
    log "cleanup: detaching $1 lazily"
    umount -l "$1" 2>/dev/null || true
}

# Stops a daemon we started, by pid: SIGTERM, then SIGKILL. For cleanups.
stop_pid() {
    proc_gone "$1" && return 0
    kill -TERM "$1" 2>/dev/null || true
    wait_until 10 proc_gone "$1" && return 0
    log "cleanup: killing pid $1"
    kill -KILL "$1" 2>/dev/null || true
    wait_until 10 proc_gone "$1" || true
}

# Sets T to a fresh temp dir, removed on exit; reachable by unprivileged users. (Not to be
# called in a subshell: the removal is deferred in the caller's shell.)
make_tmpdir() {
    T=$(mktemp -d "/tmp/bpffs-ops-${OPS_NAME}-XXXXXX")
    chmod 0755 "$T"
    defer rm -rf --one-file-system "$T"
}

# mount_daemon BPFFS_FUSE BPFFSCTL MNT [ARGS...]: mounts bpffs-fuse on MNT (made here) with
# ARGS, and sets PID to its daemon's; the unmount and the daemon's stop are deferred.
mount_daemon() {
    local fuse=$1 ctl=$2 mnt=$3
    shift 3
    mkdir -p "$mnt"
    defer unmount_quietly "$mnt"
    "$fuse" "$mnt" "$@" || fail "bpffs-fuse did not mount $mnt"
    PID=$("$ctl" status "$mnt" | sed -n 's/^pid: //p')
    [ -n "$PID" ] || fail "no status from the daemon of $mnt"
    defer stop_pid "$PID"
}

# kernel_map KMNT NAME: mounts a kernel bpffs on KMNT (made here; unmounted on exit) holding a
# map KMNT/m named NAME (an array of one 4-byte value), for tests that need an object to pin.
kernel_map() {
    need bpftool "bpftool"
    mkdir -p "$1"
    mount -t bpf bpf "$1" || fail "cannot mount a kernel bpffs on $1"
    defer umount "$1"
    bpftool map create "$1/m" type array key 4 value 4 entries 1 name "$2" ||
        fail "bpftool map create $1/m"
}

# The value of KEY in `bpffsctl status` output ("key: value" lines) given on stdin.
field() { sed -n "s/^$1: //p"; }

# stat's "MODE UID GID" of PATH (mode in octal, 4 digits).
owner_mode() { stat -c '%04a %u %g' "$1"; }
