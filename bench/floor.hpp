// SPDX-License-Identifier: GPL-2.0-or-later
// The floor no broker can beat: a bare AF_UNIX SOCK_SEQPACKET server in another process that
// answers every 16-byte request with a 16-byte reply carrying one map fd (SCM_RIGHTS), and
// nothing else: no path walk, no credentials, no lookup, no bpf(2) call. One thread and epoll, as
// the broker has. Clients either connect per request (as libbpffs's one-shot calls do) or keep
// one connection (as a bpffs_conn does).
#pragma once

#include "bench/environment.hpp"
#include "common/unique_fd.hpp"

#include <string>

namespace bpffs::bench {

class FloorServer {
public:
    // Listens on `socket_path` and serves `map_fd` (borrowed; the server process has its own).
    FloorServer(const std::string& socket_path, int map_fd);
    const std::string& path() const { return path_; }

private:
    std::string path_;
    Child server_;
};

// One request/reply on a connected socket: returns 0 and the received fd, or a positive errno.
int floor_exchange(int sock, UniqueFd* out);
// Connects to the floor server (blocking, no timeout: it is local and alive).
int floor_connect(const std::string& socket_path, UniqueFd* out);
// connect + exchange + close: the one-shot round trip.
int floor_get_oneshot(const std::string& socket_path);

}  // namespace bpffs::bench
