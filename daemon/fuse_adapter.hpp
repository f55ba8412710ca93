// SPDX-License-Identifier: GPL-2.0-or-later
// The libfuse3 low-level adapter: one op_<name> per fuse_lowlevel_ops member, each unpacking the
// request, calling the fsops core and replying. No semantics live here.
//
// State: one FuseState reached through fuse_req_userdata(); no globals.
// Threads: callbacks run on libfuse's worker threads; the core serialises them. The notify
// functions (invalidate_*) must be called from outside any request handler (libfuse's rule:
// a notify in the path of a related operation can deadlock), e.g. from the broker's threads.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

#include "fsops/filesystem.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace bpffs::daemon {

// The directories listed to the end and unchanged since. Only their opens ask the kernel to
// keep the listing (FOPEN_CACHE_DIR): the kernel fills that cache entry by entry as replies
// arrive, which makes a listing about twice as slow, so it pays only for a directory that is
// listed again before it changes. Thread-safe; a leaf lock. Bounded: past kMax directories it
// starts afresh (the cost: one uncached listing each).
class ListedDirs {
public:
    static constexpr std::size_t kMax = 65536;
    bool contains(fsops::Ino dir) {
        std::lock_guard l(mu_);
        return dirs_.count(dir) != 0;
    }
    void listed(fsops::Ino dir) {
        std::lock_guard l(mu_);
        if (dirs_.size() >= kMax) dirs_.clear();
        dirs_.insert(dir);
    }
    void changed(fsops::Ino dir) {
        std::lock_guard l(mu_);
        dirs_.erase(dir);
    }

private:
    std::mutex mu_;
    std::unordered_set<fsops::Ino> dirs_;
};

// Pins on their way through the VFS: the broker thread that publishes one (publish_pin())
// leaves its request here under its thread id, then makes the MKNOD; op_mknod takes the request
// of the thread that sent it (the kernel names that thread, no client can). A leaf lock.
class PendingPins {
public:
    enum class Outcome { not_reached, linked, refused };
    void put(pid_t tid, fsops::PinRequest req);
    // op_mknod: the request `tid` left, if any.
    std::optional<fsops::PinRequest> take(pid_t tid);
    // publish_pin(): is the request still there (no MKNOD took it yet)?
    bool waiting(pid_t tid);
    // op_mknod: what became of it.
    void done(pid_t tid, bool linked);
    // publish_pin(), after its MKNOD returned: forgets `tid`'s request and says what became of it.
    Outcome finish(pid_t tid);

private:
    struct Slot {
        std::optional<fsops::PinRequest> req;  // until op_mknod takes it
        Outcome outcome = Outcome::not_reached;
    };
    std::mutex mu_;
    std::unordered_map<pid_t, Slot> slots_;
};

// The text views open now (compat=linux: a map with BTF opened and read as text), by the file
// handle the kernel keeps for the open file (fi->fh): rendered at open, read from, dropped at
// release. The kernel keeps open files across a worker restart or an upgrade, so handles start
// at a random base: a handle a previous worker gave is not found here (the reader renders the
// view again) and is never taken for another one. Thread-safe; a leaf lock.
class TextViews {
public:
    using Text = std::shared_ptr<const std::string>;
    TextViews() : next_(std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32)) {}
    std::uint64_t add(Text text) {
        std::lock_guard l(mu_);
        if (++next_ == 0) ++next_;  // 0 is no handle
        views_[next_] = std::move(text);
        return next_;
    }
    void put(std::uint64_t fh, Text text) {
        std::lock_guard l(mu_);
        views_[fh] = std::move(text);
    }
    Text find(std::uint64_t fh) {
        std::lock_guard l(mu_);
        auto it = views_.find(fh);
        return it == views_.end() ? nullptr : it->second;
    }
    void erase(std::uint64_t fh) {
        std::lock_guard l(mu_);
        views_.erase(fh);
    }

private:
    std::mutex mu_;
    std::uint64_t next_;
    std::unordered_map<std::uint64_t, Text> views_;
};

struct FuseState {
    fsops::Filesystem& fs;
    // Every change passes through the daemon, so the kernel may cache entries and attributes
    // for long; changes the kernel did not ask for are invalidated explicitly.
    double entry_timeout = 3600.0;
    double attr_timeout = 3600.0;
    double negative_timeout = 3600.0;
    // Called with the handle of an object whose last name went (unlink): drop the kernel ref.
    std::function<void(fsops::ObjHandle)> release_object;
    // The text of a map the policy shows as text (broker/btf_text.hpp's map_text), given its
    // handle; nullopt: the map has none. Unset: none has.
    std::function<Result<std::optional<std::string>>(fsops::ObjHandle)> map_text;
    std::atomic<fuse_session*> session{nullptr};
    // The thread allowed to create the broker's socket node (its bind() arrives as MKNOD).
    std::atomic<pid_t> socket_creator{0};
    // The session's custom io (daemon/fuse_loop.hpp), reached from libfuse's io callbacks.
    void* io = nullptr;
    // Whether the end of the session releases every object (a stop) or leaves them to the
    // supervisor (a handover, or a stop whose state systemd's fd store keeps).
    std::atomic<bool> release_on_destroy{true};
    ListedDirs listed;
    PendingPins pins;
    TextViews texts;
};

const fuse_lowlevel_ops& fuse_ops();

// Publishes a pin through the VFS (the broker's hook, broker/broker.hpp): a MKNOD of `name` in
// `dirfd`, made by the calling thread as the daemon, which op_mknod turns into the core's pin of
// `req`. The kernel caches the new entry and tells watchers (IN_CREATE). 0 or a positive errno.
// Not from inside a request handler.
int publish_pin(FuseState& st, int dirfd, const std::string& name, fsops::PinRequest req);

// Cache invalidation for a change made behind the kernel's back (a remount). Not from inside a
// request handler.
void invalidate_inode(FuseState& st, fsops::Ino ino);

}  // namespace bpffs::daemon
