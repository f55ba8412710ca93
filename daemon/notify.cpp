// SPDX-License-Identifier: GPL-2.0-or-later
// sd_notify without libsystemd: READY, STOPPING, STATUS and the fd store.
#include "daemon/notify.hpp"

#include "common/unique_fd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace bpffs::daemon {

int sd_notify_state(std::string_view state) { return sd_notify_fds(state, {}); }

bool notify_socket_set() {
    const char* p = std::getenv("NOTIFY_SOCKET");
    return p != nullptr && *p != '\0';
}

std::vector<std::pair<std::string, UniqueFd>> take_listen_fds() {
    std::vector<std::pair<std::string, UniqueFd>> out;
    const char* pid = std::getenv("LISTEN_PID");
    const char* n = std::getenv("LISTEN_FDS");
    const char* names = std::getenv("LISTEN_FDNAMES");
    bool ours = pid != nullptr && n != nullptr && std::strtol(pid, nullptr, 10) == getpid();
    if (ours) {
        long count = std::strtol(n, nullptr, 10);
        std::string all = names != nullptr ? names : "";
        std::size_t pos = 0;
        for (long i = 0; i < count && i < 1 << 20; ++i) {
            std::size_t colon = all.find(':', pos);
            std::string name =
                all.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
            pos = colon == std::string::npos ? all.size() : colon + 1;
            int fd = 3 + static_cast<int>(i);
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            out.emplace_back(name, UniqueFd(fd));
        }
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return out;
}

int sd_notify_fds(std::string_view state, std::span<const int> fds) {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (path == nullptr || *path == '\0') return 0;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::size_t len = std::strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof addr.sun_path) return EINVAL;
    std::memcpy(addr.sun_path, path, len);
    if (path[0] == '@') addr.sun_path[0] = '\0';
    UniqueFd s(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s) return errno;
    auto alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    iovec iov{const_cast<char*>(state.data()), state.size()};
    msghdr msg{};
    msg.msg_name = &addr;
    msg.msg_namelen = alen;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    while (sendmsg(s.get(), &msg, MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) return errno;
    }
    return 0;
}

}  // namespace bpffs::daemon
