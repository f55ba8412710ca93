// SPDX-License-Identifier: GPL-2.0-or-later
// The floor: a bare SCM_RIGHTS server (multi-threaded) and client, what a get cannot beat.
#include "bench/floor.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace bpffs::bench {
namespace {

constexpr std::size_t kMsg = 16;

sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) throw std::runtime_error("socket path too long: " + path);
    std::memcpy(a.sun_path, path.data(), path.size());
    return a;
}

int send_fd(int sock, int fd) {
    std::array<char, kMsg> data{};
    iovec iov{data.data(), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (fd >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    while (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) return errno;
    }
    return 0;
}

// Answers the pending request on a connection, if there is one; closes it (which takes it out of
// the epoll set) at its end or on an error.
void answer(int fd, int map_fd) {
    std::array<char, kMsg> buf;
    ssize_t got;
    while ((got = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT)) < 0 && errno == EINTR) {}
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (got <= 0 || send_fd(fd, map_fd) != 0) close(fd);
}

// One serving thread: an epoll set of its own holding the listening socket (EPOLLEXCLUSIVE: a
// connection wakes one thread) and the connections this thread accepted. Level-triggered: what
// is left (another request, another connection) shows up again at the next epoll_wait.
int serve_thread(int listen_fd, int map_fd) {
    UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.fd = listen_fd;
    if (!ep || epoll_ctl(ep.get(), EPOLL_CTL_ADD, listen_fd, &ev) != 0) return 1;
    std::array<epoll_event, 64> events;
    while (true) {
        int n = epoll_wait(ep.get(), events.data(), events.size(), -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return 1;
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd != listen_fd) {
                answer(fd, map_fd);
                continue;
            }
            int s = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (s < 0) continue;  // another thread took it
            epoll_event cev{};
            cev.events = EPOLLIN;
            cev.data.fd = s;
            if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, s, &cev) != 0) {
                close(s);
                continue;
            }
            answer(s, map_fd);  // a client sends right after connect: its request is often here
        }
    }
}

// The server process: `threads` serving threads (this one and threads - 1 more), for good.
int serve(int listen_fd, int map_fd, int threads) {
    for (int k = 1; k < threads; ++k) {
        std::thread([listen_fd, map_fd] { serve_thread(listen_fd, map_fd); }).detach();
    }
    return serve_thread(listen_fd, map_fd);
}

}  // namespace

FloorServer::FloorServer(const std::string& socket_path, int map_fd, int threads)
    : path_(socket_path), threads_(std::max(threads, 1)), server_([&] {
          UniqueFd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
          sockaddr_un a = address(socket_path);
          unlink(socket_path.c_str());
          if (!s || bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
              listen(s.get(), 512) != 0) {
              return 2;
          }
          return serve(s.get(), map_fd, threads_);
      }) {
    // Ready when it accepts a connection.
    bool up = test::wait_for([&] { return floor_get_oneshot(path_) == 0; }, 10000);
    if (!up) throw std::runtime_error("the floor server did not start at " + path_);
}

int floor_connect(const std::string& socket_path, UniqueFd* out) {
    sockaddr_un a = address(socket_path);
    UniqueFd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!s) return errno;
    while (connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        if (errno != EINTR) return errno;
    }
    *out = std::move(s);
    return 0;
}

int floor_exchange(int sock, UniqueFd* out) {
    std::array<char, kMsg> req{};
    while (send(sock, req.data(), req.size(), MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) return errno;
    }
    std::array<char, kMsg> data;
    iovec iov{data.data(), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0) {
        if (errno != EINTR) return errno;
    }
    if (n == 0) return ECONNRESET;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (c == nullptr || c->cmsg_type != SCM_RIGHTS) return EPROTO;
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    out->reset(fd);
    return 0;
}

int floor_get_oneshot(const std::string& socket_path) {
    UniqueFd s;
    if (int e = floor_connect(socket_path, &s); e != 0) return e;
    UniqueFd fd;
    return floor_exchange(s.get(), &fd);
}

}  // namespace bpffs::bench
