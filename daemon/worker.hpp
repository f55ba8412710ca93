// SPDX-License-Identifier: GPL-2.0-or-later
// The worker: the process that serves the mount (FUSE requests and the broker's socket), started
// by the supervisor as `bpffs-fuse --worker FD` with everything it needs inherited (handoff.hpp).
// It rebuilds the core from the state log, logs every change there before answering, tells the
// supervisor of every kernel object it starts or stops holding, and on request stops at a
// request boundary and hands its client connections over (upgrade). docs/operations.md.
#pragma once

namespace bpffs::daemon {

// Returns the process's exit code (control.hpp: kExit*).
int worker_main(int handoff_fd);

}  // namespace bpffs::daemon
