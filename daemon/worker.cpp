// SPDX-License-Identifier: GPL-2.0-or-later
// The worker: serves FUSE and the broker from what the supervisor handed it.
#include "daemon/worker.hpp"

#include "broker/broker.hpp"
#include "broker/registry.hpp"
#include "daemon/control.hpp"
#include "daemon/fuse_adapter.hpp"
#include "daemon/fuse_loop.hpp"
#include "daemon/handoff.hpp"
#include "daemon/logging.hpp"
#include "daemon/state_log.hpp"
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

struct SessionDeleter {
    void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};

enum class Reason { none, stop, gone, handover };

// The core, rebuilt from the log (or new), with names of objects nobody holds dropped.
Result<std::unique_ptr<fsops::Filesystem>> build_core(const WorkerHandoff& h, StateLog& log,
                                                      const std::set<fsops::ObjHandle>& held) {
    auto opts = fsops::parse_mount_options(h.options);
    if (!opts) {
        spdlog::error("bad mount options in the handoff: {}", opts.error().message);
        return fail(EINVAL);
    }
    auto state = log.read();
    if (!state) {
        spdlog::error("the state log does not read back: {}", std::strerror(state.error().value));
        return fail(state.error().value);
    }
    if (state->nodes.empty()) {
        auto fs = std::make_unique<fsops::Filesystem>(opts->ours);
        fs->set_read_only(h.read_only);
        return fs;
    }
    fsops::CoreState s = h.first ? fsops::fresh_mount_view(std::move(*state)) : std::move(*state);
    std::size_t dropped = 0;
    std::erase_if(s.nodes, [&](const fsops::NodeState& n) {
        bool orphan = !n.is_dir && n.handle && held.count(*n.handle) == 0 &&
                      !(n.ino == s.meta.socket_ino && s.meta.socket_ino != 0);
        dropped += orphan;
        return orphan;
    });
    if (dropped != 0) spdlog::warn("{} name(s) lost their kernel object; dropped", dropped);
    if (h.first) s.meta.read_only = h.read_only;
    auto fs = fsops::Filesystem::restore(s);
    if (!fs) {
        spdlog::error("the state log holds an inconsistent tree; refusing to serve it");
        return fail(EINVAL);
    }
    if (h.first) (*fs)->apply_options(opts->ours);  // a new mount takes today's options
    return std::move(*fs);
}

}  // namespace

int worker_main(int handoff_fd) {
    auto parsed = parse_handoff(read_all(handoff_fd));
    ::close(handoff_fd);
    if (!parsed) {
        std::fprintf(stderr, "bpffs-fuse: error: malformed worker handoff\n");
        return kExitStartFailed;
    }
    WorkerHandoff h = std::move(*parsed);
    setup_logging(h.log_level);
    if (h.detached) {
        // The supervisor's terminal is not ours: a worker started before the supervisor detached
        // must not keep it (or a pipe of `$(bpffs-fuse ...)`) open.
        detach_from_terminal();
    }

    // Signals: TERM/INT/HUP through a signalfd here; every thread inherits the mask.
    sigset_t mask;
    sigemptyset(&mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaddset(&mask, sig);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    sigdelset(&mask, SIGUSR2);
    UniqueFd sigfd(signalfd(-1, &mask, SFD_CLOEXEC));
    signal(SIGPIPE, SIG_IGN);

    UniqueFd control(h.control_fd), fuse_fd(h.fuse_fd), log_fd(h.log_fd), inflight(h.inflight_fd),
        listen_fd(h.listen_fd), tree_fd(h.tree_fd);
    std::vector<UniqueFd> conns;
    for (int fd : h.conns) conns.emplace_back(fd);
    for (int fd : h.fds()) fcntl(fd, F_SETFD, FD_CLOEXEC);

    std::string unusable;
    auto log = StateLog::open(std::move(log_fd), &unusable);
    if (!log) {
        spdlog::error("the state log is unusable: {}",
                      unusable.empty() ? std::strerror(log.error().value) : unusable);
        return kExitStartFailed;
    }
    int ctl = control.get();
    broker::Registry registry(broker::RegistryHooks{
        [ctl](fsops::ObjHandle hd, int fd) {
            if (int e = ctl_send(ctl, {Ctl::obj_add, hd, {}}, fd); e != 0) {
                spdlog::error("cannot hand object {} to the supervisor: {}", hd, std::strerror(e));
            }
        },
        [ctl](fsops::ObjHandle hd) {
            ctl_send(ctl, {Ctl::obj_del, hd, {}});
        }});
    std::set<fsops::ObjHandle> held;
    for (auto& [handle, fd] : h.objects) {
        if (auto r = registry.adopt(handle, UniqueFd(fd)); !r) {
            spdlog::warn("object {} from the supervisor: {}", handle,
                         std::strerror(r.error().value));
            ctl_send(ctl, {Ctl::obj_del, handle, {}});
        } else {
            held.insert(handle);
        }
    }
    auto core = build_core(h, **log, held);
    if (!core) return kExitStartFailed;
    fsops::Filesystem& fs = **core;
    {
        std::map<fsops::ObjHandle, std::uint64_t> refs;
        fs.stream_state([&refs](const fsops::Change& c) {
            if (c.kind == fsops::Change::Kind::put && c.node.handle) ++refs[*c.node.handle];
        });
        registry.set_refs(refs);
    }
    // The log from here on: the state as it is now, then every change.
    bool resume = !h.first && !(*log)->init().empty();
    if (int e = (*log)->reset_to(fs, !h.first,
                                 [ctl](int fd) {
                                     ctl_send(ctl, {Ctl::log_replace, 0, {}}, fd);
                                 });
        e != 0) {
        spdlog::error("cannot write the state log: {}", std::strerror(e));
        return kExitStartFailed;
    }
    // Reading the old log built the whole state once: give those pages back.
    malloc_trim(0);
    StateLog& slog = **log;
    // Tests make compaction happen with a small tree (BPFFS_TEST_COMPACT_BYTES).
    if (const char* floor = std::getenv("BPFFS_TEST_COMPACT_BYTES")) {
        slog.set_compaction_floor(std::strtoull(floor, nullptr, 10));
    }
    fs.set_change_sink([&slog](const std::vector<fsops::Change>& c) { slog.append(c); });

    FuseState state{fs};
    state.release_on_destroy.store(false);  // the supervisor decides what a stop releases
    state.release_object = [&registry](fsops::ObjHandle hd) { registry.release(hd); };
    fuse_args args = FUSE_ARGS_INIT(0, nullptr);
    fuse_opt_add_arg(&args, "bpffs-fuse");
    if (h.debug) fuse_opt_add_arg(&args, "-d");
    std::unique_ptr<fuse_session, SessionDeleter> se(
        fuse_session_new(&args, &fuse_ops(), sizeof(fuse_lowlevel_ops), &state));
    fuse_opt_free_args(&args);
    if (!se) {
        spdlog::error("cannot create the FUSE session");
        return kExitStartFailed;
    }
    UniqueFd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    auto poke = [&wake] {
        std::uint64_t one = 1;
        (void)!write(wake.get(), &one, sizeof one);
    };
    std::atomic<Reason> reason{Reason::none};
    auto end_with = [&](Reason r) {
        Reason none = Reason::none;
        reason.compare_exchange_strong(none, r);
        poke();
    };

    std::unique_ptr<FuseLoop> loop;
    try {
        loop = std::make_unique<FuseLoop>(
            se.get(), std::move(fuse_fd), inflight.get(),
            [&slog](std::span<const std::uint8_t> b) { slog.set_init(b); });
        state.io = loop.get();
        if (resume) {
            loop->resume(slog.init());
            if (std::size_t n = loop->replay_inflight(); n != 0) {
                spdlog::info("answered {} request(s) the previous worker had read", n);
            }
        }
        // Whatever else a previous worker had read and not answered (it may have died between
        // taking a request and recording it, the mount's INIT included) is queued again by the
        // kernel. The first worker of a mount finds nothing to resend.
        if (int e = loop->request_resend(); e == 0) {
            if (h.generation > 1) {
                spdlog::info(
                    "asked the kernel to resend the requests the previous worker had read");
            }
        } else if (e == EOPNOTSUPP) {
            if (h.generation > 1) {
                spdlog::info(
                    "this kernel cannot resend requests (Linux < 6.9): a request the "
                    "previous worker read but had not recorded stays unanswered");
            }
        } else {
            spdlog::error("asking the kernel to resend requests: {}", std::strerror(e));
        }
    } catch (const std::exception& e) {
        spdlog::error("cannot take over the FUSE connection: {}", e.what());
        return kExitStartFailed;
    }
    loop->on_gone = [&] { end_with(Reason::gone); };
    if (const char* stall = std::getenv("BPFFS_TEST_STALL_OPCODE"); stall && h.generation == 1) {
        loop->stall_opcode = static_cast<std::uint32_t>(std::strtoul(stall, nullptr, 10));
    }
    state.session.store(se.get());
    loop->start();

    // upgrade: a broker thread asks the supervisor and waits for the answer, which this
    // (main) thread reads from the control channel.
    std::mutex up_mu;
    std::condition_variable up_cv;
    int up_result = -1;
    bool up_pending = false;
    broker::Broker broker(
        fs, registry,
        broker::BrokerHooks{[&state](fsops::Ino parent, std::string_view name) {
                                invalidate_entry(state, parent, name);
                            },
                            [&state](fsops::Ino ino) { invalidate_inode(state, ino); },
                            [&] { end_with(Reason::gone); },
                            [&](const std::string& path) {
                                std::unique_lock l(up_mu);
                                if (up_pending) return EBUSY;
                                up_pending = true;
                                up_result = -1;
                                if (int e = ctl_send(ctl, {Ctl::upgrade, 0, path}); e != 0) {
                                    up_pending = false;
                                    return e;
                                }
                                bool answered = up_cv.wait_for(l, std::chrono::seconds(30),
                                                               [&] { return up_result >= 0; });
                                up_pending = false;
                                return answered ? up_result : ETIMEDOUT;
                            },
                            [&h](protocol::StatusInfo& s) {
                                s.worker_pid = s.pid;
                                s.pid = h.supervisor_pid;
                                s.generation = h.generation;
                                s.restarts = h.restarts;
                            }},
        broker::BrokerConfig{.version = BPFFS_VERSION});

    int start_error = 0;
    std::thread broker_thread([&] {
        int e = 0;
        if (!listen_fd || !tree_fd) {
            state.socket_creator.store(static_cast<pid_t>(syscall(SYS_gettid)));
            e = broker.bind_and_listen(h.mountpoint, [&] {
                ctl_send(ctl, {Ctl::keep_listen, 0, {}}, broker.listen_fd());
                ctl_send(ctl, {Ctl::keep_tree, 0, {}}, broker.tree_fd());
            });
            if (e == 0 && h.read_only) {
                e = remount_read_only(h.mountpoint);
                broker.refresh_mount_state();
            }
        } else {
            e = broker.adopt(h.mountpoint, std::move(listen_fd), std::move(tree_fd));
            for (auto& c : conns) broker.adopt_connection(std::move(c));
        }
        if (e != 0) {
            if (broker.stopping()) return;
            spdlog::error("broker: cannot serve {}: {}", h.mountpoint, std::strerror(e));
            start_error = e;
            end_with(Reason::stop);
            return;
        }
        ctl_send(ctl, {Ctl::ready, 0, {}});
        spdlog::info("worker {} (generation {}) serving {}", getpid(), h.generation, h.mountpoint);
        broker.run();
    });

    bool supervised = true;
    while (reason.load() == Reason::none) {
        pollfd p[3] = {
            {sigfd.get(), POLLIN, 0}, {wake.get(), POLLIN, 0}, {supervised ? ctl : -1, POLLIN, 0}};
        int n = poll(p, 3, 1000);
        if (n < 0 && errno != EINTR) break;
        if (p[0].revents & POLLIN) {
            signalfd_siginfo si{};
            if (read(sigfd.get(), &si, sizeof si) == sizeof si) {
                spdlog::info("signal {}: stopping", strsignal(static_cast<int>(si.ssi_signo)));
                end_with(Reason::stop);
            }
        }
        if (p[2].revents & (POLLIN | POLLHUP)) {
            CtlReceived m = ctl_recv(ctl, MSG_DONTWAIT);
            if (m.eof) {
                spdlog::warn("the supervisor is gone; serving on without it");
                supervised = false;
            } else if (m.error == 0 && m.msg.type == Ctl::upgrade_reply) {
                std::lock_guard l(up_mu);
                up_result = static_cast<int>(m.msg.arg);
                up_cv.notify_all();
            } else if (m.error == 0 && m.msg.type == Ctl::handover) {
                end_with(Reason::handover);
            }
        }
        if (n == 0 && slog.wants_compaction()) {
            int e = slog.compact(fs, [ctl](int fd) {
                ctl_send(ctl, {Ctl::log_replace, 0, {}}, fd);
            });
            if (e != 0)
                spdlog::warn("state log compaction failed: {}", std::strerror(e));
            else
                spdlog::debug("state log compacted to {} bytes", slog.used());
            // Compaction itself allocates little, but it follows the log's growth, and so any
            // bulk removal: give back what glibc keeps of the core's freed memory.
            malloc_trim(0);
        }
    }

    Reason why = reason.load();
    if (why == Reason::handover) {
        broker.stop_for_handover();
    } else {
        broker.stop();
    }
    broker_thread.join();
    loop->stop();
    if (why == Reason::handover) {
        auto open = broker.take_connections();
        for (auto& c : open) ctl_send(ctl, {Ctl::conn, 0, {}}, c.get());
        ctl_send(ctl, {Ctl::handed_over, 0, {}});
        spdlog::info("handed over ({} open connection(s))", open.size());
    }
    state.session.store(nullptr);
    fs.set_change_sink(nullptr);
    loop.reset();
    se.reset();
    if (start_error != 0) return kExitStartFailed;
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
