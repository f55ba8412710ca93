// SPDX-License-Identifier: GPL-2.0-or-later
// The worker: serves FUSE and the broker from what the supervisor handed it.
#include "daemon/worker.hpp"

#include "broker/broker.hpp"
#include "broker/btf_text.hpp"
#include "broker/registry.hpp"
#include "daemon/control.hpp"
#include "daemon/fuse_adapter.hpp"
#include "daemon/fuse_loop.hpp"
#include "daemon/handoff.hpp"
#include "daemon/logging.hpp"
#include "daemon/recovery.hpp"
#include "daemon/state_log.hpp"
#include "daemon/test_hooks.hpp"
#include "fsops/filesystem.hpp"
#include "fsops/mount_options.hpp"
#include "fsops/state.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <malloc.h>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

namespace bpffs::daemon {
namespace {

// Makes the mount's superblock read-only, keeping its per-mount flags (a remount without
// MS_BIND sets them too). Returns 0 or a positive errno.
int remount_read_only(const std::string& mountpoint) {
    struct statvfs v {};
    if (statvfs(mountpoint.c_str(), &v) != 0) return errno;
    unsigned long flags = MS_REMOUNT | MS_RDONLY;
    const std::pair<unsigned long, unsigned long> map[] = {
        {ST_NOSUID, MS_NOSUID},          {ST_NODEV, MS_NODEV},           {ST_NOEXEC, MS_NOEXEC},
        {ST_NOATIME, MS_NOATIME},        {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
        {ST_SYNCHRONOUS, MS_SYNCHRONOUS}};
    for (auto [st, ms] : map) {
        if (v.f_flag & st) flags |= ms;
    }
    if (mount(nullptr, mountpoint.c_str(), nullptr, flags, nullptr) != 0) return errno;
    return 0;
}

std::string read_all(int fd) {
    std::string s;
    char buf[65536];
    off_t off = 0;
    ssize_t n;
    while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
        s.append(buf, static_cast<std::size_t>(n));
        off += n;
    }
    return s;
}

// The limits the mount's options set (recover() refuses options that do not parse).
fsops::ServiceLimits limits_of(const WorkerHandoff& h) {
    auto parsed = fsops::parse_mount_options(h.options);
    return parsed ? parsed->limits : fsops::ServiceLimits{};
}

}  // namespace

int worker_main(int handoff_fd) {
    auto parsed = parse_handoff(read_all(handoff_fd));
    ::close(handoff_fd);
    if (!parsed) {
        std::fprintf(stderr, "bpffs-fuse: error: malformed worker handoff\n");
        return kExitStartFailed;
    }
    try {
        setup_logging(parsed->log_level, parsed->log_file);
    } catch (const std::exception& e) {  // the file went away or its directory changed: stderr
        setup_logging(parsed->log_level);
        spdlog::error("cannot log to {}: {}", parsed->log_file, e.what());
    }
    // The supervisor's terminal is not ours: a worker started before the supervisor detached
    // must not keep it (or a pipe of `$(bpffs-fuse ...)`) open.
    if (parsed->detached) detach_from_terminal();
    Worker worker(std::move(*parsed), read_test_hooks());
    if (int e = worker.start(); e != 0) return e;
    worker.serve();
    return worker.stop();
}

void Worker::SessionDeleter::operator()(fuse_session* se) const { fuse_session_destroy(se); }

Worker::Worker(WorkerHandoff handoff, TestHooks hooks) : h_(std::move(handoff)), hooks_(hooks) {}

Worker::~Worker() = default;

// Signals: TERM/INT/HUP through a signalfd read by serve(); every thread inherits the mask.
// The handoff's fds become owned, and close on the exec of an upgrade's binary.
void Worker::take_fds() {
    sigset_t mask;
    sigemptyset(&mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaddset(&mask, sig);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    sigdelset(&mask, SIGUSR2);
    sigfd_.reset(signalfd(-1, &mask, SFD_CLOEXEC));
    signal(SIGPIPE, SIG_IGN);

    control_.reset(h_.control_fd);
    fuse_fd_.reset(h_.fuse_fd);
    inflight_.reset(h_.inflight_fd);
    listen_fd_.reset(h_.listen_fd);
    tree_fd_.reset(h_.tree_fd);
    for (int fd : h_.conns) conns_.emplace_back(fd);
    for (int fd : h_.fds()) fcntl(fd, F_SETFD, FD_CLOEXEC);
}

// The state log, the registry with the objects the supervisor holds, the core rebuilt from the
// log, and the log rewritten from the core: the state as it is now, then every change.
bool Worker::open_core() {
    std::string unusable;
    auto log = StateLog::open(UniqueFd(h_.log_fd), &unusable);
    if (!log) {
        spdlog::error("the state log is unusable: {}",
                      unusable.empty() ? std::strerror(log.error().value) : unusable);
        return false;
    }
    log_ = std::move(*log);
    int c = ctl();
    registry_ = std::make_unique<broker::Registry>(broker::RegistryHooks{
        [c](fsops::ObjHandle hd, int fd) {
            if (int e = ctl_send(c, {Ctl::obj_add, hd, {}}, fd); e != 0) {
                spdlog::error("cannot hand object {} to the supervisor: {}", hd, std::strerror(e));
            }
        },
        [c](fsops::ObjHandle hd) {
            ctl_send(c, {Ctl::obj_del, hd, {}});
        }});
    RecoveryInput in{h_.options, h_.first, h_.read_only, h_.listen_fd >= 0, {}};
    for (auto& [handle, fd] : h_.objects) {
        if (auto r = registry_->adopt(handle, UniqueFd(fd)); !r) {
            spdlog::warn("object {} from the supervisor: {}", handle,
                         std::strerror(r.error().value));
            ctl_send(c, {Ctl::obj_del, handle, {}});
        } else if (auto obj = registry_->object(handle)) {
            in.held.push_back(fsops::HeldObject{handle, obj->type, obj->id});
        }
    }
    auto core = recover(*log_, in, recovery_);
    if (!core) return false;
    core_ = std::move(*core);
    const fsops::ServiceLimits limits = limits_of(h_);
    core_->set_node_limits(fsops::NodeLimits{limits.nr_inodes, limits.nr_inodes_per_uid});
    registry_->set_refs(recovery_.refs);
    // The restore's index and its queue of names are gone: their pages go back before the log
    // is rewritten (which holds the old log and the new one at once).
    malloc_trim(0);
    resume_ = !h_.first && !log_->init().empty();
    if (int e = log_->reset_to(*core_, !h_.first,
                               [c](int fd) {
                                   ctl_send(c, {Ctl::log_replace, 0, {}}, fd);
                               });
        e != 0) {
        spdlog::error("cannot write the state log: {}", std::strerror(e));
        return false;
    }
    if (hooks_.compact_bytes) log_->set_compaction_floor(*hooks_.compact_bytes);
    StateLog& slog = *log_;
    core_->set_change_sink([&slog](const std::vector<fsops::Change>& ch) { slog.append(ch); });
    return true;
}

bool Worker::open_session() {
    state_ = std::make_unique<FuseState>(*core_);
    state_->release_on_destroy.store(false);  // the supervisor decides what a stop releases
    broker::Registry& registry = *registry_;
    state_->release_object = [&registry](fsops::ObjHandle hd) { registry.release(hd); };
    state_->map_text = [&registry](fsops::ObjHandle hd) -> Result<std::optional<std::string>> {
        auto fd = registry.open(hd);
        auto text =
            fd ? broker::map_text(fd->get()) : Result<std::optional<std::string>>(fd.error());
        if (!text) {
            spdlog::warn("cannot show map {} as text: {}", hd, std::strerror(text.error().value));
        }
        return text;
    };
    fuse_args args = FUSE_ARGS_INIT(0, nullptr);
    fuse_opt_add_arg(&args, "bpffs-fuse");
    if (h_.debug) fuse_opt_add_arg(&args, "-d");
    se_.reset(fuse_session_new(&args, &fuse_ops(), sizeof(fuse_lowlevel_ops), state_.get()));
    fuse_opt_free_args(&args);
    if (!se_) {
        spdlog::error("cannot create the FUSE session");
        return false;
    }
    wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    return true;
}

// The FUSE threads take over the kernel's connection; what a previous worker had read and not
// answered is answered (from the in-flight area) or asked for again.
bool Worker::take_over_connection() {
    try {
        StateLog& slog = *log_;
        loop_ = std::make_unique<FuseLoop>(
            se_.get(), std::move(fuse_fd_), inflight_.get(),
            [&slog](std::span<const std::uint8_t> b) { slog.set_init(b); });
        state_->io = loop_.get();
        if (resume_) {
            loop_->resume(slog.init());
            if (std::size_t n = loop_->replay_inflight(); n != 0) {
                spdlog::info("answered {} request(s) the previous worker had read", n);
            }
        }
        // Whatever else a previous worker had read and not answered (it may have died between
        // taking a request and recording it, the mount's INIT included) is queued again by the
        // kernel. The first worker of a mount finds nothing to resend.
        if (int e = loop_->request_resend(); e == 0) {
            if (h_.generation > 1) {
                spdlog::info(
                    "asked the kernel to resend the requests the previous worker had read");
            }
        } else if (e == EOPNOTSUPP) {
            if (h_.generation > 1) {
                spdlog::info(
                    "this kernel cannot resend requests (Linux < 6.9): a request the "
                    "previous worker read but had not recorded stays unanswered");
            }
        } else {
            spdlog::error("asking the kernel to resend requests: {}", std::strerror(e));
        }
    } catch (const std::exception& e) {
        spdlog::error("cannot take over the FUSE connection: {}", e.what());
        return false;
    }
    loop_->on_gone = [this] { end_with(Reason::gone); };
    if (hooks_.stall_opcode && h_.generation == 1) loop_->stall_opcode = *hooks_.stall_opcode;
    state_->session.store(se_.get());
    loop_->start();
    return true;
}

int Worker::start() {
    take_fds();
    if (!open_core() || !open_session() || !take_over_connection()) return kExitStartFailed;
    mounts_ = std::make_unique<MountWatch>(h_.mountpoint);
    mounts_->changed();
    start_broker();
    return 0;
}

void Worker::end_with(Reason r) {
    Reason none = Reason::none;
    reason_.compare_exchange_strong(none, r);
    std::uint64_t one = 1;
    (void)!write(wake_.get(), &one, sizeof one);
}

// Runs on a broker thread: asks the supervisor and waits for the answer serve() hands over.
int Worker::upgrade(const std::string& path) {
    std::unique_lock l(up_mu_);
    if (up_pending_) return EBUSY;
    up_pending_ = true;
    up_result_ = -1;
    if (int e = ctl_send(ctl(), {Ctl::upgrade, 0, path}); e != 0) {
        up_pending_ = false;
        return e;
    }
    bool answered =
        up_cv_.wait_for(l, std::chrono::seconds(30), [this] { return up_result_ >= 0; });
    up_pending_ = false;
    return answered ? up_result_ : ETIMEDOUT;
}

void Worker::start_broker() {
    FuseState& state = *state_;
    const fsops::ServiceLimits limits = limits_of(h_);
    std::optional<protocol::Op> stall;
    if (hooks_.stall_broker_op && h_.generation == 1)
        stall = static_cast<protocol::Op>(*hooks_.stall_broker_op);
    broker_ = std::make_unique<broker::Broker>(
        *core_, *registry_,
        broker::BrokerHooks{[&state](int dirfd, const std::string& name, fsops::PinRequest req) {
                                return publish_pin(state, dirfd, name, std::move(req));
                            },
                            [&state](fsops::Ino ino) { invalidate_inode(state, ino); },
                            [this] { end_with(Reason::gone); },
                            [this](const std::string& path) { return upgrade(path); },
                            [this](protocol::StatusInfo& s) {
                                s.worker_pid = s.pid;
                                s.pid = h_.supervisor_pid;
                                s.generation = h_.generation;
                                s.restarts = h_.restarts;
                                s.kernel_bpffs = mounts_->current();
                                s.recovery = protocol::RecoveryStatus{
                                    recovery_.damaged_at, recovery_.unrestorable,
                                    recovery_.names_dropped, recovery_.kept.size(),
                                    core_->lost_count()};
                            }},
        broker::BrokerConfig{.limits = limits, .version = BPFFS_VERSION, .stall_op = stall});
    broker_thread_ = std::thread([this] { run_broker(); });
}

// The broker's first thread: binds the socket (the first worker of a mount) or adopts the one the
// supervisor kept, reports ready, and serves until stopped.
void Worker::run_broker() {
    broker::Broker& broker = *broker_;
    int e = 0;
    if (!listen_fd_ || !tree_fd_) {
        state_->socket_creator.store(static_cast<pid_t>(syscall(SYS_gettid)));
        e = broker.bind_and_listen(h_.mountpoint, [&] {
            ctl_send(ctl(), {Ctl::keep_listen, 0, {}}, broker.listen_fd());
            ctl_send(ctl(), {Ctl::keep_tree, 0, {}}, broker.tree_fd());
        });
        if (e == 0 && h_.read_only) {
            e = remount_read_only(h_.mountpoint);
            broker.refresh_mount_state();
        }
    } else {
        e = broker.adopt(h_.mountpoint, std::move(listen_fd_), std::move(tree_fd_));
        for (auto& c : conns_) broker.adopt_connection(std::move(c));
    }
    if (e != 0) {
        if (broker.stopping()) return;
        spdlog::error("broker: cannot serve {}: {}", h_.mountpoint, std::strerror(e));
        start_error_ = e;
        end_with(Reason::stop);
        return;
    }
    ctl_send(ctl(), {Ctl::ready, 0, {}});
    spdlog::info("worker {} (generation {}) serving {}", getpid(), h_.generation, h_.mountpoint);
    broker.run();
}

void Worker::on_control_message() {
    CtlReceived m = ctl_recv(ctl(), MSG_DONTWAIT);
    if (m.eof) {
        spdlog::warn("the supervisor is gone; serving on without it");
        supervised_ = false;
    } else if (m.error == 0 && m.msg.type == Ctl::upgrade_reply) {
        std::lock_guard l(up_mu_);
        up_result_ = static_cast<int>(m.msg.arg);
        up_cv_.notify_all();
    } else if (m.error == 0 && m.msg.type == Ctl::handover) {
        end_with(Reason::handover);
    }
}

void Worker::compact() {
    int e = log_->compact(*core_, [c = ctl()](int fd) {
        ctl_send(c, {Ctl::log_replace, 0, {}}, fd);
    });
    if (e != 0)
        spdlog::warn("state log compaction failed: {}", std::strerror(e));
    else
        spdlog::debug("state log compacted to {} bytes", log_->used());
    // Compaction itself allocates little, but it follows the log's growth, and so any bulk
    // removal: give back what glibc keeps of the core's freed memory.
    malloc_trim(0);
}

void Worker::serve() {
    while (reason_.load() == Reason::none) {
        pollfd p[4] = {{sigfd_.get(), POLLIN, 0},
                       {wake_.get(), POLLIN, 0},
                       {supervised_ ? ctl() : -1, POLLIN, 0},
                       {mounts_->fd(), POLLPRI, 0}};  // the mount table changed
        int n = poll(p, 4, 1000);
        if (n < 0 && errno != EINTR) break;
        if (p[0].revents & POLLIN) {
            signalfd_siginfo si{};
            if (read(sigfd_.get(), &si, sizeof si) == sizeof si) {
                spdlog::info("signal {}: stopping", strsignal(static_cast<int>(si.ssi_signo)));
                end_with(Reason::stop);
            }
        }
        if (p[2].revents & (POLLIN | POLLHUP)) on_control_message();
        if (p[3].revents & (POLLPRI | POLLERR)) mounts_->changed();
        if (n == 0 && log_->wants_compaction()) compact();
    }
}

int Worker::stop() {
    Reason why = reason_.load();
    if (why == Reason::handover) {
        broker_->stop_for_handover();
    } else {
        broker_->stop();
    }
    broker_thread_.join();
    loop_->stop();
    if (why == Reason::handover) {
        auto open = broker_->take_connections();
        for (auto& c : open) ctl_send(ctl(), {Ctl::conn, 0, {}}, c.get());
        ctl_send(ctl(), {Ctl::handed_over, 0, {}});
        spdlog::info("handed over ({} open connection(s))", open.size());
    }
    state_->session.store(nullptr);
    core_->set_change_sink(nullptr);
    loop_.reset();
    se_.reset();
    if (start_error_ != 0) return kExitStartFailed;
    switch (why) {
        case Reason::handover:
            return kExitHandedOver;
        case Reason::gone:
            return kExitGone;
        default:
            return kExitStopped;
    }
}

}  // namespace bpffs::daemon
