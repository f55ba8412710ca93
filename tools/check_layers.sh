#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The rooms of the code and who may include whom (docs/architecture.md, "The rooms of the code"):
# every project #include "..." in product code must point along the dependency direction.
# Prints each include that crosses a room the wrong way; exits 1 if there is one.
#   tools/check_layers.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"

# room: the prefixes its files may include (besides their own room).
declare -A allowed=(
    [common]=""
    [fsops]="common/result.hpp common/socket_name.hpp common/caps.hpp common/bpf_flags.hpp common/pin_attrs.hpp"
    [broker]="fsops/ common/"
    [daemon]="fsops/ broker/ common/"
    [client]="common/ bpffs/ fsops/mount_options.hpp fsops/names.hpp"
    [preload]="common/ bpffs/"
    [include]="bpffs/"
    # the harnesses drive the code under test, and the seed writer borrows the tests' clock
    [fuzz]="common/ fsops/ broker/ daemon/state_log.hpp tests/fsops_helpers.hpp"
)

bad=0
for room in "${!allowed[@]}"; do
    [ -d "$room" ] || continue
    while IFS= read -r hit; do
        file=${hit%%:*}
        inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$hit")
        case "$inc" in "$room"/*) continue ;; esac
        ok=0
        for prefix in ${allowed[$room]}; do
            case "$inc" in "$prefix"*) ok=1 ;; esac
        done
        if [ "$ok" -eq 0 ]; then
            echo "check_layers: $file includes \"$inc\": $room/ may include only its own room and: ${allowed[$room]:-nothing}"
            bad=1
        fi
    done < <(grep -rHE '^#include "' "$room" --include='*.cpp' --include='*.hpp' --include='*.h' || true)
done
# bpffsctl alone may print mount options with the core's formatter; the library may not.
if grep -qE '^#include "fsops/' client/client.cpp client/client.hpp; then
    echo "check_layers: the client library (client/client.*) includes the core"
    bad=1
fi
[ "$bad" -eq 0 ] && echo "check_layers: every include follows docs/architecture.md"
exit "$bad"
