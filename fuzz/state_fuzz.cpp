// SPDX-License-Identifier: GPL-2.0-or-later
// The state codec and restore (fsops/state.hpp, fsops/restore.cpp) on arbitrary records, framed
// as in a state log batch: each a LEB128 length and the record's bytes (a length past the end
// ends the input). Invariants (each an abort when it fails):
//  - a record that decodes re-encodes to exactly its bytes (one encoding per change);
//  - the decoded changes, replayed into a StateBuilder, restore to EINVAL or to a core that
//    holds exactly that state and behaves (fuzz/restore_check.hpp).
// Records that do not decode are skipped, so the ones after them are still tried.
#include "fsops/state.hpp"
#include "fuzz/fuzz_check.hpp"
#include "fuzz/restore_check.hpp"

#include <string_view>

using namespace bpffs;
using namespace bpffs::fsops;

namespace {

// A LEB128 length at `pos` (at most 5 bytes, as the log reads them); false at the end.
bool next_len(std::string_view in, std::size_t& pos, std::size_t& len) {
    len = 0;
    for (int shift = 0; shift < 35 && pos < in.size(); shift += 7) {
        auto b = static_cast<std::uint8_t>(in[pos++]);
        len |= std::size_t{b & 0x7fu} << shift;
        if ((b & 0x80) == 0) return true;
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    StateBuilder b;
    std::size_t pos = 0, len = 0;
    while (next_len(in, pos, len) && len <= in.size() - pos) {
        std::string_view rec = in.substr(pos, len);
        pos += len;
        auto c = decode(rec);
        if (!c) continue;
        FUZZ_CHECK(encode(*c) == rec);
        b.apply(*c);
    }
    fuzz::check_restore(b.state());
    return 0;
}
