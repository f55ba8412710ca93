// SPDX-License-Identifier: GPL-2.0-or-later
// The channel between the supervisor and its worker (docs/operations.md): a SOCK_SEQPACKET
// socketpair, one message per event, at most one fd each. Both ends are our own processes, but
// the decoder still checks every length. Messages the worker sends are queued in the kernel the
// moment send returns, so a worker that dies right after still delivered them: the supervisor
// drains the channel before it starts the next worker.
//   message: type u32 | text_len u32 | arg u64 | text
#pragma once

#include "common/unique_fd.hpp"

#include <cstdint>
#include <string>

namespace bpffs::daemon {

enum class Ctl : std::uint32_t {
    // worker -> supervisor
    obj_add = 1,      // arg: object handle; fd: the kernel object (keep it)
    obj_del = 2,      // arg: object handle (close it)
    keep_listen = 3,  // fd: the broker's listening socket
    keep_tree = 4,    // fd: the detached clone of the mount the socket is bound through
    ready = 5,        // the mount serves requests
    upgrade = 6,      // text: the new binary (empty: the running one); answered by upgrade_reply
    log_replace = 7,  // fd: the compacted state log that replaces the current one
    conn = 8,         // fd: an open client connection for the next worker (handover)
    handed_over = 9,  // all sent; the worker exits with kExitHandedOver
    // supervisor -> worker
    upgrade_reply = 20,  // arg: 0 or a positive errno; on 0 a handover follows
    handover = 21,       // stop at a request boundary and hand everything over
};

struct CtlMsg {
    Ctl type = Ctl::ready;
    std::uint64_t arg = 0;
    std::string text;
};

// Blocking send (MSG_NOSIGNAL). Returns 0 or a positive errno.
int ctl_send(int sock, const CtlMsg& m, int fd = -1);

struct CtlReceived {
    int error = 0;     // 0, EAGAIN (non-blocking, nothing queued), EPROTO, or the recv errno
    bool eof = false;  // the other end is gone
    CtlMsg msg;
    UniqueFd fd;
};
CtlReceived ctl_recv(int sock, int flags = 0);

// Exit codes of a worker, read by the supervisor. Anything else (a signal, another code) is a
// crash, and the worker is started again.
inline constexpr int kExitStopped = 0;      // asked to stop (SIGTERM): unmount
inline constexpr int kExitGone = 3;         // the mount went away (umount, connection abort)
inline constexpr int kExitHandedOver = 4;   // upgrade: start the next worker
inline constexpr int kExitStartFailed = 5;  // could not start (bad state, bind failed)

}  // namespace bpffs::daemon
