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
// name, cookie and parent ino of a removed node the kernel still holds.
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
#include "fsops/filesystem.hpp"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>

namespace bpffs::fsops {

bool Caller::in_group(std::uint32_t g) const {
    return g == gid || std::find(groups.begin(), groups.end(), g) != groups.end();
}

Caller Caller::root() {
    Caller c;
    c.caps = Caps{true, true, true};
    return c;
}

Timespec system_clock_now() {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    return {ns / 1'000'000'000, ns % 1'000'000'000};
}

namespace {
constexpr std::uint64_t kFirstCookie = 3;
constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

bool is_dotted(std::string_view name) { return name.find('.') != std::string_view::npos; }
bool is_bad_name(std::string_view name) {
    return name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos;
}
// A name mkdir or pin could have created.
bool is_valid_name(std::string_view name) {
    return !name.empty() && name.size() <= kNameMax && !is_bad_name(name) && !is_dotted(name);
}

// A time as int64 nanoseconds since the epoch, when that holds it exactly.
constexpr std::int64_t kNsPerSec = 1'000'000'000;
bool pack_time(const Timespec& t, std::int64_t& ns) {
    constexpr std::int64_t kMinSec = std::numeric_limits<std::int64_t>::min() / kNsPerSec;
    constexpr std::int64_t kMaxSec =
        (std::numeric_limits<std::int64_t>::max() - (kNsPerSec - 1)) / kNsPerSec;
    if (t.nsec < 0 || t.nsec >= kNsPerSec || t.sec < kMinSec || t.sec > kMaxSec) return false;
    ns = t.sec * kNsPerSec + t.nsec;
    return true;
}
Timespec unpack_time(std::int64_t ns) {
    Timespec t{ns / kNsPerSec, ns % kNsPerSec};
    if (t.nsec < 0) {
        t.nsec += kNsPerSec;
        --t.sec;
    }
    return t;
}

std::uint64_t hash_name(std::string_view name) { return std::hash<std::string_view>{}(name); }

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
    void set_shift() {
        shift_ = slots_.empty() ? 0 : 64 - std::countr_zero(slots_.size());
    }
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
}  // namespace

struct Filesystem::Node {
    // Flags, above the 16 bits of the mode in `bits`.
    static constexpr std::uint32_t kModeMask = 0xffff;
    static constexpr std::uint32_t kRemoved = 1u << 16;    // unlinked, still referenced
    static constexpr std::uint32_t kProg = 1u << 17;       // the type (else map)
    static constexpr std::uint32_t kHasHandle = 1u << 18;  // `handle` is set
    static constexpr std::uint32_t kWide = 1u << 19;       // the attributes are in Impl::wide
    static constexpr std::uint32_t kLinked = 1u << 20;     // has an entry in its parent (`pos`)
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
    bool removed() const { return has(kRemoved); }
    ObjType type() const { return has(kProg) ? ObjType::prog : ObjType::map; }
};

struct Filesystem::Impl {
    static_assert(sizeof(Node) == 64, "a node is one cache line");

    // Lock order: this is the core's only mutex; nothing is called with it held except the
    // readdir sink and the change sink, which must not call back in.
    mutable std::mutex mu;

    // The node table: slots in chunks that never move, a free list threaded through
    // Node::parent, and the index by ino.
    static constexpr std::uint32_t kChunkBits = 10;
    static constexpr std::uint32_t kChunk = 1u << kChunkBits;
    std::vector<std::unique_ptr<Node[]>> chunks;
    std::uint32_t slots_used = 0;     // slots handed out at least once
    std::uint32_t free_slot = kNone;  // head of the free list
    std::size_t live_nodes = 0;
    RefTable by_ino;

    std::unordered_map<Ino, Dir> dirs;  // every directory node's, removed ones too
    std::unordered_map<Ino, Wide> wide;
    std::unordered_map<Ino, std::uint64_t> many_lookups;
    std::unordered_map<Ino, Detached> detached;  // every removed node's

    Ino next_ino = kRootIno + 1;
    MountOptions opts;
    Clock clock;
    Policy policy;
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
        by_ino.erase(ino, slot, ino_at());
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
        n.uid = a.uid;
        n.gid = a.gid;
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
        if (fresh) pending.push_back(Pending{ino, part});
        else pending[it->second].part = std::max(pending[it->second].part, part);
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

    // Runs the body of a call that may change state: under the lock, then reports what it
    // changed, also when it throws after changing something.
    template <class F>
    auto change(F&& body) -> decltype(body()) {
        std::lock_guard lock(mu);
        try {
            if constexpr (std::is_void_v<decltype(body())>) {
                body();
                flush();
            } else {
                auto r = body();
                flush();
                return r;
            }
        } catch (...) {
            flush();
            throw;
        }
    }

    bool load(const CoreState& s);

    // --- directories -----------------------------------------------------------------------
    // A live directory to work in: ENOENT if gone or removed, ENOTDIR if not a directory.
    Result<Node*> live_dir(Ino ino) {
        Node* n = find(ino);
        if (n == nullptr || n->removed()) return fail(ENOENT);
        if (!n->is_dir()) return fail(ENOTDIR);
        return n;
    }

    Node* child(const Node& dir, std::string_view name) {
        if (name == kSocketName && socket_ino != 0) return find(socket_ino);
        const Dir& d = dir_of(dir);
        std::uint32_t pos = d.find(name);
        return pos == kNone ? nullptr : &at(d.entries[pos].slot);
    }

    // Links node `slot` into directory node `parent` under `name`, with the next cookie. After
    // reserve_entry().
    void link(Node& parent, Dir& d, std::uint32_t slot, std::string_view name,
              std::uint64_t cookie) {
        Node& n = at(slot);
        n.parent = slot_of(parent.ino);
        n.pos = d.append(cookie, slot, name);
        n.bits |= Node::kLinked;
        ++(n.is_dir() ? d.nsubdirs : d.nobjects);
    }

    // Takes the entry at `pos` out of `d`: a tombstone, dropped at once at the end, else by a
    // compaction once tombstones outnumber the live entries. No allocation.
    void remove_entry(Dir& d, std::uint32_t pos) {
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
            compact(d);
        } else if (d.entries.capacity() > 64 && d.entries.capacity() / 4 > d.entries.size()) {
            d.entries.shrink_to_fit();  // non-binding; keeps the old buffer when it cannot
            d.names.shrink_to_fit();
        }
    }

    // Drops the tombstones and their names, in place, keeping the order (names lie in entry
    // order, so every live name moves towards the front); renumbers the children's positions
    // and refills the index.
    void compact(Dir& d) {
        std::uint32_t w = 0;
        std::size_t name_end = 0;
        for (const Entry& r : d.entries) {
            if (r.slot == kNone) continue;
            Entry e = r;
            std::size_t len = 1 + static_cast<unsigned char>(d.names[e.name_at]);
            std::memmove(d.names.data() + name_end, d.names.data() + e.name_at, len);
            e.name_at = static_cast<std::uint32_t>(name_end);
            name_end += len;
            at(e.slot).pos = w;
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

    // New node linked into `parent` under `name`: validate first (the caller), then allocate,
    // then link.
    Node& link_new(Node& parent, std::string_view name, std::uint32_t mode, const Caller& c) {
        Dir& d = dir_of(parent);
        d.reserve_entry(name.size());
        Ino ino = next_ino;
        std::uint32_t slot = new_node(ino);
        if ((mode & kIfMt) == kIfDir) {
            try {
                dirs.try_emplace(ino);
            } catch (...) {
                erase_node(at(slot));
                throw;
            }
        }
        ++next_ino;
        Node& n = at(slot);
        Timespec now = clock();
        Attr a;
        a.mode = mode;
        a.uid = c.uid;
        // inode_init_owner(): a setgid parent passes its group on.
        a.gid = (parent.bits & kIsGid) ? parent.gid : c.gid;
        a.atime = a.mtime = a.ctime = now;
        set_attr(n, a);
        link(parent, d, slot, name, d.next_cookie++);
        touch(n);
        touch_times(parent);  // next_cookie, and nlink for a directory
        touch_meta();         // next_ino
        return n;
    }

    // Takes a node out of its parent: the parent's mtime and ctime and the node's ctime move to
    // now; the node stays in the table while the kernel references it. Returns the handle an
    // object held (release_all may have taken it already), which the caller releases.
    std::optional<ObjHandle> unlink_node(Node& parent, Node& n) {
        Dir& d = dir_of(parent);
        const Entry e = d.entries[n.pos];
        bool referenced = lookups(n) > 0;
        if (referenced)  // the only allocation: first
            detached.insert_or_assign(
                n.ino, Detached{parent.ino, e.cookie, std::string(d.name_of(e))});
        std::optional<ObjHandle> released;
        if (n.has(Node::kHasHandle)) {
            released = n.handle;
            n.handle = 0;
            n.bits &= ~Node::kHasHandle;
            --(n.type() == ObjType::map ? counts.maps : counts.progs);
        }
        if (n.is_dir()) {
            --d.nsubdirs;  // the parent's nlink
            --counts.dirs;
        } else {
            --d.nobjects;  // the parent stops being terminal with its last object
        }
        update_attr(parent, [&](Attr& a) { a.mtime = a.ctime = clock(); });
        remove_entry(d, n.pos);
        n.bits = (n.bits & ~Node::kLinked) | Node::kRemoved;  // nlink is 0 now
        update_attr(n, [&](Attr& a) { a.ctime = clock(); });
        touch_times(parent);  // mtime, ctime, nlink
        touch(n);
        if (!referenced) erase_node(n);
        return released;
    }

    Result<void> permission(const Caller& c, const Node& n, int mask) const {
        std::uint32_t mode = n.bits & Node::kModeMask;
        std::uint32_t bits;
        if (c.uid == n.uid) bits = (mode >> 6) & 7;
        else if (c.in_group(n.gid)) bits = (mode >> 3) & 7;
        else bits = mode & 7;
        if ((static_cast<std::uint32_t>(mask) & ~bits) == 0) return {};
        if (n.is_dir()) {
            if (c.caps.dac_override) return {};
            if (!(mask & kMayWrite) && c.caps.dac_read_search) return {};
        } else {
            if (c.caps.dac_override && (!(mask & kMayExec) || (mode & 0111))) return {};
            if (mask == kMayRead && c.caps.dac_read_search) return {};
        }
        return fail(EACCES);
    }
};

Filesystem::Filesystem(MountOptions opts, Clock clock, Policy policy)
    : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.opts = opts;
    m.clock = std::move(clock);
    m.policy = policy;
    Node& root = m.at(m.new_node(kRootIno));
    m.dirs.try_emplace(kRootIno);
    root.parent = m.slot_of(kRootIno);
    Attr a;
    a.mode = kIfDir | (opts.mode & 07777);
    a.uid = opts.uid;
    a.gid = opts.gid;
    Timespec now = m.clock();
    a.atime = a.mtime = a.ctime = now;
    m.set_attr(root, a);
    root.nlookup = 1;  // the kernel holds the root for the life of the mount
}

Filesystem::~Filesystem() = default;

Result<Attr> Filesystem::lookup(Ino parent, std::string_view name) {
    return impl_->change([&]() -> Result<Attr> {
        auto d = impl_->live_dir(parent);
        if (!d) return d.error();
        if (name.size() > kNameMax) return fail(ENAMETOOLONG);
        Node* n = nullptr;
        if (name == ".") n = *d;
        else if (name == "..") n = &impl_->at((*d)->parent);
        else n = impl_->child(**d, name);
        if (n == nullptr) return fail(ENOENT);
        impl_->set_lookups(*n, impl_->lookups(*n) + 1);
        impl_->touch_lookups(*n);
        return impl_->attr_of(*n);
    });
}

void Filesystem::forget(Ino ino, std::uint64_t count) {
    impl_->change([&] {
        Node* n = impl_->find(ino);
        if (n == nullptr || count == 0) return;
        std::uint64_t have = impl_->lookups(*n);
        if (have == 0) return;
        impl_->set_lookups(*n, count >= have ? 0 : have - count);
        impl_->touch_lookups(*n);  // an erase once it leaves the table
        if (n->nlookup == 0 && n->removed()) impl_->erase_node(*n);
    });
}

Result<Attr> Filesystem::getattr(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    return impl_->attr_of(*n);
}

std::uint64_t Filesystem::nlookup(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    return n == nullptr ? 0 : impl_->lookups(*n);
}

bool Filesystem::exists(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    return impl_->find(ino) != nullptr;
}

Result<Attr> Filesystem::mkdir(const Caller& c, Ino parent, std::string_view name) {
    return impl_->change([&]() -> Result<Attr> {
        auto d = impl_->live_dir(parent);
        if (!d) return d.error();
        Node& p = **d;
        if (name.size() > kNameMax) return fail(ENAMETOOLONG);
        if (name.empty() || is_bad_name(name)) return fail(EINVAL);
        if (name == "." || name == ".." || impl_->child(p, name) != nullptr) return fail(EEXIST);
        if (impl_->read_only) return fail(EROFS);
        if (is_dotted(name)) return fail(EPERM);
        if (impl_->policy.terminal_dirs && impl_->dir_of(p).nobjects > 0) return fail(EPERM);
        // The seed's bpf_mkdir: the new directory takes the parent's full mode.
        std::uint32_t mode = impl_->attr_of(p).mode;
        Node& n = impl_->link_new(p, name, kIfDir | (mode & 07777), c);
        n.nlookup = 1;  // (link_new touched n and p; the parent's nlink counts the new subdir)
        ++impl_->counts.dirs;
        return impl_->attr_of(n);
    });
}

Result<void> Filesystem::rmdir(Ino parent, std::string_view name) {
    return impl_->change([&]() -> Result<void> {
        if (impl_->read_only) return fail(EROFS);
        auto d = impl_->live_dir(parent);
        if (!d) return d.error();
        Node& p = **d;
        Node* n = impl_->child(p, name);
        if (n == nullptr) return fail(ENOENT);
        if (!n->is_dir()) return fail(ENOTDIR);
        if (impl_->dir_of(*n).live() != 0) return fail(ENOTEMPTY);
        impl_->unlink_node(p, *n);  // touches p and n
        return {};
    });
}

Result<Unlinked> Filesystem::unlink(Ino parent, std::string_view name) {
    return impl_->change([&]() -> Result<Unlinked> {
        if (impl_->read_only) return fail(EROFS);
        auto d = impl_->live_dir(parent);
        if (!d) return d.error();
        Node& p = **d;
        Node* n = impl_->child(p, name);
        if (n == nullptr) return fail(ENOENT);
        if (n->is_dir()) return fail(EISDIR);
        if (n->ino == impl_->socket_ino) return fail(EPERM);  // generated, not the user's
        Unlinked out;
        out.released = impl_->unlink_node(p, *n);  // touches p and n
        return out;
    });
}

Result<void> Filesystem::rename(Ino, std::string_view, Ino, std::string_view) {
    return fail(EPERM);
}
Result<void> Filesystem::link(Ino, Ino, std::string_view) { return fail(EPERM); }
Result<void> Filesystem::symlink(Ino, std::string_view) { return fail(EPERM); }

Result<void> Filesystem::mknod(Ino parent, std::string_view name, std::uint32_t mode) {
    std::lock_guard lock(impl_->mu);
    auto d = impl_->live_dir(parent);
    if (!d) return d.error();
    if (name.size() > kNameMax) return fail(ENAMETOOLONG);
    if (impl_->child(**d, name) != nullptr) return fail(EEXIST);
    if (impl_->read_only) return fail(EROFS);
    std::uint32_t type = mode & kIfMt;
    // vfs_mknod: a regular file goes through ->create (the seed has none: EACCES); every other
    // type through ->mknod (none either: EPERM).
    if (type == 0 || type == kIfReg) return fail(EACCES);
    return fail(EPERM);
}

Result<void> Filesystem::create(Ino parent, std::string_view name) {
    std::lock_guard lock(impl_->mu);
    auto d = impl_->live_dir(parent);
    if (!d) return d.error();
    if (name.size() > kNameMax) return fail(ENAMETOOLONG);
    if (impl_->child(**d, name) != nullptr) return fail(EEXIST);
    if (impl_->read_only) return fail(EROFS);
    return fail(EACCES);
}

Result<Attr> Filesystem::setattr(Ino ino, const SetAttr& s) {
    return impl_->change([&]() -> Result<Attr> {
        Node* n = impl_->find(ino);
        if (n == nullptr) return fail(ENOENT);
        if (impl_->read_only) return fail(EROFS);
        if (s.size && n->is_dir()) return fail(EISDIR);
        Timespec now = impl_->clock();
        impl_->touch(*n);
        Attr a = impl_->attr_of(*n);
        if (s.mode) a.mode = (a.mode & kIfMt) | (*s.mode & 07777);
        if (s.uid) a.uid = *s.uid;
        if (s.gid) a.gid = *s.gid;
        if (s.size) {
            a.size = *s.size;
            a.mtime = now;
        }
        if (s.atime) a.atime = s.atime->now ? now : s.atime->at;
        if (s.mtime) a.mtime = s.mtime->now ? now : s.mtime->at;
        a.ctime = s.ctime ? *s.ctime : now;
        impl_->set_attr(*n, a);
        return a;
    });
}

Result<void> Filesystem::open(const Caller& c, Ino ino, int acc_mode) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    if (n->is_dir()) return {};
    auto p = impl_->permission(c, *n, acc_mode);
    if (!p) return p.error();
    return fail(ENXIO);
}

Result<void> Filesystem::opendir(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    if (!n->is_dir()) return fail(ENOTDIR);
    return {};
}

Result<void> Filesystem::readdir(Ino ino, std::uint64_t off, bool plus, const DirSink& sink) {
    return impl_->change([&]() -> Result<void> {
        Node* d = impl_->find(ino);
        if (d == nullptr || d->removed()) return fail(ENOENT);
        if (!d->is_dir()) return fail(ENOTDIR);
        if (off < 1 && !sink(DirEntry{".", impl_->attr_of(*d), 1})) return {};
        if (off < 2 && !sink(DirEntry{"..", impl_->attr_of(impl_->at(d->parent)), 2})) return {};
        const Dir& dir = impl_->dir_of(*d);
        std::uint64_t after = std::max<std::uint64_t>(off, 2);
        auto it = std::upper_bound(
            dir.entries.begin(), dir.entries.end(), after,
            [](std::uint64_t c, const Entry& e) { return c < e.cookie; });
        for (auto i = static_cast<std::size_t>(it - dir.entries.begin()); i < dir.entries.size();
             ++i) {
            const Entry e = dir.entries[i];
            if (e.slot == kNone) continue;  // a tombstone
            Node& n = impl_->at(e.slot);
            if (!sink(DirEntry{dir.name_of(e), impl_->attr_of(n), e.cookie})) break;
            if (plus) {
                impl_->set_lookups(n, impl_->lookups(n) + 1);
                impl_->touch_lookups(n);
            }
        }
        return {};
    });
}

Result<Filesystem::XattrReply> Filesystem::getxattr(const Caller& c, Ino ino,
                                                    std::string_view name,
                                                    std::size_t size) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    // xattr_permission(): reading any xattr needs MAY_READ on the inode.
    auto p = impl_->permission(c, *n, kMayRead);
    if (!p) return p.error();
    if (n->is_dir()) return fail(EOPNOTSUPP);
    if (!n->is_object()) return fail(ENODATA);  // the socket node
    // The seed compares with strncmp(name, "bpf.type", 8): a prefix match.
    if (name.substr(0, 8) != "bpf.type") return fail(ENODATA);
    std::string value =
        n->type() == ObjType::map ? std::string("map", 4) : std::string("prog", 5);
    XattrReply r;
    r.length = value.size();
    if (size == 0) return r;
    if (size < value.size()) return fail(ERANGE);
    r.value = std::move(value);
    return r;
}

Result<Filesystem::XattrReply> Filesystem::listxattr(Ino ino, std::size_t size) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    XattrReply r;
    if (!n->is_object()) return r;  // directories and the socket node
    static constexpr std::string_view kList{"bpf.type\0", 9};
    r.length = kList.size();
    if (size == 0) return r;
    if (size < kList.size()) return fail(ERANGE);
    r.value = std::string(kList);
    return r;
}

Result<void> Filesystem::setxattr(Ino ino, std::string_view) const {
    std::lock_guard lock(impl_->mu);
    if (impl_->find(ino) == nullptr) return fail(ENOENT);
    return fail(EOPNOTSUPP);
}

Result<void> Filesystem::removexattr(Ino ino, std::string_view) const {
    std::lock_guard lock(impl_->mu);
    if (impl_->find(ino) == nullptr) return fail(ENOENT);
    return fail(EOPNOTSUPP);
}

Result<Attr> Filesystem::pin(const Caller& c, Ino parent, std::string_view name, ObjType type,
                             ObjHandle handle, bool read_only) {
    if (!c.caps.sys_admin) return fail(EPERM);
    return impl_->change([&]() -> Result<Attr> {
        auto d = impl_->live_dir(parent);
        if (!d) return d.error();
        Node& p = **d;
        if (name.size() > kNameMax) return fail(ENAMETOOLONG);
        if (name.empty()) return fail(ENOENT);  // a path ending in '/'
        if (is_bad_name(name)) return fail(EINVAL);
        if (name == "." || name == ".." || impl_->child(p, name) != nullptr) return fail(EEXIST);
        if (read_only) return fail(EROFS);
        if (is_dotted(name)) return fail(EPERM);
        if (impl_->policy.terminal_dirs && impl_->dir_of(p).nsubdirs > 0) return fail(EBUSY);
        Node& n = impl_->link_new(p, name, kIfReg | 0600, c);
        if (type == ObjType::prog) n.bits |= Node::kProg;
        n.bits |= Node::kHasHandle;
        n.handle = handle;  // (link_new touched n and p)
        ++(type == ObjType::map ? impl_->counts.maps : impl_->counts.progs);
        return impl_->attr_of(n);
    });
}

Result<Fetched> Filesystem::get(const Caller& c, Ino ino) {
    return impl_->change([&]() -> Result<Fetched> {
        Node* n = impl_->find(ino);
        if (n == nullptr || n->removed()) return fail(ENOENT);
        auto p = impl_->permission(c, *n, kMayWrite);
        if (!p) return p.error();
        if (n->is_dir() || !n->has(Node::kHasHandle)) return fail(EACCES);
        impl_->update_attr(*n, [&](Attr& a) { a.atime = impl_->clock(); });  // touch_atime()
        impl_->touch_times(*n);
        return Fetched{n->handle, n->type()};
    });
}

Result<Attr> Filesystem::make_socket_node() {
    return impl_->change([&]() -> Result<Attr> {
        Impl& m = *impl_;
        if (m.socket_ino == 0) {
            Ino ino = m.next_ino;
            std::uint32_t slot = m.new_node(ino);
            ++m.next_ino;
            Node& n = m.at(slot);
            n.parent = m.slot_of(kRootIno);
            Timespec now = m.clock();
            Attr a;
            a.mode = kIfSock | 0666;
            a.atime = a.mtime = a.ctime = now;
            m.set_attr(n, a);
            m.socket_ino = ino;
            m.touch(n);
            m.touch_meta();
        }
        Node& n = *m.find(m.socket_ino);
        m.set_lookups(n, m.lookups(n) + 1);
        m.touch_lookups(n);
        return m.attr_of(n);
    });
}

Ino Filesystem::socket_ino() const {
    std::lock_guard lock(impl_->mu);
    return impl_->socket_ino;
}

Result<void> Filesystem::permission(const Caller& c, Ino ino, int mask) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    return impl_->permission(c, *n, mask);
}

void Filesystem::set_read_only(bool ro) {
    impl_->change([&] {
        if (impl_->read_only == ro) return;
        impl_->read_only = ro;
        impl_->touch_meta();
    });
}

MountOptions Filesystem::options() const {
    std::lock_guard lock(impl_->mu);
    return impl_->opts;
}

Attr Filesystem::apply_options(const MountOptions& opts) {
    return impl_->change([&]() -> Attr {
        impl_->opts = opts;
        impl_->touch_meta();
        Node& root = *impl_->find(kRootIno);
        impl_->touch(root);
        Attr a = impl_->attr_of(root);
        a.mode = kIfDir | (opts.mode & 07777);
        a.uid = opts.uid;
        a.gid = opts.gid;
        a.ctime = impl_->clock();
        impl_->set_attr(root, a);
        return a;
    });
}

Counts Filesystem::counts() const {
    std::lock_guard lock(impl_->mu);
    return impl_->counts;
}

std::size_t Filesystem::node_count() const {
    std::lock_guard lock(impl_->mu);
    return impl_->live_nodes;
}

std::vector<ObjHandle> Filesystem::release_all() {
    return impl_->change([&]() -> std::vector<ObjHandle> {
        std::vector<ObjHandle> out;
        for (std::uint32_t slot = 0; slot < impl_->slots_used; ++slot) {
            Node& n = impl_->at(slot);
            if (n.ino != 0 && n.has(Node::kHasHandle)) {
                out.push_back(n.handle);
                n.handle = 0;
                n.bits &= ~Node::kHasHandle;
                impl_->touch(n);
            }
        }
        impl_->counts.maps = impl_->counts.progs = 0;
        return out;
    });
}

void Filesystem::set_change_sink(ChangeSink sink) {
    std::lock_guard lock(impl_->mu);
    impl_->sink = std::move(sink);
    impl_->pending.clear();
    impl_->pending_at.clear();
}

void Filesystem::stream_state(const std::function<void(const Change&)>& out,
                              const std::function<void()>& done) const {
    std::lock_guard lock(impl_->mu);
    Change c;
    c.kind = Change::Kind::meta;
    c.meta = impl_->meta();
    out(c);
    c.kind = Change::Kind::put;
    for (std::uint32_t slot = 0; slot < impl_->slots_used; ++slot) {
        const Node& n = impl_->at(slot);
        if (n.ino == 0) continue;
        c.node = impl_->state_of(n);
        out(c);
    }
    if (done) done();
}

CoreState Filesystem::snapshot() const {
    std::lock_guard lock(impl_->mu);
    CoreState s;
    s.meta = impl_->meta();
    s.nodes.reserve(impl_->live_nodes);
    for (std::uint32_t slot = 0; slot < impl_->slots_used; ++slot) {
        const Node& n = impl_->at(slot);
        if (n.ino != 0) s.nodes.push_back(impl_->state_of(n));
    }
    std::sort(s.nodes.begin(), s.nodes.end(),
              [](const NodeState& a, const NodeState& b) { return a.ino < b.ino; });
    return s;
}

Filesystem::Filesystem(RestoreKey, Clock clock, Policy policy)
    : impl_(std::make_unique<Impl>()) {
    impl_->clock = std::move(clock);
    impl_->policy = policy;
}

Result<std::unique_ptr<Filesystem>> Filesystem::restore(const CoreState& s, Clock clock,
                                                        Policy policy) {
    auto fs = std::make_unique<Filesystem>(RestoreKey{}, std::move(clock), policy);
    if (!fs->impl_->load(s)) return fail(EINVAL);
    return fs;
}

// Fills an empty Impl from `s`: each node on its own, then the links into the parents (in
// cookie order, so each directory's entries come out sorted), then the rules that need the
// whole tree. False on the first inconsistency.
bool Filesystem::Impl::load(const CoreState& s) {
    const CoreMeta& m = s.meta;
    if (m.next_ino <= kRootIno) return false;
    opts = m.opts;
    next_ino = m.next_ino;
    socket_ino = m.socket_ino;
    read_only = m.read_only;

    struct ToLink {
        Ino parent;
        std::uint64_t cookie;
        std::uint32_t slot;
        const NodeState* ns;
    };
    std::vector<ToLink> to_link;
    for (const NodeState& ns : s.nodes) {
        if (ns.ino == 0 || ns.ino >= next_ino || ns.attr.ino != ns.ino) return false;
        if (ns.type != ObjType::map && ns.type != ObjType::prog) return false;
        std::uint32_t fmt = ns.attr.mode & kIfMt;
        if (fmt != kIfDir && fmt != kIfReg && fmt != kIfSock) return false;
        if (ns.is_dir != (fmt == kIfDir)) return false;
        if (ns.is_dir ? ns.next_cookie < kFirstCookie : ns.next_cookie != 0) return false;
        if (ns.handle && fmt != kIfReg) return false;
        bool is_root = ns.ino == kRootIno;
        bool is_socket = ns.ino == socket_ino;
        if ((fmt == kIfSock) != is_socket) return false;
        if (is_root) {
            if (ns.parent != 0 || !ns.name.empty() || ns.cookie != 0 || !ns.is_dir || ns.removed)
                return false;
        } else if (ns.parent == 0) {
            return false;
        }
        if (is_socket && (ns.parent != kRootIno || ns.name != kSocketName || ns.cookie != 0 ||
                          ns.removed || ns.attr.nlink != 1))
            return false;
        if (ns.removed) {
            // Unlinked: no nlink, no object; in the table only while the kernel holds it.
            if (ns.nlookup == 0 || ns.handle || ns.attr.nlink != 0) return false;
        } else if (!is_root && !is_socket) {
            if (!is_valid_name(ns.name)) return false;
            if (fmt == kIfReg && ns.attr.nlink != 1) return false;
        }
        if (find(ns.ino) != nullptr) return false;  // the same ino twice
        std::uint32_t slot = new_node(ns.ino);
        Node& n = at(slot);
        set_attr(n, ns.attr);
        set_lookups(n, ns.nlookup);
        if (ns.type == ObjType::prog) n.bits |= Node::kProg;
        if (ns.handle) {
            n.bits |= Node::kHasHandle;
            n.handle = *ns.handle;
        }
        if (ns.is_dir) dirs[ns.ino].next_cookie = ns.next_cookie;
        if (ns.removed) {
            n.bits |= Node::kRemoved;
            detached[ns.ino] = Detached{ns.parent, ns.cookie, ns.name};
        } else if (!is_root && !is_socket) {
            to_link.push_back(ToLink{ns.parent, ns.cookie, slot, &ns});
        }
    }
    std::uint32_t root_slot = slot_of(kRootIno);
    if (root_slot == kNone) return false;
    at(root_slot).parent = root_slot;
    if (socket_ino != 0) {
        Node* sock = find(socket_ino);
        if (sock == nullptr) return false;
        sock->parent = root_slot;
    }

    std::sort(to_link.begin(), to_link.end(), [](const ToLink& a, const ToLink& b) {
        return a.parent != b.parent ? a.parent < b.parent : a.cookie < b.cookie;
    });
    for (std::size_t i = 0; i < to_link.size(); ++i) {
        const ToLink& l = to_link[i];
        Node* p = find(l.parent);
        if (p == nullptr || p->removed() || !p->is_dir()) return false;
        Dir& d = dir_of(*p);
        if (l.cookie < kFirstCookie || l.cookie >= d.next_cookie) return false;
        if (i > 0 && to_link[i - 1].parent == l.parent && to_link[i - 1].cookie == l.cookie)
            return false;  // the same cookie twice in a directory
        if (d.find(l.ns->name) != kNone) return false;  // the same name twice
        d.reserve_entry(l.ns->name.size());
        link(*p, d, l.slot, l.ns->name, l.cookie);
    }

    counts = Counts{0, 0, 0};
    for (const NodeState& ns : s.nodes) {
        if (ns.handle) ++(ns.type == ObjType::map ? counts.maps : counts.progs);
        if (ns.removed || !ns.is_dir) continue;
        const Dir& d = dirs.find(ns.ino)->second;
        if (ns.attr.nlink != 2 + d.nsubdirs) return false;
        if (policy.terminal_dirs && d.nobjects > 0 && d.nsubdirs > 0) return false;
        ++counts.dirs;
    }

    // Every linked node hangs off the root (no cycle of directories on its own). Each node is
    // linked once, so the walk from the root ends.
    std::size_t reached = 0;
    std::vector<const Dir*> todo{&dirs.find(kRootIno)->second};
    while (!todo.empty()) {
        const Dir* d = todo.back();
        todo.pop_back();
        for (const Entry& e : d->entries) {
            if (e.slot == kNone) continue;
            ++reached;
            const Node& c = at(e.slot);
            if (c.is_dir()) todo.push_back(&dir_of(c));
        }
    }
    return reached == to_link.size();
}

}  // namespace bpffs::fsops
