// SPDX-License-Identifier: GPL-2.0-or-later
// The state log: the core's changes (fsops/state.hpp), appended to a memfd that the supervisor
// also holds, so a worker that dies leaves behind everything it had told the kernel or a client.
// The worker appends one batch per core call, from the core's change sink, before the call
// returns and so before any reply leaves. A batch becomes visible all at once: its length word
// is written last, and a reader stops at the first zero length.
//
// Layout: a 4 KiB header (magic, the kernel's FUSE_INIT request as the first worker read it),
// then batches: total_len u32 | count u32 | count x (len u32 | fsops::encode(change)), each
// padded to 4 bytes. The log only grows; compact() writes the current state into a new memfd,
// which replaces this one (the supervisor swaps its copy when told).
//
// Thread safety: every member takes the log's mutex. append() is called with the core's lock
// held (order: core, then log); nothing here calls into the core.
#pragma once

#include "common/unique_fd.hpp"
#include "fsops/result.hpp"
#include "fsops/state.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

namespace bpffs::daemon {

class StateLog {
public:
    static Result<std::unique_ptr<StateLog>> create();
    // An existing log (from the supervisor or systemd's fd store): EINVAL if it is not one.
    static Result<std::unique_ptr<StateLog>> open(UniqueFd fd);
    ~StateLog();
    StateLog(const StateLog&) = delete;
    StateLog& operator=(const StateLog&) = delete;

    int fd() const;
    // The FUSE_INIT request of this mount (empty until the first worker read it).
    void set_init(std::span<const std::uint8_t> bytes);
    std::vector<std::uint8_t> init() const;

    void append(const std::vector<fsops::Change>& changes);
    // Replays every complete batch. EINVAL: a batch that does not decode.
    Result<fsops::CoreState> read() const;
    std::size_t used() const;
    // The log has grown well past what its state needs: past `floor` bytes (default 16 MiB) and
    // twice its size after the last compaction.
    bool wants_compaction() const;
    void set_compaction_floor(std::size_t floor) { floor_ = floor; }
    // Replaces the contents with one batch holding the current state (read from this log),
    // in a new memfd. `publish` gets the new fd while appends are still held back, so the
    // supervisor learns of it before any change lands there. Returns 0 or a positive errno
    // (the old log then stays in use).
    int compact(const std::function<void(int new_fd)>& publish);
    // The same with a given state (a worker's start); `keep_init` false for a new mount.
    int reset_to(const fsops::CoreState& state, bool keep_init,
                 const std::function<void(int new_fd)>& publish);

private:
    StateLog() = default;
    int grow(std::size_t need);  // with mu_ held
    void write_batch(const std::vector<fsops::Change>& changes);  // with mu_ held
    Result<fsops::CoreState> read_locked() const;
    int replace_locked(const fsops::CoreState& state, bool keep_init,
                       const std::function<void(int new_fd)>& publish);

    mutable std::mutex mu_;
    UniqueFd fd_;
    std::uint8_t* base_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t end_ = 0;             // next batch offset
    std::size_t compacted_size_ = 0;  // bytes right after the last compaction
    std::size_t floor_ = 16 << 20;
};

}  // namespace bpffs::daemon
