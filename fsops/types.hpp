// SPDX-License-Identifier: GPL-2.0-or-later
// Value types shared by the core's callers: who asks (Caller), what a node looks like (Attr),
// what to change (SetAttr). No FUSE, no syscalls: the adapters fill these in.
#pragma once

#include "common/caps.hpp"
#include "common/pin_attrs.hpp"
#include "common/socket_name.hpp"

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace bpffs::fsops {

using Ino = std::uint64_t;
inline constexpr Ino kRootIno = 1;
// The broker's socket node's: known without the state log, which a new worker may find damaged.
inline constexpr Ino kSocketIno = 2;
inline constexpr std::size_t kNameMax = 255;
// The longest symlink target (PATH_MAX less its NUL, as the kernel's getname() allows).
inline constexpr std::size_t kTargetMax = 4095;
// The broker's socket: a generated entry (names with '.' are reserved for those) that the lookup
// of this name finds in every directory, so a socket bound once answers from all of them.
using bpffs::kSocketName;

using bpffs::PinAttrs;

// Opaque token for a pinned kernel object; the broker's registry resolves it to a kernel fd.
using ObjHandle = std::uint64_t;
// Links exist under compat=linux only (Policy::object_refused): the 2015 kernel had none.
enum class ObjType : std::uint8_t { map, prog, link };

struct Timespec {
    std::int64_t sec = 0;
    std::int64_t nsec = 0;
    friend bool operator==(const Timespec&, const Timespec&) = default;
    friend auto operator<=>(const Timespec&, const Timespec&) = default;
};

// Capabilities the core's checks look at, as the kernel would see them for this caller.
struct Caps {
    bool sys_admin = false;        // pin
    bool dac_override = false;     // permission(): read/write anything, search any dir
    bool dac_read_search = false;  // permission(): read anything, search any dir
    bool chown = false;            // a pin that gives its object to another owner or group

    // From an effective capability set as the kernel writes it (bit N = capability N).
    static Caps from_bits(std::uint64_t cap_eff) {
        return Caps{cap_in(cap_eff, kCapSysAdmin), cap_in(cap_eff, kCapDacOverride),
                    cap_in(cap_eff, kCapDacReadSearch), cap_in(cap_eff, kCapChown)};
    }
};

// The requesting process: fsuid/fsgid, supplementary groups and capabilities.
struct Caller {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::vector<std::uint32_t> groups;
    Caps caps;

    bool in_group(std::uint32_t g) const;
    static Caller root();  // uid 0 with every capability (tests, the daemon's own requests)
};

// Permission masks, the kernel's MAY_* values.
inline constexpr int kMayExec = 1;
inline constexpr int kMayWrite = 2;
inline constexpr int kMayRead = 4;

// File type bits, the values of <sys/stat.h>, which the core does not include.
inline constexpr std::uint32_t kIfMt = 0170000;
inline constexpr std::uint32_t kIfDir = 0040000;
inline constexpr std::uint32_t kIfReg = 0100000;
inline constexpr std::uint32_t kIfSock = 0140000;
inline constexpr std::uint32_t kIfLnk = 0120000;
inline constexpr std::uint32_t kIsGid = 02000;

struct Attr {
    Ino ino = 0;
    std::uint32_t mode = 0;  // type and permission bits
    std::uint32_t nlink = 0;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint64_t size = 0;
    Timespec atime, mtime, ctime;
    bool is_dir() const { return (mode & kIfMt) == kIfDir; }
};

// A time to set: explicit, or "now" (UTIME_NOW / utimes(NULL)).
struct TimeSet {
    bool now = false;
    Timespec at;
};

// What setattr changes; unset fields stay. Permission checks are the VFS's (default_permissions),
// so the core applies what it is given, as the seed's simple_setattr does.
struct SetAttr {
    std::optional<std::uint32_t> mode;  // permission bits (07777); the type bits are kept
    std::optional<std::uint32_t> uid;
    std::optional<std::uint32_t> gid;
    std::optional<std::uint64_t> size;
    std::optional<TimeSet> atime;
    std::optional<TimeSet> mtime;
    std::optional<Timespec> ctime;  // FUSE_SET_ATTR_CTIME (rare): set explicitly
};

// rename(2)'s flags, the kernel's values.
inline constexpr unsigned kRenameNoreplace = 1;
inline constexpr unsigned kRenameExchange = 2;

struct Statfs {
    std::uint32_t bsize = 4096;
    std::uint32_t namelen = 255;
};

// The open mode of the fd a get hands out (the kernel's bpf_get_file_flag). Only a map's fd
// carries it; a program's is always read-write.
enum class FdMode : std::uint8_t { read_write, read_only, write_only };

// What a get asks, from its flags (Policy::get_access): the permission it needs on the node
// (MAY_* bits) and the mode of the fd it gives.
struct GetAccess {
    int may = 0;
    FdMode mode = FdMode::read_write;
};

// What a successful get gives the broker: the object, its type and the fd's mode.
struct Fetched {
    ObjHandle handle = 0;
    ObjType type = ObjType::map;
    FdMode mode = FdMode::read_write;  // the registry applies it to a map's fd
};

// How many nodes the tree may hold (ENOSPC past them): in all, and owned by one uid other than
// root and the root directory's owner, who have no share of their own. 0: no bound.
struct NodeLimits {
    std::uint64_t max_nodes = 0;
    std::uint64_t max_nodes_per_uid = 0;
};

struct Counts {
    std::uint64_t dirs = 0;  // including the root
    std::uint64_t maps = 0;
    std::uint64_t progs = 0;
    std::uint64_t links = 0;

    std::uint64_t& of(ObjType t) {
        return t == ObjType::map ? maps : t == ObjType::prog ? progs : links;
    }
};

}  // namespace bpffs::fsops
