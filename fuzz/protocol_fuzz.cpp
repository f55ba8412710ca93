// SPDX-License-Identifier: GPL-2.0-or-later
// The broker's wire codec (common/protocol.hpp) on arbitrary bytes, as both ends read them:
// the broker decode_request()s what a client sends, a client decode_reply()s what comes back.
// Invariants (each an abort when it fails):
//  - nothing longer than kMaxMessage decodes;
//  - a decoded request is one the codec can make: a known op, flags within allowed_flags(op), a
//    pin's name 1 to 255 bytes without '/' or NUL, a umask of 0 or 1 to 0777, no name for ops
//    without one; and it re-encodes to exactly the bytes it came from (one encoding each);
//  - a decoded reply has an errno of 0 to 4095, a payload only on success, a get's payload
//    exactly on a successful get (a status's likewise); it re-encodes to a message that decodes
//    to the same reply, and that encoding is canonical (encoding its decoding gives it back).
#include "common/protocol.hpp"
#include "fuzz/fuzz_check.hpp"

#include <span>

using namespace bpffs;
using namespace bpffs::protocol;

namespace {

void check_request(const Request& req, std::span<const std::uint8_t> msg) {
    FUZZ_CHECK((req.flags & ~allowed_flags(req.op)) == 0);
    FUZZ_CHECK(expected_fds(req.op) <= kMaxFds);
    switch (req.op) {
        case Op::pin:
            FUZZ_CHECK(!req.name.empty() && req.name.size() <= 255);
            FUZZ_CHECK(req.name.find_first_of(std::string_view("/\0", 2)) == std::string::npos);
            FUZZ_CHECK(req.umask <= 0777);
            break;
        case Op::remount:
        case Op::upgrade:
            FUZZ_CHECK(req.name.find('\0') == std::string::npos);
            FUZZ_CHECK(req.umask == 0);
            break;
        case Op::get:
        case Op::status:
            FUZZ_CHECK(req.name.empty() && req.umask == 0);
            break;
    }
    auto again = encode(req);
    FUZZ_CHECK(std::equal(again.begin(), again.end(), msg.begin(), msg.end()));
}

void check_reply(const Reply& rep) {
    FUZZ_CHECK(rep.error >= 0 && rep.error <= 4095);
    FUZZ_CHECK(rep.get.has_value() == (rep.error == 0 && rep.op == Op::get));
    FUZZ_CHECK(rep.status.has_value() == (rep.error == 0 && rep.op == Op::status));
    auto bytes = encode(rep);
    FUZZ_CHECK(bytes.size() <= kMaxMessage);
    auto back = decode_reply(bytes);
    FUZZ_CHECK(back.has_value());
    FUZZ_CHECK(*back == rep);
    FUZZ_CHECK(encode(*back) == bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> msg(data, size);
    if (auto req = decode_request(msg)) {
        FUZZ_CHECK(size <= kMaxMessage);
        check_request(*req, msg);
    }
    if (auto rep = decode_reply(msg)) {
        FUZZ_CHECK(size <= kMaxMessage);
        check_reply(*rep);
    }
    return 0;
}
