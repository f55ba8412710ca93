// SPDX-License-Identifier: GPL-2.0-or-later
// Closing what clients send, where a close cannot stall a request.
//
// A well-formed request carries two kinds of fd: O_PATH fds (the client's walk) and bpf objects'
// (the fd a pin names). Closing either never calls into another filesystem. Any other fd may:
// close(2) calls the file's flush, which on a FUSE filesystem is a request to its server, and a
// server that reads that request and never answers holds the closing thread in an uninterruptible
// wait, SIGKILL or not, and the process's exit with it (exit closes every fd the same way). So
// those fds are never closed on a serving thread: they go to one closing thread, charged to the
// uid that sent them. When a close there has not returned after `stuck_after`, a watchdog aborts
// that file's FUSE connection (fusectl's "abort", the remedy the kernel documents for a hung
// server; needs CAP_SYS_ADMIN), which fails the request and frees the thread. Without that right,
// or for another filesystem, the thread stays stuck: its uid's share fills up and that uid is
// refused (over_share), and nobody else notices.
//
// Thread-safe. The destructor waits for the queue to drain for at most `stuck_after` more, then
// leaves a stuck thread behind (detached) rather than hang the caller.
#pragma once

#include "common/unique_fd.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>

namespace bpffs::broker {

// O_PATH fds and bpf objects' (maps, programs, links): closed at once, anywhere.
bool closes_at_once(int fd);

class Closer {
public:
    struct Config {
        std::size_t share = 64;  // fds one uid may have waiting before over_share()
        std::chrono::milliseconds stuck_after{3000};
    };
    explicit Closer(Config cfg);
    ~Closer();
    Closer(const Closer&) = delete;
    Closer& operator=(const Closer&) = delete;

    // Closes `fd` now when closes_at_once(), else queues it for the closing thread, charged to
    // `uid`.
    void close(UniqueFd fd, uid_t uid);
    // Has `uid` more fds waiting (or stuck) than its share?
    bool over_share(uid_t uid) const;
    std::size_t waiting() const;                // fds queued or being closed, all uids
    std::uint64_t connections_aborted() const;  // FUSE connections the watchdog aborted

private:
    struct State;
    std::shared_ptr<State> st_;
};

}  // namespace bpffs::broker
