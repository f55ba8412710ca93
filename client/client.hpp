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
//
// Why a socket is checked before anything is sent (issue 15): the client hands real kernel
// fds to whatever listens on "<dir>/.bpffs.sock", and a get takes an fd back from it. Anyone
// can listen on a socket of that name in a directory of their own (or on a FUSE mount of their
// own), so connect_broker trusts a socket only when (1) it is a socket node on the directory's
// own mount, opened without following symlinks and connected through that very open file
// (/proc/self/fd/N), (2) that mount is a FUSE mount (a socket bound on a FUSE inode was created
// by a MKNOD the mount's FUSE server answered: hard links across filesystems are EXDEV), and
// (3) the process that called listen() on it (SO_PEERCRED) runs as root, as the caller's
// effective uid, or as the uid the caller trusts explicitly (Trust). docs/protocol.md, "What
// the client checks", says what this does and does not prove.
#pragma once

#include "common/protocol.hpp"
#include "common/result.hpp"
#include "common/unique_fd.hpp"

#include <cerrno>
#include <chrono>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include <sys/types.h>

namespace bpffs::client {

struct Response {
    protocol::Reply reply;
    UniqueFd fd;  // the fetched object (get)
};

// The errno of a socket the client does not trust (bpffs.h documents it).
inline constexpr int kUntrusted = EPERM;

// Whose broker the client accepts besides root's and the caller's own (its effective uid):
// the "trusted uid" of bpffs_opts.trust_uid, bpffsctl --trust-uid and $BPFFS_TRUST_UID.
struct Trust {
    std::optional<uid_t> uid;
};

// Why connect_broker refused a socket (it then failed with kUntrusted).
struct Refusal {
    enum class Why {
        not_on_mount,  // a symlink, or a socket of another filesystem than the directory's
        not_fuse,      // the directory is not on a FUSE mount
        peer,          // the listener's uid is not trusted
    };
    Why why = Why::peer;
    uid_t peer_uid = 0;  // Why::peer
    std::string socket;  // the socket as named ("<dir>/.bpffs.sock" or $BPFFS_SOCKET)
};
// "DIR/.bpffs.sock is not served by a trusted bpffs-fuse daemon (peer uid 1001)".
std::string describe(const Refusal& r);

// Connects to the broker that serves directory `dir` ($BPFFS_SOCKET if set, else
// "<dir>/.bpffs.sock"), `dirfd` being an O_PATH fd of `dir` (opened here when it is -1), and
// checks it as the top of this file says before returning: nothing is sent, and a socket that
// fails the checks is never connected to (a foreign listener is connected to, then dropped).
// ENOENT: no broker there (not a bpffs-fuse directory); ECONNREFUSED: nobody listens, or the
// name is not a socket; kUntrusted: refused, with the reason in *why when given. One attempt,
// no retry.
Result<UniqueFd> connect_broker(const std::string& dir, int dirfd, const Trust& trust = {},
                                Refusal* why = nullptr);

// The directory whose broker bpffs_obj_pin (`pin`) or bpffs_obj_get would ask for `path`,
// and why that broker is not trusted, if it is not (for bpffsctl's messages after EPERM).
std::optional<Refusal> refusal_for(const std::string& path, bool pin, const Trust& trust);

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
    // `dirfd` borrowed (may be -1) or owned: an O_PATH fd of `dir` (see connect_broker). Every
    // connect, the first and each reconnect, checks the socket with `trust`.
    Channel(std::string dir, int dirfd, RetryPolicy policy = {}, Trust trust = {});
    Channel(std::string dir, UniqueFd dirfd, RetryPolicy policy = {}, Trust trust = {});
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    // Connects unless connected, retrying transient connect errors. Errors: as connect_broker.
    Result<void> connect();
    bool connected() const { return sock_.valid(); }
    // Why the last connect did not trust the socket (after a kUntrusted error).
    const Refusal& refusal() const { return refusal_; }

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
    // Starts from a connection made earlier (a kept one, kept.hpp) instead of connecting; one
    // that turns out broken is replaced as a kept connection would be.
    void adopt(UniqueFd sock);
    // The connection, to keep for later calls: empty when there is none or another process
    // made it.
    UniqueFd release();

private:
    Result<void> connect_once();
    std::string dir_;
    UniqueFd owned_dirfd_;
    int dirfd_ = -1;
    RetryPolicy policy_;
    Trust trust_;
    Refusal refusal_;
    UniqueFd sock_;
    pid_t pid_ = -1;  // the process that connected sock_
};

// The directory part of a path as the kernel's walk would see it ("a/b" -> "a", "b" -> ".",
// "/b" -> "/"), and the last component ("" when the path ends in '/').
std::string dir_part(const std::string& path);
std::string name_part(const std::string& path);

}  // namespace bpffs::client
