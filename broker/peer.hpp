// SPDX-License-Identifier: GPL-2.0-or-later
// Who is asking: the credentials of a broker request, from facts the kernel binds to the
// connection or to the message, never from a pid looked up later (docs/protocol.md,
// "Credentials").
//
// - Peer: what the kernel recorded when the client connected (SO_PEERCRED: pid, euid, egid;
//   SO_PEERGROUPS), read once at accept. Like the credentials of an open file, it does not
//   change when the connecting process later execs a setuid program or changes its ids.
// - Sender: what the kernel attaches to each message (SCM_CREDENTIALS with SO_PASSCRED: the
//   sending process's pid, real uid and real gid at send time). It tells whether the message
//   comes from the connecting process or from another one holding the socket (a child that
//   inherited it, a process it was passed to).
//
// A message speaks with the Peer's identity when its Sender has the Peer's ids, or is the
// connecting process itself (the same pid while the kernel's pidfd of that process shows it
// alive). Otherwise it speaks with the Sender's real ids, without supplementary groups and
// without capabilities. Capabilities count only for a Peer that was root (euid 0) at connect,
// for a message from the connecting process itself, read with capget(2) while that process is
// alive and stays in the daemon's user namespace (checked before and after the read).
// A non-root holder of CAP_SYS_ADMIN is treated as unprivileged: the kernel records no
// capabilities at connect, and those read later could come from a program exec'd since.
#pragma once

#include "common/scm.hpp"
#include "common/unique_fd.hpp"
#include "fsops/types.hpp"

#include <sys/types.h>

#include <string>
#include <vector>

namespace bpffs::broker {

struct Peer {
    bool known = false;  // SO_PEERCRED answered
    pid_t pid = 0;
    uid_t uid = 65534;  // euid at connect, in our user namespace
    gid_t gid = 65534;
    std::vector<gid_t> groups;
    // A pidfd of the connecting process: the kernel's own reference (SO_PEERPIDFD, Linux 6.5),
    // taken on first need. On older kernels it is opened by pid at accept, for a root peer only
    // (a pid reused between connect and accept is the one gap there; docs/protocol.md).
    UniqueFd pidfd;
};

// SO_PEERCRED and SO_PEERGROUPS of a connected socket (an unknown peer is nobody).
Peer peer_at_connect(int sock);

// Our own user namespace, to compare a peer's with (readlink of /proc/self/ns/user).
std::string own_user_namespace();

// The identity one request speaks with. `caps` is filled only by with_caps().
class RequestCreds {
public:
    RequestCreds(int sock, Peer& peer, const std::optional<Received::Sender>& sender,
                 const std::string& self_ns);

    // uid, gid, groups; no capabilities.
    const fsops::Caller& ids() const { return caller_; }
    // The same with the capabilities the rules above allow, read on first use.
    const fsops::Caller& with_caps();
    bool caps_known() const { return caps_known_; }
    // The message comes from the connecting process (or one with its ids) and speaks as it.
    bool as_peer() const { return as_peer_; }
    pid_t sender_pid() const { return sender_pid_; }

private:
    bool from_connecting_process();
    int peer_pidfd();  // -1: none

    int sock_;
    Peer& peer_;
    const std::string& self_ns_;
    fsops::Caller caller_;
    pid_t sender_pid_ = 0;
    bool as_peer_ = false;
    bool caps_known_ = false;
    int same_process_ = -1;  // -1: not asked yet
};

}  // namespace bpffs::broker
