// SPDX-License-Identifier: GPL-2.0-or-later
// What a supervisor hands to the worker it starts (`bpffs-fuse --worker FD`): which inherited
// fds are what, and the mount's settings. Written as "key value" lines into a memfd, because the
// list of object fds can be long. Parsing checks every line; the worker refuses to start on a
// malformed handoff rather than guess.
#pragma once

#include "common/result.hpp"
#include "fsops/types.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bpffs::daemon {

struct WorkerHandoff {
    std::string mountpoint;
    std::string options;     // the -o list of uid=, gid=, mode= (first start only)
    bool read_only = false;  // -o ro: remount read-only once the socket exists (first start)
    bool first = true;       // a new mount: the kernel's INIT is still to come
    bool detached = false;   // log to syslog
    bool debug = false;      // libfuse's request trace
    std::string log_level;
    std::string log_file;  // --log-file (empty: none; then not in the text, as older workers read)
    std::string version_note;  // free text for logs
    int fuse_fd = -1;
    int control_fd = -1;
    int log_fd = -1;       // the state log (daemon/state_log.hpp)
    int inflight_fd = -1;  // requests read but not yet answered (daemon/fuse_loop.hpp)
    int listen_fd = -1;    // after the first start: the bound, listening socket
    int tree_fd = -1;      // after the first start: the mount clone the socket lives in
    std::uint32_t supervisor_pid = 0;
    std::uint32_t generation = 1;
    std::uint32_t restarts = 0;
    std::vector<std::pair<fsops::ObjHandle, int>> objects;  // handle, fd
    std::vector<int> conns;  // client connections handed over by the previous worker

    std::vector<int> fds() const;  // every fd listed, to keep open across exec
};

std::string to_text(const WorkerHandoff& h);
Result<WorkerHandoff> parse_handoff(const std::string& text);

}  // namespace bpffs::daemon
