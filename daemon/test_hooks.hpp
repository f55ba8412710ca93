// SPDX-License-Identifier: GPL-2.0-or-later
// Test-only knobs of the daemon, all in this one place: read once from the environment at the
// worker's start, then passed to what they change. They exist only so that tests can reach states
// that are hard to reach by load alone; nothing in production sets them, and unset they change
// nothing. Each names the tests that use it (tests/persist_test.cpp).
#pragma once

#include <cstdint>
#include <optional>

namespace bpffs::daemon {

struct TestHooks {
    // BPFFS_TEST_COMPACT_BYTES: the state log's compaction floor in bytes (StateLog::
    // set_compaction_floor), so that compaction happens with a small tree. Used by "crash: after
    // the state log was compacted, a new worker finds every node and object".
    std::optional<std::uint64_t> compact_bytes;
    // BPFFS_TEST_STALL_OPCODE: a FUSE opcode that the mount's first worker (generation 1) reads,
    // records and never answers, as if it died while on it (FuseLoop::stall_opcode). Used by
    // "crash: a mkdir the dead worker had read is answered by the next one" and "crash: a worker
    // killed while the broker waits to invalidate an entry is replaced".
    std::optional<std::uint32_t> stall_opcode;
    // BPFFS_TEST_STALL_BROKER_OP: a broker op (protocol::Op's value) whose requests the mount's
    // first worker reads and never answers (BrokerConfig::stall_op), as if it died on them. Used
    // by "crash: bpffsctl status and remount, asked of a worker that dies on them, are answered
    // by the next one".
    std::optional<std::uint16_t> stall_broker_op;
};

// Reads the knobs above from the environment.
TestHooks read_test_hooks();

}  // namespace bpffs::daemon
