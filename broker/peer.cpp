// SPDX-License-Identifier: GPL-2.0-or-later
// Who a broker request speaks as: the credentials bound to the connection and the message.
#include "broker/peer.hpp"

#include "common/caps.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; Debian 12's headers predate it
#endif

namespace bpffs::broker {
namespace {

std::string ns_of(const std::string& pid) {
    char buf[64];
    ssize_t n = readlink(("/proc/" + pid + "/ns/user").c_str(), buf, sizeof buf - 1);
    if (n < 0) return {};
    return std::string(buf, static_cast<std::size_t>(n));
}

// Does this kernel answer SO_PEERPIDFD? Asked once, on a socketpair of our own.
bool kernel_has_peer_pidfd() {
    static const bool has = [] {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return false;
        UniqueFd a(sv[0]), b(sv[1]);
        int fd = -1;
        socklen_t len = sizeof fd;
        if (getsockopt(a.get(), SOL_SOCKET, SO_PEERPIDFD, &fd, &len) != 0) return false;
        UniqueFd owned(fd);
        return true;
    }();
    return has;
}

bool exited(int pidfd) {
    pollfd pf{pidfd, POLLIN, 0};
    return poll(&pf, 1, 0) != 0;  // readable: the process has exited (or poll failed)
}

}  // namespace

std::string own_user_namespace() { return ns_of("self"); }

Peer peer_at_connect(int sock) {
    Peer p;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return p;
    p.known = true;
    p.pid = cred.pid;
    p.uid = cred.uid;
    p.gid = cred.gid;
    std::array<gid_t, 256> groups{};
    socklen_t glen = sizeof groups;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
        p.groups.assign(groups.begin(), groups.begin() + glen / sizeof(gid_t));
    }
    if (p.uid == 0 && p.pid > 0 && !kernel_has_peer_pidfd()) {
        p.pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, p.pid, 0)));
    }
    return p;
}

RequestCreds::RequestCreds(int sock, Peer& peer, const std::optional<Received::Sender>& sender,
                           const std::string& self_ns)
    : sock_(sock), peer_(peer), self_ns_(self_ns) {
    caller_.uid = caller_.gid = 65534;  // a message without credentials: nobody
    if (!sender) return;
    sender_pid_ = sender->pid;
    if (peer_.known &&
        ((sender->uid == peer_.uid && sender->gid == peer_.gid) || from_connecting_process())) {
        as_peer_ = true;
        caller_.uid = peer_.uid;
        caller_.gid = peer_.gid;
        caller_.groups.assign(peer_.groups.begin(), peer_.groups.end());
    } else {
        caller_.uid = sender->uid;
        caller_.gid = sender->gid;
    }
}

int RequestCreds::peer_pidfd() {
    if (!peer_.pidfd && kernel_has_peer_pidfd()) {
        int fd = -1;
        socklen_t len = sizeof fd;
        // The kernel keeps the connecting process's struct pid: this pidfd refers to it even
        // when its number has been reused since (it then shows the process exited).
        if (getsockopt(sock_, SOL_SOCKET, SO_PEERPIDFD, &fd, &len) == 0) peer_.pidfd.reset(fd);
    }
    return peer_.pidfd ? peer_.pidfd.get() : -1;
}

// The message's sender pid is the connecting process's, and that process is alive now, so the
// number was not reused: the connecting process sent it.
bool RequestCreds::from_connecting_process() {
    if (same_process_ < 0) {
        int fd = -1;
        same_process_ = peer_.known && sender_pid_ > 0 && sender_pid_ == peer_.pid &&
                        (fd = peer_pidfd()) >= 0 && !exited(fd);
    }
    return same_process_ == 1;
}

const fsops::Caller& RequestCreds::with_caps() {
    if (caps_known_) return caller_;
    caps_known_ = true;
    if (!as_peer_ || peer_.uid != 0 || self_ns_.empty() || !from_connecting_process()) {
        return caller_;
    }
    // The process is alive and was the sender; read its user namespace, its capabilities and
    // its namespace again, then make sure it is still alive (so the pid named it throughout).
    // A process cannot come back to our namespace once it left it without holding
    // CAP_SYS_ADMIN here, so two equal reads bracket a capget made inside it.
    const std::string pid = std::to_string(peer_.pid);
    if (ns_of(pid) != self_ns_) return caller_;
    auto caps = effective_caps(peer_.pid);
    if (!caps) return caller_;
    if (ns_of(pid) != self_ns_ || exited(peer_.pidfd.get())) return caller_;
    caller_.caps = fsops::Caps::from_bits(*caps);
    return caller_;
}

}  // namespace bpffs::broker
