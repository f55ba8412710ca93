#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What a user reads when bpffsctl or bpffs-fuse refuses (issue 20): each error names the rule
# that refused it and, where there is one, the fix, beside a kernel bpffs mounted in the same
# test:
#   - pin of a dotted name, into a directory with subdirectories (the terminal rule), over an
#     existing name, without CAP_SYS_ADMIN (compat=seed);
#   - pin and get of a path on the kernel's bpffs, or on no bpffs at all;
#   - get without write permission (compat=seed);
#   - mkdir beside objects, of a dotted or existing name, off the mount; a mode or owner a user
#     may not give (chown's rules) or bpffsctl cannot read (usage errors);
#   - pin --from a path on the mount itself works, as from the kernel's bpffs;
#   - upgrade to a binary that is not bpffs-fuse;
#   - a second daemon on a directory that is already a bpffs-fuse mount is refused, exit 1;
#   - the daemon's debug log names the rule behind each refusal.
#
#   messages_test.sh BPFFS_FUSE BPFFSCTL
# shellcheck source=tests/ops/lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || fail "usage: messages_test.sh BPFFS_FUSE BPFFSCTL"
BPFFS_FUSE=$(realpath "$1")
BPFFSCTL=$(realpath "$2")
need setpriv "util-linux"

make_tmpdir
MNT=$T/mnt
KMNT=$T/kernel
mount_daemon "$BPFFS_FUSE" "$BPFFSCTL" "$MNT" -o mode=0755 --log-level debug --log-file "$T/log"
kernel_map "$KMNT" msg_test
mkdir -p "$MNT/d/sub" "$MNT/objs" "$MNT/open"
chmod 0777 "$MNT/open"
# The unprivileged runs use a copy in the test's 0755 directory: the build tree may be where
# that user cannot go (a checkout under /root).
cp "$BPFFSCTL" "$T/bpffsctl"

# Every refusal below is exit status 1 (lib.sh's refused), a usage error 2.
REFUSED_STATUS=1

refused "a dotted name" "names containing '.' are reserved" \
    "$BPFFSCTL" pin --from "$KMNT/m" "$MNT/objs/a.b"
refused "the terminal rule" "$MNT/d holds subdirectories, so it cannot hold objects" \
    "$BPFFSCTL" pin --from "$KMNT/m" "$MNT/d/x"
expect "a pin" "$BPFFSCTL" pin --from "$KMNT/m" "$MNT/objs/m"
refused "an existing name" "$MNT/objs/m exists: unlink it first" \
    "$BPFFSCTL" pin --from "$KMNT/m" "$MNT/objs/m"
# (The user may fetch the kernel's pin, to have something to pin.)
chmod 0666 "$KMNT/m"
refused "a user's pin (compat=seed)" "pinning on this mount needs CAP_SYS_ADMIN" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$T/bpffsctl" pin --from "$KMNT/m" \
    "$MNT/objs/n"
refused "a user's get without write permission" "fetching needs read and write permission" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$T/bpffsctl" get "$MNT/objs/m"
refused "a pin on the kernel's bpffs" "is on the kernel's bpffs, not a bpffs-fuse mount" \
    "$BPFFSCTL" pin --from "$KMNT/m" "$KMNT/n"
refused "a get on the kernel's bpffs" "is on the kernel's bpffs, not a bpffs-fuse mount" \
    "$BPFFSCTL" get "$KMNT/m"
refused "a pin off any bpffs" "$T is not on a bpffs-fuse mount" \
    "$BPFFSCTL" pin --from "$KMNT/m" "$T/n"
refused "a get off any bpffs" "$T is not on a bpffs-fuse mount" "$BPFFSCTL" get "$T"

# mkdir, and a new object's or directory's owner.
refused "mkdir beside objects (the terminal rule)" \
    "$MNT/objs holds objects, so it cannot hold directories (the terminal-directory rule" \
    "$BPFFSCTL" mkdir "$MNT/objs/sub"
refused "mkdir of a dotted name" "names containing '.' are reserved" "$BPFFSCTL" mkdir "$MNT/d/x.y"
refused "mkdir off any bpffs" "$T is not on a bpffs-fuse mount" "$BPFFSCTL" mkdir "$T/x"
refused "mkdir of an existing directory without -p" "with -p, an existing directory is fine" \
    "$BPFFSCTL" mkdir "$MNT/d"
refused "a user's mkdir that gives the directory away" "another owner needs CAP_CHOWN" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$T/bpffsctl" mkdir --owner 0 "$MNT/open/y"
expect "and nothing of it stays" test ! -e "$MNT/open/y"
refused "a user's pin that gives the object away" \
    "and on a compat=seed mount, pinning at all needs CAP_SYS_ADMIN" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$T/bpffsctl" pin --from "$KMNT/m" \
    --owner 0 "$MNT/objs/n"
REFUSED_STATUS=2 refused "a mode past 0777" "expected octal permission bits, 0 to 0777" \
    "$BPFFSCTL" pin --from "$KMNT/m" --mode 4755 "$MNT/objs/n"
REFUSED_STATUS=2 refused "an unknown user" "no user no-such-user-here" \
    "$BPFFSCTL" mkdir --owner no-such-user-here "$MNT/d/n"

# pin --from a name on the mount: the same kernel object under a second name.
expect "pin --from a path on the mount" "$BPFFSCTL" pin --from "$MNT/objs/m" "$MNT/objs/m2"
expect_eq "the same map" "$("$BPFFSCTL" get "$MNT/objs/m2" | field id)" \
    "$("$BPFFSCTL" get "$MNT/objs/m" | field id)"

refused "an upgrade to a binary that is not bpffs-fuse" "is not a bpffs-fuse binary" \
    "$BPFFSCTL" upgrade --exec /bin/true "$MNT"

refused "a second daemon on the mount" "is on a bpffs-fuse mount already" \
    "$BPFFS_FUSE" "$MNT" -o mode=0755
expect_eq "one mount there" "$(findmnt -rn -o FSTYPE --mountpoint "$MNT" | wc -l)" 1

# The daemon's debug log names the rule behind each refusal.
for rule in "names containing '.' are reserved" \
    "the terminal-directory rule: the parent holds directories" \
    "the terminal-directory rule: the parent holds objects" \
    "pinning needs CAP_SYS_ADMIN (compat=seed)" \
    "the mode's owner, group and other bits refuse this access"; do
    expect "the log names the rule: $rule" grep -qF -- "$rule" "$T/log"
done
