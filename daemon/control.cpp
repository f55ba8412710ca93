// SPDX-License-Identifier: GPL-2.0-or-later
// The supervisor's and the worker's control socketpair: small typed messages with an fd.
#include "daemon/control.hpp"

#include "common/scm.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

namespace bpffs::daemon {
namespace {
constexpr std::size_t kHeader = 16;
constexpr std::size_t kMaxText = 4096;
}  // namespace

int ctl_send(int sock, const CtlMsg& m, int fd) {
    if (m.text.size() > kMaxText) return EMSGSIZE;
    std::vector<std::uint8_t> buf(kHeader + m.text.size());
    auto type = static_cast<std::uint32_t>(m.type);
    auto len = static_cast<std::uint32_t>(m.text.size());
    std::memcpy(buf.data(), &type, 4);
    std::memcpy(buf.data() + 4, &len, 4);
    std::memcpy(buf.data() + 8, &m.arg, 8);
    std::memcpy(buf.data() + kHeader, m.text.data(), m.text.size());
    std::array<int, 1> one{fd};
    return send_with_fds(sock, buf, fd >= 0 ? std::span<const int>(one) : std::span<const int>());
}

CtlReceived ctl_recv(int sock, int flags) {
    CtlReceived out;
    std::array<std::uint8_t, kHeader + kMaxText> buf;
    Received r = recv_with_fds(sock, buf, 1, flags);
    if (r.error != 0) {
        out.error = r.error;
        return out;
    }
    if (r.size == 0) {
        out.eof = true;
        return out;
    }
    if (r.truncated || r.ctruncated || r.size < kHeader) {
        out.error = EPROTO;
        return out;
    }
    std::uint32_t type = 0, len = 0;
    std::memcpy(&type, buf.data(), 4);
    std::memcpy(&len, buf.data() + 4, 4);
    std::memcpy(&out.msg.arg, buf.data() + 8, 8);
    if (len != r.size - kHeader) {
        out.error = EPROTO;
        return out;
    }
    out.msg.type = static_cast<Ctl>(type);
    out.msg.text.assign(reinterpret_cast<const char*>(buf.data()) + kHeader, len);
    if (!r.fds.empty()) out.fd = std::move(r.fds[0]);
    return out;
}

}  // namespace bpffs::daemon
