#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Programs the preload shim cannot reach, under the seccomp supervisor (`bpffsctl run`, which
# picks it for them, and `bpffsctl run --seccomp`), on a compat=linux mount:
#   - a Go program on Debian's cilium/ebpf (GOPATH mode, built here) pins a new map, loads it
#     back with ebpf.LoadPinnedMap, writes through one handle and reads through the other,
#     unpins; a statically linked libbpf program pins and gets; the kernel ids are those
#     `bpffsctl get` reports; without interception both fail as on any FUSE filesystem;
#   - on a kernel bpffs both print under the supervisor exactly what they print without it;
#   - 10,000 gets from 64 goroutines with signals flying all complete;
#   - the supervisor covers the command's children, stays until the last process of the tree
#     is gone and returns the command's status; killed, it fails the calls (ENOSYS), none hangs;
#   - an unprivileged user (no_new_privs, no capabilities) is served as itself;
#   - a pin takes the caller's umask, not bpffsctl's.
source "$(dirname "$0")/lib.sh"

if [ -z "${STATIC_PIN:-}" ] || [ -z "${PINGET_GO:-}" ]; then fail "run through ctest"; fi
need_tools go
GOSRC=/usr/share/gocode/src/github.com/cilium/ebpf
[ -d "$GOSRC" ] || fail "$GOSRC is missing: install golang-github-cilium-ebpf-dev (tools/deps.txt)"

# The Go program, built as Debian packages Go code: GOPATH mode, no network.
mkdir -p "$WORK/go/cache"
GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$WORK/go/cache" go build -o "$WORK/pinget" "$PINGET_GO" 2>"$WORK/go.err" ||
    fail "go build of pinget.go: $(cat "$WORK/go.err")"
cp "$STATIC_PIN" "$WORK/static_pin"
chmod 0755 "$WORK/pinget" "$WORK/static_pin"
PINGET=$WORK/pinget
STATIC=$WORK/static_pin

MNT=$WORK/mnt
start_bpffs "$MNT" -o compat=linux,mode=0755
mkdir -m 1777 "$MNT/open"
KMNT=$WORK/kernel
start_kernel_bpffs "$KMNT"

id_of() { "$BPFFSCTL" get "$1" | sed -n 's/^id: //p'; }

# Without interception: the raw system calls reach the kernel, which says what it says of a
# FUSE path; cilium/ebpf refuses a directory that is no bpf filesystem.
out=$("$STATIC" "$MNT/s0" || true)
expect "a static program alone: statfs sees no bpffs, the pin is the kernel's EPERM" \
    "$(head -2 <<<"$out" | tr '\n' ' ')" "statfs: other pin: EPERM "
expect "a Go program alone: cilium/ebpf refuses the directory" "$("$PINGET" "$MNT/g0" || true)" \
    "pinget: pin: $MNT/g0 is not on a bpf filesystem"

# Under bpffsctl run, which picks the supervisor for both.
out=$("$BPFFSCTL" run -- "$STATIC" "$MNT/s1") || fail "static_pin under bpffsctl run: $out"
echo "$out"
sid=$(id_of "$MNT/s1")
expect "the static program: statfs, pin, get, one map" \
    "$(head -5 <<<"$out" | tr '\n' ' ')" "statfs: bpf pin: ok get: ok ids: $sid $sid value: 4242 "
expect "the fetched fd is close-on-exec, as the kernel makes it" "$(tail -1 <<<"$out")" \
    "cloexec: yes"
out=$("$BPFFSCTL" run -- "$PINGET" -keep "$MNT/g1") || fail "pinget under bpffsctl run: $out"
expect "the Go program: pin, LoadPinnedMap, write and read, one map" "$out" \
    "pinget: ok id=$(id_of "$MNT/g1")"
out=$("$BPFFSCTL" run -- "$PINGET" "$MNT/g2") || fail "pinget with its unpin: $out"
[ ! -e "$MNT/g2" ] || fail "pinget unpinned $MNT/g2, yet it is there"
echo "ok: the Go program's unpin removed its name"

# A kernel bpffs: the same output with and without the supervisor (kernel ids masked).
mask() { sed -E 's/[0-9]{2,}/N/g'; }
without=$({ "$STATIC" "$KMNT/s" || true; "$STATIC" "$KMNT/s" || true; "$PINGET" "$KMNT/g" || true; } | mask)
with=$({ "$BPFFSCTL" run --seccomp -- "$STATIC" "$KMNT/t" || true
    "$BPFFSCTL" run --seccomp -- "$STATIC" "$KMNT/t" || true
    "$BPFFSCTL" run --seccomp -- "$PINGET" "$KMNT/h" || true; } | mask | sed 's|/t$|/s|')
expect "a kernel bpffs: the same answers, EEXIST included" "$with" "$without"

# The caller's umask, not bpffsctl's, makes a compat=linux pin's mode, as on the kernel's bpffs.
"$BPFFSCTL" run --seccomp -- sh -c "umask 0277; '$STATIC' '$MNT/u1' >/dev/null" ||
    fail "static_pin with umask 0277"
sh -c "umask 0277; '$STATIC' '$KMNT/u1' >/dev/null" || fail "static_pin on the kernel bpffs"
expect "a pin takes the caller's umask (0600 & ~0277), as the kernel's" \
    "$(stat -c %a "$MNT/u1")" "$(stat -c %a "$KMNT/u1")"

# Signals flying: Go preempts its threads with SIGURG, the program sends more.
expect "10,000 gets from 64 goroutines with signals" \
    "$("$BPFFSCTL" run -- "$PINGET" -gets 10000 "$MNT/g1")" "pinget: 10000 gets ok"

# The command's children are covered; bpffsctl stays until the tree is gone.
out=$("$BPFFSCTL" run --seccomp -- sh -c "'$STATIC' '$MNT/c1' | sed -n 2p; '$STATIC' '$MNT/c2' | sed -n 2p")
expect "a shell's children are served" "$(tr '\n' ' ' <<<"$out")" "pin: ok pin: ok "
start=$SECONDS
rc=0
"$BPFFSCTL" run --seccomp -- sh -c 'sleep 2 & exit 3' || rc=$?
expect "the command's exit status" "$rc" 3
[ $((SECONDS - start)) -ge 1 ] || fail "bpffsctl returned before the command's last process"
echo "ok: bpffsctl stayed until the command's background process ended"

# A supervisor killed: the calls fail with ENOSYS at once, none hangs.
out=$(timeout 20 "$BPFFSCTL" run --seccomp -- sh -c "kill -9 \$PPID; sleep 0.2; '$STATIC' '$MNT/k1'" || true)
expect "a killed supervisor: the static program's calls fail with ENOSYS" \
    "$(head -1 <<<"$out")" "statfs: ENOSYS"

# An unprivileged user (no_new_privs, no capabilities; it may not create maps here, but may use
# what it fetches) is served as itself: the mode bits answer it.
cp "$BPFFSCTL" "$WORK/bpffsctl"
chmod 0755 "$WORK/bpffsctl"
"$BPFFSCTL" pin --from "$MNT/g1" --mode 0666 "$MNT/open/shared"
"$BPFFSCTL" pin --from "$MNT/g1" --mode 0600 "$MNT/open/root_only"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
expect "an unprivileged user fetches what it may" \
    "$(as_nobody "$WORK/bpffsctl" run -- "$PINGET" -gets 100 "$MNT/open/shared")" \
    "pinget: 100 gets ok"
out=$(as_nobody "$WORK/bpffsctl" run -- "$PINGET" -gets 1 "$MNT/open/root_only" || true)
[[ "$out" == *"permission denied"* ]] || fail "root's 0600 map fetched by another user: $out"
echo "ok: and not what it may not: $out"
echo "passed"
