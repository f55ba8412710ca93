// SPDX-License-Identifier: GPL-2.0-or-later
// The broker: a Unix SOCK_SEQPACKET server inside the daemon that pins and hands out kernel
// objects (protocol.hpp, docs/protocol.md). Threads (one per CPU the daemon may run on) share one
// epoll set over non-blocking sockets; every connection is registered EPOLLONESHOT, so one thread
// at a time serves it and its requests are answered in order. No request blocks for long
// (fstat, bpf(2), capget and the core's lock), except upgrade, which waits for the supervisor.
// The kernel walks the client's path (the client sends O_PATH fds); the broker identifies nodes
// by (st_dev, st_ino) and checks the last step itself with the request's credentials: those the
// kernel recorded at connect time and attached to the message (peer.hpp says which count).
//
// Misbehaving peers: a malformed, truncated or oversized message, or the wrong number of fds,
// gets an error reply or the connection is closed; received fds are always closed, and never on
// a serving thread when that could block (closer.hpp); an fd the client sends is looked at only
// through what the kernel has cached (AT_STATX_DONT_SYNC) and, unless it is on this mount,
// never walked or asked anything, so another filesystem's server cannot hold a serving thread;
// a peer that never speaks is dropped after an idle timeout; connections beyond the limit are
// refused.
//
// Lock order: conns_mu_ and mount_mu_ are leaves (nothing else is locked or called under them
// but epoll_ctl and reads of the mount table); the core's and the registry's locks are taken
// with neither held.
#pragma once

#include "broker/closer.hpp"
#include "broker/peer.hpp"
#include "broker/registry.hpp"
#include "common/protocol.hpp"
#include "common/unique_fd.hpp"
#include "fsops/filesystem.hpp"

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace bpffs::broker {

// The CPUs this process may run on (sched_getaffinity), at least 1: the default thread count.
unsigned usable_cpus();

struct BrokerConfig {
    fsops::ServiceLimits limits;  // connections: in all, per unprivileged uid
    std::chrono::milliseconds idle_timeout{30000};
    unsigned threads = 0;  // serving threads; 0: usable_cpus()
    std::string version;
    Closer::Config closer;  // fds clients send that may not close at once
    // A test seam (daemon/test_hooks.hpp): requests of this op are read and never answered.
    std::optional<protocol::Op> stall_op;
};

// What the broker needs from the daemon, without knowing FUSE.
struct BrokerHooks {
    // Links a pin as a create the kernel sees: a MKNOD of `name` in `dirfd` (the parent as the
    // client walked it) that reaches the core's pin() with `req`, so watchers get IN_CREATE and
    // the kernel caches the new entry. 0 or a positive errno (the kernel's or the core's).
    std::function<int(int dirfd, const std::string& name, fsops::PinRequest req)> publish_pin;
    // An inode changed behind the kernel's back (remount of the root).
    std::function<void(fsops::Ino ino)> invalidate_inode;
    // The mount disappeared from the daemon's mount table (umount from outside): shut down.
    std::function<void()> unmounted;
    // upgrade request (already checked for CAP_SYS_ADMIN): 0 or a positive errno. Unset: ENOTSUP.
    std::function<int(const std::string& path)> upgrade;
    // Adds what the broker does not know to a status reply (the supervisor's figures).
    std::function<void(protocol::StatusInfo&)> status;
};

class Broker {
public:
    Broker(fsops::Filesystem& fs, Registry& registry, BrokerHooks hooks, BrokerConfig cfg);
    ~Broker();

    // Binds the socket at "<mount_root_path>/.bpffs.sock" (creating the mount's socket node),
    // records the mount's st_dev and listens. Call from the broker's thread once the FUSE
    // session loop runs (the bind is a FUSE request). Returns 0 or a positive errno.
    // `bound` runs between bind and listen: whatever it does happens before any client can
    // connect (the worker hands the socket to the supervisor there).
    int bind_and_listen(const std::string& mountpoint, const std::function<void()>& bound = {});
    // A worker after a restart: serves a socket an earlier worker bound (and the mount clone
    // it lives in) instead of binding. Returns 0 or a positive errno.
    int adopt(const std::string& mountpoint, UniqueFd listen, UniqueFd tree);
    // A client connection handed over by an earlier worker (its unread requests stay queued).
    void adopt_connection(UniqueFd sock);
    int listen_fd() const { return listen_.get(); }
    int tree_fd() const { return tree_.get(); }
    // Serves until stop(), on the calling thread and cfg.threads - 1 more. Returns 0, or a
    // positive errno on a fatal epoll failure.
    int run();
    // Thread-safe, and sticky: run() returns, or returns at once if it starts later.
    void stop();
    // Like stop(), but run() keeps the client connections open for take_connections(); a
    // connection's unread requests stay queued in it.
    void stop_for_handover();
    // After run() returned.
    std::vector<UniqueFd> take_connections();
    bool stopping() const { return stopping_.load(); }
    // After run() returned: closes the socket and the private clone of the mount, the broker's
    // references to the mount.
    void release_mount();
    // Re-reads the mount table: is the mount still there, and is its superblock read-only (get
    // is EROFS then, as in the seed)? Called on every change of /proc/self/mountinfo.
    bool refresh_mount_state();

private:
    struct Conn;
    int serve();
    void wake_all();
    int accept_one();
    std::shared_ptr<Conn> new_conn(UniqueFd sock);
    void register_conn(UniqueFd sock);
    void register_conn(std::shared_ptr<Conn> c);
    // Takes a connection out of conns_ (under conns_mu_), and out of its uid's count.
    // A connection's place in the counts, from its admission (accept_one) until it is closed.
    void count_locked(Conn& c);
    void uncount_locked(Conn& c);
    void forget_conn_locked(std::unordered_map<std::uint64_t, std::shared_ptr<Conn>>::iterator it);
    // May a new connection of this peer be let in (under conns_mu_)? 0, or the errno of the
    // refusal (EUSERS: a limit of ServiceLimits).
    int admit_locked(const Peer& peer, bool privileged) const;
    // A peer whose uid holds its whole share: closes that uid's connection idle longest, if one
    // has been idle a quarter of the idle timeout or more and is not being served (a kept
    // connection: its client connects again at its next call). True when one was closed (under
    // conns_mu_).
    bool evict_idle_of_uid_locked(const Peer& peer, std::int64_t now);
    bool refuse(Conn& c);
    void serve_conn(std::uint64_t id, std::uint32_t events);
    bool on_readable(Conn& c);  // false: close the connection
    void sweep_idle();
    int setup_loop();
    bool refresh_mount_state_locked();
    // Is the mount that the client walked to `dirfd` read-only (pin: EROFS)? `dirfd` is on
    // this mount's superblock.
    bool walked_read_only(int dirfd);
    // Is mount `mnt_id` of the daemon's mount namespace read-only? False when it is not there
    // (the client's own namespace): the mount table only, never the filesystem.
    bool mount_read_only(std::uint64_t mnt_id);
    // Is the superblock read-only (get: EROFS), counting a remount made just before the request?
    bool superblock_read_only();
    void take_pending_mount_change();  // takes mount_mu_ when there is a change

private:
    protocol::Reply handle(RequestCreds& c, const protocol::Request& req,
                           std::vector<UniqueFd>& fds, UniqueFd& out_fd);
    protocol::Reply do_pin(RequestCreds& c, const protocol::Request& req,
                           std::vector<UniqueFd>& fds);
    protocol::Reply do_get(RequestCreds& c, std::uint32_t flags, std::vector<UniqueFd>& fds,
                           UniqueFd& out_fd);
    protocol::Reply do_status(RequestCreds& c);
    protocol::Reply do_remount(RequestCreds& c, const std::string& list);
    protocol::Reply do_upgrade(RequestCreds& c, const std::string& path);

    fsops::Filesystem& fs_;
    Registry& registry_;
    BrokerHooks hooks_;
    BrokerConfig cfg_;
    std::string self_userns_;  // our user namespace (readlink /proc/self/ns/user)
    UniqueFd listen_;
    UniqueFd epoll_;
    UniqueFd stop_event_;  // never read: once written, every thread's epoll_wait sees it
    UniqueFd tree_;        // the detached clone of the mount the socket is bound through
    UniqueFd mountinfo_;   // polled: the mount table changed
    dev_t mount_dev_ = 0;  // set before run()
    std::atomic<bool> sb_read_only_{false};
    std::mutex mount_mu_;
    // The mounts of this mount namespace: id -> mounted read-only. A pin asks it instead of
    // fstatvfs(), which is a FUSE round trip (STATFS), or another filesystem's call. Under
    // mount_mu_.
    std::unordered_map<std::uint64_t, bool> mount_ro_;
    std::atomic<bool> mount_gone_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<bool> handover_{false};
    std::atomic<bool> ending_{false};  // a thread saw the end (mount gone, fatal error)
    std::atomic<std::int64_t> next_sweep_{0};
    // Shared for finding a connection to serve; exclusive for everything else.
    std::shared_mutex conns_mu_;
    // Connections by id (the epoll data; never reused, so a late event of a closed connection
    // finds nothing). A thread serving one holds a reference, so its fd stays open.
    std::unordered_map<std::uint64_t, std::shared_ptr<Conn>> conns_;
    std::unordered_map<uid_t, std::size_t> conns_of_uid_;  // under conns_mu_
    std::size_t open_ = 0;       // under conns_mu_: connections admitted and not yet closed
    std::uint64_t refused_ = 0;  // under conns_mu_: over a limit
    std::size_t refusing_ = 0;   // under conns_mu_: refused ones in conns_, awaiting a request
    std::atomic<std::uint64_t> bad_messages_{0};  // malformed messages, all peers
    std::uint64_t next_conn_id_ = 16;             // under conns_mu_; below 16: the loop's own fds
    Closer closer_;
};

}  // namespace bpffs::broker
