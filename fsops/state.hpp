// SPDX-License-Identifier: GPL-2.0-or-later
// The core's persisted state as plain values, for surviving a worker crash or an upgrade: the
// worker logs every Change the core reports (Filesystem::set_change_sink), a restarted worker
// replays the log into a StateBuilder and rebuilds the core (Filesystem::restore).
//
// What is state: every node of the inode table (removed-but-referenced ones too) with its lookup
// count, readdir cookie and handle, and the meta (options, inode and cookie counters, the socket
// node, read-only). What is not: the clock, the policy, and everything derived (counts, a
// directory's children), which restore() recomputes and checks.
//
// The byte codec is pure and versioned (kStateVersion, which the log's header carries, so a
// record spends no byte on it): a kind byte, then the kind's fields as LEB128 varints (signed
// ones zigzagged, times as deltas from the previous time), flags in one byte; a name is a varint
// length and its bytes. Every record has one encoding (minimal varints, no optional field
// without its flag), so a decoded record re-encodes to the same bytes. Records are not
// self-delimiting: the log frames them. A pinned object's node takes about 45 bytes.
#pragma once

#include "common/result.hpp"
#include "fsops/mount_options.hpp"
#include "fsops/types.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bpffs::fsops {

// Attr has no operator== (types.hpp); the state types compare it with this.
bool same_attr(const Attr& a, const Attr& b);

// A name of a node beyond its first (a hard link, compat=linux): where it is and its cookie there.
struct NameState {
    Ino parent = 0;
    std::uint64_t cookie = 0;
    std::string name;
    friend bool operator==(const NameState&, const NameState&) = default;
};

// One node of the inode table, everything needed to rebuild it.
struct NodeState {
    Ino ino = 0;
    Ino parent = 0;            // 0 for the root
    std::uint64_t cookie = 0;  // its readdir offset in the parent (0: root, socket node)
    std::string name;          // empty for the root
    Attr attr;
    std::uint64_t nlookup = 0;
    bool removed = false;  // unlinked but still referenced by the kernel
    bool is_dir = false;
    std::uint64_t next_cookie = 0;      // directories: the next cookie to hand out; else 0
    ObjType type = ObjType::map;        // objects
    std::optional<ObjHandle> handle;    // objects, until unlink (or release_all)
    std::string target;                 // symlinks: what the link points to
    std::vector<NameState> more_names;  // the names after the first (hard links)

    friend bool operator==(const NodeState& a, const NodeState& b) {
        return a.ino == b.ino && a.parent == b.parent && a.cookie == b.cookie && a.name == b.name &&
               same_attr(a.attr, b.attr) && a.nlookup == b.nlookup && a.removed == b.removed &&
               a.is_dir == b.is_dir && a.next_cookie == b.next_cookie && a.type == b.type &&
               a.handle == b.handle && a.target == b.target && a.more_names == b.more_names;
    }
};

struct CoreMeta {
    MountOptions opts;
    Ino next_ino = 0;    // inode numbers are never reused: every node's ino is below it
    Ino socket_ino = 0;  // the broker's socket node, 0 until created
    bool read_only = false;
    friend bool operator==(const CoreMeta&, const CoreMeta&) = default;
};

struct CoreState {
    CoreMeta meta;
    std::vector<NodeState> nodes;  // sorted by ino
    friend bool operator==(const CoreState&, const CoreState&) = default;
};

// What of a node changes when an entry is added to or removed from it (a directory's mtime,
// ctime, nlink and next cookie) or when it is fetched (atime): a `times` change carries these
// instead of the whole node.
struct NodeTimes {
    Timespec atime, mtime, ctime;
    std::uint32_t nlink = 0;
    std::uint64_t next_cookie = 0;
    friend bool operator==(const NodeTimes&, const NodeTimes&) = default;
};

// One change, as the core reports it after a mutating call.
struct Change {
    enum class Kind : std::uint8_t { put, lookups, erase, meta, times };
    Kind kind = Kind::put;
    NodeState node;             // put: the whole node as it is now
    Ino ino = 0;                // lookups, erase, times
    std::uint64_t nlookup = 0;  // lookups: the node's new lookup count (only that changed)
    CoreMeta meta;              // meta
    NodeTimes times;            // times: the node's new values (nothing else of it changed)
};

// A state's nodes, one at a time: calls `each` with every node, in any order, until it returns
// false (a restore that found the state inconsistent).
using NodeSource = std::function<void(const std::function<bool(NodeState&&)>& each)>;

// The codec's version. Version 1 had fixed-width fields and a version byte per record.
inline constexpr std::uint32_t kStateVersion = 2;

// Encodes one change (fields other than those of its kind are not written); encode_to appends
// to `out`, so a caller can reuse one buffer.
std::string encode(const Change& c);
void encode_to(const Change& c, std::string& out);
// Decodes exactly one record: the whole of `bytes`. EINVAL on a wrong kind, a short or long
// record, a varint that is not minimal or overflows its field, a name over kNameMax, an unknown
// flag or a bool out of range. Never reads outside `bytes`.
Result<Change> decode(std::string_view bytes);

// The changes that rebuild `s` from nothing: the meta, then a put per node (seeds or compacts a
// log).
std::vector<Change> to_changes(const CoreState& s);

// Replays changes into a state: put replaces or inserts, lookups sets the lookup count and
// times the times, nlink and next cookie of an existing node (both ignored for an unknown ino),
// erase removes, meta replaces. Validates nothing:
// Filesystem::restore() does. Not thread-safe.
class StateBuilder {
public:
    StateBuilder() = default;
    explicit StateBuilder(const CoreState& base);  // starts from a checkpoint
    void apply(const Change& c);
    void apply(const std::vector<Change>& cs) {
        for (const auto& c : cs) apply(c);
    }
    CoreState state() const;  // nodes sorted by ino

private:
    CoreMeta meta_;
    std::map<Ino, NodeState> nodes_;
};

// For a new mount started from a stored state (a systemd restart): drops removed nodes and the
// socket node (socket_ino = 0) and forgets every lookup: nlookup 0, except the root's 1 (the
// kernel holds the root for the life of a mount, as a new Filesystem has it). Keeps inos,
// names, attrs, handles, cookies and next_ino.
CoreState fresh_mount_view(CoreState s);
// The same for one node of a state with `meta` (before its socket_ino is cleared): false when the
// node goes, else its lookups are reset.
bool fresh_mount_node(NodeState& n, const CoreMeta& meta);

}  // namespace bpffs::fsops
