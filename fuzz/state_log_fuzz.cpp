// SPDX-License-Identifier: GPL-2.0-or-later
// The state log's reader (daemon/state_log.cpp) on arbitrary bytes after a valid header: the
// input is written where the batches go in a fresh log's memfd (the rest of it zero, as a log
// that has not grown there yet), and the memfd is opened as a new worker opens the one the
// supervisor hands it. Invariants (each an abort when it fails):
//  - the log opens (its header is valid), and read() is EINVAL or a state;
//  - that state restores to EINVAL or to a core that holds it and behaves
//    (fuzz/restore_check.hpp);
//  - such a core, written into a new log (reset_to, as a worker's start does), reads back as
//    the core's snapshot().
#include "daemon/state_log.hpp"
#include "fuzz/fuzz_check.hpp"
#include "fuzz/restore_check.hpp"

#include <fcntl.h>
#include <unistd.h>

using namespace bpffs;
using namespace bpffs::fsops;
using bpffs::daemon::StateLog;

namespace {

constexpr std::size_t kHeaderSize = 4096;   // where a log's batches begin (state_log.hpp)
constexpr std::size_t kMaxInput = 1 << 19;  // within a new log's 1 MiB

// A new log's memfd with `data` where its batches go.
UniqueFd log_with(const std::uint8_t* data, std::size_t size) {
    auto log = StateLog::create();
    FUZZ_CHECK(log.has_value());
    UniqueFd fd(fcntl((*log)->fd(), F_DUPFD_CLOEXEC, 3));
    FUZZ_CHECK(fd && pwrite(fd.get(), data, size, kHeaderSize) == static_cast<ssize_t>(size));
    return fd;
}

void check_rewritten(const Filesystem& fs) {
    auto log = StateLog::create();
    FUZZ_CHECK(log.has_value());
    FUZZ_CHECK((*log)->reset_to(fs, false, [](int) {}) == 0);
    auto back = (*log)->read();
    FUZZ_CHECK(back.has_value());
    FUZZ_CHECK(*back == fs.snapshot());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > kMaxInput) return 0;
    std::string why;
    auto log = StateLog::open(log_with(data, size), &why);
    FUZZ_CHECK(log.has_value());
    std::size_t used = (*log)->used();
    FUZZ_CHECK(used >= kHeaderSize && used % 4 == 0);
    auto state = (*log)->read();
    if (!state) {
        FUZZ_CHECK(state.error().value == EINVAL);
        return 0;
    }
    if (auto fs = fuzz::check_restore(*state)) check_rewritten(*fs);
    return 0;
}
