// SPDX-License-Identifier: GPL-2.0-or-later
// Hand-made wire messages for the protocol and broker tests: a header with any field, valid or
// not, so the decoder's and the broker's rejections can be driven (docs/protocol.md, Messages).
#pragma once

#include "common/protocol.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace bpffs::test {

// A 16-byte header (magic, version, op, flags or errno, payload length; host byte order, as on
// the wire) followed by `payload`, whatever `len` says.
inline std::vector<std::uint8_t> header(std::uint32_t magic, std::uint16_t version,
                                        std::uint16_t op, std::uint32_t word, std::uint32_t len,
                                        const std::string& payload = "") {
    std::vector<std::uint8_t> b(protocol::kHeaderSize);
    std::memcpy(b.data(), &magic, 4);
    std::memcpy(b.data() + 4, &version, 2);
    std::memcpy(b.data() + 6, &op, 2);
    std::memcpy(b.data() + 8, &word, 4);
    std::memcpy(b.data() + 12, &len, 4);
    b.insert(b.end(), payload.begin(), payload.end());
    return b;
}

}  // namespace bpffs::test
