// SPDX-License-Identifier: GPL-2.0-or-later
// The supervisor: holds the mount and the objects, starts, restarts and upgrades workers.
//
// It is a state machine driven by events from one poll(2), whose timeout is the nearest
// deadline (none when nothing is due). Events:
//   message      a control message from the worker (ready, upgrade, handed_over change the state;
//                obj_add/obj_del/keep_*/log_replace/conn only update what is held)
//   stop_signal  SIGTERM, SIGINT or SIGHUP (a signalfd)
//   worker_exit  the worker was reaped (SIGCHLD on the same signalfd, then waitpid); the
//                control messages it sent before are read first
//   worker_stuck the worker's main thread ended 0.5 s ago while another thread cannot (dying())
//   stop_timeout the worker did not stop within 10 s of SIGTERM
// States (every one but done has a worker) and transitions, step():
//   starting      ready -> serving (first ready: ready_(), the parent and systemd are told)
//                 worker_exit/stuck -> starting (a new worker; after an upgrade, back to the
//                   previous binary; the 5th failure in a row, or the mount's first worker before
//                   its socket existed -> done(1))
//   serving       upgrade request, checks pass -> handing_over (reply 0, send handover);
//                   refused -> serving (reply the errno); worker_exit/stuck -> starting (restart)
//   handing_over  handed_over -> handed_over; worker_exit/stuck -> starting (a restart)
//   handed_over   worker_exit with kExitHandedOver, or stuck -> starting (the new binary, with
//                   the client connections the worker handed over)
//   any of those  stop_signal -> stopping (SIGTERM to the worker); worker_exit kExitStopped ->
//                   done(0); worker_exit kExitGone (the mount went) -> done(0), fd store emptied
//   stopping      worker_exit/stuck -> done(0); stop_timeout -> stopping (SIGKILL); upgrade ->
//   EBUSY done          unmounted; run() returns the exit code
// Watching for a stuck worker: the kernel tells nothing when a process's main thread ends while
// another is blocked, so the supervisor looks at /proc every 0.1 s while a worker starts; once it
// serves, a pidfd per thread (PIDFD_THREAD, Linux 6.9+) says when one ends, and only then does the
// looking start again, for a second. Older kernels are looked at throughout.
#include "daemon/supervisor.hpp"

#include "common/proc_status.hpp"
#include "daemon/control.hpp"
#include "daemon/fuse_loop.hpp"
#include "daemon/handoff.hpp"
#include "daemon/notify.hpp"
#include "daemon/state_log.hpp"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>

namespace bpffs::daemon {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxFailedStarts = 5;
constexpr auto kStopTimeout = std::chrono::seconds(10);
constexpr auto kProbeInterval = std::chrono::milliseconds(100);  // a look at a worker (dying())
constexpr auto kStuckGrace = std::chrono::milliseconds(500);     // dying that long: stuck
constexpr auto kThreadEndWatch = std::chrono::seconds(1);  // looks after a worker's thread ended
// pidfd_open's flag for a pidfd of one thread (linux/pidfd.h since 6.9; Debian 12's lacks it).
constexpr unsigned kPidfdThread = O_EXCL;

std::string self_exe() {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return "/proc/self/exe";
    std::string s(buf, static_cast<std::size_t>(n));
    if (s.size() > 10 && s.ends_with(" (deleted)")) return "/proc/self/exe";
    return s;
}

// A binary a client names for an upgrade runs with the daemon's privileges, so it must be as
// hard to change as the daemon's own: the file and every directory above it owned by root or by
// the daemon's user, and writable by no one else (a sticky /tmp is writable by others: refused).
// Symlinks are resolved first; the result is what gets checked and later executed, and only
// root or the daemon's user can replace anything on that path. Nothing is executed here.
// Returns 0 with `canonical` set, or EACCES / the walk's errno with `why` saying what failed.
int check_trusted_path(const std::string& path, std::string& canonical, std::string& why) {
    if (path.empty() || path[0] != '/') {
        why = "not an absolute path";
        return EINVAL;
    }
    char real[PATH_MAX];
    if (realpath(path.c_str(), real) == nullptr) {
        int e = errno;
        why = std::strerror(e);
        return e;
    }
    canonical = real;
    const uid_t self = geteuid();
    UniqueFd at(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    std::string walked = "/";
    std::size_t pos = 1;
    while (true) {
        if (!at) {
            int e = errno;
            why = walked + ": " + std::strerror(e);
            return e;
        }
        struct stat st {};
        if (fstat(at.get(), &st) != 0) {
            int e = errno;
            why = walked + ": " + std::strerror(e);
            return e;
        }
        if (st.st_uid != 0 && st.st_uid != self) {
            why = walked + " is owned by uid " + std::to_string(st.st_uid);
            return EACCES;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
            why = walked + " is writable by others (mode " + std::to_string((st.st_mode >> 6) & 7) +
                  std::to_string((st.st_mode >> 3) & 7) + std::to_string(st.st_mode & 7) + ")";
            return EACCES;
        }
        if (pos >= canonical.size()) {
            if (!S_ISREG(st.st_mode)) {
                why = "not a regular file";
                return EINVAL;
            }
            return 0;
        }
        std::size_t next = canonical.find('/', pos);
        if (next == std::string::npos) next = canonical.size();
        std::string name = canonical.substr(pos, next - pos);
        walked = canonical.substr(0, next);
        at.reset(openat(at.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
        pos = next + 1;
    }
}

// Checks that `path` is a bpffs-fuse binary that runs here: `PATH --version` within 5 s,
// printing "bpffs-fuse ...". Returns 0 or a positive errno; `what` gets the version line.
int check_binary(const std::string& path, std::string& what) {
    if (path.empty() || path[0] != '/') return EINVAL;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return errno;
    if (!S_ISREG(st.st_mode)) return EINVAL;
    if (access(path.c_str(), X_OK) != 0) return errno;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return errno;
    UniqueFd rd(p[0]), wr(p[1]);
    pid_t pid = fork();
    if (pid < 0) return errno;
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        dup2(wr.get(), 1);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) dup2(devnull, 2);
        execl(path.c_str(), path.c_str(), "--version", static_cast<char*>(nullptr));
        _exit(127);
    }
    wr.reset();
    std::string out;
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (Clock::now() < deadline) {
        pollfd pf{rd.get(), POLLIN, 0};
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (poll(&pf, 1, static_cast<int>(left.count())) <= 0) continue;
        char buf[256];
        ssize_t n = read(rd.get(), buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > 4096) break;
    }
    kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (!out.starts_with("bpffs-fuse ")) return ENOEXEC;
    what = out.substr(0, out.find('\n'));
    return 0;
}

// True when the worker's main thread has exited while another of its threads has not: the
// process is dying but cannot be reaped yet. That happens when a thread is blocked in the kernel
// on something only a live worker can release, e.g. an entry invalidation waiting for a
// directory lock that a request the dead worker never answered holds. The next worker answers
// that request (the kernel resends it, or the in-flight area holds it on kernels before 6.9), so
// it must start now, not at the reaping.
bool dying(pid_t pid) {
    char state = process_state(pid);
    return state == 'Z' || state == 'X';
}

class Supervisor {
public:
    Supervisor(SupervisorConfig cfg, std::function<void()> ready)
        : cfg_(std::move(cfg)), ready_(std::move(ready)), binary_(self_exe()),
          started_as_(binary_) {}
    ~Supervisor() {
        if (se_ != nullptr) fuse_session_destroy(se_);
    }
    // run(), but a failure after the mount unmounts before it is reported.
    int run_guarded() {
        try {
            return run();
        } catch (...) {
            if (worker_ > 0) kill(worker_, SIGKILL);
            unmount();
            throw;
        }
    }

private:
    // The states and the events of the table at the top of this file.
    enum class State { starting, serving, handing_over, handed_over, stopping, done };
    struct Event {
        enum class Kind { message, stop_signal, worker_exit, worker_stuck, stop_timeout };
        Kind kind;
        CtlReceived msg;  // message
        int value = 0;    // stop_signal: the signal; worker_exit: the wait status
    };

    int run();
    void open_state();
    void block_signals();
    void mount();
    void unmount();
    void spawn(std::vector<UniqueFd> conns);
    void store(const std::string& name, int fd);
    void unstore(const std::string& name);
    void forget_store();
    void store_state();

    // The state machine: step() takes one event in one state and returns the next state.
    State step(State s, Event& e);
    State on_message(State s, CtlReceived& m);
    State on_ready(State s);
    State on_upgrade(State s, const std::string& text);
    State on_stop_signal(State s, int sig);
    State on_worker_exit(State s, int status);
    State drain(State s);
    State finish(int rc);
    void feed(Event e);
    // The event source: one poll of the signalfd, the control socket and the worker's thread
    // pidfds, its timeout the nearest deadline; every event it finds goes to feed().
    void wait_for_events();
    int poll_timeout() const;
    void read_control();
    void read_signals();
    void check_deadlines();
    // The dying-worker watch (see dying()): thread pidfds and the probe.
    void watch_worker();
    void watch_threads();
    void probe();

    SupervisorConfig cfg_;
    std::function<void()> ready_;
    std::string binary_;            // what workers run
    const std::string started_as_;  // the daemon's own binary, trusted for an upgrade back
    std::string previous_;          // before an upgrade, until the new worker serves
    std::string pending_;           // accepted upgrade, taking effect at the handover
    fuse_session* se_ = nullptr;
    UniqueFd log_, inflight_, listen_, tree_, ctl_, sigfd_;
    std::map<std::uint64_t, UniqueFd> objects_;
    std::vector<UniqueFd> handed_conns_;

    State state_ = State::starting;
    int exit_code_ = 0;        // set on entering done
    pid_t worker_ = -1;        // the worker of the current state (every state but done has one)
    bool ctl_eof_ = false;     // the worker's end of ctl_ is closed: poll it no more
    bool ever_ready_ = false;  // a worker has served: ready_() was called
    bool first_ = true;        // the next worker is the mount's first: INIT still to come
    int failed_starts_ = 0;    // workers in a row that died before serving
    std::uint32_t generation_ = 0;
    std::uint32_t restarts_ = 0;
    std::vector<pid_t> abandoned_;  // dying workers already replaced, reaped when they go

    // Deadlines; Clock::time_point::max() when not due. The poll's timeout is the nearest.
    Clock::time_point stop_deadline_ = Clock::time_point::max();  // stopping: SIGKILL then
    Clock::time_point probe_at_ = Clock::time_point::max();       // next look at dying()
    Clock::time_point probe_until_ = Clock::time_point::max();    // looks go on until then
    Clock::time_point stuck_at_ = Clock::time_point::max();       // dying since 0.5 s: stuck
    std::vector<UniqueFd> thread_fds_;  // PIDFD_THREAD pidfds of the worker's other threads
    bool thread_pidfds_ = true;         // the kernel has them (Linux 6.9+)

    bool fdstore_ = false;
    std::uint64_t state_gen_ = 0;
    bool stored_state_used_ = false;  // the state log is in the store as "state-<state_gen_>"
};

void Supervisor::mount() {
    static const fuse_lowlevel_ops no_ops{};
    std::vector<std::string> argv = {"bpffs-fuse", "-o", cfg_.fuse_options};
    fuse_args args = FUSE_ARGS_INIT(0, nullptr);
    for (const auto& a : argv) fuse_opt_add_arg(&args, a.c_str());
    se_ = fuse_session_new(&args, &no_ops, sizeof no_ops, nullptr);
    fuse_opt_free_args(&args);
    if (se_ == nullptr)
        throw std::runtime_error("cannot create the FUSE session (see the message above)");
    if (fuse_session_mount(se_, cfg_.mountpoint.c_str()) != 0) {
        fuse_session_destroy(se_);
        se_ = nullptr;
        throw std::runtime_error("cannot mount on " + cfg_.mountpoint + " (see the message above)");
    }
}

void Supervisor::unmount() {
    // The socket and the clone keep the superblock alive: let go of them first, so that an
    // already unmounted filesystem is seen as gone instead of unmounted a second time.
    ctl_.reset();
    listen_.reset();
    tree_.reset();
    objects_.clear();
    handed_conns_.clear();
    if (se_ != nullptr) {
        fuse_session_unmount(se_);
        fuse_session_destroy(se_);
        se_ = nullptr;
    }
}

void Supervisor::store(const std::string& name, int fd) {
    if (!fdstore_) return;
    std::array<int, 1> one{fd};
    // FDPOLL=0: a map fd polls as EPOLLERR, which systemd would take as "gone" and drop.
    if (int e = sd_notify_fds("FDSTORE=1\nFDPOLL=0\nFDNAME=" + name, one); e != 0) {
        spdlog::warn("fd store: {}: {}", name, std::strerror(e));
    }
}

void Supervisor::unstore(const std::string& name) {
    if (!fdstore_) return;
    sd_notify_state("FDSTOREREMOVE=1\nFDNAME=" + name);
}

void Supervisor::forget_store() {
    if (!fdstore_) return;
    for (const auto& [h, fd] : objects_) unstore("obj-" + std::to_string(h));
    unstore("state-" + std::to_string(state_gen_));
}

// The state log under a new name first, then the old name goes: whatever happens in between,
// the store holds a complete log (the start takes the highest number).
void Supervisor::store_state() {
    if (!fdstore_) return;
    std::uint64_t old = state_gen_++;
    store("state-" + std::to_string(state_gen_), log_.get());
    if (old != 0) unstore("state-" + std::to_string(old));
}

void Supervisor::spawn(std::vector<UniqueFd> conns) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        throw std::runtime_error("socketpair: " + std::string(std::strerror(errno)));
    }
    ctl_.reset(sv[0]);
    UniqueFd child_end(sv[1]);
    WorkerHandoff h;
    h.mountpoint = cfg_.mountpoint;
    h.options = cfg_.our_options;
    h.read_only = cfg_.read_only;
    h.first = first_;
    h.detached = cfg_.detached;
    h.debug = cfg_.debug;
    h.log_level = cfg_.log_level;
    h.log_file = cfg_.log_file;
    h.fuse_fd = fuse_session_fd(se_);
    h.control_fd = child_end.get();
    h.log_fd = log_.get();
    h.inflight_fd = inflight_.get();
    h.listen_fd = listen_.get();
    h.tree_fd = tree_.get();
    h.supervisor_pid = static_cast<std::uint32_t>(getpid());
    h.generation = ++generation_;
    h.restarts = restarts_;
    for (const auto& [handle, fd] : objects_) h.objects.emplace_back(handle, fd.get());
    for (const auto& c : conns) h.conns.push_back(c.get());
    UniqueFd desc(memfd_create("bpffs-handoff", MFD_CLOEXEC));
    std::string text = to_text(h);
    if (!desc || write(desc.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        throw std::runtime_error("handoff: " + std::string(std::strerror(errno)));
    }
    std::vector<int> keep = h.fds();
    keep.push_back(desc.get());
    std::string desc_arg = std::to_string(desc.get());
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int fd : keep) fcntl(fd, F_SETFD, 0);
        execl(binary_.c_str(), "bpffs-fuse", "--worker", desc_arg.c_str(),
              static_cast<char*>(nullptr));
        _exit(127);
    }
    worker_ = pid;
    ctl_eof_ = false;
    watch_worker();
    spdlog::info("started worker {} (generation {}, {})", pid, generation_, binary_);
}

// Every event goes through here; nothing happens once the machine is done.
void Supervisor::feed(Event e) {
    if (state_ != State::done) state_ = step(state_, e);
}

Supervisor::State Supervisor::step(State s, Event& e) {
    switch (e.kind) {
        case Event::Kind::message:
            return on_message(s, e.msg);
        case Event::Kind::stop_signal:
            return on_stop_signal(s, e.value);
        case Event::Kind::worker_exit:
            return on_worker_exit(s, e.value);
        case Event::Kind::worker_stuck:
            spdlog::warn("worker {} is dying but cannot finish; not waiting for it", worker_);
            abandoned_.push_back(worker_);
            return on_worker_exit(s, s == State::handed_over ? W_EXITCODE(kExitHandedOver, 0)
                                                             : W_EXITCODE(0, SIGKILL));
        case Event::Kind::stop_timeout:
            spdlog::warn("worker {} did not stop in time; killing it", worker_);
            kill(worker_, SIGKILL);
            stop_deadline_ = Clock::time_point::max();
            return s;
    }
    return s;
}

Supervisor::State Supervisor::on_message(State s, CtlReceived& m) {
    switch (m.msg.type) {
        case Ctl::obj_add:
            if (m.fd) {
                store("obj-" + std::to_string(m.msg.arg), m.fd.get());
                objects_[m.msg.arg] = std::move(m.fd);
            }
            return s;
        case Ctl::obj_del:
            if (objects_.erase(m.msg.arg) != 0) unstore("obj-" + std::to_string(m.msg.arg));
            return s;
        case Ctl::keep_listen:
            // The socket is bound through the mount, so the kernel's INIT was answered and
            // recorded: the next worker resumes this connection instead of waiting for one.
            listen_ = std::move(m.fd);
            first_ = false;
            return s;
        case Ctl::keep_tree:
            tree_ = std::move(m.fd);
            return s;
        case Ctl::log_replace:
            if (m.fd) {
                log_ = std::move(m.fd);
                store_state();
            }
            return s;
        case Ctl::ready:
            return on_ready(s);
        case Ctl::upgrade:
            return on_upgrade(s, m.msg.text);
        case Ctl::conn:
            if (m.fd) handed_conns_.push_back(std::move(m.fd));
            return s;
        case Ctl::handed_over:
            return s == State::handing_over ? State::handed_over : s;
        default:
            spdlog::warn("worker sent an unknown message {}", static_cast<unsigned>(m.msg.type));
            return s;
    }
}

Supervisor::State Supervisor::on_ready(State s) {
    first_ = false;
    failed_starts_ = 0;
    if (!previous_.empty()) {
        spdlog::info("upgrade done: worker {} runs {}", worker_, binary_);
        previous_.clear();
    }
    sd_notify_state("STATUS=serving " + cfg_.mountpoint + " (worker " + std::to_string(worker_) +
                    ", generation " + std::to_string(generation_) + ")");
    watch_threads();
    if (!ever_ready_) {
        ever_ready_ = true;
        ready_();
    }
    return s == State::starting ? State::serving : s;
}

// The broker let only a caller with CAP_SYS_ADMIN this far. No path: the binary the daemon runs
// (re-read from disk). The daemon's own binary, the one it was started as, is trusted as it is;
// any other path a client names must pass check_trusted_path before anything runs it.
Supervisor::State Supervisor::on_upgrade(State s, const std::string& text) {
    std::string path = text.empty() ? binary_ : text;
    std::string version, canonical, why;
    bool busy = s == State::stopping || s == State::handing_over || s == State::handed_over;
    int e = busy ? EBUSY : 0;
    if (e == 0 && path != binary_ && path != started_as_) {
        e = check_trusted_path(path, canonical, why);
        if (e != 0) {
            spdlog::warn("upgrade to {} refused: {}", path, why);
        } else {
            path = canonical;
        }
    }
    if (e == 0) e = check_binary(path, version);
    if (e == 0) {
        spdlog::info("upgrade: handing over to {} ({})", path, version);
    } else if (why.empty()) {
        spdlog::warn("upgrade to {} refused: {}", path, std::strerror(e));
    }
    ctl_send(ctl_.get(), {Ctl::upgrade_reply, static_cast<std::uint64_t>(e), {}});
    if (e != 0) return s;
    pending_ = path;
    ctl_send(ctl_.get(), {Ctl::handover, 0, {}});
    return State::handing_over;
}

Supervisor::State Supervisor::on_stop_signal(State s, int sig) {
    if (s == State::stopping) return s;
    spdlog::info("signal {}: stopping", strsignal(sig));
    sd_notify_state("STOPPING=1");
    stop_deadline_ = Clock::now() + kStopTimeout;
    if (worker_ > 0) kill(worker_, SIGTERM);
    return State::stopping;
}

// Everything a worker sent before it went is still queued: take it all.
Supervisor::State Supervisor::drain(State s) {
    while (ctl_) {
        CtlReceived m = ctl_recv(ctl_.get(), MSG_DONTWAIT);
        if (m.eof || m.error == EAGAIN) break;
        if (m.error != 0) {
            spdlog::warn("control channel: {}", std::strerror(m.error));
            break;
        }
        s = on_message(s, m);
    }
    return s;
}

Supervisor::State Supervisor::finish(int rc) {
    sd_notify_state("STOPPING=1");
    unmount();
    exit_code_ = rc;
    stop_deadline_ = probe_at_ = stuck_at_ = Clock::time_point::max();
    return State::done;
}

Supervisor::State Supervisor::on_worker_exit(State s, int status) {
    s = drain(s);
    pid_t was = worker_;
    worker_ = -1;
    thread_fds_.clear();
    probe_at_ = stuck_at_ = Clock::time_point::max();
    bool clean = WIFEXITED(status);
    int code = clean ? WEXITSTATUS(status) : -1;
    if (s == State::handed_over && clean && code == kExitHandedOver) {
        previous_ = binary_;
        binary_ = pending_;
        pending_.clear();
        auto conns = std::move(handed_conns_);
        handed_conns_.clear();
        spawn(std::move(conns));
        return State::starting;
    }
    pending_.clear();
    handed_conns_.clear();
    if (clean && code == kExitStopped) {
        spdlog::info("worker {} stopped; unmounting {}", was, cfg_.mountpoint);
        return finish(0);
    }
    if (clean && code == kExitGone) {
        spdlog::info("{} is gone; releasing every object", cfg_.mountpoint);
        forget_store();
        return finish(0);
    }
    if (s == State::stopping) return finish(0);
    std::string how = clean ? "exited with " + std::to_string(code)
                            : std::string("killed by ") + strsignal(WTERMSIG(status));
    // Before its socket existed the first worker only failed to start: nothing to keep. After,
    // clients may already use the mount (they can connect before "ready" arrives here).
    if (!ever_ready_ && (!listen_ || (clean && code == kExitStartFailed))) {
        spdlog::error("worker {} {} before serving; unmounting", was, how);
        return finish(1);
    }
    if (s == State::starting) {
        ++failed_starts_;
        if (!previous_.empty()) {
            spdlog::error("the upgraded worker {} {} before serving; going back to {}", was, how,
                          previous_);
            binary_ = previous_;
            previous_.clear();
        } else if (failed_starts_ >= kMaxFailedStarts) {
            spdlog::critical("{} workers in a row {} before serving; giving up and unmounting",
                             failed_starts_, how);
            return finish(1);
        }
    }
    ++restarts_;
    spdlog::warn("worker {} {}; starting another (restart {})", was, how, restarts_);
    spawn({});
    return State::starting;
}

// A new worker: probed until it serves (no event tells that a starting worker got stuck dying).
void Supervisor::watch_worker() {
    thread_fds_.clear();
    stuck_at_ = probe_until_ = Clock::time_point::max();
    probe_at_ = Clock::now() + kProbeInterval;
}

// The worker serves: a pidfd for each of its threads but the first, readable when that thread
// has ended, replaces the probe after one more look. A worker that dies loses its other threads
// at once (the stuck one aside), and that event starts the probe again for a second. Without
// PIDFD_THREAD (Linux < 6.9) the probe goes on.
void Supervisor::watch_threads() {
    thread_fds_.clear();
    if (!thread_pidfds_ || worker_ <= 0) return;
    std::error_code ec;
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(worker_) + "/task", ec)) {
        pid_t tid = 0;
        std::string name = entry.path().filename();
        if (std::from_chars(name.data(), name.data() + name.size(), tid).ec != std::errc() ||
            tid == worker_) {
            continue;
        }
        UniqueFd fd(static_cast<int>(syscall(SYS_pidfd_open, tid, kPidfdThread)));
        if (!fd && errno == EINVAL) {
            spdlog::debug("no thread pidfds (Linux < 6.9): probing the worker instead");
            thread_pidfds_ = false;
            thread_fds_.clear();
            return;
        }
        if (fd) thread_fds_.push_back(std::move(fd));
    }
}

// A look at the worker: dying for kStuckGrace makes it stuck (check_deadlines).
void Supervisor::probe() {
    probe_at_ = Clock::time_point::max();
    if (worker_ <= 0 || stuck_at_ != Clock::time_point::max()) return;
    auto now = Clock::now();
    // A worker that exits normally passes through this state too, for far less than the grace.
    if (dying(worker_)) {
        stuck_at_ = now + kStuckGrace;
    } else if (thread_fds_.empty() && (now < probe_until_ || !thread_pidfds_)) {
        probe_at_ = now + kProbeInterval;
    } else if (thread_fds_.empty()) {
        watch_threads();  // a thread ended a while ago and the worker lives on: back to events
    }
}

int Supervisor::poll_timeout() const {
    auto next = std::min({stop_deadline_, probe_at_, stuck_at_});
    if (next == Clock::time_point::max()) return -1;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
    return static_cast<int>(std::clamp<decltype(ms)>(ms, 0, INT_MAX));
}

void Supervisor::read_control() {
    while (state_ != State::done && ctl_ && !ctl_eof_) {
        CtlReceived m = ctl_recv(ctl_.get(), MSG_DONTWAIT);
        if (m.eof) ctl_eof_ = true;
        if (m.eof || m.error != 0) return;
        feed({Event::Kind::message, std::move(m)});
    }
}

// Stop signals, and SIGCHLD: reaps every child that ended, the worker's exit is an event.
void Supervisor::read_signals() {
    signalfd_siginfo si{};
    while (read(sigfd_.get(), &si, sizeof si) == sizeof si) {
        int sig = static_cast<int>(si.ssi_signo);
        if (sig != SIGCHLD) feed({Event::Kind::stop_signal, {}, sig});
    }
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (pid == worker_) {
            feed({Event::Kind::worker_exit, {}, status});
        } else {
            std::erase(abandoned_, pid);
        }
    }
}

void Supervisor::check_deadlines() {
    if (Clock::now() >= stop_deadline_) feed({Event::Kind::stop_timeout});
    if (Clock::now() >= probe_at_) probe();
    if (Clock::now() >= stuck_at_) {
        stuck_at_ = Clock::time_point::max();
        feed({Event::Kind::worker_stuck});
    }
}

void Supervisor::wait_for_events() {
    std::vector<pollfd> p = {{sigfd_.get(), POLLIN, 0},
                             {ctl_ && !ctl_eof_ ? ctl_.get() : -1, POLLIN, 0}};
    for (const auto& t : thread_fds_) p.push_back({t.get(), POLLIN, 0});
    if (poll(p.data(), p.size(), poll_timeout()) < 0 && errno != EINTR) {
        spdlog::critical("poll: {}", std::strerror(errno));
    }
    if (p[1].revents & (POLLIN | POLLHUP)) read_control();
    // One of the worker's threads ended: it is stopping or dying. Look at it for a while.
    if (std::any_of(p.begin() + 2, p.end(), [](const pollfd& x) { return x.revents != 0; })) {
        thread_fds_.clear();
        probe_at_ = Clock::now();
        probe_until_ = probe_at_ + kThreadEndWatch;
    }
    if (p[0].revents & POLLIN) read_signals();
    check_deadlines();
}

// The state log (systemd's fd store's, or a new one) with the objects the store kept, and the
// in-flight area.
void Supervisor::open_state() {
    UniqueFd stored_state;
    for (auto& [name, fd] : cfg_.stored) {
        std::uint64_t handle = 0, gen = 0;
        if (name.starts_with("state-") &&
            std::from_chars(name.data() + 6, name.data() + name.size(), gen).ec == std::errc()) {
            if (gen >= state_gen_) {
                if (stored_state) unstore("state-" + std::to_string(state_gen_));
                stored_state = std::move(fd);
                state_gen_ = gen;
            } else {
                unstore(name);
            }
        } else if (name.starts_with("obj-") &&
                   std::from_chars(name.data() + 4, name.data() + name.size(), handle).ec ==
                       std::errc()) {
            objects_[handle] = std::move(fd);
        } else {
            spdlog::warn("ignoring an unknown fd \"{}\" from the fd store", name);
            unstore(name);
        }
    }
    if (stored_state) {
        spdlog::info("restoring {} object(s) and the tree from systemd's fd store",
                     objects_.size());
        log_ = std::move(stored_state);
        stored_state_used_ = true;
    } else {
        auto log = StateLog::create();
        if (!log) {
            throw std::runtime_error("state log: " + std::string(std::strerror(log.error().value)));
        }
        log_.reset(fcntl((*log)->fd(), F_DUPFD_CLOEXEC, 3));
        if (!objects_.empty()) {
            spdlog::warn("the fd store holds objects but no tree; releasing them");
            forget_store();
            objects_.clear();
        }
    }
    inflight_.reset(memfd_create("bpffs-inflight", MFD_CLOEXEC));
    if (!inflight_ ||
        ftruncate(inflight_.get(), static_cast<off_t>(FuseLoop::inflight_size())) != 0) {
        throw std::runtime_error("in-flight area: " + std::string(std::strerror(errno)));
    }
}

// Stop signals and SIGCHLD arrive through a signalfd, read by wait_for_events().
void Supervisor::block_signals() {
    sigset_t mask;
    sigemptyset(&mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&mask, sig);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);
    sigfd_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sigfd_) throw std::runtime_error("signalfd: " + std::string(std::strerror(errno)));
}

int Supervisor::run() {
    fdstore_ = notify_socket_set();
    open_state();
    block_signals();
    mount();
    spdlog::info("mounted {} on {}", cfg_.source, cfg_.mountpoint);
    if (!stored_state_used_) store_state();
    spawn({});
    state_ = State::starting;
    while (state_ != State::done) wait_for_events();
    return exit_code_;
}

}  // namespace

int supervisor_main(SupervisorConfig cfg, const std::function<void()>& ready) {
    Supervisor s(std::move(cfg), ready);
    return s.run_guarded();
}

}  // namespace bpffs::daemon
