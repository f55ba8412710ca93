// SPDX-License-Identifier: GPL-2.0-or-later
// The core's tree, laid out to hold a million pinned objects in little memory (issue 5: at most
// 256 bytes of daemon memory per object), with lookups that stay flat as it grows.
//
// Nodes. Every node is one 64-byte record in a slab of fixed chunks (no allocation of its own;
// addresses never move), found by inode number through `by_ino`, an open-addressing table of
// 4-byte slot numbers whose keys are the nodes' own inos. A node keeps only what every node has:
// ino, handle, the three times as int64 nanoseconds, mode and flags in one word, uid, gid, the
// slot of its parent, the position of its entry in the parent, and a 32-bit lookup count. The
// rest is derived (attr.ino; nlink: 2 + subdirectories for a directory, 1 for the others, 0 once
// removed, which restore() checks a state agrees with) or kept aside, keyed by ino, for the rare
// node that needs it, so that every value the API can carry survives exactly: `wide` holds the
// attributes of a node with a nonzero size, a mode above 16 bits or a time that int64 ns cannot
// hold (Timespec is two int64s); `many_lookups` a count of 2^32 - 1 or more; `detached` the
// name, cookie and parent ino of a removed node the kernel still holds; `more_names` the names of
// a node after its first (hard links, compat=linux); `targets` what a symlink points to.
//
// Names. A node's first name is its `parent` slot and `pos`; further ones (a non-directory's
// hard links) are {parent slot, pos} records in `more_names`. A directory entry names its node by
// slot, so an entry finds its record by (directory slot, position): `retarget` moves the record
// when the entry moves (a compaction, a rename). nlink of a non-directory is its number of names.
//
// Directories. A directory's `Dir` (in `dirs`, by ino) holds its entries as a vector sorted by
// cookie, each {cookie, slot, where its name starts}, the names in one arena (a length byte and
// the bytes, in entry order), and `index`, an open-addressing table of entry positions by name.
// A cookie is handed out once per entry from a per-directory counter and new entries go at the
// end, so the vector stays sorted and readdir resumes at an offset with a binary search: listing
// offsets stay valid while the directory changes. Cookies 1 and 2 are "." and "..". Unlink
// leaves a tombstone (slot kNone; the cookie stays for the search) and pops tombstones at the
// end; when tombstones outnumber the live entries the directory is compacted in place (entries,
// names, index, the children's positions), so unlink is amortised O(1) and a listing passes at
// most as many tombstones as it lists entries, plus a constant. Name offsets, positions and
// slots are 32-bit: a directory's names past 4 GiB, or 2^32 nodes, fail with bad_alloc (ENOMEM).
//
// Exception safety: a call allocates what it needs (table room, vector room, side records)
// before it links anything, so bad_alloc never leaves a half-linked node behind.
//
// Change reporting: a call that may change state runs its body through Impl::change(), which
// holds the lock and, at the end, hands the change sink what the body marked with touch()
// (the node changed), touch_times() (only its times, nlink and next cookie: a directory that
// gained or lost an entry, a fetched object), touch_lookups() (only its lookup count) or
// touch_meta(). The records are built from the values at the end of the call, so a node is
// marked once, at the widest level it was marked, wherever it is changed, and a marked node no
// longer in the table becomes an erase.
//
// This is storage only: it knows no errno and no bpffs rule (fsops/filesystem.cpp has those).
// Everything here runs under the core's lock, which the Filesystem holds.
#pragma once

#include "fsops/filesystem.hpp"
#include "fsops/names.hpp"
#include "fsops/state.hpp"
#include "fsops/types.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bpffs::fsops::table {

constexpr std::uint64_t kFirstCookie = 3;
constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

// A time as int64 nanoseconds since the epoch, when that holds it exactly.
constexpr std::int64_t kNsPerSec = 1'000'000'000;
inline bool pack_time(const Timespec& t, std::int64_t& ns) {
    constexpr std::int64_t kMinSec = std::numeric_limits<std::int64_t>::min() / kNsPerSec;
    constexpr std::int64_t kMaxSec =
        (std::numeric_limits<std::int64_t>::max() - (kNsPerSec - 1)) / kNsPerSec;
    if (t.nsec < 0 || t.nsec >= kNsPerSec || t.sec < kMinSec || t.sec > kMaxSec) return false;
    ns = t.sec * kNsPerSec + t.nsec;
    return true;
}
inline Timespec unpack_time(std::int64_t ns) {
    Timespec t{ns / kNsPerSec, ns % kNsPerSec};
    if (t.nsec < 0) {
        t.nsec += kNsPerSec;
        --t.sec;
    }
    return t;
}

inline std::uint64_t hash_name(std::string_view name) {
    return std::hash<std::string_view>{}(name);
}

// An open-addressing hash table of 4-byte references (slots, positions) whose keys live
// elsewhere: linear probing, at most 3/4 full, backward-shift deletion (no tombstones). The
// caller gives a key's hash, a predicate that recognises the reference it looks for, and, where
// entries must move, `hash_of(ref)`. Buckets come from the hash's Fibonacci product, so
// sequential inos spread. Only reserve_one() can throw; erase() and clear_for() give memory back
// when they can.
class RefTable {
public:
    template <class HashOf>
    void reserve_one(HashOf hash_of) {
        if ((count_ + 1) * 4 <= slots_.size() * 3) return;
        rebuild(std::max<std::size_t>(8, slots_.size() * 2), hash_of);
    }
    // After reserve_one().
    void insert(std::uint64_t h, std::uint32_t ref) {
        std::size_t i = home(h);
        while (slots_[i] != kNone) i = (i + 1) & mask();
        slots_[i] = ref;
        ++count_;
    }
    // The reference `match` accepts among those filed under `h`, or kNone.
    template <class Match>
    std::uint32_t find(std::uint64_t h, Match match) const {
        if (slots_.empty()) return kNone;
        for (std::size_t i = home(h);; i = (i + 1) & mask()) {
            std::uint32_t r = slots_[i];
            if (r == kNone || match(r)) return r;
        }
    }
    // Removes `ref` (present, filed under `h`), and gives memory back once the table is at most
    // 1/16 full.
    template <class HashOf>
    void erase(std::uint64_t h, std::uint32_t ref, HashOf hash_of) {
        std::size_t i = home(h);
        while (slots_[i] != ref) i = (i + 1) & mask();
        slots_[i] = kNone;
        --count_;
        // Pull back every entry of the run after i that may live at i (its home is not in (i, j]).
        for (std::size_t j = (i + 1) & mask(); slots_[j] != kNone; j = (j + 1) & mask()) {
            std::size_t k = home(hash_of(slots_[j]));
            if (((j - k) & mask()) >= ((j - i) & mask())) {
                slots_[i] = slots_[j];
                slots_[j] = kNone;
                i = j;
            }
        }
        if (slots_.size() > 8 && count_ * 16 <= slots_.size()) {
            try {
                rebuild(capacity_for(count_), hash_of);
            } catch (const std::bad_alloc&) {
                // keeps the larger table
            }
        }
    }
    // Empties the table for `n` new references, giving memory back when it is 4 times larger
    // than that needs (and the smaller one can be had).
    void clear_for(std::size_t n) {
        std::size_t want = capacity_for(n);
        if (want * 4 <= slots_.size()) {
            try {
                std::vector<std::uint32_t>(want, kNone).swap(slots_);
                set_shift();
                count_ = 0;
                return;
            } catch (const std::bad_alloc&) {
                // keeps the larger table
            }
        }
        std::fill(slots_.begin(), slots_.end(), kNone);
        count_ = 0;
    }

private:
    static std::size_t capacity_for(std::size_t n) {
        if (n == 0) return 0;
        std::size_t cap = 8;
        while (cap * 3 < n * 4) cap *= 2;
        return cap;
    }
    template <class HashOf>
    void rebuild(std::size_t capacity, HashOf hash_of) {
        std::vector<std::uint32_t> old(capacity, kNone);
        old.swap(slots_);
        set_shift();
        count_ = 0;
        for (std::uint32_t r : old)
            if (r != kNone) insert(hash_of(r), r);
    }
    void set_shift() { shift_ = slots_.empty() ? 0 : 64 - std::countr_zero(slots_.size()); }
    std::size_t home(std::uint64_t h) const {
        return static_cast<std::size_t>((h * 0x9e3779b97f4a7c15ull) >> shift_);
    }
    std::size_t mask() const { return slots_.size() - 1; }

    std::vector<std::uint32_t> slots_;
    std::size_t count_ = 0;
    int shift_ = 0;
};

// One entry of a directory listing.
struct Entry {
    std::uint64_t cookie;
    std::uint32_t slot;     // the child's slot; kNone: a tombstone
    std::uint32_t name_at;  // where its name starts in Dir::names
};

struct Dir {
    std::vector<Entry> entries;  // sorted by cookie
    std::string names;           // per entry, in entry order: a length byte, then the name
    RefTable index;              // positions of the live entries, by name
    std::uint64_t next_cookie = kFirstCookie;
    std::uint32_t nobjects = 0;
    std::uint32_t nsubdirs = 0;
    std::size_t dead = 0;  // tombstones in entries

    std::size_t live() const { return entries.size() - dead; }
    std::string_view name_of(const Entry& e) const {
        return {names.data() + e.name_at + 1, static_cast<unsigned char>(names[e.name_at])};
    }
    auto hash_at() const {
        return [this](std::uint32_t pos) { return hash_name(name_of(entries[pos])); };
    }
    // The position of the live entry called `name`, or kNone.
    std::uint32_t find(std::string_view name) const {
        return index.find(hash_name(name),
                          [&](std::uint32_t pos) { return name_of(entries[pos]) == name; });
    }
    // Room for one more entry with a name of `len` bytes (at most kNameMax). Throws bad_alloc
    // and changes nothing that matters when there is none.
    void reserve_entry(std::size_t len) {
        if (entries.size() >= kNone) throw std::bad_alloc();
        std::size_t need = names.size() + 1 + len;
        if (need > std::numeric_limits<std::uint32_t>::max()) throw std::bad_alloc();
        if (entries.size() == entries.capacity())
            entries.reserve(std::max<std::size_t>(8, entries.capacity() * 2));
        if (need > names.capacity()) names.reserve(std::max(need, names.capacity() * 2));
        index.reserve_one(hash_at());
    }
    // After reserve_entry(): appends a live entry and returns its position.
    std::uint32_t append(std::uint64_t cookie, std::uint32_t slot, std::string_view name) {
        auto pos = static_cast<std::uint32_t>(entries.size());
        entries.push_back(Entry{cookie, slot, static_cast<std::uint32_t>(names.size())});
        names.push_back(static_cast<char>(name.size()));
        names.append(name);
        index.insert(hash_name(name), pos);
        return pos;
    }
};

// Attributes of a node that the compact record cannot hold (rare; see the top of the file).
struct Wide {
    std::uint32_t mode = 0;
    std::uint64_t size = 0;
    Timespec atime, mtime, ctime;
};

// What a removed node keeps of its place in the tree, for the state (snapshot()).
struct Detached {
    Ino parent = 0;
    std::uint64_t cookie = 0;
    std::string name;
};

struct Node {
    // Flags, above the 16 bits of the mode in `bits`.
    static constexpr std::uint32_t kModeMask = 0xffff;
    static constexpr std::uint32_t kRemoved = 1u << 16;    // unlinked, still referenced
    static constexpr std::uint32_t kProg = 1u << 17;       // the type (else map)
    static constexpr std::uint32_t kHasHandle = 1u << 18;  // `handle` is set
    static constexpr std::uint32_t kWide = 1u << 19;       // the attributes are in Impl::wide
    static constexpr std::uint32_t kLinked = 1u << 20;     // has an entry in its parent (`pos`)
    static constexpr std::uint32_t kLink = 1u << 21;       // the type is link (kProg clear)
    static constexpr std::uint32_t kMoreNames = 1u << 22;  // has names in Impl::more_names
    static constexpr std::uint32_t kOwned = 1u << 23;      // counted in Impl::owned under uid
    static constexpr std::uint32_t kManyLookups = kNone;   // `nlookup`: see Impl::many_lookups

    Ino ino = 0;  // 0: a free slot
    ObjHandle handle = 0;
    std::int64_t atime = 0;  // nanoseconds since the epoch (unless kWide)
    std::int64_t mtime = 0;
    std::int64_t ctime = 0;
    std::uint32_t parent = 0;  // the parent's slot (a free slot: the next free slot)
    std::uint32_t bits = 0;    // mode (low 16 bits) and flags
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint32_t pos = 0;  // with kLinked: the position of its entry in the parent's Dir
    std::uint32_t nlookup = 0;

    bool has(std::uint32_t flag) const { return (bits & flag) != 0; }
    bool is_dir() const { return (bits & kIfMt) == kIfDir; }
    bool is_object() const { return (bits & kIfMt) == kIfReg; }
    bool is_symlink() const { return (bits & kIfMt) == kIfLnk; }
    bool removed() const { return has(kRemoved); }
    ObjType type() const {
        return has(kLink) ? ObjType::link : has(kProg) ? ObjType::prog : ObjType::map;
    }
    static std::uint32_t type_bits(ObjType t) {
        return t == ObjType::prog ? kProg : t == ObjType::link ? kLink : 0;
    }
};

// The node table, the directories and the change marks of the call in progress.
struct NodeTable {
    static_assert(sizeof(Node) == 64, "a node is one cache line");

    // The node table: slots in chunks that never move, a free list threaded through
    // Node::parent, and the index by ino.
    static constexpr std::uint32_t kChunkBits = 10;
    static constexpr std::uint32_t kChunk = 1u << kChunkBits;
    std::vector<std::unique_ptr<Node[]>> chunks;
    std::uint32_t slots_used = 0;     // slots handed out at least once
    std::uint32_t free_slot = kNone;  // head of the free list
    std::size_t live_nodes = 0;
    RefTable by_ino;
    // Nodes in the table by their owner's uid (the per-uid share of NodeLimits).
    std::unordered_map<std::uint32_t, std::size_t> owned;
    NodeLimits limits;

    std::unordered_map<Ino, Dir> dirs;  // every directory node's, removed ones too
    std::unordered_map<Ino, Wide> wide;
    std::unordered_map<Ino, std::uint64_t> many_lookups;
    std::unordered_map<Ino, Detached> detached;  // every removed node's
    // A name of a node beyond its first: the directory's slot and the entry's position there.
    struct NameRef {
        std::uint32_t parent;
        std::uint32_t pos;
    };
    std::unordered_map<Ino, std::vector<NameRef>> more_names;  // every node with kMoreNames
    std::unordered_map<Ino, std::string> targets;              // every symlink's

    Ino next_ino = kSocketIno + 1;  // kSocketIno is the socket node's (make_socket_node)
    MountOptions opts;
    Counts counts{1, 0, 0};
    Ino socket_ino = 0;  // the broker's socket node, once bound
    bool read_only = false;

    // Changes of the call in progress, each ino once in the order first changed (kMetaMark: the
    // meta), with the widest part of it that changed. Empty while no sink is set.
    static constexpr Ino kMetaMark = 0;
    enum class Part : std::uint8_t { lookups, times, whole };  // narrow to wide
    struct Pending {
        Ino ino;
        Part part;
    };
    ChangeSink sink;
    std::vector<Pending> pending;
    std::unordered_map<Ino, std::size_t> pending_at;

    // --- the node table ---------------------------------------------------------------------
    Node& at(std::uint32_t slot) { return chunks[slot >> kChunkBits][slot & (kChunk - 1)]; }
    const Node& at(std::uint32_t slot) const {
        return chunks[slot >> kChunkBits][slot & (kChunk - 1)];
    }
    auto ino_at() const {
        return [this](std::uint32_t slot) { return at(slot).ino; };
    }
    std::uint32_t slot_of(Ino ino) const {
        return by_ino.find(ino, [&](std::uint32_t slot) { return at(slot).ino == ino; });
    }
    Node* find(Ino ino) {
        std::uint32_t slot = slot_of(ino);
        return slot == kNone ? nullptr : &at(slot);
    }
    const Node* find(Ino ino) const {
        std::uint32_t slot = slot_of(ino);
        return slot == kNone ? nullptr : &at(slot);
    }

    // A fresh node numbered `ino` (not in the table), returned by slot. Throws bad_alloc before
    // changing anything.
    std::uint32_t new_node(Ino ino) {
        by_ino.reserve_one(ino_at());
        std::uint32_t slot;
        if (free_slot != kNone) {
            slot = free_slot;
            free_slot = at(slot).parent;
        } else {
            if (slots_used == chunks.size() * kChunk) {
                if (slots_used > kNone - kChunk) throw std::bad_alloc();
                chunks.push_back(std::make_unique<Node[]>(kChunk));
            }
            slot = slots_used++;
        }
        Node& n = at(slot);
        n = Node{};
        n.ino = ino;
        by_ino.insert(ino, slot);
        ++live_nodes;
        return slot;
    }

    // Takes a node out of the table, with everything kept aside for it.
    void erase_node(Node& n) {
        Ino ino = n.ino;
        std::uint32_t slot = slot_of(ino);
        if (n.has(Node::kWide)) wide.erase(ino);
        if (n.nlookup == Node::kManyLookups) many_lookups.erase(ino);
        if (n.removed()) detached.erase(ino);
        if (n.is_dir()) dirs.erase(ino);
        if (n.has(Node::kMoreNames)) more_names.erase(ino);
        if (n.is_symlink()) targets.erase(ino);
        by_ino.erase(ino, slot, ino_at());
        if (n.has(Node::kOwned)) disown(n.uid);
        n = Node{};
        n.parent = free_slot;
        free_slot = slot;
        --live_nodes;
    }

    // --- a node's values -------------------------------------------------------------------
    Dir& dir_of(const Node& n) { return dirs.find(n.ino)->second; }
    const Dir& dir_of(const Node& n) const { return dirs.find(n.ino)->second; }

    std::uint64_t lookups(const Node& n) const {
        return n.nlookup == Node::kManyLookups ? many_lookups.find(n.ino)->second : n.nlookup;
    }
    void set_lookups(Node& n, std::uint64_t count) {
        if (count < Node::kManyLookups) {
            if (n.nlookup == Node::kManyLookups) many_lookups.erase(n.ino);
            n.nlookup = static_cast<std::uint32_t>(count);
        } else {
            many_lookups.insert_or_assign(n.ino, count);
            n.nlookup = Node::kManyLookups;
        }
    }

    std::uint32_t nlink_of(const Node& n) const {
        if (n.removed()) return 0;
        if (n.is_dir()) return 2 + dir_of(n).nsubdirs;
        if (n.has(Node::kMoreNames))
            return 1 + static_cast<std::uint32_t>(more_names.find(n.ino)->second.size());
        return 1;
    }
    Attr attr_of(const Node& n) const {
        Attr a;
        a.ino = n.ino;
        a.nlink = nlink_of(n);
        a.uid = n.uid;
        a.gid = n.gid;
        if (n.has(Node::kWide)) {
            const Wide& w = wide.find(n.ino)->second;
            a.mode = w.mode;
            a.size = w.size;
            a.atime = w.atime;
            a.mtime = w.mtime;
            a.ctime = w.ctime;
        } else {
            a.mode = n.bits & Node::kModeMask;
            a.atime = unpack_time(n.atime);
            a.mtime = unpack_time(n.mtime);
            a.ctime = unpack_time(n.ctime);
        }
        return a;
    }
    // Stores mode (its type bits never change), uid, gid, size and times; ino and nlink are
    // derived.
    void set_attr(Node& n, const Attr& a) {
        // The owner's count first: the only allocation of the ownership, before anything changes.
        std::size_t* mine = nullptr;
        if (!n.has(Node::kOwned) || n.uid != a.uid)
            mine = &owned.try_emplace(a.uid, 0).first->second;
        std::int64_t at = 0, mt = 0, ct = 0;
        if (a.mode <= Node::kModeMask && a.size == 0 && pack_time(a.atime, at) &&
            pack_time(a.mtime, mt) && pack_time(a.ctime, ct)) {
            if (n.has(Node::kWide)) wide.erase(n.ino);
            n.bits &= ~Node::kWide;
            n.atime = at;
            n.mtime = mt;
            n.ctime = ct;
        } else {
            wide.insert_or_assign(n.ino, Wide{a.mode, a.size, a.atime, a.mtime, a.ctime});
            n.bits |= Node::kWide;
        }
        n.bits = (n.bits & ~Node::kModeMask) | (a.mode & Node::kModeMask);
        if (mine != nullptr) {
            ++*mine;
            if (n.has(Node::kOwned)) disown(n.uid);
            n.bits |= Node::kOwned;
        }
        n.uid = a.uid;
        n.gid = a.gid;
    }
    void disown(std::uint32_t uid) {
        auto it = owned.find(uid);
        if (it != owned.end() && --it->second == 0) owned.erase(it);
    }
    template <class F>
    void update_attr(Node& n, F&& f) {
        Attr a = attr_of(n);
        f(a);
        set_attr(n, a);
    }

    void mark(Ino ino, Part part) {
        if (!sink) return;
        auto [it, fresh] = pending_at.try_emplace(ino, pending.size());
        if (fresh)
            pending.push_back(Pending{ino, part});
        else
            pending[it->second].part = std::max(pending[it->second].part, part);
    }
    void touch(const Node& n) { mark(n.ino, Part::whole); }
    // Only atime, mtime, ctime, nlink or the next cookie changed.
    void touch_times(const Node& n) { mark(n.ino, Part::times); }
    void touch_lookups(const Node& n) { mark(n.ino, Part::lookups); }
    void touch_meta() { mark(kMetaMark, Part::whole); }

    NodeState state_of(const Node& n) const {
        NodeState s;
        s.ino = n.ino;
        if (n.has(Node::kLinked)) {
            const Node& p = at(n.parent);
            const Dir& d = dir_of(p);
            const Entry& e = d.entries[n.pos];
            s.parent = p.ino;
            s.cookie = e.cookie;
            s.name = d.name_of(e);
        } else if (n.removed()) {
            const Detached& d = detached.find(n.ino)->second;
            s.parent = d.parent;
            s.cookie = d.cookie;
            s.name = d.name;
        } else if (n.ino == socket_ino) {
            s.parent = kRootIno;
            s.name = kSocketName;
        }  // else the root: parent 0, no name, cookie 0
        s.attr = attr_of(n);
        s.nlookup = lookups(n);
        s.removed = n.removed();
        s.is_dir = n.is_dir();
        s.next_cookie = n.is_dir() ? dir_of(n).next_cookie : 0;
        s.type = n.type();
        if (n.has(Node::kHasHandle)) s.handle = n.handle;
        if (n.is_symlink()) s.target = targets.find(n.ino)->second;
        if (n.has(Node::kMoreNames)) {
            // In one order whatever the node's history, the one restore links them in: by parent
            // ino and cookie, the first of them the node's first name.
            s.more_names.push_back(NameState{s.parent, s.cookie, s.name});
            for (const NameRef& r : more_names.find(n.ino)->second) {
                const Node& p = at(r.parent);
                const Dir& d = dir_of(p);
                const Entry& e = d.entries[r.pos];
                s.more_names.push_back(NameState{p.ino, e.cookie, std::string(d.name_of(e))});
            }
            std::sort(s.more_names.begin(), s.more_names.end(),
                      [](const NameState& a, const NameState& b) {
                          return a.parent != b.parent ? a.parent < b.parent : a.cookie < b.cookie;
                      });
            s.parent = s.more_names.front().parent;
            s.cookie = s.more_names.front().cookie;
            s.name = std::move(s.more_names.front().name);
            s.more_names.erase(s.more_names.begin());
        }
        return s;
    }
    NodeTimes times_of(const Node& n) const {
        Attr a = attr_of(n);
        return NodeTimes{a.atime, a.mtime, a.ctime, a.nlink,
                         n.is_dir() ? dir_of(n).next_cookie : 0};
    }
    CoreMeta meta() const { return CoreMeta{opts, next_ino, socket_ino, read_only}; }

    // Hands the marked changes to the sink. The marks are dropped before the sink runs, so a
    // sink that throws is not called again with the same changes.
    void flush() {
        if (pending.empty()) return;
        std::vector<Change> out;
        out.reserve(pending.size());
        for (const Pending& p : pending) {
            Change c;
            const Node* n = p.ino == kMetaMark ? nullptr : find(p.ino);
            if (p.ino == kMetaMark) {
                c.kind = Change::Kind::meta;
                c.meta = meta();
            } else if (n == nullptr) {
                c.kind = Change::Kind::erase;
                c.ino = p.ino;
            } else if (p.part == Part::lookups) {
                c.kind = Change::Kind::lookups;
                c.ino = p.ino;
                c.nlookup = lookups(*n);
            } else if (p.part == Part::times) {
                c.kind = Change::Kind::times;
                c.ino = p.ino;
                c.times = times_of(*n);
            } else {
                c.kind = Change::Kind::put;
                c.node = state_of(*n);
            }
            out.push_back(std::move(c));
        }
        pending.clear();
        pending_at.clear();
        sink(out);
    }

    Node* child(const Node& dir, std::string_view name) {
        if (name == kSocketName && socket_ino != 0) return find(socket_ino);
        const Dir& d = dir_of(dir);
        std::uint32_t pos = d.find(name);
        return pos == kNone ? nullptr : &at(d.entries[pos].slot);
    }

    // The subdirectories the seed's terminal rule counts: all but the root's kLostFoundName,
    // which the daemon makes and which must not turn away a pin into the root.
    std::uint32_t counted_subdirs(const Node& dir) const {
        const Dir& d = dir_of(dir);
        bool lost_found = dir.ino == kRootIno && d.nsubdirs > 0 && d.find(kLostFoundName) != kNone;
        return d.nsubdirs - (lost_found ? 1 : 0);
    }

    // Room for one more name of node `n` (a hard link): throws bad_alloc before changing
    // anything that matters.
    void reserve_name(const Node& n) {
        if (!n.has(Node::kLinked)) return;
        auto& v = more_names[n.ino];
        if (v.size() >= std::numeric_limits<std::uint32_t>::max() - 2) throw std::bad_alloc();
        v.reserve(v.size() + 1);
    }

    // Links node `slot` into directory node `parent` under `name`, with `cookie`: its first
    // name, or (after reserve_name()) one more. After reserve_entry().
    void link(Node& parent, Dir& d, std::uint32_t slot, std::string_view name,
              std::uint64_t cookie) {
        Node& n = at(slot);
        std::uint32_t pos = d.append(cookie, slot, name);
        if (n.has(Node::kLinked)) {
            more_names[n.ino].push_back(NameRef{slot_of(parent.ino), pos});
            n.bits |= Node::kMoreNames;
        } else {
            n.parent = slot_of(parent.ino);
            n.pos = pos;
            n.bits |= Node::kLinked;
        }
        ++(n.is_dir() ? d.nsubdirs : d.nobjects);
    }

    // The name of `n` at position `pos` of directory slot `dir` now lies at `new_pos` of
    // directory slot `new_dir`.
    void retarget(Node& n, std::uint32_t dir, std::uint32_t pos, std::uint32_t new_dir,
                  std::uint32_t new_pos) {
        if (n.parent == dir && n.pos == pos) {
            n.parent = new_dir;
            n.pos = new_pos;
            return;
        }
        for (NameRef& r : more_names.find(n.ino)->second) {
            if (r.parent == dir && r.pos == pos) {
                r = NameRef{new_dir, new_pos};
                return;
            }
        }
    }

    // Forgets the name of `n` at position `pos` of directory slot `dir`, one of several: a
    // further name takes the first one's place if that was it. Its entry stays for the caller.
    void drop_name(Node& n, std::uint32_t dir, std::uint32_t pos) {
        auto it = more_names.find(n.ino);
        std::vector<NameRef>& v = it->second;
        if (n.parent == dir && n.pos == pos) {
            n.parent = v.back().parent;
            n.pos = v.back().pos;
            v.pop_back();
        } else {
            v.erase(std::find_if(v.begin(), v.end(), [&](const NameRef& r) {
                return r.parent == dir && r.pos == pos;
            }));
        }
        if (v.empty()) {
            more_names.erase(it);
            n.bits &= ~Node::kMoreNames;
        }
    }

    // Takes the entry at `pos` out of directory slot `dir`: a tombstone, dropped at once at the
    // end, else by a compaction once tombstones outnumber the live entries. No allocation.
    void remove_entry(std::uint32_t dir, std::uint32_t pos) {
        Dir& d = dir_of(at(dir));
        d.index.erase(hash_name(d.name_of(d.entries[pos])), pos, d.hash_at());
        d.entries[pos].slot = kNone;
        ++d.dead;
        while (!d.entries.empty() && d.entries.back().slot == kNone) {
            d.names.resize(d.entries.back().name_at);
            d.entries.pop_back();
            --d.dead;
        }
        if (d.entries.empty()) {
            std::vector<Entry>().swap(d.entries);
            std::string().swap(d.names);
        } else if (d.dead > 32 && d.dead > d.live()) {
            compact(dir, d);
        } else if (d.entries.capacity() > 64 && d.entries.capacity() / 4 > d.entries.size()) {
            d.entries.shrink_to_fit();  // non-binding; keeps the old buffer when it cannot
            d.names.shrink_to_fit();
        }
    }

    // Drops the tombstones and their names, in place, keeping the order (names lie in entry
    // order, so every live name moves towards the front); renumbers the children's positions
    // and refills the index.
    void compact(std::uint32_t dir, Dir& d) {
        std::uint32_t w = 0;
        std::size_t name_end = 0;
        for (std::uint32_t i = 0; i < d.entries.size(); ++i) {
            const Entry& r = d.entries[i];
            if (r.slot == kNone) continue;
            Entry e = r;
            std::size_t len = 1 + static_cast<unsigned char>(d.names[e.name_at]);
            std::memmove(d.names.data() + name_end, d.names.data() + e.name_at, len);
            e.name_at = static_cast<std::uint32_t>(name_end);
            name_end += len;
            retarget(at(e.slot), dir, i, dir, w);
            d.entries[w++] = e;
        }
        d.entries.resize(w);
        d.names.resize(name_end);
        d.dead = 0;
        if (d.entries.capacity() / 4 > d.entries.size()) {
            d.entries.shrink_to_fit();
            d.names.shrink_to_fit();
        }
        d.index.clear_for(w);
        for (std::uint32_t pos = 0; pos < w; ++pos)
            d.index.insert(hash_name(d.name_of(d.entries[pos])), pos);
    }

    // Fills an empty table from a state (fsops/restore.cpp): false on the first inconsistency. The
    // policy says whether a directory may hold both objects and directories, and whether nodes
    // may have several names or be symlinks.
    // The nodes come from `nodes` one at a time (NodeSource), each dropped once taken in.
    // `expected`: how many nodes the source has, if known (room is made for them at once).
    bool load(const CoreMeta& meta, const NodeSource& nodes, std::size_t expected,
              const Policy& policy);

private:
    // load()'s steps (fsops/restore.cpp).
    struct ToLink;
    struct DirLinks;
    bool load_node(NodeState&& ns, std::vector<ToLink>& to_link, std::string& names,
                   std::vector<DirLinks>& dirs);
    bool link_loaded(std::vector<ToLink>& to_link, const std::string& names);
    bool count_loaded(const std::vector<DirLinks>& dirs, bool mixed_dirs);
    std::size_t reachable_from_root() const;
};

}  // namespace bpffs::fsops::table
