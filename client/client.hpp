// SPDX-License-Identifier: GPL-2.0-or-later
// The client side of the broker protocol, shared by libbpffs's C API and bpffsctl: find the
// broker of a directory, send one request with its fds, read one reply (with a timeout), and
// a Channel that does so again on a new connection when the old one breaks.
//
// Why a broken connection is retried: the daemon restarts its worker process after a crash and
// hands over to a new binary on upgrade. The listening socket stays bound meanwhile, but the
// connections the old worker had accepted are closed, with or without the request read. A
// Channel reconnects and resends within a short budget (RetryPolicy). That suits get, status
// and remount, which are idempotent; a resent pin can find its own first attempt done and be
// answered EEXIST, which the pin code checks (client.cpp, pin_on).
#pragma once

#include "broker/protocol.hpp"
#include "common/unique_fd.hpp"
#include "fsops/result.hpp"

#include <chrono>
#include <functional>
#include <span>
#include <string>

#include <sys/types.h>

namespace bpffs::client {

struct Response {
    protocol::Reply reply;
    UniqueFd fd;  // the fetched object (get)
};

// Connects to the broker that serves directory `dir` ($BPFFS_SOCKET if set, else
// "<dir>/.bpffs.sock"; when that is too long for a socket address, `dir` is reached through
// /proc/self/fd/<dirfd>, with `dirfd` an O_PATH fd of it, or one opened here when it is -1).
// ENOENT: no broker there (not a bpffs-fuse directory). One attempt, no retry.
Result<UniqueFd> connect_broker(const std::string& dir, int dirfd);

// One request/reply exchange on a connected socket. Protocol errors: EPROTO; a reply that did
// not come in time: ETIMEDOUT; the peer gone: EPIPE or ECONNRESET (also for an orderly EOF).
// `sent`, when given, tells whether the request left (the broker may then have acted on it).
Result<Response> exchange(int sock, const protocol::Request& req, std::span<const int> fds,
                          bool* sent = nullptr);

// A connection that broke before its reply arrived: the request may be sent again elsewhere.
bool is_broken_connection(int e);  // ECONNRESET, EPIPE
// A connect that may succeed a moment later (a worker restarting, a full backlog).
bool is_transient_connect_error(int e);  // ECONNREFUSED, EAGAIN

// How long a Channel keeps trying after a broken connection or a refused connect: pauses of
// `first_pause`, doubling, until `budget` has passed since the first failure; then the last
// error is returned.
struct RetryPolicy {
    std::chrono::milliseconds budget{2000};
    std::chrono::milliseconds first_pause{10};
    // Called before each new attempt with the error that caused it (tests step the world with it).
    std::function<void(int error)> before_retry;
};

// A connection to the broker of one directory that reconnects on demand. Not thread-safe (the
// C API's bpffs_conn puts a mutex around it). After a fork, the child's first call opens its
// own connection (the parent's socket is never shared between two processes' requests).
class Channel {
public:
    // `dirfd` borrowed (may be -1) or owned: an O_PATH fd of `dir`, used when the socket's
    // path is too long for an address (see connect_broker).
    Channel(std::string dir, int dirfd, RetryPolicy policy = {});
    Channel(std::string dir, UniqueFd dirfd, RetryPolicy policy = {});
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    // Connects unless connected, retrying transient connect errors. Errors: as connect(2).
    Result<void> connect();
    bool connected() const { return sock_.valid(); }

    struct Outcome {
        Response resp;
        // An earlier attempt's request left before its connection broke: the broker may have
        // carried it out already (what a resent pin must take into account).
        bool maybe_done_before = false;
    };
    // Sends `req` with `fds` and returns its reply; on a broken connection or a refused
    // connect, reconnects and resends within the policy's budget. Any failed exchange closes
    // the connection (its state is unknown: a late reply must not answer the next request).
    Result<Outcome> call(const protocol::Request& req, std::span<const int> fds);

private:
    Result<void> connect_once();
    std::string dir_;
    UniqueFd owned_dirfd_;
    int dirfd_ = -1;
    RetryPolicy policy_;
    UniqueFd sock_;
    pid_t pid_ = -1;  // the process that connected sock_
};

// The directory part of a path as the kernel's walk would see it ("a/b" -> "a", "b" -> ".",
// "/b" -> "/"), and the last component ("" when the path ends in '/').
std::string dir_part(const std::string& path);
std::string name_part(const std::string& path);

}  // namespace bpffs::client
