// SPDX-License-Identifier: GPL-2.0-or-later
// The state log's reader (daemon/state_log.cpp) on arbitrary bytes after a valid header: the
// input is written where the batches go in a fresh log's memfd (the rest of it zero, as a log
// that has not grown there yet), and the memfd is opened as a new worker opens the one the
// supervisor hands it. Invariants (each an abort when it fails):
//  - the log opens (its header is valid), and read() gives a state: the batches before the
//    first one that does not decode;
//  - that state restores to EINVAL or to a core that holds it and behaves
//    (fuzz/restore_check.hpp);
//  - such a core, written over the log (reset_to, as a worker's start does), reads back as the
//    core's snapshot(), and so does the log with the core's next change appended, opened anew
//    (as the next worker opens it).
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

UniqueFd dup_of(int fd) { return UniqueFd(fcntl(fd, F_DUPFD_CLOEXEC, 3)); }

// A new log's memfd with `data` where its batches go.
UniqueFd log_with(const std::uint8_t* data, std::size_t size) {
    auto log = StateLog::create();
    FUZZ_CHECK(log.has_value());
    UniqueFd fd = dup_of((*log)->fd());
    FUZZ_CHECK(fd && pwrite(fd.get(), data, size, kHeaderSize) == static_cast<ssize_t>(size));
    return fd;
}

// What a worker does with the log it opened: rewrites it from the restored core (reset_to,
// keeping the mount's FUSE_INIT), appends the core's changes, and hands it on; the next worker
// reads the core back.
void check_rewritten(StateLog& log, Filesystem& fs) {
    std::vector<std::uint8_t> init = log.init();
    int published = -1;
    FUZZ_CHECK(log.reset_to(fs, true, [&](int fd) { published = fd; }) == 0);
    FUZZ_CHECK(published == log.fd() && log.init() == init);
    auto back = log.read();
    FUZZ_CHECK(back.has_value() && *back == fs.snapshot());
    fs.set_change_sink([&log](const std::vector<Change>& cs) { log.append(cs); });
    bool ro = fs.snapshot().meta.read_only;
    fs.set_read_only(!ro);  // a meta record, whatever the tree
    fs.set_read_only(ro);
    (void)fs.mkdir(Caller::root(), kRootIno, "fuzz-after");
    (void)fs.readdir(kRootIno, 0, true, [](const DirEntry&) { return true; });  // lookups
    fs.set_change_sink(nullptr);
    auto next = StateLog::open(dup_of(log.fd()));
    FUZZ_CHECK(next.has_value());
    auto again = (*next)->read();
    FUZZ_CHECK(again.has_value() && *again == fs.snapshot());
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
    if (auto fs = fuzz::check_restore(*state)) check_rewritten(**log, *fs);
    return 0;
}
