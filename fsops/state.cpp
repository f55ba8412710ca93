// SPDX-License-Identifier: GPL-2.0-or-later
// The state codec and the replay of changes. Record layout (little-endian):
//   u8 version (1), u8 kind, then by kind
//   put:     u64 ino, u64 parent, u64 cookie, u16 name length, name bytes,
//            attr (u64 ino, u32 mode, u32 nlink, u32 uid, u32 gid, u64 size,
//                  3 x (i64 sec, i64 nsec) for atime, mtime, ctime),
//            u64 nlookup, u8 flags (1 removed, 2 dir, 4 has handle), u64 next_cookie,
//            u8 type, u64 handle (0 without the flag)
//   lookups: u64 ino, u64 nlookup
//   erase:   u64 ino
//   meta:    u32 uid, u32 gid, u32 mode, u64 next_ino, u64 socket_ino, u8 read_only
// The decoder reads through a cursor that checks every length against what is left.
#include "fsops/state.hpp"

#include <algorithm>

namespace bpffs::fsops {

bool same_attr(const Attr& a, const Attr& b) {
    return a.ino == b.ino && a.mode == b.mode && a.nlink == b.nlink && a.uid == b.uid &&
           a.gid == b.gid && a.size == b.size && a.atime == b.atime && a.mtime == b.mtime &&
           a.ctime == b.ctime;
}

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kFlagRemoved = 1;
constexpr std::uint8_t kFlagDir = 2;
constexpr std::uint8_t kFlagHandle = 4;

class Writer {
public:
    void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void u16(std::uint16_t v) { le(v, 2); }
    void u32(std::uint32_t v) { le(v, 4); }
    void u64(std::uint64_t v) { le(v, 8); }
    void i64(std::int64_t v) { le(static_cast<std::uint64_t>(v), 8); }
    void bytes(std::string_view s) { out_.append(s); }
    std::string take() { return std::move(out_); }

private:
    void le(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    }
    std::string out_;
};

// Reads fields in order; after the first short read every read fails and ok() is false.
class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    bool ok() const { return ok_; }
    bool at_end() const { return pos_ == in_.size(); }

    std::uint8_t u8() { return static_cast<std::uint8_t>(le(1)); }
    std::uint16_t u16() { return static_cast<std::uint16_t>(le(2)); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(le(4)); }
    std::uint64_t u64() { return le(8); }
    std::int64_t i64() { return static_cast<std::int64_t>(le(8)); }
    std::string bytes(std::size_t n) {
        if (!ok_ || in_.size() - pos_ < n) {
            ok_ = false;
            return {};
        }
        std::string s(in_.substr(pos_, n));
        pos_ += n;
        return s;
    }
    // A bool field: 0 or 1, anything else makes the record invalid.
    bool flag() {
        std::uint8_t v = u8();
        if (v > 1) ok_ = false;
        return v == 1;
    }
    void invalid() { ok_ = false; }

private:
    std::uint64_t le(std::size_t n) {
        if (!ok_ || in_.size() - pos_ < n) {
            ok_ = false;
            return 0;
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i)
            v |= std::uint64_t{static_cast<unsigned char>(in_[pos_ + i])} << (8 * i);
        pos_ += n;
        return v;
    }
    std::string_view in_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

void put_time(Writer& w, const Timespec& t) {
    w.i64(t.sec);
    w.i64(t.nsec);
}
Timespec get_time(Reader& r) {
    Timespec t;
    t.sec = r.i64();
    t.nsec = r.i64();
    return t;
}

void put_node(Writer& w, const NodeState& n) {
    w.u64(n.ino);
    w.u64(n.parent);
    w.u64(n.cookie);
    // Names in the core are at most kNameMax; a longer one is cut here and refused by decode.
    std::size_t len = std::min<std::size_t>(n.name.size(), 0xffff);
    w.u16(static_cast<std::uint16_t>(len));
    w.bytes(std::string_view(n.name).substr(0, len));
    const Attr& a = n.attr;
    w.u64(a.ino);
    w.u32(a.mode);
    w.u32(a.nlink);
    w.u32(a.uid);
    w.u32(a.gid);
    w.u64(a.size);
    put_time(w, a.atime);
    put_time(w, a.mtime);
    put_time(w, a.ctime);
    w.u64(n.nlookup);
    std::uint8_t flags = (n.removed ? kFlagRemoved : 0) | (n.is_dir ? kFlagDir : 0) |
                         (n.handle ? kFlagHandle : 0);
    w.u8(flags);
    w.u64(n.next_cookie);
    w.u8(static_cast<std::uint8_t>(n.type));
    w.u64(n.handle.value_or(0));
}

NodeState get_node(Reader& r) {
    NodeState n;
    n.ino = r.u64();
    n.parent = r.u64();
    n.cookie = r.u64();
    std::uint16_t len = r.u16();
    if (len > kNameMax) r.invalid();
    n.name = r.bytes(len);
    Attr& a = n.attr;
    a.ino = r.u64();
    a.mode = r.u32();
    a.nlink = r.u32();
    a.uid = r.u32();
    a.gid = r.u32();
    a.size = r.u64();
    a.atime = get_time(r);
    a.mtime = get_time(r);
    a.ctime = get_time(r);
    n.nlookup = r.u64();
    std::uint8_t flags = r.u8();
    if (flags & ~(kFlagRemoved | kFlagDir | kFlagHandle)) r.invalid();
    n.removed = (flags & kFlagRemoved) != 0;
    n.is_dir = (flags & kFlagDir) != 0;
    n.next_cookie = r.u64();
    std::uint8_t type = r.u8();
    if (type > static_cast<std::uint8_t>(ObjType::prog)) r.invalid();
    n.type = static_cast<ObjType>(type);
    std::uint64_t handle = r.u64();
    if (flags & kFlagHandle) n.handle = handle;
    else if (handle != 0) r.invalid();  // one encoding per record
    return n;
}

}  // namespace

std::string encode(const Change& c) {
    Writer w;
    w.u8(kVersion);
    w.u8(static_cast<std::uint8_t>(c.kind));
    switch (c.kind) {
    case Change::Kind::put:
        put_node(w, c.node);
        break;
    case Change::Kind::lookups:
        w.u64(c.ino);
        w.u64(c.nlookup);
        break;
    case Change::Kind::erase:
        w.u64(c.ino);
        break;
    case Change::Kind::meta:
        w.u32(c.meta.opts.uid);
        w.u32(c.meta.opts.gid);
        w.u32(c.meta.opts.mode);
        w.u64(c.meta.next_ino);
        w.u64(c.meta.socket_ino);
        w.u8(c.meta.read_only ? 1 : 0);
        break;
    }
    return w.take();
}

Result<Change> decode(std::string_view bytes) {
    Reader r(bytes);
    if (r.u8() != kVersion || !r.ok()) return fail(EINVAL);
    std::uint8_t kind = r.u8();
    Change c;
    switch (kind) {
    case static_cast<std::uint8_t>(Change::Kind::put):
        c.kind = Change::Kind::put;
        c.node = get_node(r);
        break;
    case static_cast<std::uint8_t>(Change::Kind::lookups):
        c.kind = Change::Kind::lookups;
        c.ino = r.u64();
        c.nlookup = r.u64();
        break;
    case static_cast<std::uint8_t>(Change::Kind::erase):
        c.kind = Change::Kind::erase;
        c.ino = r.u64();
        break;
    case static_cast<std::uint8_t>(Change::Kind::meta):
        c.kind = Change::Kind::meta;
        c.meta.opts.uid = r.u32();
        c.meta.opts.gid = r.u32();
        c.meta.opts.mode = r.u32();
        c.meta.next_ino = r.u64();
        c.meta.socket_ino = r.u64();
        c.meta.read_only = r.flag();
        break;
    default:
        return fail(EINVAL);
    }
    if (!r.ok() || !r.at_end()) return fail(EINVAL);
    return c;
}

std::vector<Change> to_changes(const CoreState& s) {
    std::vector<Change> out;
    out.reserve(s.nodes.size() + 1);
    Change m;
    m.kind = Change::Kind::meta;
    m.meta = s.meta;
    out.push_back(std::move(m));
    for (const auto& n : s.nodes) {
        Change p;
        p.kind = Change::Kind::put;
        p.node = n;
        out.push_back(std::move(p));
    }
    return out;
}

StateBuilder::StateBuilder(const CoreState& base) : meta_(base.meta) {
    for (const auto& n : base.nodes) nodes_.insert_or_assign(n.ino, n);
}

void StateBuilder::apply(const Change& c) {
    switch (c.kind) {
    case Change::Kind::put:
        nodes_.insert_or_assign(c.node.ino, c.node);
        break;
    case Change::Kind::lookups:
        if (auto it = nodes_.find(c.ino); it != nodes_.end()) it->second.nlookup = c.nlookup;
        break;
    case Change::Kind::erase:
        nodes_.erase(c.ino);
        break;
    case Change::Kind::meta:
        meta_ = c.meta;
        break;
    }
}

CoreState StateBuilder::state() const {
    CoreState s;
    s.meta = meta_;
    s.nodes.reserve(nodes_.size());
    for (const auto& [ino, n] : nodes_) s.nodes.push_back(n);
    return s;
}

CoreState fresh_mount_view(CoreState s) {
    Ino sock = s.meta.socket_ino;
    std::erase_if(s.nodes, [sock](const NodeState& n) {
        return n.removed || (sock != 0 && n.ino == sock);
    });
    for (auto& n : s.nodes) n.nlookup = n.ino == kRootIno ? 1 : 0;
    s.meta.socket_ino = 0;
    return s;
}

}  // namespace bpffs::fsops
