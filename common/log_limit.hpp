// SPDX-License-Identifier: GPL-2.0-or-later
// Log lines a client can cause, bounded: a kind of event repeated n times writes a line the 1st,
// 2nd, 4th, 8th... time (17 lines for 100,000), each with the count so far, so a flood costs the
// log a line per doubling and nothing is dropped silently.
#pragma once

#include <atomic>
#include <cstdint>

namespace bpffs {

inline bool worth_logging(std::uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

// One kind of event: counts it, and says whether this one is worth a line.
class LogDoubling {
public:
    // The count including this one, or 0 when it is not worth a line.
    std::uint64_t next() {
        std::uint64_t n = n_.fetch_add(1, std::memory_order_relaxed) + 1;
        return worth_logging(n) ? n : 0;
    }

private:
    std::atomic<std::uint64_t> n_{0};
};

}  // namespace bpffs
