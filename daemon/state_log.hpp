// SPDX-License-Identifier: GPL-2.0-or-later
// The state log: the core's changes (fsops/state.hpp), appended to a memfd that the supervisor
// also holds, so a worker that dies leaves behind everything it had told the kernel or a client.
// The worker appends one batch per core call, from the core's change sink, before the call
// returns and so before any reply leaves. A batch becomes visible all at once: its length word
// is written last, and a reader stops at the first zero length.
//
// Layout (version 3; the records are fsops::kStateVersion's codec): a 4 KiB header (magic,
// version, the kernel's FUSE_INIT request as the first worker read it), then batches: total_len
// u32 | crc32 u32 (zlib's, of the records) | records, each a LEB128 length and
// fsops::encode(change) | padding to 4 bytes. Version 2 had no crc32 word; it is still read. The
// log only grows; compact() streams the core's current state into a new memfd, which replaces this
// one (the supervisor swaps its copy when told).
//
// Memory: the memfd's pages are the daemon's (the worker maps them; the supervisor holds the
// fd). A pinned object costs about 47 bytes after a compaction and about 85 for each pin
// appended since; a lookup 12. Compaction builds no copy of the state: each node goes from
// the core's table through one encode buffer into the new memfd.
//
// Thread safety: every member takes the log's mutex. append() is called with the core's lock
// held (order: core, then log), and compact() and reset_to() take the core's lock (through
// Filesystem::stream_state) before the log's; nothing here calls into the core otherwise.
#pragma once

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "fsops/filesystem.hpp"
#include "fsops/state.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace bpffs::daemon {

// The state a log holds, as a restore takes it (StateLog::replay): the meta, and the nodes decoded
// from the log one at a time. What it keeps is an index of each node's latest record (about 64
// bytes a node), not the nodes. Valid while its log is neither rewritten nor destroyed.
class LogReplay {
public:
    const fsops::CoreMeta& meta() const { return meta_; }
    std::size_t size() const { return latest_.size(); }  // nodes
    // Hands every node to `each`, in no particular order, until it returns false, forgetting
    // each as it goes (so the index shrinks as a restore's core grows). False when a record no
    // longer decodes (someone wrote into the log since replay()).
    bool take(const std::function<bool(fsops::NodeState&&)>& each);

private:
    friend class StateLog;
    struct Latest {  // the node's last put record: where its bytes are in the log
        std::uint64_t put = 0;
        std::uint32_t len = 0;
    };
    const std::uint8_t* base_ = nullptr;
    fsops::CoreMeta meta_;
    std::unordered_map<fsops::Ino, Latest> latest_;
    // Changes after a node's last put (lookups, times): few nodes have one.
    std::unordered_map<fsops::Ino, std::uint64_t> nlookup_;
    std::unordered_map<fsops::Ino, fsops::NodeTimes> times_;
};

class StateLog {
public:
    static Result<std::unique_ptr<StateLog>> create();
    // An existing log (from the supervisor or systemd's fd store): EINVAL if it is not one, or
    // one of another format version; `why` (if given) then says which, for the log line.
    static Result<std::unique_ptr<StateLog>> open(UniqueFd fd, std::string* why = nullptr);
    ~StateLog();
    StateLog(const StateLog&) = delete;
    StateLog& operator=(const StateLog&) = delete;

    int fd() const;
    // The FUSE_INIT request of this mount (empty until the first worker read it).
    void set_init(std::span<const std::uint8_t> bytes);
    std::vector<std::uint8_t> init() const;

    // Throws std::runtime_error when the memfd cannot grow (the change sink's caller maps that
    // like any exception of a request: the request fails).
    void append(const std::vector<fsops::Change>& changes);
    // Replays every complete batch, as a write-ahead log does: a batch that does not check or
    // decode (a torn or damaged record, a CRC that does not match, a length past the file or
    // lost, a file cut short) ends the log there. It and everything after it are dropped;
    // `damaged_at` (if given) is its offset, or 0 when the log ended where a worker stopped
    // writing (after its last committed batch: one it was writing is not seen). The batches before
    // it are the state: a batch is one core call's changes, so that state is one the core was in.
    Result<fsops::CoreState> read(std::size_t* damaged_at = nullptr) const;
    // The same state, for a restore that never holds all its nodes (LogReplay).
    Result<LogReplay> replay(std::size_t* damaged_at = nullptr) const;
    // The memfd's size: a bound on the bytes ever appended since the log was last rewritten.
    std::size_t capacity() const;
    std::size_t used() const;
    // The log has grown well past what its state needs: past `floor` bytes (default 16 MiB) and
    // 1.5 times its size after the last compaction (a compaction is cheap: ~0.15 s at a million
    // names; the log's memory stays within 1.5 times the state's).
    bool wants_compaction() const;
    void set_compaction_floor(std::size_t floor) { floor_ = floor; }
    // Replaces the contents with one batch holding `fs`'s current state, streamed under the
    // core's lock (Filesystem::stream_state) into a new memfd: requests wait for it, and no
    // copy of the state is made. `publish` gets the new fd under both locks, so the supervisor
    // learns of it before any change lands there. Returns 0 or a positive errno (the old log
    // then stays in use).
    int compact(const fsops::Filesystem& fs, const std::function<void(int new_fd)>& publish);
    // The same at a worker's start; `keep_init` false for a new mount.
    int reset_to(const fsops::Filesystem& fs, bool keep_init,
                 const std::function<void(int new_fd)>& publish);

private:
    StateLog() = default;
    int grow(std::size_t need);  // with mu_ held (or on a log no one else sees yet)
    // Appends one record at `pos` (in an uncommitted batch), advancing it; 0 or an errno.
    int put_record(std::size_t& pos, const fsops::Change& c);
    // Commits the batch that began at end_ and ends at `pos`.
    void commit_batch(std::size_t pos);
    void write_batch(const std::vector<fsops::Change>& changes);  // with mu_ held
    int rewrite(const fsops::Filesystem& fs, bool keep_init,
                const std::function<void(int new_fd)>& publish);

    mutable std::mutex mu_;
    UniqueFd fd_;
    std::uint8_t* base_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t end_ = 0;             // next batch offset
    std::size_t compacted_size_ = 0;  // bytes right after the last compaction
    std::size_t floor_ = 16 << 20;
    // open() found the end damaged: a length past the file, a length 0 before a CRC (a batch
    // committed, its length lost), or a file cut short.
    bool damaged_end_ = false;
    std::size_t head_ = 8;  // a batch's length and CRC words (4: version 2, no CRC)
    std::string scratch_;   // one record's encoding
};

}  // namespace bpffs::daemon
