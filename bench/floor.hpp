// SPDX-License-Identifier: GPL-2.0-or-later
// The floor no broker can beat: a bare AF_UNIX SOCK_SEQPACKET server in another process that
// answers every 16-byte request with a 16-byte reply carrying one map fd (SCM_RIGHTS), and
// nothing else: no path walk, no credentials, no lookup, no bpf(2) call.
//
// It scales with the CPUs as a broker may, in the cheapest way that is still a real server:
// `threads` threads, each with an epoll set of its own (level-triggered, nothing re-armed). The
// listening socket is in every set with EPOLLEXCLUSIVE, so a new connection wakes one thread,
// which accepts it (one per wakeup), adds it to its own set and serves it until it closes, one
// request per readiness. Clients either connect per request or keep one connection (as a
// bpffs_conn does, and as libbpffs's one-shot calls do with the connection they keep per mount).
#pragma once

#include "bench/environment.hpp"
#include "common/unique_fd.hpp"

#include <string>

namespace bpffs::bench {

class FloorServer {
public:
    // Listens on `socket_path` and serves `map_fd` (borrowed; the server process has its own)
    // on `threads` threads (at least 1).
    FloorServer(const std::string& socket_path, int map_fd, int threads);
    const std::string& path() const { return path_; }
    int threads() const { return threads_; }

private:
    std::string path_;
    int threads_;
    Child server_;
};

// One request/reply on a connected socket: returns 0 and the received fd, or a positive errno.
int floor_exchange(int sock, UniqueFd* out);
// Connects to the floor server (blocking, no timeout: it is local and alive).
int floor_connect(const std::string& socket_path, UniqueFd* out);
// connect + exchange + close: the one-shot round trip.
int floor_get_oneshot(const std::string& socket_path);

}  // namespace bpffs::bench
