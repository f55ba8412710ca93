// SPDX-License-Identifier: GPL-2.0-or-later
// Sends one remount request straight to a mount's broker, bypassing bpffsctl's own checks, so
// that a test sees the broker's validation and privilege check (docs/protocol.md: EPERM
// without CAP_SYS_ADMIN, EINVAL for an invalid list) as any client of the socket would.
//
//   ops_remount_raw DIR OPTION_LIST
//
// Prints "remount: ok" or "remount: <strerror>" and exits 0 (applied), 1 (refused by the
// broker) or 3 (no answer: connect, send or receive failed, or an undecodable reply).
#include "common/protocol.hpp"
#include "common/unique_fd.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    namespace protocol = bpffs::protocol;
    if (argc != 3) {
        std::fprintf(stderr, "usage: ops_remount_raw DIR OPTION_LIST\n");
        return 2;
    }
    std::string path = std::string(argv[1]) + "/" + std::string(protocol::kSocketName);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        std::fprintf(stderr, "ops_remount_raw: %s: path too long\n", path.c_str());
        return 3;
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    bpffs::UniqueFd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    timeval tv{10, 0};
    if (!s || setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        std::fprintf(stderr, "ops_remount_raw: connect %s: %s\n", path.c_str(),
                     std::strerror(errno));
        return 3;
    }
    auto msg = protocol::encode(protocol::Request{protocol::Op::remount, argv[2]});
    if (send(s.get(), msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) {
        std::fprintf(stderr, "ops_remount_raw: send: %s\n", std::strerror(errno));
        return 3;
    }
    std::vector<std::uint8_t> buf(protocol::kMaxMessage);
    ssize_t n;
    while ((n = recv(s.get(), buf.data(), buf.size(), 0)) < 0 && errno == EINTR) {}
    if (n <= 0) {
        std::fprintf(stderr, "ops_remount_raw: recv: %s\n",
                     n == 0 ? "connection closed" : std::strerror(errno));
        return 3;
    }
    auto rep = protocol::decode_reply({buf.data(), static_cast<std::size_t>(n)});
    if (!rep || rep->op != protocol::Op::remount) {
        std::fprintf(stderr, "ops_remount_raw: undecodable reply\n");
        return 3;
    }
    if (rep->error != 0) {
        std::printf("remount: %s\n", std::strerror(rep->error));
        return 1;
    }
    std::printf("remount: ok\n");
    return 0;
}
