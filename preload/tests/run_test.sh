#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# bpffsctl run -- CMD [ARGS]: CMD runs with the shim in LD_PRELOAD (made absolute, after what
# LD_PRELOAD already held), with CMD's exit status; a missing shim is an error (1), a missing
# "-- CMD" a usage error (2), a CMD that cannot be run 127. `cmake --install` puts the shim at
# the path bpffsctl was built with.
source "$(dirname "$0")/lib.sh"

shim_abs=$(realpath "$BPFFS_PRELOAD")
expect "LD_PRELOAD in CMD" "$("$BPFFSCTL" run -- sh -c 'echo "$LD_PRELOAD"')" "$shim_abs"
expect "a relative \$BPFFS_PRELOAD is made absolute" \
    "$(cd "$(dirname "$shim_abs")" &&
        BPFFS_PRELOAD=./$(basename "$shim_abs") "$BPFFSCTL" run -- sh -c 'echo "$LD_PRELOAD"')" \
    "$shim_abs"
# (A library that does not exist: the loader ignores it, and a sanitized bpffsctl still finds
# its runtime first.)
expect "an earlier LD_PRELOAD stays first" \
    "$(LD_PRELOAD=$WORK/earlier.so "$BPFFSCTL" run -- sh -c 'echo "$LD_PRELOAD"' 2>/dev/null)" \
    "$WORK/earlier.so:$shim_abs"
expect "arguments pass as they are" "$("$BPFFSCTL" run -- printf '<%s>' 'a b' -- '')" "<a b><--><>"

rc=0
"$BPFFSCTL" run -- sh -c 'exit 7' || rc=$?
expect "CMD's exit status" "$rc" 7
rc=0
out=$(BPFFS_PRELOAD=$WORK/missing.so "$BPFFSCTL" run -- true 2>&1) || rc=$?
expect "a missing shim: exit 1" "$rc" 1
expect "a missing shim: the message" "$out" \
    "bpffsctl: error: run: preload library $WORK/missing.so: No such file or directory"
rc=0
"$BPFFSCTL" run true 2>/dev/null || rc=$?
expect "no '--': exit 2" "$rc" 2
rc=0
"$BPFFSCTL" run -- 2>/dev/null || rc=$?
expect "nothing after '--': exit 2" "$rc" 2
rc=0
"$BPFFSCTL" run -- "$WORK/no-such-command" 2>/dev/null || rc=$?
expect "a command that cannot be run: exit 127" "$rc" 127

# The installed layout: the shim lands where bpffsctl looks for it by default.
if [ -n "${BUILD_DIR:-}" ] && [ -n "${CMAKE_COMMAND:-}" ]; then
    default=$("$BPFFSCTL" run --help | tr '\n' ' ' |
        sed -n 's/.* else \([^ ]*libbpffs-preload\.so\)\. .*/\1/p')
    [ -n "$default" ] || fail "no default shim path in 'bpffsctl run --help'"
    DESTDIR=$WORK/dest "$CMAKE_COMMAND" --install "$BUILD_DIR" >/dev/null
    [ -f "$WORK/dest$default" ] || fail "cmake --install did not put the shim at $default"
    echo "ok: cmake --install puts the shim at $default"
fi
echo "passed"
