// SPDX-License-Identifier: GPL-2.0-or-later
// The worker: the process that serves the mount (FUSE requests and the broker's socket), started
// by the supervisor as `bpffs-fuse --worker FD` with everything it needs inherited (handoff.hpp).
// It rebuilds the core from the state log, logs every change there before answering, tells the
// supervisor of every kernel object it starts or stops holding, and on request stops at a
// request boundary and hands its client connections over (upgrade). docs/operations.md.
#pragma once

#include "common/unique_fd.hpp"
#include "daemon/handoff.hpp"
#include "daemon/mount_watch.hpp"
#include "daemon/recovery.hpp"
#include "daemon/test_hooks.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct fuse_session;

namespace bpffs::fsops {
class Filesystem;
}
namespace bpffs::broker {
class Broker;
class Registry;
}  // namespace bpffs::broker

namespace bpffs::daemon {

class FuseLoop;
class StateLog;
struct FuseState;

// Returns the process's exit code (control.hpp: kExit*).
int worker_main(int handoff_fd);

// One worker: what the handoff gave it, the core, the FUSE session and its threads, the broker
// and its thread. Driven from the process's main thread, in this order: start() once; serve() if
// start() returned 0; then stop(), which gives the exit code. Threads: the FUSE threads and the
// broker's threads call into the core, the registry and the upgrade handshake; the main thread
// reads signals and the supervisor's messages and compacts the state log.
class Worker {
public:
    Worker(WorkerHandoff handoff, TestHooks hooks);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Takes the handoff's fds, rebuilds the core from the state log (dropping names whose object
    // nobody holds), rewrites the log from it, creates the FUSE session, takes over the kernel's
    // connection (answering what a previous worker left unanswered) and starts the FUSE threads
    // and the broker's. Returns 0, or kExitStartFailed with the reason logged.
    int start();
    // The main thread's loop until the worker must end: a stop signal, the supervisor's handover
    // request, the mount gone, or a broker that could not start. Answers upgrade requests the
    // broker forwarded, and compacts the state log when idle.
    void serve();
    // Stops the broker (for a handover keeping its connections, which go to the supervisor), then
    // the FUSE threads at a request boundary. Returns the process's exit code.
    int stop();

private:
    enum class Reason { none, stop, gone, handover };
    struct SessionDeleter {
        void operator()(fuse_session* se) const;
    };

    void take_fds();
    bool open_core();
    bool open_session();
    bool take_over_connection();
    void start_broker();
    void run_broker();
    int upgrade(const std::string& path);
    void on_control_message();
    void compact();
    void end_with(Reason r);
    int ctl() const { return control_.get(); }

    WorkerHandoff h_;
    const TestHooks hooks_;
    UniqueFd sigfd_, control_, fuse_fd_, inflight_, listen_fd_, tree_fd_;
    std::vector<UniqueFd> conns_;
    bool supervised_ = true;  // the control channel is open
    bool resume_ = false;     // an earlier worker served this connection: replay its INIT
    std::unique_ptr<StateLog> log_;
    std::unique_ptr<broker::Registry> registry_;
    RecoveryReport recovery_;             // what this worker's start found lost, for status
    std::unique_ptr<MountWatch> mounts_;  // kernel bpffs mounts on this mount
    std::unique_ptr<fsops::Filesystem> core_;
    std::unique_ptr<FuseState> state_;  // the session's userdata: outlives the session
    std::unique_ptr<fuse_session, SessionDeleter> se_;
    UniqueFd wake_;  // an eventfd: end_with() wakes serve()
    std::atomic<Reason> reason_{Reason::none};
    std::unique_ptr<FuseLoop> loop_;  // its threads use se_: goes first

    // The upgrade handshake: a broker thread sends the request to the supervisor and waits on
    // up_cv_ for the answer, which serve() (the main thread) reads from the control channel.
    // Lock order: up_mu_ is a leaf. The broker calls upgrade() holding none of its own, the
    // core's or the registry's locks, and nothing else is locked while up_mu_ is held.
    std::mutex up_mu_;
    std::condition_variable up_cv_;
    int up_result_ = -1;       // the supervisor's answer; -1 while none (under up_mu_)
    bool up_pending_ = false;  // an upgrade is being asked for (under up_mu_)

    std::unique_ptr<broker::Broker> broker_;
    int start_error_ = 0;  // the broker could not start (set by its thread, read after the join)
    std::thread broker_thread_;
};

}  // namespace bpffs::daemon
