// SPDX-License-Identifier: GPL-2.0-or-later
// The one-shot calls' kept connections (bpffs_obj_get, bpffs_obj_pin and their _opts forms, and
// so the preload shim, the seccomp supervisor and bpffsctl): a connection to a mount's broker
// outlives the call that made it, idle, and the next call on that mount takes it instead of
// connecting again. What a call may take keeps every rule of a connection per call:
//
// - Credentials: the broker judges a connection by what the kernel recorded at connect
//   (broker/peer.hpp), so a connection is taken only by a call whose calling thread has the very
//   credentials the thread that connected had: real, effective and saved uid and gid, the
//   supplementary groups and the effective capabilities (a setuid, setgid, setgroups or a
//   capability drop since, and entering a user namespace, which changes the ids or the
//   capabilities the thread sees, make the call connect anew). The broker's own checks of the
//   message's sender and of the user namespace stay as they are.
// - Processes: a connection is taken only in the process that made it; a forked child drops its
//   copies (pthread_atfork) and never sends on them.
// - Threads: a connection serves one call at a time; concurrent calls on one mount take one each
//   (up to kMaxIdle stay kept per mount and credentials when they are given back).
// - Fds: the socket is O_CLOEXEC; a program that closed it (or reused its number) is noticed
//   (its device and inode are checked before each use) and the number is left alone.
// - Mounts: kept by the mount's unique id (statx STATX_MNT_ID_UNIQUE, Linux 6.8; else the
//   mount's reusable id and the device, which cannot be reused while the broker holds the mount),
//   and by whom the caller trusts (Trust): one trusted once is not trusted for another.
//
// A kept connection the broker closed (idle) fails at its next use; the calls then connect again
// as a connection per call would (client.cpp).
#pragma once

#include "client/client.hpp"
#include "common/unique_fd.hpp"

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace bpffs::client {

// The credentials of the calling thread that a kept connection must match.
struct ThreadCreds {
    uid_t ruid = 0, euid = 0, suid = 0;
    gid_t rgid = 0, egid = 0, sgid = 0;
    std::uint64_t caps = 0;  // effective
    std::vector<gid_t> groups;
    bool known = false;  // false: a call of the system failed; nothing is taken or kept
    static ThreadCreds now();
    bool operator==(const ThreadCreds&) const = default;
};

// Which broker: the mount a node is on, and whom the caller trusts.
struct MountKey {
    std::uint64_t mnt_id = 0;  // unique (Linux 6.8), or the reusable one with `dev`
    bool unique = false;
    dev_t dev = 0;
    std::optional<uid_t> trust_uid;
    bool operator==(const MountKey&) const = default;
};

constexpr unsigned kStatxMntIdUnique = 0x4000;  // STATX_MNT_ID_UNIQUE (Linux 6.8)

// The mount a node is on (from a statx asking STATX_MNT_ID and kStatxMntIdUnique). nullopt:
// unknown (no mount id from this kernel), or a socket named by $BPFFS_SOCKET: nothing is kept.
std::optional<MountKey> mount_key(const struct statx& sx, const Trust& trust);

struct Kept {
    UniqueFd sock;
    dev_t dev = 0;  // the socket's, as fstat says: to notice a closed or reused number
    ino_t ino = 0;
};

// A connection kept for `key` that `creds` may use, or nullopt.
std::optional<Kept> take_kept(const MountKey& key, const ThreadCreds& creds);
// Keeps `sock` (a connection with a reply read to its last request) for `key` and `creds`;
// past kMaxIdle such, closes it.
void keep(const MountKey& key, const ThreadCreds& creds, UniqueFd sock);
// The same for one taken with take_kept().
void keep(const MountKey& key, const ThreadCreds& creds, Kept k);

// Closes every kept connection of this process (bpffs_close_kept_connections).
void close_kept();

constexpr std::size_t kMaxIdle = 8;

}  // namespace bpffs::client
