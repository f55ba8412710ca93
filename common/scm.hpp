// SPDX-License-Identifier: GPL-2.0-or-later
// sendmsg/recvmsg of one message with file descriptors (SCM_RIGHTS). Every fd that arrives is
// wrapped in a UniqueFd at once, also when the message or its control data was truncated, so
// nothing leaks; received fds are close-on-exec (MSG_CMSG_CLOEXEC). Both loop on EINTR.
// On a socket with SO_PASSCRED the kernel adds the sender's credentials to every message
// (SCM_CREDENTIALS: its pid, real uid and real gid at the time it sent); they are kept too.
#pragma once

#include "common/unique_fd.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <sys/types.h>

namespace bpffs {

// Returns 0 or a positive errno (EAGAIN for a full non-blocking socket, EPIPE, ...).
int send_with_fds(int sock, std::span<const std::uint8_t> data, std::span<const int> fds);

struct Received {
    int error = 0;            // 0 or a positive errno (EAGAIN: nothing to read yet)
    std::size_t size = 0;     // bytes received; 0 with error 0: the peer closed
    bool truncated = false;   // MSG_TRUNC: the message was longer than the buffer
    bool ctruncated = false;  // MSG_CTRUNC: more fds (or control data) than we take
    std::vector<UniqueFd> fds;
    // SCM_CREDENTIALS, when the socket has SO_PASSCRED (ids as seen from our user namespace).
    struct Sender {
        pid_t pid = 0;
        uid_t uid = 0;
        gid_t gid = 0;
    };
    std::optional<Sender> sender;
};

// Receives one message into buf, taking at most max_fds fds (more: ctruncated, all closed).
Received recv_with_fds(int sock, std::span<std::uint8_t> buf, std::size_t max_fds, int flags = 0);

}  // namespace bpffs
