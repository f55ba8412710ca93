#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The container runtime's default seccomp profile plus bpf(2), for containers that use maps and
# programs fetched from a bpffs-fuse mount (docs/containers.md). The defaults of podman, docker
# and Kubernetes' RuntimeDefault allow bpf(2) only to a container with CAP_SYS_ADMIN: in any
# other, a fetched fd is unusable (EPERM). The profile is derived here, on the machine, from the
# default that Debian ships with podman's configuration (package
# golang-github-containers-common), not kept in the tree.
#
#   tools/seccomp_profile.sh [--oci] [--unchanged] [SOURCE]
#
# SOURCE is that default (/usr/share/containers/seccomp.json when not given). Prints on stdout:
#   (no option)  SOURCE in its own format, with bpf allowed in every container: for podman
#                (--security-opt seccomp=FILE), docker, and a Kubernetes Localhost profile.
#   --oci        the same as the OCI runtime spec's "linux.seccomp" object, for runc's
#                config.json: for this machine's architecture and a container without
#                capabilities (rules for holders of a capability dropped, rules for those who
#                lack one kept), as podman resolves it for such a container.
#   --unchanged  bpf left as SOURCE has it (only with CAP_SYS_ADMIN): with --oci, what the
#                runtime's default gives a container without capabilities, to compare.
# Exit status: 0 ok, 1 failure (no SOURCE, no jq, an architecture or rule it cannot resolve),
# 2 usage error.
set -euo pipefail

die() {
    echo "seccomp_profile: error: $*" >&2
    exit 1
}
usage() {
    echo "usage: tools/seccomp_profile.sh [--oci] [--unchanged] [SOURCE]" >&2
    exit 2
}

oci=false
unchanged=false
source_file=/usr/share/containers/seccomp.json
while [ $# -gt 0 ]; do
    case "$1" in
        --oci) oci=true ;;
        --unchanged) unchanged=true ;;
        -h | --help) usage ;;
        -*) usage ;;
        *)
            [ $# -eq 1 ] || usage
            source_file=$1
            ;;
    esac
    shift
done
command -v jq >/dev/null || die "jq is not installed (Debian package jq)"
[ -r "$source_file" ] ||
    die "no $source_file: install golang-github-containers-common, or give the default profile"

# The architecture as the profile names it in includes/excludes (Go's names) and in archMap.
case "$(uname -m)" in
    x86_64) goarch=amd64 scmp=SCMP_ARCH_X86_64 ;;
    aarch64) goarch=arm64 scmp=SCMP_ARCH_AARCH64 ;;
    *) die "architecture $(uname -m): not known to this script" ;;
esac

# shellcheck disable=SC2016 # jq's variables, not the shell's
jq --argjson unchanged "$unchanged" --argjson oci "$oci" \
    --arg goarch "$goarch" --arg scmp "$scmp" '
# bpf out of every rule, then allowed on its own.
def with_bpf:
  .syscalls |= ([.[] | .names -= ["bpf"] | select(.names | length > 0)]
                + [{names: ["bpf"], action: "SCMP_ACT_ALLOW", args: [],
                    comment: "bpffs-fuse: use maps and programs fetched from the mount",
                    includes: {}, excludes: {}}]);

def known_conditions:
  ([.syscalls[] | (.includes // {}), (.excludes // {}) | keys[]] | unique - ["arches", "caps"])
  as $unknown
  | if ($unknown | length) > 0
    then error("rules on \($unknown | join(", ")): not resolved by this script") else . end;

# For this architecture and a container without capabilities.
def to_oci:
  known_conditions
  | {defaultAction: .defaultAction,
     architectures: ([.archMap[]? | select(.architecture == $scmp)
                      | [.architecture] + (.subArchitectures // [])] | first // [$scmp]),
     syscalls: [.syscalls[]
                | select(((.includes.arches // []) | length) == 0
                         or any(.includes.arches[]; . == $goarch))
                | select(any((.excludes.arches // [])[]; . == $goarch) | not)
                | select(((.includes.caps // []) | length) == 0)
                | {names, action}
                  + (if ((.args // []) | length) > 0 then {args} else {} end)
                  + (if .errnoRet != null then {errnoRet} else {} end)]}
    + (if .defaultErrnoRet != null then {defaultErrnoRet: .defaultErrnoRet} else {} end);

(if $unchanged then . else with_bpf end)
| if $oci then to_oci else . end
' "$source_file"
