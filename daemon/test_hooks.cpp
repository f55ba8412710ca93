// SPDX-License-Identifier: GPL-2.0-or-later
// Test-only knobs of the daemon, read from the environment (test_hooks.hpp says which tests).
#include "daemon/test_hooks.hpp"

#include <cstdlib>

namespace bpffs::daemon {

TestHooks read_test_hooks() {
    TestHooks t;
    if (const char* v = std::getenv("BPFFS_TEST_COMPACT_BYTES")) {
        t.compact_bytes = std::strtoull(v, nullptr, 10);
    }
    if (const char* v = std::getenv("BPFFS_TEST_STALL_OPCODE")) {
        t.stall_opcode = static_cast<std::uint32_t>(std::strtoul(v, nullptr, 10));
    }
    if (const char* v = std::getenv("BPFFS_TEST_STALL_BROKER_OP")) {
        t.stall_broker_op = static_cast<std::uint16_t>(std::strtoul(v, nullptr, 10));
    }
    return t;
}

}  // namespace bpffs::daemon
