// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of the broker's wire protocol (common/protocol.hpp, docs/protocol.md): round trips
// of every op, every rejection the decoder promises (EPROTO, EMSGSIZE), and a fixed-seed fuzz
// loop over both decoders. Pure: no sockets, no root.
#include "common/protocol.hpp"
#include "tests/result_helpers.hpp"
#include "tests/wire_helpers.hpp"

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace bpffs;
using namespace bpffs::protocol;
using bpffs::test::ename;
using bpffs::test::err_of;
using bpffs::test::header;

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes req_bytes(Op op, const std::string& payload) {
    return header(kMagic, kVersion, static_cast<std::uint16_t>(op), 0,
                  static_cast<std::uint32_t>(payload.size()), payload);
}

bool same(const Reply& a, const Reply& b) {
    if (a.op != b.op || a.error != b.error) return false;
    if (a.get.has_value() != b.get.has_value()) return false;
    if (a.get && (a.get->kind != b.get->kind || a.get->id != b.get->id)) return false;
    if (a.status.has_value() != b.status.has_value()) return false;
    if (a.status) {
        const auto &x = *a.status, &y = *b.status;
        return x.pid == y.pid && x.uid == y.uid && x.gid == y.gid && x.mode == y.mode &&
               x.dirs == y.dirs && x.maps == y.maps && x.progs == y.progs &&
               x.version == y.version && x.compat == y.compat && x.links == y.links &&
               x.service == y.service && x.recovery == y.recovery &&
               x.kernel_bpffs == y.kernel_bpffs;
    }
    return true;
}

}  // namespace

TEST_CASE("protocol: requests of every op survive encode/decode", "[protocol]") {
    std::vector<Request> reqs = {
        {Op::pin, "m"},
        {Op::pin, std::string(255, 'x')},
        {Op::pin, "name with spaces and \xff bytes"},
        {Op::get, ""},
        {Op::status, ""},
        {Op::remount, ""},
        {Op::remount, "uid=1000,gid=0x10,mode=0750"},
    };
    for (const auto& r : reqs) {
        INFO("op " << static_cast<int>(r.op) << " name \"" << r.name << "\"");
        Bytes b = encode(r);
        CHECK(b.size() == kHeaderSize + r.name.size());
        CHECK(b.size() <= kMaxMessage);
        auto d = decode_request(b);
        REQUIRE(ename(err_of(d)) == ename(0));
        CHECK(d->op == r.op);
        CHECK(d->name == r.name);
        CHECK(encode(*d) == b);
    }
    // The header is the documented one.
    Bytes b = encode(Request{Op::pin, "abc"});
    CHECK(b == req_bytes(Op::pin, "abc"));
    // get and status carry no payload, whatever name the struct holds.
    CHECK(encode(Request{Op::get, "ignored"}).size() == kHeaderSize);
    CHECK(encode(Request{Op::status, "ignored"}).size() == kHeaderSize);
}

TEST_CASE("protocol: a pin carries the caller's umask after its name, only when not 0",
          "[protocol]") {
    Request r{Op::pin, "m"};
    r.umask = 022;
    Bytes b = encode(r);
    CHECK(b == req_bytes(Op::pin, std::string("m\0\x12\0", 4)));  // NUL, u16 022
    auto d = decode_request(b);
    REQUIRE(ename(err_of(d)) == ename(0));
    CHECK(d->name == "m");
    CHECK(d->umask == 022);
    CHECK(encode(*d) == b);
    // One encoding each: 0 is no suffix; more than 0777, a short or a long suffix are EPROTO.
    for (const std::string& payload :
         {std::string("m\0\0\0", 4), std::string("m\0\0\x02", 4), std::string("m\0\x12", 3),
          std::string("m\0\x12\0\0", 5), std::string("\0\x12\0", 3)}) {
        INFO("payload of " << payload.size() << " bytes");
        CHECK(ename(err_of(decode_request(req_bytes(Op::pin, payload)))) == ename(EPROTO));
    }
}

TEST_CASE("protocol: a pin's mode and owner follow its umask, one encoding each", "[protocol]") {
    auto u32 = [](std::uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
    Request r{Op::pin, "m"};
    r.attrs = PinAttrs{0640, {}, 50};  // umask 0: sent anyway, before the attrs
    Bytes b = encode(r);
    CHECK(b ==
          req_bytes(Op::pin, std::string("m\0\0\0", 4) + u32(5) + u32(0640) + u32(0) + u32(50)));
    auto d = decode_request(b);
    REQUIRE(ename(err_of(d)) == ename(0));
    CHECK(*d == r);
    CHECK(encode(*d) == b);
    for (const PinAttrs& a : {PinAttrs{0, {}, {}}, PinAttrs{{}, 0, 0}, PinAttrs{0777, 1, 2},
                              PinAttrs{{}, 0xfffffffeu, {}}}) {
        Request q{Op::pin, "n"};
        q.umask = 077;
        q.attrs = a;
        auto back = decode_request(encode(q));
        REQUIRE(ename(err_of(back)) == ename(0));
        CHECK(*back == q);
    }
    // None set, an unknown bit, a value for a field not set, a mode past 0777, the id -1, short
    // and long: EPROTO.
    const std::string head("m\0\x12\0", 4);
    for (const std::string& payload :
         {head + u32(0) + u32(0) + u32(0) + u32(0), head + u32(8) + u32(0) + u32(0) + u32(0),
          head + u32(1) + u32(0600) + u32(5) + u32(0), head + u32(1) + u32(01000) + u32(0) + u32(0),
          head + u32(2) + u32(0) + u32(~0u) + u32(0), head + u32(4) + u32(0) + u32(0) + u32(~0u),
          head + u32(1) + u32(0600) + u32(0), head + u32(1) + u32(0600) + u32(0) + u32(0) + "x"}) {
        INFO("payload of " << payload.size() << " bytes");
        CHECK(ename(err_of(decode_request(req_bytes(Op::pin, payload)))) == ename(EPROTO));
    }
}

TEST_CASE("protocol: replies of every op survive encode/decode", "[protocol]") {
    std::vector<Reply> reps;
    reps.push_back(Reply{Op::pin, 0, {}, {}});
    reps.push_back(Reply{Op::pin, EEXIST, {}, {}});
    reps.push_back(Reply{Op::get, 0, GetReply{ObjKind::map, 42}, {}});
    reps.push_back(Reply{Op::get, 0, GetReply{ObjKind::prog, 0xffffffffu}, {}});
    reps.push_back(Reply{Op::get, 0, GetReply{ObjKind::link, 9}, {}});
    reps.push_back(Reply{Op::get, EACCES, {}, {}});
    reps.push_back(Reply{Op::status, 0, {}, StatusInfo{1234, 1000, 100, 01777, 3, 4, 5, "0.1.0"}});
    reps.push_back(
        Reply{Op::status, 0, {}, StatusInfo{1, 0, 0, 0700, ~0ull, 0, 0, std::string(256, 'v')}});
    StatusInfo with_links{1, 0, 0, 01777, 1, 0, 0, "v"};
    with_links.compat = 1;
    with_links.links = 3;
    reps.push_back(Reply{Op::status, 0, {}, with_links});
    StatusInfo with_service = with_links;
    with_service.service =
        StatusInfo::Service{3, 4096, 256, 0x1122334455667788ull, 7, 1, 12, 4194304, 65536};
    reps.push_back(Reply{Op::status, 0, {}, with_service});
    StatusInfo with_recovery = with_service;
    with_recovery.recovery = protocol::RecoveryStatus{4096, 1, 2, 3, 0xffffffffffull};
    reps.push_back(Reply{Op::status, 0, {}, with_recovery});
    StatusInfo with_mounts = with_recovery;
    with_mounts.kernel_bpffs = std::vector<std::string>{"/mnt/bpf/tool", "/mnt/bpf/dir two"};
    reps.push_back(Reply{Op::status, 0, {}, with_mounts});
    reps.push_back(Reply{Op::remount, 0, {}, {}});
    reps.push_back(Reply{Op::remount, EINVAL, {}, {}});
    reps.push_back(Reply{Op::get, 4095, {}, {}});
    for (const auto& r : reps) {
        INFO("op " << static_cast<int>(r.op) << " error " << r.error);
        Bytes b = encode(r);
        CHECK(b.size() <= kMaxMessage);
        auto d = decode_reply(b);
        REQUIRE(ename(err_of(d)) == ename(0));
        CHECK(same(*d, r));
        CHECK(encode(*d) == b);
    }
    // An error reply has no payload, even if the struct carries one.
    CHECK(encode(Reply{Op::get, ENOENT, GetReply{ObjKind::map, 1}, {}}).size() == kHeaderSize);
    // The get payload: u8 kind, u8 0, u16 0, u32 id.
    Bytes g = encode(Reply{Op::get, 0, GetReply{ObjKind::prog, 7}, {}});
    REQUIRE(g.size() == kHeaderSize + 8);
    CHECK(g[16] == 2);
    CHECK(g[17] == 0);
    CHECK(g[18] == 0);
    CHECK(g[19] == 0);
    CHECK(encode(Reply{Op::get, 0, GetReply{ObjKind::link, 7}, {}})[16] == 3);
    // A status without the links count (a daemon that predates links) decodes without it.
    auto old = decode_reply(encode(Reply{Op::status, 0, {}, StatusInfo{}}));
    REQUIRE(old);
    CHECK_FALSE(old->status->links);
    // A newer daemon's status, with figures after the ones known here, decodes without them
    // (the header's length covers them).
    Bytes newer = encode(Reply{Op::status, 0, {}, with_mounts});
    for (std::uint8_t extra : {1, 2, 3, 4, 5, 6, 7, 8}) newer.push_back(extra);
    std::uint32_t len = 0;
    std::memcpy(&len, newer.data() + 12, 4);
    len += 8;
    std::memcpy(newer.data() + 12, &len, 4);
    auto got = decode_reply(newer);
    REQUIRE(ename(err_of(got)) == ename(0));
    CHECK(same(*got, Reply{Op::status, 0, {}, with_mounts}));
}

TEST_CASE("protocol: each op expects its number of fds", "[protocol]") {
    CHECK(expected_fds(Op::pin) == 2);
    CHECK(expected_fds(Op::get) == 1);
    CHECK(expected_fds(Op::status) == 0);
    CHECK(expected_fds(Op::remount) == 0);
    CHECK(kMaxFds == 2);
}

TEST_CASE("protocol: decode rejects a bad magic, version, op or flags (EPROTO)", "[protocol]") {
    for (auto dec : {0, 1}) {
        auto decode = [&](const Bytes& b) {
            return dec == 0 ? err_of(decode_request(b)) : err_of(decode_reply(b));
        };
        INFO((dec == 0 ? "request" : "reply"));
        // A get request and a pin reply may be empty: the baseline the variations break.
        const std::uint16_t ok_op = dec == 0 ? 2 : 1;
        CHECK(ename(decode(header(kMagic, kVersion, ok_op, 0, 0))) == ename(0));
        CHECK(ename(decode(header(kMagic + 1, kVersion, ok_op, 0, 0))) == ename(EPROTO));
        CHECK(ename(decode(header(0x42504653, kVersion, ok_op, 0, 0))) ==
              ename(EPROTO));  // swapped
        CHECK(ename(decode(header(0, kVersion, ok_op, 0, 0))) == ename(EPROTO));
        CHECK(ename(decode(header(kMagic, 0, ok_op, 0, 0))) == ename(EPROTO));
        CHECK(ename(decode(header(kMagic, 2, ok_op, 0, 0))) == ename(EPROTO));
        CHECK(ename(decode(header(kMagic, 0xffff, ok_op, 0, 0))) == ename(EPROTO));
        for (std::uint16_t op : {0, 6, 7, 0x100, 0xffff}) {
            INFO("op " << op);
            CHECK(ename(decode(header(kMagic, kVersion, op, 0, 0))) == ename(EPROTO));
        }
    }
    // Bits that no op takes (get's are BPF_F_RDONLY, BPF_F_WRONLY, BPF_F_PATH_FD: see below).
    for (std::uint32_t flags : {1u, 2u, 0x80000000u, 0xffffffffu}) {
        INFO("flags " << flags);
        CHECK(ename(err_of(decode_request(header(kMagic, kVersion, 2, flags, 0)))) ==
              ename(EPROTO));
    }
    // A reply's error must be an errno (below 4096).
    CHECK(ename(err_of(decode_reply(header(kMagic, kVersion, 2, 4096, 0)))) == ename(EPROTO));
    CHECK(ename(err_of(decode_reply(header(kMagic, kVersion, 2, 0xffffffffu, 0)))) ==
          ename(EPROTO));
}

TEST_CASE("protocol: get and pin carry bpf(2) file_flags in the header, other bits are EPROTO",
          "[protocol][flags]") {
    const std::uint32_t rd = kBpfFRdonly, wr = kBpfFWronly, path = kBpfFPathFd;
    CHECK(rd == 8u);
    CHECK(wr == 16u);
    CHECK(path == 0x4000u);
    // Every combination a get may carry, both RDONLY and WRONLY included (the broker's EINVAL).
    for (std::uint32_t f : {0u, rd, wr, rd | wr, path, rd | path, wr | path, rd | wr | path}) {
        INFO("get flags " << f);
        Bytes b = encode(Request{Op::get, "", f});
        REQUIRE(b.size() == kHeaderSize);
        std::uint32_t word = 0;
        std::memcpy(&word, b.data() + 8, 4);
        CHECK(word == f);  // the header's flags field
        auto d = decode_request(b);
        REQUIRE(ename(err_of(d)) == ename(0));
        CHECK(d->flags == f);
        CHECK(encode(*d) == b);
    }
    auto pin = decode_request(encode(Request{Op::pin, "m", path}));
    REQUIRE(ename(err_of(pin)) == ename(0));
    CHECK(pin->flags == path);
    CHECK(pin->name == "m");
    // A pin takes BPF_F_PATH_FD only; status, remount and upgrade take nothing; no op takes an
    // unknown bit.
    for (std::uint32_t f : {rd, wr, rd | path, 1u, 0x8000u, 0x80000000u}) {
        INFO("pin flags " << f);
        CHECK(ename(err_of(decode_request(header(kMagic, kVersion, 1, f, 1, "m")))) ==
              ename(EPROTO));
    }
    for (std::uint16_t op : {3, 4, 5}) {
        for (std::uint32_t f : {rd, wr, path}) {
            INFO("op " << op << " flags " << f);
            CHECK(ename(err_of(decode_request(header(kMagic, kVersion, op, f, 0)))) ==
                  ename(EPROTO));
        }
    }
    for (std::uint32_t f : {1u, 4u, 32u, 0x2000u, 0x8000u, rd | 0x20u}) {
        INFO("get flags " << f);
        CHECK(ename(err_of(decode_request(header(kMagic, kVersion, 2, f, 0)))) == ename(EPROTO));
    }
    CHECK(allowed_flags(Op::get) == (rd | wr | path));
    CHECK(allowed_flags(Op::pin) == path);
    CHECK(allowed_flags(Op::status) == 0u);
}

TEST_CASE("protocol: decode rejects truncated messages and length mismatches (EPROTO)",
          "[protocol]") {
    Bytes good = req_bytes(Op::pin, "abc");
    for (std::size_t n = 0; n < good.size(); ++n) {
        INFO("first " << n << " bytes");
        Bytes cut(good.begin(), good.begin() + static_cast<long>(n));
        CHECK(ename(err_of(decode_request(cut))) == ename(EPROTO));
        CHECK(ename(err_of(decode_reply(cut))) == ename(EPROTO));
    }
    CHECK(ename(err_of(decode_request(header(kMagic, kVersion, 1, 0, 4, "abc")))) == ename(EPROTO));
    CHECK(ename(err_of(decode_request(header(kMagic, kVersion, 1, 0, 2, "abc")))) == ename(EPROTO));
    CHECK(ename(err_of(decode_request(header(kMagic, kVersion, 1, 0, 0xffffffffu, "abc")))) ==
          ename(EPROTO));
    CHECK(ename(err_of(decode_request(header(kMagic, kVersion, 2, 0, 1, "x")))) == ename(EPROTO));
    CHECK(ename(err_of(decode_request(header(kMagic, kVersion, 3, 0, 1, "x")))) == ename(EPROTO));
    // Replies: a get reply with a short or long payload, a bad kind; trailing bytes anywhere.
    Bytes g = encode(Reply{Op::get, 0, GetReply{ObjKind::map, 9}, {}});
    std::string payload(g.begin() + kHeaderSize, g.end());
    CHECK(ename(err_of(decode_reply(header(kMagic, kVersion, 2, 0, 7, payload.substr(0, 7))))) ==
          ename(EPROTO));
    CHECK(ename(err_of(decode_reply(header(kMagic, kVersion, 2, 0, 9, payload + "x")))) ==
          ename(EPROTO));
    for (char kind : {'\0', '\4', '\xff'}) {
        std::string bad = payload;
        bad[0] = kind;
        CHECK(ename(err_of(decode_reply(header(kMagic, kVersion, 2, 0, 8, bad)))) == ename(EPROTO));
    }
    CHECK(ename(err_of(decode_reply(header(kMagic, kVersion, 2, 0, 0)))) == ename(EPROTO));
    CHECK(ename(err_of(decode_reply(header(kMagic, kVersion, 2, ENOENT, 1, "x")))) ==
          ename(EPROTO));
    CHECK(ename(err_of(decode_reply(header(kMagic, kVersion, 1, 0, 1, "x")))) == ename(EPROTO));
    CHECK(ename(err_of(decode_reply(header(kMagic, kVersion, 3, 0, 0)))) == ename(EPROTO));
    // A status reply whose version string is longer than 256 bytes.
    Bytes s =
        encode(Reply{Op::status, 0, {}, StatusInfo{1, 2, 3, 4, 5, 6, 7, std::string(257, 'v')}});
    CHECK(ename(err_of(decode_reply(s))) == ename(EPROTO));
}

TEST_CASE("protocol: a message over kMaxMessage is EMSGSIZE", "[protocol]") {
    std::string name(kMaxMessage - kHeaderSize + 1, 'a');
    Bytes big = req_bytes(Op::remount, name);
    REQUIRE(big.size() == kMaxMessage + 1);
    CHECK(ename(err_of(decode_request(big))) == ename(EMSGSIZE));
    CHECK(ename(err_of(decode_reply(big))) == ename(EMSGSIZE));
    Bytes junk(10000, 0xab);
    CHECK(ename(err_of(decode_request(junk))) == ename(EMSGSIZE));
    // Exactly kMaxMessage is fine (a remount list may be that long).
    Bytes max = req_bytes(Op::remount, std::string(kMaxMessage - kHeaderSize, 'a'));
    CHECK(ename(err_of(decode_request(max))) == ename(0));
}

TEST_CASE("protocol: pin names with '/', NUL, empty or over 255 bytes are EPROTO", "[protocol]") {
    for (const std::string& bad :
         {std::string("a/b"), std::string("/"), std::string("a\0b", 3), std::string(1, '\0'),
          std::string(), std::string(256, 'n'), std::string(1000, 'n')}) {
        INFO("name of " << bad.size() << " bytes");
        CHECK(ename(err_of(decode_request(req_bytes(Op::pin, bad)))) == ename(EPROTO));
    }
    for (const std::string& good : {std::string("a"), std::string(255, 'n'), std::string("a.b"),
                                    std::string(".."), std::string("\x01\x7f")}) {
        INFO("name \"" << good << "\"");
        CHECK(ename(err_of(decode_request(req_bytes(Op::pin, good)))) == ename(0));
    }
    // A remount list must not contain NUL either.
    CHECK(ename(err_of(decode_request(req_bytes(Op::remount, std::string("uid=1\0", 6))))) ==
          ename(EPROTO));
}

TEST_CASE("protocol: 100000 random messages never crash the decoders", "[protocol][fuzz]") {
    std::mt19937 rng(0xb9f5);
    auto byte = [&] { return static_cast<std::uint8_t>(rng()); };
    int accepted_requests = 0, accepted_replies = 0;
    for (int i = 0; i < 100000; ++i) {
        Bytes msg;
        switch (rng() % 4) {
            case 0: {  // pure noise, mostly short
                msg.resize(rng() % 64);
                for (auto& b : msg) b = byte();
                break;
            }
            case 1: {  // noise of any size, beyond the limit too
                msg.resize(rng() % (kMaxMessage + 200));
                for (auto& b : msg) b = byte();
                break;
            }
            default: {  // a plausible header with random fields and payload
                std::string payload(rng() % 300, '\0');
                for (auto& c : payload)
                    c = static_cast<char>(rng() % 4 == 0 ? '/' : 'a' + rng() % 3);
                if (rng() % 4 == 0) payload.resize(rng() % 12);
                std::uint32_t len = static_cast<std::uint32_t>(payload.size());
                if (rng() % 8 == 0) len = rng();
                std::uint16_t op = static_cast<std::uint16_t>(rng() % 6);
                std::uint32_t word = rng() % 3 == 0 ? rng() % 200 : 0;
                std::uint16_t version =
                    rng() % 16 == 0 ? static_cast<std::uint16_t>(rng()) : kVersion;
                msg = header(rng() % 32 == 0 ? rng() : kMagic, version, op, word, len, payload);
                // Flip a few bytes now and then.
                if (!msg.empty() && rng() % 4 == 0) {
                    for (int k = 0; k < 3; ++k) msg[rng() % msg.size()] = byte();
                }
                break;
            }
        }
        auto req = decode_request(msg);
        if (req) {
            ++accepted_requests;
            // What decodes re-encodes to the same bytes.
            if (encode(*req) != msg) FAIL("request did not round-trip at iteration " << i);
            if (req->op == Op::pin && (req->name.empty() || req->name.size() > 255 ||
                                       req->name.find('/') != std::string::npos)) {
                FAIL("bad pin name accepted at iteration " << i);
            }
        } else if (req.error().value != EPROTO && req.error().value != EMSGSIZE) {
            FAIL("unexpected request error " << req.error().value << " at iteration " << i);
        }
        auto rep = decode_reply(msg);
        if (rep) {
            ++accepted_replies;
            auto again = decode_reply(encode(*rep));
            if (!again || !same(*again, *rep)) FAIL("reply did not round-trip at iteration " << i);
        } else if (rep.error().value != EPROTO && rep.error().value != EMSGSIZE) {
            FAIL("unexpected reply error " << rep.error().value << " at iteration " << i);
        }
    }
    // The generator reaches past the header checks.
    CHECK(accepted_requests > 100);
    CHECK(accepted_replies > 100);
}
