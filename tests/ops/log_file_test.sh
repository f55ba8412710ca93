#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Where a detached daemon's log goes (issue 20):
#   - --log-file PATH: the supervisor's and its workers' lines are appended there, also after
#     the daemon detached and after a worker was replaced; a relative PATH is the caller's
#     directory's (the daemon moves to /); a file that cannot be opened is exit 2;
#   - without it and without a syslog socket: a daemon whose stderr is a file keeps logging
#     there once detached, and says so; on a terminal (a pty from script(1)) it says, before it
#     detaches, that its log will go nowhere; on a pipe too, and lets go of the pipe, so that
#     `bpffs-fuse MNT 2>&1 | cat` ends when the mount is made, not when the daemon exits.
#
#   log_file_test.sh BPFFS_FUSE BPFFSCTL
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || fail "usage: log_file_test.sh BPFFS_FUSE BPFFSCTL"
BPFFS_FUSE=$(realpath "$1")
BPFFSCTL=$(realpath "$2")
need unshare "util-linux"

make_tmpdir
MNT=$T/mnt
mkdir "$MNT"
defer unmount_quietly "$MNT"
(cd "$T" && "$BPFFS_FUSE" "$MNT" -o mode=0755 --log-file daemon.log) || fail "bpffs-fuse did not mount"
s=$("$BPFFSCTL" status "$MNT")
PID=$(field pid <<<"$s")
WORKER=$(field worker <<<"$s")
defer stop_pid "$PID"
expect "the supervisor's lines are in the file" grep -q "bpffs-fuse\[$PID\] info: ready: serving $MNT" \
    "$T/daemon.log"
expect "the worker's too" grep -q "bpffs-fuse\[$WORKER\] info: worker $WORKER (generation 1) serving" \
    "$T/daemon.log"
kill -9 "$WORKER"
wait_until 10 grep -q "info: worker [0-9]* (generation 2) serving" "$T/daemon.log" ||
    fail "no line of a new worker serving in the log file"
expect "the supervisor logged the crash" grep -q "warning: worker $WORKER killed" "$T/daemon.log"

# (Under a regular file: no directory can be made there.)
if "$BPFFS_FUSE" "$T/mnt2" --log-file "$T/daemon.log/log" >"$T/out" 2>&1; then
    fail "a log file that cannot be opened was accepted"
else
    rc=$?
fi
expect_eq "a log file that cannot be opened: exit status" "$rc" 2
expect "... and the message names it" grep -qF -- "--log-file $T/daemon.log/log" "$T/out"

# No syslog: /dev/log hidden behind a plain file in a mount namespace of our own, where the
# daemon mounts, is checked and is unmounted (its exit awaited: its last line comes then).
need script "util-linux"
touch "$T/not-a-socket"
mkdir "$T/mnt3"
cat >"$T/nosyslog.sh" <<'SCRIPT'
set -e
T=$1 FUSE=$2 CTL=$3
if [ -e /dev/log ]; then mount --bind "$T/not-a-socket" /dev/log; fi
"$FUSE" "$T/mnt3" -o mode=0755
pid=$("$CTL" status "$T/mnt3" | sed -n 's/^pid: //p')
umount "$T/mnt3"
while [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat")" != Z ]; do sleep 0.05; done
SCRIPT
unshare -m --propagation private bash "$T/nosyslog.sh" "$T" "$BPFFS_FUSE" "$BPFFSCTL" \
    2>"$T/nosyslog.err" || fail "the mount without syslog failed ($?): $(cat "$T/nosyslog.err")"
log "without syslog, stderr a file: $(cat "$T/nosyslog.err")"
expect "it says the log stays on stderr" grep -q "the detached daemon keeps logging to this stderr" \
    "$T/nosyslog.err"
expect "and a line from after it detached is there" grep -q "is gone; releasing every object" "$T/nosyslog.err"
script -qec "unshare -m --propagation private bash $T/nosyslog.sh $T $BPFFS_FUSE $BPFFSCTL" \
    /dev/null >"$T/nosyslog.tty" 2>&1 || fail "the mount on a terminal failed: $(cat "$T/nosyslog.tty")"
log "without syslog, on a terminal: $(cat "$T/nosyslog.tty")"
expect "on a terminal, it says its log goes nowhere" \
    grep -q "its log goes nowhere; use --log-file PATH" "$T/nosyslog.tty"
expect "and no line from after it detached is there" \
    bash -c "! grep -q 'is gone; releasing every object' '$T/nosyslog.tty'"

# A pipe: the pipeline must end once the daemon has detached, while the mount still serves.
mkdir "$T/mnt4"
cat >"$T/nosyslog_pipe.sh" <<'SCRIPT'
T=$1 FUSE=$2 CTL=$3
if [ -e /dev/log ]; then mount --bind "$T/not-a-socket" /dev/log; fi
("$FUSE" "$T/mnt4" -o mode=0755 2>&1 | cat >"$T/pipe.out"; echo done >"$T/pipe.ended") &
for _ in $(seq 100); do [ -e "$T/pipe.ended" ] && break; sleep 0.1; done
pid=$("$CTL" status "$T/mnt4" | sed -n 's/^pid: //p')
[ -n "$pid" ] && readlink "/proc/$pid/fd/2" >"$T/pipe.fd2"
umount "$T/mnt4"
while [ -n "$pid" ] && [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat")" != Z ]; do
    sleep 0.05
done
wait
SCRIPT
unshare -m --propagation private bash "$T/nosyslog_pipe.sh" "$T" "$BPFFS_FUSE" "$BPFFSCTL" ||
    fail "the mount with stderr a pipe failed ($?): $(cat "$T/pipe.out")"
log "without syslog, stderr a pipe: $(cat "$T/pipe.out"); the daemon's fd 2: $(cat "$T/pipe.fd2")"
expect "with stderr a pipe, the pipeline ended while the daemon served" test -e "$T/pipe.ended"
expect "... the daemon's stderr is no pipe" bash -c "! grep -q pipe '$T/pipe.fd2'"
expect "... and it said its log goes nowhere" grep -q "its log goes nowhere; use --log-file PATH" \
    "$T/pipe.out"
