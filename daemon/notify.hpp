// SPDX-License-Identifier: GPL-2.0-or-later
// systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram to
// $NOTIFY_SOCKET ("@name" is an abstract socket). Does nothing when the variable is unset.
#pragma once

#include <string_view>

namespace bpffs::daemon {

// Sends `state` (e.g. "READY=1", "STOPPING=1"). Returns 0, or a positive errno (logged by the
// caller; readiness failures are not fatal).
int sd_notify_state(std::string_view state);

}  // namespace bpffs::daemon
