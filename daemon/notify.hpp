// SPDX-License-Identifier: GPL-2.0-or-later
// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to
// $NOTIFY_SOCKET ("@name" is an abstract socket). Does nothing when the variable is unset.
#pragma once

#include "common/unique_fd.hpp"

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bpffs::daemon {

// Sends `state` (e.g. "READY=1", "STOPPING=1"). Returns 0, or a positive errno (logged by the
// caller; readiness failures are not fatal).
int sd_notify_state(std::string_view state);
// The same with fds attached (SCM_RIGHTS), for FDSTORE=1.
int sd_notify_fds(std::string_view state, std::span<const int> fds);
// True when $NOTIFY_SOCKET is set.
bool notify_socket_set();

// The fds systemd passed ($LISTEN_PID = this process, $LISTEN_FDS from fd 3, names from
// $LISTEN_FDNAMES), close-on-exec; the variables are removed. Empty when there are none.
std::vector<std::pair<std::string, UniqueFd>> take_listen_fds();

}  // namespace bpffs::daemon
