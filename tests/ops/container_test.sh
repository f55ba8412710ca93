#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The container recipe of docs/containers.md, for real with runc (issue 20): a bpffs-fuse mount
# on the host; one subdirectory bind-mounted read-write into the container at /bpf, another
# read-only at /bpf-ro; the container's process runs as uid 1000 with no capabilities, from a
# rootfs built here from host files (busybox-static, bpffsctl, bpftool, the shim and their
# libraries). It proves:
#   - under the runtime's default seccomp profile plus bpf(2) (tools/seccomp_profile.sh --oci),
#     the container user fetches root's map through the mount (bpffsctl get) and updates it with
#     bpftool under the shim, and the host sees the update by kernel id;
#   - the container's pins and gets get the container user's permission answers;
#   - the read-only bind refuses pins, mkdir, unlink and chmod with EROFS, and serves gets
#     (read-write fds), as the kernel's bpffs does through a read-only bind;
#   - under the runtime's default profile as it is (bpf(2) only with CAP_SYS_ADMIN) the fetched
#     fd is unusable: the update fails with EPERM, and the map keeps its value;
#   - the Kubernetes example docs/examples/kubernetes/bpf-pod.yaml parses and names only fields
#     of the Kubernetes API (an explicit list here) with the settings the doc promises.
#
#   container_test.sh BPFFS_FUSE BPFFSCTL PRELOAD SOURCE_DIR
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -eq 4 ] || fail "usage: container_test.sh BPFFS_FUSE BPFFSCTL PRELOAD SOURCE_DIR"
BPFFS_FUSE=$(realpath "$1")
BPFFSCTL=$(realpath "$2")
PRELOAD=$(realpath "$3")
SRC=$(realpath "$4")
need runc "runc"
need busybox "busybox-static"
need jq "jq"
need bpftool "bpftool"
[ -r /usr/share/containers/seccomp.json ] ||
    fail "no /usr/share/containers/seccomp.json; install golang-github-containers-common"
PY=
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import yaml' 2>/dev/null; then PY=$p && break; fi
done
[ -n "$PY" ] || fail "no python3 with yaml; install python3-yaml"

# The value of key 1 of map ID, as root on the host reads it.
host_value() { bpftool -j map lookup id "$1" key 1 0 0 0 | jq -c .value; }

make_tmpdir
MNT=$T/mnt

# The host: the mount, a directory for the container (its user's), one it may only read.
mount_daemon "$BPFFS_FUSE" "$BPFFSCTL" "$MNT" -o compat=linux,mode=0755
"$BPFFSCTL" mkdir --owner 1000:1000 "$MNT/tenant"
mkdir "$MNT/shared" "$MNT/root_maps"
"$BPFFSCTL" run -- bpftool map create "$MNT/root_maps/m" type hash key 4 value 4 entries 8 \
    name ctr_test || fail "root could not create the map"
"$BPFFSCTL" pin --from "$MNT/root_maps/m" --owner 1000:1000 "$MNT/tenant/m"
"$BPFFSCTL" pin --from "$MNT/root_maps/m" --owner 1000:1000 "$MNT/shared/m"
ID=$("$BPFFSCTL" get "$MNT/tenant/m" | field id)
# What the container user may not touch: root's map and root's directory.
"$BPFFSCTL" pin --from "$MNT/tenant/m" "$MNT/tenant/root_only"
mkdir "$MNT/tenant/root_dir"
log "the map: id $ID"

# The image: busybox, bpffsctl, bpftool and the shim where an install puts it, with libraries.
B=$T/bundle
R=$B/rootfs
mkdir -p "$R/bin" "$R/usr/local/bin" "$R/usr/local/lib/bpffs" "$R/usr/sbin" "$R/bpf" \
    "$R/bpf-ro"
cp "$(command -v busybox)" "$R/bin/busybox"
for app in sh id cat grep ls mkdir rm; do ln -s busybox "$R/bin/$app"; done
cp "$BPFFSCTL" "$R/usr/local/bin/bpffsctl"
cp "$(command -v bpftool)" "$R/usr/sbin/bpftool"
cp "$PRELOAD" "$R/usr/local/lib/bpffs/libbpffs-preload.so"
for bin in "$R/bin/busybox" "$R/usr/local/bin/bpffsctl" "$R/usr/sbin/bpftool" \
    "$R/usr/local/lib/bpffs/libbpffs-preload.so"; do
    # (ldd says "not a dynamic executable" of busybox-static's, and fails.)
    for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*' || true); do
        cp -L --parents "$lib" "$R"
    done
done

# The bundle: runc's own spec, as uid 1000 without capabilities, the two binds.
(cd "$B" && runc spec)
jq --arg rw "$MNT/tenant" --arg ro "$MNT/shared" '
  .process.terminal = false
  | .process.user = {uid: 1000, gid: 1000}
  | .process.capabilities = {bounding: [], effective: [], permitted: [], inheritable: [],
                             ambient: []}
  | .process.noNewPrivileges = true
  | .mounts += [{destination: "/bpf", type: "bind", source: $rw, options: ["rbind", "rw"]},
               {destination: "/bpf-ro", type: "bind", source: $ro, options: ["rbind", "ro"]}]
' "$B/config.json" >"$T/config.base.json"
"$SRC/tools/seccomp_profile.sh" --oci >"$T/seccomp-bpf.json"
"$SRC/tools/seccomp_profile.sh" --oci --unchanged >"$T/seccomp-default.json"

# ctr PROFILE CMD...: runs CMD in a container of the bundle, under the OCI seccomp profile
# PROFILE; prints what it prints, returns its exit status.
N=0
ctr_delete() { runc delete -f "$1" >/dev/null 2>&1 || true; }
ctr() {
    local profile=$1 id
    shift
    N=$((N + 1))
    id=bpffs-ops-$$-$N
    # (One argument a line: jq --args would take a "--" for its own.)
    printf '%s\n' "$@" | jq -R . | jq -s . >"$T/args.json"
    jq --slurpfile sc "$profile" --slurpfile args "$T/args.json" \
        '.process.args = $args[0] | .linux.seccomp = $sc[0]' "$T/config.base.json" >"$B/config.json"
    defer ctr_delete "$id"
    runc run --bundle "$B" "$id" </dev/null
}
WITH_BPF=$T/seccomp-bpf.json
DEFAULT=$T/seccomp-default.json

out=$(ctr "$WITH_BPF" id)
expect_eq "the container runs as uid 1000" "$out" "uid=1000 gid=1000"
expect_eq "without capabilities" "$(ctr "$WITH_BPF" grep CapEff /proc/self/status)" \
    "CapEff:	0000000000000000"
expect_eq "under seccomp" "$(ctr "$WITH_BPF" grep Seccomp: /proc/self/status)" "Seccomp:	2"

# The recipe: get and update through the read-write bind; the host sees it.
expect_eq "the container gets root's map" "$(ctr "$WITH_BPF" bpffsctl get /bpf/m | field id)" \
    "$ID"
expect "the container updates it with bpftool under the shim" ctr "$WITH_BPF" \
    bpffsctl run -- bpftool map update pinned /bpf/m key 1 0 0 0 value 42 0 0 0
expect_eq "the host sees the update" "$(host_value "$ID")" '["0x2a","0x00","0x00","0x00"]'

# The container user's permissions.
refused "a get of root's map" "Permission denied" ctr "$WITH_BPF" bpffsctl get /bpf/root_only
expect "a pin into the user's directory" ctr "$WITH_BPF" bpffsctl pin --from /bpf/m /bpf/mine
expect_eq "the pin is the container user's" "$(owner_mode "$MNT/tenant/mine")" "0600 1000 1000"
refused "a pin into root's directory" "Permission denied" \
    ctr "$WITH_BPF" bpffsctl pin --from /bpf/m /bpf/root_dir/x

# The read-only bind.
refused "a pin through the read-only bind" "Read-only file system" \
    ctr "$WITH_BPF" bpffsctl pin --from /bpf/m /bpf-ro/x
refused "mkdir through the read-only bind" "Read-only file system" \
    ctr "$WITH_BPF" mkdir /bpf-ro/d
refused "unlink through the read-only bind" "Read-only file system" ctr "$WITH_BPF" rm /bpf-ro/m
refused "chmod through the read-only bind" "Read-only file system" \
    ctr "$WITH_BPF" busybox chmod 0666 /bpf-ro/m
expect "the map is still there" test -e "$MNT/shared/m"
# A get is no change to the tree: served through the read-only bind, as the kernel's bpffs does.
expect_eq "a get through the read-only bind" \
    "$(ctr "$WITH_BPF" bpffsctl get /bpf-ro/m | field id)" "$ID"
expect "and its fd is read-write: an update through it" ctr "$WITH_BPF" \
    bpffsctl run -- bpftool map update pinned /bpf-ro/m key 2 0 0 0 value 1 0 0 0

# Seccomp: the runtime's default blocks bpf(2) without CAP_SYS_ADMIN.
refused "an update under the default profile" "can't get map info: Operation not permitted" \
    ctr "$DEFAULT" \
    bpffsctl run -- bpftool map update pinned /bpf/m key 1 0 0 0 value 43 0 0 0
refused "a get under the default profile" "object info: Operation not permitted" \
    ctr "$DEFAULT" bpffsctl get /bpf/m
expect_eq "the map kept its value" "$(host_value "$ID")" '["0x2a","0x00","0x00","0x00"]'
expect "the podman-format profile allows bpf for everyone" bash -c \
    "'$SRC/tools/seccomp_profile.sh' | jq -e '[.syscalls[] | select(.names | index(\"bpf\"))]
        | length == 1 and .[0].action == \"SCMP_ACT_ALLOW\" and .[0].includes == {}' >/dev/null"

# The Kubernetes example: it parses, names only fields of the Kubernetes API where they belong
# (the list below, from the API reference of core/v1 Pod), and asks for what the doc says: a
# non-root user, the Localhost profile, no privilege escalation, no capabilities, hostPath
# volumes of directories of the mount, /bpf-ro read-only, and the update this test ran.
# check_pod FILE: exit 0, or the first thing wrong on stderr and exit 1.
check_pod() {
    "$PY" - "$1" <<'EOF'
import sys
import yaml

STR, INT, BOOL, MAP = "str", "int", "bool", "map"
FIELDS = {
    "Pod": {"apiVersion": STR, "kind": STR, "metadata": "ObjectMeta", "spec": "PodSpec"},
    "ObjectMeta": {"name": STR, "namespace": STR, "labels": MAP, "annotations": MAP},
    "PodSpec": {"containers": ["Container"], "initContainers": ["Container"],
                "volumes": ["Volume"], "securityContext": "PodSecurityContext",
                "restartPolicy": STR, "nodeSelector": MAP, "serviceAccountName": STR,
                "automountServiceAccountToken": BOOL, "hostNetwork": BOOL, "hostPID": BOOL},
    "PodSecurityContext": {"runAsUser": INT, "runAsGroup": INT, "runAsNonRoot": BOOL,
                           "fsGroup": INT, "supplementalGroups": [INT],
                           "seccompProfile": "SeccompProfile"},
    "SeccompProfile": {"type": STR, "localhostProfile": STR},
    "Container": {"name": STR, "image": STR, "imagePullPolicy": STR, "command": [STR],
                  "args": [STR], "workingDir": STR, "env": ["EnvVar"],
                  "securityContext": "SecurityContext", "volumeMounts": ["VolumeMount"]},
    "EnvVar": {"name": STR, "value": STR},
    "SecurityContext": {"allowPrivilegeEscalation": BOOL, "privileged": BOOL,
                        "readOnlyRootFilesystem": BOOL, "runAsUser": INT, "runAsGroup": INT,
                        "runAsNonRoot": BOOL, "capabilities": "Capabilities",
                        "seccompProfile": "SeccompProfile"},
    "Capabilities": {"add": [STR], "drop": [STR]},
    "VolumeMount": {"name": STR, "mountPath": STR, "readOnly": BOOL, "subPath": STR,
                    "mountPropagation": STR},
    "Volume": {"name": STR, "hostPath": "HostPathVolumeSource"},
    "HostPathVolumeSource": {"path": STR, "type": STR},
}
SCALARS = {STR: str, INT: int, BOOL: bool}


def fail(msg):
    sys.exit("check_pod: " + msg)


def walk(value, kind, where):
    if isinstance(kind, list):
        if not isinstance(value, list):
            fail(f"{where}: not a list")
        for i, item in enumerate(value):
            walk(item, kind[0], f"{where}[{i}]")
    elif kind == MAP:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            fail(f"{where}: not a map of strings")
    elif kind in SCALARS:
        # (bool is an int to Python: an int field must not be a bool.)
        if not isinstance(value, SCALARS[kind]) or (kind == INT and isinstance(value, bool)):
            fail(f"{where}: not a {kind}")
    else:
        if not isinstance(value, dict):
            fail(f"{where}: not an object ({kind})")
        for key, sub in value.items():
            if key not in FIELDS[kind]:
                fail(f"{where}.{key}: no field '{key}' in {kind}")
            walk(sub, FIELDS[kind][key], f"{where}.{key}")


with open(sys.argv[1]) as f:
    pod = yaml.safe_load(f)
walk(pod, "Pod", "Pod")
spec = pod["spec"]
psc = spec["securityContext"]
want = [
    (pod["apiVersion"] == "v1" and pod["kind"] == "Pod", "a v1 Pod"),
    (psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, "a non-root user"),
    (psc.get("seccompProfile") == {"type": "Localhost", "localhostProfile": "bpffs-fuse.json"},
     "the Localhost profile bpffs-fuse.json"),
]
volumes = {v["name"]: v for v in spec["volumes"]}
for c in spec["containers"]:
    sc = c.get("securityContext", {})
    want.append((sc.get("allowPrivilegeEscalation") is False, "no privilege escalation"))
    want.append((sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities: drop ALL"))
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    want.append((all(m["name"] in volumes for m in mounts.values()), "mounts of its volumes"))
    want.append(("/bpf" in mounts and not mounts["/bpf"].get("readOnly", False),
                 "/bpf read-write"))
    want.append(("/bpf-ro" in mounts and mounts["/bpf-ro"].get("readOnly") is True,
                 "/bpf-ro read-only"))
    want.append((c.get("command") == ["bpffsctl", "run", "--", "bpftool", "map", "update",
                                      "pinned", "/bpf/m", "key", "1", "0", "0", "0", "value",
                                      "42", "0", "0", "0"], "the update the test runs"))
for v in volumes.values():
    hp = v.get("hostPath", {})
    want.append((hp.get("path", "").startswith("/mnt/bpf/") and hp.get("type") == "Directory",
                 f"volume {v['name']}: a directory of the mount"))
for ok, what in want:
    if not ok:
        fail("the Pod does not ask for " + what)
EOF
}
POD=$SRC/docs/examples/kubernetes/bpf-pod.yaml
expect "the Kubernetes example parses and names only Kubernetes fields" check_pod "$POD"
sed 's/readOnly: true/readonly: true/' "$POD" >"$T/misspelt.yaml"
refused "a misspelt field fails the check" \
    "Pod.spec.containers[0].volumeMounts[1].readonly: no field 'readonly' in VolumeMount" \
    check_pod "$T/misspelt.yaml"
