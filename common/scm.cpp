// SPDX-License-Identifier: GPL-2.0-or-later
// sendmsg/recvmsg of one message with its fds (and the sender's credentials).
#include "common/scm.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace bpffs {
namespace {
// Room for the largest control message we ever accept; anything larger arrives truncated.
constexpr std::size_t kMaxRecvFds = 8;
}  // namespace

int send_with_fds(int sock, std::span<const std::uint8_t> data, std::span<const int> fds) {
    iovec iov{const_cast<std::uint8_t*>(data.data()), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 256)];
    if (!fds.empty()) {
        if (fds.size() > 253) return EINVAL;  // SCM_MAX_FD
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    while (true) {
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n >= 0) return static_cast<std::size_t>(n) == data.size() ? 0 : EMSGSIZE;
        if (errno != EINTR) return errno;
    }
}

Received recv_with_fds(int sock, std::span<std::uint8_t> buf, std::size_t max_fds, int flags) {
    Received r;
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(
        cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxRecvFds) + CMSG_SPACE(sizeof(ucred))];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    while (true) {
        n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
        if (n >= 0) break;
        if (errno != EINTR) {
            r.error = errno;
            return r;
        }
    }
    r.size = static_cast<std::size_t>(n);
    r.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
    r.ctruncated = (msg.msg_flags & MSG_CTRUNC) != 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET) continue;
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
            ucred u;
            std::memcpy(&u, CMSG_DATA(c), sizeof u);
            r.sender = Received::Sender{u.pid, u.uid, u.gid};
            continue;
        }
        if (c->cmsg_type != SCM_RIGHTS) continue;
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            r.fds.emplace_back(fd);
        }
    }
    if (r.fds.size() > max_fds) r.ctruncated = true;
    if (r.ctruncated) r.fds.clear();  // closes every fd that did arrive
    return r;
}

}  // namespace bpffs
