// SPDX-License-Identifier: GPL-2.0-or-later
// The supervisor: the process `bpffs-fuse MOUNTPOINT` leaves running. It mounts, then holds what
// must outlive a worker (the /dev/fuse connection, the broker's socket and mount clone, a copy
// of every kernel object fd, the state log and the in-flight requests) and runs the worker:
// started again after a crash (the mount never notices but for a pause), replaced by a new binary
// on `bpffsctl upgrade`. Under systemd it also keeps the object fds and the state log in the
// service's fd store, so `systemctl restart` brings the tree back. It never serves a request
// itself. docs/operations.md.
#pragma once

#include "common/unique_fd.hpp"

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace bpffs::daemon {

struct SupervisorConfig {
    std::string source;
    std::string mountpoint;    // absolute, resolved
    std::string fuse_options;  // libfuse's -o list for the mount (fsname, subtype, ...)
    std::string our_options;   // fsops::full_options(): the core's options and the limits
    bool read_only = false;
    bool debug = false;
    bool detached = false;
    std::string log_level;
    std::string log_file;
    // From systemd's fd store on a restart: "state" and "obj-<handle>" fds.
    std::vector<std::pair<std::string, UniqueFd>> stored;
};

// Mounts and supervises until the mount ends. `ready` runs once, when the first worker serves.
// Returns the exit code. Throws std::runtime_error for start-up failures (nothing left mounted).
int supervisor_main(SupervisorConfig cfg, const std::function<void()>& ready);

}  // namespace bpffs::daemon
