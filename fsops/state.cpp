// SPDX-License-Identifier: GPL-2.0-or-later
// The state codec and the replay of changes. Record layout, version 2 (v: an unsigned LEB128
// varint, at most 10 bytes and minimal; z: a signed value zigzagged into a v):
//   u8 kind, then by kind
//   put:     v ino, v parent, v cookie, v name length, name bytes,
//            z attr.ino - ino (0 in every state the core makes), v mode, v nlink, v uid, v gid,
//            v size, times, v nlookup, u8 flags (1 removed, 2 dir, 4 has handle, 8 prog,
//            16 link; neither 8 nor 16: a map; logs before links never set 16; 32 symlink
//            target; 64 more names), v next_cookie, v handle (only with flag 4),
//            v target length, target bytes (only with flag 32), v count, then per name
//            v parent, v cookie, v name length, name bytes (only with flag 64: count >= 1)
//   lookups: v ino, v nlookup
//   erase:   v ino
//   meta:    v uid, v gid, v mode, v next_ino, v socket_ino, u8 flags (1 read-only,
//            2 compat=linux)
//   times:   v ino, times, v nlink, v next_cookie
// where times is z atime.sec, z atime.nsec, then mtime and ctime each as z differences (sec,
// nsec) from the time before it, in wrapping 64-bit arithmetic: a node made in one call has
// three equal times, 12 bytes. A 32-bit field whose varint holds more is invalid, so every
// record has exactly one encoding. The decoder reads through a cursor that checks every length
// against what is left.
#include "fsops/state.hpp"

#include <algorithm>
#include <limits>

namespace bpffs::fsops {

bool same_attr(const Attr& a, const Attr& b) {
    return a.ino == b.ino && a.mode == b.mode && a.nlink == b.nlink && a.uid == b.uid &&
           a.gid == b.gid && a.size == b.size && a.atime == b.atime && a.mtime == b.mtime &&
           a.ctime == b.ctime;
}

namespace {

constexpr std::uint8_t kFlagRemoved = 1;
constexpr std::uint8_t kFlagDir = 2;
constexpr std::uint8_t kFlagHandle = 4;
constexpr std::uint8_t kFlagProg = 8;
constexpr std::uint8_t kFlagLink = 16;
constexpr std::uint8_t kFlagTarget = 32;
constexpr std::uint8_t kFlagMoreNames = 64;
constexpr std::uint8_t kNodeFlags =
    kFlagRemoved | kFlagDir | kFlagHandle | kFlagProg | kFlagLink | kFlagTarget | kFlagMoreNames;
// nlink is 32 bits: a node has at most that many names.
constexpr std::uint64_t kMaxMoreNames = std::numeric_limits<std::uint32_t>::max() - 1;
constexpr std::uint8_t kKinds = static_cast<std::uint8_t>(Change::Kind::times) + 1;

std::uint64_t zigzag(std::uint64_t v) {
    return (v << 1) ^ (0 - (v >> 63));  // v as int64: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ...
}
std::uint64_t unzigzag(std::uint64_t v) { return (v >> 1) ^ (0 - (v & 1)); }
std::uint64_t bits(std::int64_t v) { return static_cast<std::uint64_t>(v); }
std::int64_t signed_of(std::uint64_t v) { return static_cast<std::int64_t>(v); }

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}
    void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void v(std::uint64_t x) {
        while (x >= 0x80) {
            out_.push_back(static_cast<char>((x & 0x7f) | 0x80));
            x >>= 7;
        }
        out_.push_back(static_cast<char>(x));
    }
    void z(std::uint64_t x) { v(zigzag(x)); }
    void bytes(std::string_view s) { out_.append(s); }

private:
    std::string& out_;
};

// Reads fields in order; after the first bad read every read fails and ok() is false.
class Reader {
public:
    explicit Reader(std::string_view in) : in_(in) {}
    bool ok() const { return ok_; }
    bool at_end() const { return pos_ == in_.size(); }

    std::uint8_t u8() {
        if (!ok_ || pos_ == in_.size()) {
            ok_ = false;
            return 0;
        }
        return static_cast<std::uint8_t>(in_[pos_++]);
    }
    // A minimal varint of at most 64 bits.
    std::uint64_t v() {
        std::uint64_t x = 0;
        for (int shift = 0; ok_; shift += 7) {
            std::uint8_t b = u8();
            if (!ok_) break;
            if (shift == 63 && b > 1) break;  // more than 64 bits
            x |= std::uint64_t{b & 0x7fu} << shift;
            if ((b & 0x80) == 0) {
                if (b == 0 && shift != 0) break;  // a needless zero byte: not minimal
                return x;
            }
        }
        ok_ = false;
        return 0;
    }
    std::uint32_t v32() {
        std::uint64_t x = v();
        if (x > std::numeric_limits<std::uint32_t>::max()) ok_ = false;
        return static_cast<std::uint32_t>(x);
    }
    std::uint64_t z() { return unzigzag(v()); }
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
    void invalid() { ok_ = false; }

private:
    std::string_view in_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

void put_times(Writer& w, const Timespec& a, const Timespec& m, const Timespec& c) {
    w.z(bits(a.sec));
    w.z(bits(a.nsec));
    w.z(bits(m.sec) - bits(a.sec));
    w.z(bits(m.nsec) - bits(a.nsec));
    w.z(bits(c.sec) - bits(m.sec));
    w.z(bits(c.nsec) - bits(m.nsec));
}
void get_times(Reader& r, Timespec& a, Timespec& m, Timespec& c) {
    std::uint64_t as = r.z(), an = r.z();
    std::uint64_t ms = as + r.z(), mn = an + r.z();
    std::uint64_t cs = ms + r.z(), cn = mn + r.z();
    a = {signed_of(as), signed_of(an)};
    m = {signed_of(ms), signed_of(mn)};
    c = {signed_of(cs), signed_of(cn)};
}

// Names in the core are at most kNameMax; a longer one is written and refused by decode.
void put_name(Writer& w, Ino parent, std::uint64_t cookie, std::string_view name) {
    w.v(parent);
    w.v(cookie);
    w.v(name.size());
    w.bytes(name);
}
void get_name(Reader& r, Ino& parent, std::uint64_t& cookie, std::string& name) {
    parent = r.v();
    cookie = r.v();
    std::uint64_t len = r.v();
    if (len > kNameMax) r.invalid();
    name = r.bytes(r.ok() ? static_cast<std::size_t>(len) : 0);
}

void put_node(Writer& w, const NodeState& n) {
    w.v(n.ino);
    put_name(w, n.parent, n.cookie, n.name);
    const Attr& a = n.attr;
    w.z(a.ino - n.ino);
    w.v(a.mode);
    w.v(a.nlink);
    w.v(a.uid);
    w.v(a.gid);
    w.v(a.size);
    put_times(w, a.atime, a.mtime, a.ctime);
    w.v(n.nlookup);
    std::uint8_t flags =
        (n.removed ? kFlagRemoved : 0) | (n.is_dir ? kFlagDir : 0) | (n.handle ? kFlagHandle : 0) |
        (n.type == ObjType::prog ? kFlagProg : 0) | (n.type == ObjType::link ? kFlagLink : 0) |
        (n.target.empty() ? 0 : kFlagTarget) | (n.more_names.empty() ? 0 : kFlagMoreNames);
    w.u8(flags);
    w.v(n.next_cookie);
    if (n.handle) w.v(*n.handle);
    if (!n.target.empty()) {
        w.v(n.target.size());
        w.bytes(n.target);
    }
    if (!n.more_names.empty()) {
        w.v(n.more_names.size());
        for (const NameState& m : n.more_names) put_name(w, m.parent, m.cookie, m.name);
    }
}

// A node's optional tail: its symlink target and its further names.
void get_node_tail(Reader& r, std::uint8_t flags, NodeState& n) {
    if (flags & kFlagTarget) {
        std::uint64_t len = r.v();
        if (len == 0 || len > kTargetMax) r.invalid();
        n.target = r.bytes(r.ok() ? static_cast<std::size_t>(len) : 0);
    }
    if (flags & kFlagMoreNames) {
        std::uint64_t count = r.v();
        // Each name takes at least 3 bytes, so a count past what is left fails on reading.
        if (count == 0 || count > kMaxMoreNames) r.invalid();
        for (std::uint64_t i = 0; r.ok() && i < count; ++i) {
            NameState& m = n.more_names.emplace_back();
            get_name(r, m.parent, m.cookie, m.name);
        }
    }
}

NodeState get_node(Reader& r) {
    NodeState n;
    n.ino = r.v();
    get_name(r, n.parent, n.cookie, n.name);
    Attr& a = n.attr;
    a.ino = n.ino + r.z();
    a.mode = r.v32();
    a.nlink = r.v32();
    a.uid = r.v32();
    a.gid = r.v32();
    a.size = r.v();
    get_times(r, a.atime, a.mtime, a.ctime);
    n.nlookup = r.v();
    std::uint8_t flags = r.u8();
    if (flags & ~kNodeFlags) r.invalid();
    if ((flags & kFlagProg) && (flags & kFlagLink)) r.invalid();
    n.removed = (flags & kFlagRemoved) != 0;
    n.is_dir = (flags & kFlagDir) != 0;
    n.type = (flags & kFlagProg) != 0   ? ObjType::prog
             : (flags & kFlagLink) != 0 ? ObjType::link
                                        : ObjType::map;
    n.next_cookie = r.v();
    if (flags & kFlagHandle) n.handle = r.v();
    get_node_tail(r, flags, n);
    return n;
}

}  // namespace

void encode_to(const Change& c, std::string& out) {
    Writer w(out);
    w.u8(static_cast<std::uint8_t>(c.kind));
    switch (c.kind) {
        case Change::Kind::put:
            put_node(w, c.node);
            break;
        case Change::Kind::lookups:
            w.v(c.ino);
            w.v(c.nlookup);
            break;
        case Change::Kind::erase:
            w.v(c.ino);
            break;
        case Change::Kind::meta:
            w.v(c.meta.opts.uid);
            w.v(c.meta.opts.gid);
            w.v(c.meta.opts.mode);
            w.v(c.meta.next_ino);
            w.v(c.meta.socket_ino);
            w.u8((c.meta.read_only ? 1 : 0) | (c.meta.opts.compat == Compat::linux ? 2 : 0));
            break;
        case Change::Kind::times:
            w.v(c.ino);
            put_times(w, c.times.atime, c.times.mtime, c.times.ctime);
            w.v(c.times.nlink);
            w.v(c.times.next_cookie);
            break;
    }
}

std::string encode(const Change& c) {
    std::string out;
    encode_to(c, out);
    return out;
}

Result<Change> decode(std::string_view bytes) {
    Reader r(bytes);
    std::uint8_t kind = r.u8();
    if (!r.ok() || kind >= kKinds) return fail(EINVAL);
    Change c;
    c.kind = static_cast<Change::Kind>(kind);
    switch (c.kind) {
        case Change::Kind::put:
            c.node = get_node(r);
            break;
        case Change::Kind::lookups:
            c.ino = r.v();
            c.nlookup = r.v();
            break;
        case Change::Kind::erase:
            c.ino = r.v();
            break;
        case Change::Kind::meta:
            c.meta.opts.uid = r.v32();
            c.meta.opts.gid = r.v32();
            c.meta.opts.mode = r.v32();
            c.meta.next_ino = r.v();
            c.meta.socket_ino = r.v();
            if (std::uint8_t flags = r.u8(); flags <= 3) {
                c.meta.read_only = (flags & 1) != 0;
                if ((flags & 2) != 0) c.meta.opts.compat = Compat::linux;
            } else {
                r.invalid();
            }
            break;
        case Change::Kind::times:
            c.ino = r.v();
            get_times(r, c.times.atime, c.times.mtime, c.times.ctime);
            c.times.nlink = r.v32();
            c.times.next_cookie = r.v();
            break;
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
        case Change::Kind::times:
            if (auto it = nodes_.find(c.ino); it != nodes_.end()) {
                NodeState& n = it->second;
                n.attr.atime = c.times.atime;
                n.attr.mtime = c.times.mtime;
                n.attr.ctime = c.times.ctime;
                n.attr.nlink = c.times.nlink;
                n.next_cookie = c.times.next_cookie;
            }
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

bool fresh_mount_node(NodeState& n, const CoreMeta& meta) {
    if (n.removed || (meta.socket_ino != 0 && n.ino == meta.socket_ino)) return false;
    n.nlookup = n.ino == kRootIno ? 1 : 0;
    return true;
}

CoreState fresh_mount_view(CoreState s) {
    std::erase_if(s.nodes, [&s](NodeState& n) { return !fresh_mount_node(n, s.meta); });
    s.meta.socket_ino = 0;
    return s;
}

}  // namespace bpffs::fsops
