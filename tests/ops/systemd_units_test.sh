#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The systemd units as installed, checked without a running systemd:
#   - `systemd-analyze verify` accepts the template (as an instance for /mnt/bpf) and the
#     example .mount unit without a single warning, with their man: documentation found;
#   - the template is Type=notify, Restart=on-failure, runs the daemon in the foreground, and
#     uses no option that would give the service its own mount namespace (its mount would be
#     invisible) or hide peers' /proc entries from the broker;
#   - the .mount unit is Type=fuse.bpffs-fuse and named after its Where=;
#   - the template's ExecStart=, expanded as systemd would (%f, $BPFFS_FUSE_OPTIONS from the
#     environment file), run with the unit's CapabilityBoundingSet= and NoNewPrivileges= and a
#     $NOTIFY_SOCKET (ops_notify_probe plays the manager), sends READY=1 from the main process
#     once the mount answers, serves a real pin and get, and stops cleanly on SIGTERM.
# The units are installed into a real temp prefix (not a DESTDIR) so that ExecStart= names a
# binary that exists and the man pages are where MANPATH says.
#
#   systemd_units_test.sh BUILD_DIR NOTIFY_PROBE CONSUMER
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -eq 3 ] || fail "usage: systemd_units_test.sh BUILD_DIR NOTIFY_PROBE CONSUMER"
BUILD=$1
PROBE=$2
CONSUMER=$3
need systemd-analyze "systemd (Debian: the 'systemd' package)"
need systemd-escape "systemd (Debian: the 'systemd' package)"
need man "man-db"
need setpriv "util-linux"

make_tmpdir
P=$T/usr
cmake --install "$BUILD" --prefix "$P" >"$T/install.log" 2>&1 || {
    cat "$T/install.log"
    fail "cmake --install --prefix $P failed"
}
U=$P/lib/systemd/system
TEMPLATE=$U/bpffs-fuse@.service
MOUNT_UNIT=$U/mnt-bpf.mount
expect "the template is installed" test -f "$TEMPLATE"
expect "the .mount unit is installed" test -f "$MOUNT_UNIT"

# --- systemd-analyze verify: no output at all (unknown keys and bad values are only warnings,
# with exit status 0) ---------------------------------------------------------------------------
instance=$(systemd-escape --path /mnt/bpf)
expect_eq "the instance name of /mnt/bpf" "$instance" mnt-bpf
for unit in "$U/bpffs-fuse@$instance.service" "$MOUNT_UNIT"; do
    out=$(MANPATH=$P/share/man systemd-analyze verify "$unit" 2>&1) || fail "verify $unit: $out"
    expect_eq "systemd-analyze verify $(basename "$unit") says nothing" "$out" ""
done

# --- what the units must say -----------------------------------------------------------------
# The value of KEY in a unit file (the last assignment wins, as in systemd).
key() { sed -n "s/^$2=//p" "$1" | tail -n 1; }
expect_eq "the service's type" "$(key "$TEMPLATE" Type)" notify
expect_eq "the service restarts" "$(key "$TEMPLATE" Restart)" on-failure
expect_eq "readiness is accepted from the main process" "$(key "$TEMPLATE" NotifyAccess)" main
exec_start=$(key "$TEMPLATE" ExecStart)
case " $exec_start " in
*" -f "* | *" --foreground "*) log "ok: ExecStart keeps the daemon in the foreground" ;;
*) fail "ExecStart does not pass -f: the main pid would exit before READY=1 ($exec_start)" ;;
esac
for k in PrivateTmp PrivateDevices PrivateMounts PrivateUsers ProtectSystem ProtectHome \
    ProtectKernelTunables ProtectKernelModules ProtectKernelLogs ProtectControlGroups \
    ProtectHostname ProtectProc ProcSubset ReadOnlyPaths ReadWritePaths InaccessiblePaths \
    TemporaryFileSystem BindPaths BindReadOnlyPaths RootDirectory RootImage MountFlags; do
    v=$(key "$TEMPLATE" "$k")
    case "$v" in
    "" | no | false | default) ;;
    *) fail "the service sets $k=$v: a private mount namespace (or hidden /proc) breaks it" ;;
    esac
done
log "ok: no option that isolates the service's mounts or /proc"
families=$(key "$TEMPLATE" RestrictAddressFamilies)
case " $families " in
"  " | *" AF_UNIX "*) log "ok: AF_UNIX is allowed ($families)" ;;
*) fail "RestrictAddressFamilies=$families forbids the broker's AF_UNIX socket" ;;
esac

expect_eq "the mount unit's type" "$(key "$MOUNT_UNIT" Type)" fuse.bpffs-fuse
expect_eq "the mount unit's What=" "$(key "$MOUNT_UNIT" What)" bpffs
where=$(key "$MOUNT_UNIT" Where)
expect_eq "the mount unit is named after Where=$where" "$(basename "$MOUNT_UNIT")" \
    "$(systemd-escape --path --suffix=mount "$where")"

# --- the service's command, run as systemd would run it -----------------------------------------
# systemd: %f is the unescaped instance path; "$VAR" (unbraced) splits the variable's value
# into words. The environment file's example sets BPFFS_FUSE_OPTIONS="-o uid=1000,mode=0750".
caps=$(key "$TEMPLATE" CapabilityBoundingSet)
[ -n "$caps" ] || fail "the service has no CapabilityBoundingSet"
bounding="-all"
for c in $caps; do
    c=${c#CAP_}
    bounding+=",+${c,,}"
done
nnp=()
[ "$(key "$TEMPLATE" NoNewPrivileges)" = yes ] && nnp=(--no-new-privs)
BPFFS_FUSE_OPTIONS="-o uid=1000,mode=0750"
cmd=${exec_start//%f/\{MNT\}}
cmd=${cmd//\$BPFFS_FUSE_OPTIONS/$BPFFS_FUSE_OPTIONS}
case "$cmd" in *%* | *\$*) fail "ExecStart has specifiers or variables this test does not know: $cmd" ;; esac
set -f
# shellcheck disable=SC2206
argv=($cmd)
set +f
log "running the service's command: setpriv ${nnp[*]} --bounding-set $bounding ${argv[*]}"
expect "the service's command becomes ready, serves a pin and a get, and stops on SIGTERM" \
    "$PROBE" --expect-root=0750,1000,0 --at-ready="$CONSUMER {MNT}" -- \
    setpriv "${nnp[@]}" --inh-caps=-all --bounding-set "$bounding" -- "${argv[@]}"
