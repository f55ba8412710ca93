// SPDX-License-Identifier: GPL-2.0-or-later
// The worker's FUSE request loop, on a /dev/fuse connection the worker did not open: libfuse's
// session with custom io (fuse_session_custom_io, libfuse 3.14) and a fixed pool of threads
// doing fuse_session_receive_buf / fuse_session_process_buf.
//
// What the custom io adds to plain read/writev:
// - The kernel's FUSE_INIT request is handed to `on_init` (the state log keeps it). A later
//   worker on the same connection gets no INIT from the kernel, and libfuse answers EIO to
//   anything before one, so resume() feeds libfuse the recorded INIT and swallows its reply.
// - Requests a dead worker had read and not answered (docs/operations.md, "Crash of the
//   worker"). Two mechanisms, chosen by what the kernel offered in its FUSE_INIT:
//   * Kernel resend (FUSE_HAS_RESEND, Linux 6.9+): the kernel keeps every request it handed to
//     a reader and that has no reply yet in its processing queue; a new worker writes the
//     FUSE_NOTIFY_RESEND notification (request_resend()) before its threads read, and the
//     kernel queues them all again (unique | FUSE_UNIQUE_RESEND). The kernel's queue is the
//     record: "handed out" and "recorded" are one step, and a request that got its reply is
//     never repeated. Nothing is copied into the in-flight area then.
//   * The in-flight area, for kernels without resend: each thread copies the request it read
//     into its slot of a shared memfd (held by the supervisor) and clears the slot once the
//     reply is written; the next worker answers what is left (replay_inflight()). That copy is
//     made after read() returned, so a worker killed between the two loses the request: a
//     SIGKILL wakes a reader asleep in the kernel, and the kernel hands it a request that
//     arrived meanwhile before it looks at the signal. FORGET, BATCH_FORGET and INTERRUPT are
//     not kept (they have no reply to wait for).
//   A takeover does both, in this order: slots first (a worker of an older binary may have
//   filled them; answering them takes them out of the kernel's queue), then the resend, so no
//   request is answered by both.
// - stop(): threads finish the request in hand and read no more, so a handover happens at a
//   request boundary and nothing the kernel sent is dropped.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

#include "common/unique_fd.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <thread>
#include <vector>

namespace bpffs::daemon {

class FuseLoop {
public:
    static constexpr std::size_t kSlots = 4;  // = threads
    static constexpr std::size_t kSlotSize = 132 * 1024;
    static std::size_t inflight_size() { return kSlots * kSlotSize; }

    // `se`'s userdata must be a FuseState whose `io` points at this loop. Takes ownership of
    // fuse_fd (libfuse closes it in fuse_session_destroy). Throws std::system_error.
    FuseLoop(fuse_session* se, UniqueFd fuse_fd, int inflight_fd,
             std::function<void(std::span<const std::uint8_t>)> on_init);
    ~FuseLoop();

    // A connection that was initialised before this process: replay the recorded INIT.
    void resume(std::span<const std::uint8_t> init);
    // Requests a previous worker read and did not answer, from the in-flight area. Returns how
    // many.
    std::size_t replay_inflight();
    // Asks the kernel to queue again every request it handed out and has no reply for. Call it
    // after replay_inflight() and before start(): requests this worker's threads are serving
    // would be queued again too. Returns 0 or an errno (EOPNOTSUPP: the kernel cannot). Also
    // for the first worker of a mount: a worker killed after it read the kernel's FUSE_INIT and
    // before it recorded it leaves the INIT in the kernel's queue, and only a resend brings it
    // back.
    int request_resend();
    void start();
    // Graceful: returns once every thread has finished its request and stopped reading.
    void stop();
    // The connection ended (unmount, abort): the threads stopped on their own.
    bool connection_gone() const { return gone_.load(); }
    // Called from a thread when the connection ends, so the owner can react.
    std::function<void()> on_gone;
    // Fault injection for tests (BPFFS_TEST_STALL_OPCODE, first worker only): a request with this
    // opcode is read, recorded and then never answered, as if the worker died while on it.
    std::uint32_t stall_opcode = 0;

    // The custom io; `userdata` is the session's userdata (FuseState).
    static ssize_t io_read(int fd, void* buf, std::size_t len, void* userdata);
    static ssize_t io_writev(int fd, struct iovec* iov, int count, void* userdata);

private:
    struct Slot;
    Slot* slot(std::size_t i) const;
    void record(const void* buf, std::size_t n);
    void clear_if(std::uint64_t unique);
    void run(std::size_t index);

    fuse_session* se_;
    std::uint8_t* area_ = nullptr;
    std::function<void(std::span<const std::uint8_t>)> on_init_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> gone_{false};
    // Both set before the INIT's reply, so before any other request is read.
    std::atomic<bool> resends_{false};    // the kernel offered FUSE_HAS_RESEND
    std::atomic<bool> init_seen_{false};  // the INIT was read or replayed: resends_ is known
    std::atomic<std::uint64_t> swallow_{0};
    std::vector<std::thread> threads_;
    std::atomic<std::size_t> running_{0};
};

}  // namespace bpffs::daemon
