// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/notify.hpp"

#include "common/unique_fd.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace bpffs::daemon {

int sd_notify_state(std::string_view state) {
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
    while (sendto(s.get(), state.data(), state.size(), MSG_NOSIGNAL,
                  reinterpret_cast<sockaddr*>(&addr), alen) < 0) {
        if (errno != EINTR) return errno;
    }
    return 0;
}

}  // namespace bpffs::daemon
