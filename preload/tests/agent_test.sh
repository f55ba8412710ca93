#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The seccomp agent for whole containers (`bpffsctl seccomp-agent`, docs/preload.md), with
# Debian's runc: the container's seccomp profile sends bpf(2) BPF_OBJ_PIN/BPF_OBJ_GET, statfs and
# fstatfs to the agent's socket (listenerPath); a directory of a compat=linux mount is bound in.
# Inside, as uid 1000 without capabilities and with nothing of ours in the image, a statically
# linked libbpf program and a Go program on cilium/ebpf pin and get there: the kernel ids are
# the host's, the pins are uid 1000's, and the answers are that user's (root's 0600 map and
# root's directory refuse it). Without the agent the same program fails, as on any FUSE mount.
source "$(dirname "$0")/lib.sh"

if [ -z "${STATIC_PIN:-}" ] || [ -z "${PINGET_GO:-}" ]; then fail "run through ctest"; fi
need_tools runc busybox jq go
# ThreadSanitizer keeps a thread of its own in every process, forked helpers too, and setns(2)
# refuses to move a process with threads into another mount namespace: under it the agent's
# helpers cannot enter a container (they say so, and the calls are the kernel's).
if ldd "$BPFFSCTL" 2>/dev/null | grep -q libtsan; then
    echo "skipped: bpffsctl is built with ThreadSanitizer, whose thread setns(CLONE_NEWNS) refuses"
    exit 77
fi

# The image: busybox, the static program, the Go program; nothing of bpffs-fuse.
B=$WORK/bundle
R=$B/rootfs
mkdir -p "$R/bin" "$R/bpf" "$R/proc" "$R/dev" "$WORK/go"
cp "$(command -v busybox)" "$R/bin/busybox"
for app in sh cat ls; do ln -s busybox "$R/bin/$app"; done
cp "$STATIC_PIN" "$R/bin/static_pin"
GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$WORK/go" go build -o "$R/bin/pinget" \
    "$PINGET_GO" 2>"$WORK/go.err" || fail "go build of pinget.go: $(cat "$WORK/go.err")"

# The host: a compat=linux mount, the tenant's directory and map given to uid 1000 as made.
MNT=$WORK/mnt
start_bpffs "$MNT" -o compat=linux,mode=0755
"$BPFFSCTL" run -- "$STATIC_PIN" "$MNT/src" >/dev/null || fail "root's map"
"$BPFFSCTL" mkdir --owner 1000:1000 "$MNT/tenant"
"$BPFFSCTL" pin --from "$MNT/src" --owner 1000:1000 "$MNT/tenant/m"
"$BPFFSCTL" pin --from "$MNT/src" "$MNT/tenant/root_only"
mkdir -m 0755 "$MNT/tenant/root_dir"
ID=$("$BPFFSCTL" get "$MNT/tenant/m" | sed -n 's/^id: //p')

# The agent.
SOCK=$WORK/agent.sock
"$BPFFSCTL" seccomp-agent "$SOCK" >"$WORK/agent.log" 2>&1 </dev/null &
AGENT=$!
DAEMONS+=("$AGENT")
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || fail "the agent did not listen: $(cat "$WORK/agent.log")"
expect "only root may hand the agent a listener" "$(stat -c '%a %u' "$SOCK")" "600 0"

# runc's own spec, as docs/preload.md edits it: uid 1000, no capabilities, no new privileges,
# the tenant's directory at /bpf, and (with the agent) the notify rules and listenerPath.
(cd "$B" && runc spec) || fail "runc spec"
jq --arg rw "$MNT/tenant" '
  .process.terminal = false
  | .process.user = {uid: 1000, gid: 1000}
  | .process.capabilities = {bounding: [], effective: [], permitted: [], inheritable: [],
                             ambient: []}
  | .process.noNewPrivileges = true
  | .mounts += [{destination: "/bpf", type: "bind", source: $rw, options: ["rbind", "rw"]}]
' "$B/config.json" >"$B/base.json"
jq --arg sock "$SOCK" '.linux.seccomp = {
    defaultAction: "SCMP_ACT_ALLOW", listenerPath: $sock,
    syscalls: [
      {names: ["bpf"], action: "SCMP_ACT_NOTIFY", args: [{index: 0, value: 6, op: "SCMP_CMP_EQ"}]},
      {names: ["bpf"], action: "SCMP_ACT_NOTIFY", args: [{index: 0, value: 7, op: "SCMP_CMP_EQ"}]},
      {names: ["statfs", "fstatfs"], action: "SCMP_ACT_NOTIFY"}]}' \
    "$B/base.json" >"$B/agent.json"
# ctr CONFIG ARGS...: runs ARGS in a container of that config (base or agent), prints its output.
ctr() {
    local config=$1 id
    shift
    id=bpffs-agent-test-$$-$BASHPID  # each call runs in a subshell of its own
    jq --argjson args "$(printf '%s\n' "$@" | jq -R . | jq -s .)" '.process.args = $args' \
        <"$B/$config.json" >"$B/config.json"
    timeout 60 runc run --bundle "$B" "$id" </dev/null 2>&1 || true
    runc delete -f "$id" >/dev/null 2>&1 || true
}

out=$(ctr agent /bin/static_pin --from /bpf/m /bpf/mine)
echo "$out"
expect "the static program in the container: statfs, get, pin, get" \
    "$(head -5 <<<"$out" | tr '\n' ' ')" "statfs: bpf pin: ok get: ok ids: $ID $ID value: 4242 "
expect "its pin is the container user's" "$(stat -c '%u:%g %a' "$MNT/tenant/mine")" "1000:1000 600"
# (Without a flood of signals: runc's filter, made with libseccomp 2.5, has no killable wait, so
# a call signalled while it is served is restarted; docs/preload.md, "What each costs".)
expect "the Go program gets it 100 times" \
    "$(ctr agent /bin/pinget -gets 100 -signals=false /bpf/m)" "pinget: 100 gets ok"
out=$(ctr agent /bin/pinget -gets 1 /bpf/root_only)
[[ "$out" == *"permission denied"* ]] || fail "root's 0600 map fetched in the container: $out"
echo "ok: root's 0600 map refuses the container's user: $out"
expect "root's directory refuses its pin" \
    "$(ctr agent /bin/static_pin --from /bpf/m /bpf/root_dir/x | sed -n 2p)" "pin: EACCES"
out=$(ctr base /bin/static_pin --from /bpf/m /bpf/other)
expect "without the agent: no bpffs, and the kernel refuses the get" \
    "$(head -2 <<<"$out" | tr '\n' ' ')" "statfs: other get --from: EACCES "
grep -q "serving container bpffs-agent-test-$$-" "$WORK/agent.log" ||
    fail "the agent's log does not name the container: $(cat "$WORK/agent.log")"
cat "$WORK/agent.log"
echo "passed"
