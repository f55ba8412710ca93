// SPDX-License-Identifier: GPL-2.0-or-later
// The broker protocol's codec: length-checked encode and decode, nothing else.
#include "common/protocol.hpp"

#include <algorithm>
#include <cstring>

namespace bpffs::protocol {
namespace {

class Writer {
public:
    template <class T>
    void put(T v) {
        std::uint8_t b[sizeof(T)];
        std::memcpy(b, &v, sizeof(T));
        out_.insert(out_.end(), b, b + sizeof(T));
    }
    void bytes(std::string_view s) { out_.insert(out_.end(), s.begin(), s.end()); }
    std::vector<std::uint8_t> finish_with_header(std::uint16_t op, std::uint32_t word) {
        std::vector<std::uint8_t> msg;
        Writer h;
        h.put(kMagic);
        h.put(kVersion);
        h.put(op);
        h.put(word);
        h.put(static_cast<std::uint32_t>(out_.size()));
        msg = std::move(h.out_);
        msg.insert(msg.end(), out_.begin(), out_.end());
        return msg;
    }

private:
    std::vector<std::uint8_t> out_;
};

class Reader {
public:
    explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
    template <class T>
    bool get(T& v) {
        if (in_.size() - pos_ < sizeof(T)) return false;
        std::memcpy(&v, in_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return true;
    }
    bool bytes(std::size_t n, std::string& s) {
        if (in_.size() - pos_ < n) return false;
        s.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
        pos_ += n;
        return true;
    }
    bool done() const { return pos_ == in_.size(); }

private:
    std::span<const std::uint8_t> in_;
    std::size_t pos_ = 0;
};

struct Header {
    std::uint16_t op = 0;
    std::uint32_t word = 0;  // flags (request) or error (reply)
    std::uint32_t len = 0;
};

Result<Header> read_header(Reader& r, std::size_t total) {
    if (total > kMaxMessage) return fail(EMSGSIZE);
    std::uint32_t magic = 0;
    std::uint16_t version = 0;
    Header h;
    if (!r.get(magic) || !r.get(version) || !r.get(h.op) || !r.get(h.word) || !r.get(h.len)) {
        return fail(EPROTO);
    }
    if (magic != kMagic || version != kVersion) return fail(EPROTO);
    if (h.len != total - kHeaderSize) return fail(EPROTO);
    if (h.op < static_cast<std::uint16_t>(Op::pin) ||
        h.op > static_cast<std::uint16_t>(Op::upgrade)) {
        return fail(EPROTO);
    }
    return h;
}

bool valid_name(std::string_view n) {
    return !n.empty() && n.size() <= 255 && n.find('/') == std::string_view::npos &&
           n.find('\0') == std::string_view::npos;
}

// A pin's payload after the name's NUL: u16 umask, then the attrs if any (protocol.hpp).
Result<void> decode_pin_tail(std::string_view tail, Request& req) {
    Reader rd(std::span(reinterpret_cast<const std::uint8_t*>(tail.data()), tail.size()));
    std::uint16_t umask = 0;
    if (!rd.get(umask) || umask > 0777) return fail(EPROTO);
    req.umask = umask;
    if (rd.done() && umask == 0) return fail(EPROTO);  // sent only with attrs
    if (rd.done()) return {};
    std::uint32_t set = 0, mode = 0, uid = 0, gid = 0;
    if (!rd.get(set) || !rd.get(mode) || !rd.get(uid) || !rd.get(gid) || !rd.done()) {
        return fail(EPROTO);
    }
    constexpr std::uint32_t kAll = Request::kPinMode | Request::kPinUid | Request::kPinGid;
    if (set == 0 || (set & ~kAll) != 0) return fail(EPROTO);
    // One encoding: a field not set is 0.
    auto field = [&](std::uint32_t bit, std::uint32_t v, std::optional<std::uint32_t>& out) {
        if ((set & bit) != 0) out = v;
        return (set & bit) != 0 || v == 0;
    };
    PinAttrs& a = req.attrs;
    if (!field(Request::kPinMode, mode, a.mode) || !field(Request::kPinUid, uid, a.uid) ||
        !field(Request::kPinGid, gid, a.gid) || !a.valid()) {
        return fail(EPROTO);
    }
    return {};
}

}  // namespace

std::size_t expected_fds(Op op) {
    switch (op) {
        case Op::pin:
            return 2;
        case Op::get:
            return 1;
        default:
            return 0;
    }
}

std::uint32_t allowed_flags(Op op) {
    switch (op) {
        case Op::pin:
            return kBpfObjPinFlags;
        case Op::get:
            return kBpfObjGetFlags;
        default:
            return 0;
    }
}

std::vector<std::uint8_t> encode(const Request& r) {
    Writer w;
    if (r.op == Op::pin || r.op == Op::remount || r.op == Op::upgrade) w.bytes(r.name);
    // One encoding: no suffix for umask 0 without attrs.
    if (r.op == Op::pin && (r.umask != 0 || !r.attrs.empty())) {
        w.put(std::uint8_t{0});
        w.put(static_cast<std::uint16_t>(r.umask & 0777));
    }
    if (r.op == Op::pin && !r.attrs.empty()) {
        const PinAttrs& a = r.attrs;
        w.put((a.mode ? Request::kPinMode : 0) | (a.uid ? Request::kPinUid : 0) |
              (a.gid ? Request::kPinGid : 0));
        w.put(a.mode.value_or(0));
        w.put(a.uid.value_or(0));
        w.put(a.gid.value_or(0));
    }
    return w.finish_with_header(static_cast<std::uint16_t>(r.op), r.flags);
}

std::vector<std::uint8_t> encode(const Reply& r) {
    Writer w;
    if (r.error == 0 && r.op == Op::get && r.get) {
        w.put(static_cast<std::uint8_t>(r.get->kind));
        w.put(std::uint8_t{0});
        w.put(std::uint16_t{0});
        w.put(r.get->id);
    } else if (r.error == 0 && r.op == Op::status && r.status) {
        const auto& s = *r.status;
        w.put(s.pid);
        w.put(s.uid);
        w.put(s.gid);
        w.put(s.mode);
        w.put(s.dirs);
        w.put(s.maps);
        w.put(s.progs);
        w.put(static_cast<std::uint32_t>(s.version.size()));
        w.bytes(s.version);
        w.put(s.worker_pid);
        w.put(s.generation);
        w.put(s.restarts);
        w.put(s.compat);
        if (s.links) w.put(*s.links);
        if (s.links && s.service) {
            w.put(s.service->connections);
            w.put(s.service->max_conns);
            w.put(s.service->max_conns_per_uid);
            w.put(s.service->refused);
            w.put(s.service->files_closing);
            w.put(s.service->fuse_aborted);
            w.put(s.service->nodes);
            w.put(s.service->nr_inodes);
            w.put(s.service->nr_inodes_per_uid);
        }
        if (s.links && s.service && s.recovery) {
            w.put(s.recovery->damaged_at);
            w.put(s.recovery->unrestorable);
            w.put(s.recovery->names_dropped);
            w.put(s.recovery->kept);
            w.put(s.recovery->lost_found);
        }
        if (s.links && s.service && s.recovery && s.kernel_bpffs) {
            auto n = std::min(s.kernel_bpffs->size(), StatusInfo::kMaxKernelBpffs);
            w.put(static_cast<std::uint32_t>(n));
            for (std::size_t i = 0; i < n; ++i) {
                std::string_view p = (*s.kernel_bpffs)[i];
                p = p.substr(0, 512);
                w.put(static_cast<std::uint16_t>(p.size()));
                w.bytes(p);
            }
        }
    }
    return w.finish_with_header(static_cast<std::uint16_t>(r.op),
                                static_cast<std::uint32_t>(r.error));
}

Result<Request> decode_request(std::span<const std::uint8_t> msg) {
    Reader rd(msg);
    auto h = read_header(rd, msg.size());
    if (!h) return h.error();
    Request req;
    req.op = static_cast<Op>(h->op);
    if ((h->word & ~allowed_flags(req.op)) != 0) return fail(EPROTO);
    req.flags = h->word;
    switch (req.op) {
        case Op::pin: {
            std::string payload;
            if (!rd.bytes(h->len, payload)) return fail(EPROTO);
            auto nul = payload.find('\0');
            req.name = payload.substr(0, nul);
            if (!valid_name(req.name)) return fail(EPROTO);
            if (nul != std::string::npos) {
                std::string_view tail = std::string_view(payload).substr(nul + 1);
                if (auto ok = decode_pin_tail(tail, req); !ok) return ok.error();
            }
            break;
        }
        case Op::remount:
        case Op::upgrade:
            if (!rd.bytes(h->len, req.name)) return fail(EPROTO);
            if (req.name.find('\0') != std::string::npos) return fail(EPROTO);
            break;
        default:
            if (h->len != 0) return fail(EPROTO);
    }
    if (!rd.done()) return fail(EPROTO);
    return req;
}

Result<Reply> decode_reply(std::span<const std::uint8_t> msg) {
    Reader rd(msg);
    auto h = read_header(rd, msg.size());
    if (!h) return h.error();
    Reply rep;
    rep.op = static_cast<Op>(h->op);
    if (h->word > 4095) return fail(EPROTO);
    rep.error = static_cast<int>(h->word);
    if (rep.error == 0 && rep.op == Op::get) {
        std::uint8_t kind = 0, pad8 = 0;
        std::uint16_t pad16 = 0;
        GetReply g;
        if (!rd.get(kind) || !rd.get(pad8) || !rd.get(pad16) || !rd.get(g.id)) return fail(EPROTO);
        if (kind < 1 || kind > 3) return fail(EPROTO);
        g.kind = static_cast<ObjKind>(kind);
        rep.get = g;
    } else if (rep.error == 0 && rep.op == Op::status) {
        StatusInfo s;
        std::uint32_t vlen = 0;
        if (!rd.get(s.pid) || !rd.get(s.uid) || !rd.get(s.gid) || !rd.get(s.mode) ||
            !rd.get(s.dirs) || !rd.get(s.maps) || !rd.get(s.progs) || !rd.get(vlen) || vlen > 256 ||
            !rd.bytes(vlen, s.version) || !rd.get(s.worker_pid) || !rd.get(s.generation) ||
            !rd.get(s.restarts)) {
            return fail(EPROTO);
        }
        if (!rd.done() && (!rd.get(s.compat) || s.compat > StatusInfo::kCompatLinux))
            return fail(EPROTO);
        if (!rd.done() && !rd.get(s.links.emplace())) return fail(EPROTO);
        if (!rd.done()) {
            auto& v = s.service.emplace();
            if (!rd.get(v.connections) || !rd.get(v.max_conns) || !rd.get(v.max_conns_per_uid) ||
                !rd.get(v.refused) || !rd.get(v.files_closing) || !rd.get(v.fuse_aborted) ||
                !rd.get(v.nodes) || !rd.get(v.nr_inodes) || !rd.get(v.nr_inodes_per_uid))
                return fail(EPROTO);
        }
        if (!rd.done()) {
            auto& v = s.recovery.emplace();
            if (!rd.get(v.damaged_at) || !rd.get(v.unrestorable) || v.unrestorable > 1 ||
                !rd.get(v.names_dropped) || !rd.get(v.kept) || !rd.get(v.lost_found))
                return fail(EPROTO);
        }
        if (!rd.done()) {
            auto& v = s.kernel_bpffs.emplace();
            std::uint32_t n = 0;
            if (!rd.get(n) || n > StatusInfo::kMaxKernelBpffs) return fail(EPROTO);
            for (std::uint32_t i = 0; i < n; ++i) {
                std::uint16_t len = 0;
                if (!rd.get(len) || len > 512 || !rd.bytes(len, v.emplace_back()))
                    return fail(EPROTO);
            }
        }
        // Figures a newer daemon sends after these are not this client's business.
        rep.status = std::move(s);
        return rep;
    }
    if (!rd.done()) return fail(EPROTO);
    return rep;
}

Reply reply_error(Op op, int error) {
    Reply r;
    r.op = op;
    r.error = error;
    return r;
}

const char* op_name(Op op) {
    switch (op) {
        case Op::pin:
            return "pin";
        case Op::get:
            return "get";
        case Op::status:
            return "status";
        case Op::remount:
            return "remount";
        case Op::upgrade:
            return "upgrade";
    }
    return "?";
}

}  // namespace bpffs::protocol
