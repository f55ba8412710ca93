// SPDX-License-Identifier: GPL-2.0-or-later
// Request handling mirrors the seed's bpf_obj_pin_user / bpf_obj_get_user, in the spec's order
// (docs/semantics.md). Registration comes before publication: an object is in the registry
// before its name is linked in the core, so a get that finds the name always finds the fd; an
// unlink releases the name first, then the registry entry, so a racing get gets a valid fd or
// ENOENT, never a closed one.
#include "broker/broker.hpp"

#include "broker/kernel.hpp"
#include "common/proc_status.hpp"
#include "common/scm.hpp"
#include "fsops/mount_options.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace bpffs::broker {


namespace {

std::string ns_of(const std::string& pid) {
    char buf[64];
    ssize_t n = readlink(("/proc/" + pid + "/ns/user").c_str(), buf, sizeof buf - 1);
    if (n < 0) return {};
    return std::string(buf, static_cast<std::size_t>(n));
}

// The peer as the kernel recorded it at connect time: uid, gid, groups, pid.
fsops::Caller peer_ids(int sock, pid_t* pid_out) {
    fsops::Caller c;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        c.uid = c.gid = 65534;  // unknown peer: nobody
        return c;
    }
    c.uid = cred.uid;
    c.gid = cred.gid;
    *pid_out = cred.pid;
    std::array<gid_t, 256> groups{};
    socklen_t glen = sizeof groups;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
        c.groups.assign(groups.begin(), groups.begin() + glen / sizeof(gid_t));
    }
    return c;
}

// The peer's effective capabilities, which count only when it lives in the daemon's own user
// namespace. Reading /proc costs more than the rest of a request, so it is done only when an
// answer depends on it (pin, remount, or a get that the mode bits alone refuse).
fsops::Caps peer_caps(pid_t pid) {
    if (pid <= 0) return {};
    std::string self_ns = ns_of("self");
    if (self_ns.empty() || ns_of(std::to_string(pid)) != self_ns) return {};
    return fsops::Caps::from_bits(read_proc_status(pid).cap_eff);
}

protocol::Reply error_reply(protocol::Op op, int e) {
    protocol::Reply r;
    r.op = op;
    r.error = e;
    return r;
}

const char* op_name(protocol::Op op) {
    switch (op) {
        case protocol::Op::pin: return "pin";
        case protocol::Op::get: return "get";
        case protocol::Op::status: return "status";
        case protocol::Op::remount: return "remount";
        case protocol::Op::upgrade: return "upgrade";
    }
    return "?";
}

}  // namespace

struct Broker::Conn {
    UniqueFd sock;
    fsops::Caller caller;  // caps only once caps_known
    bool caps_known = false;
    pid_t pid = 0;

    const fsops::Caller& with_caps() {
        if (!caps_known) {
            caller.caps = peer_caps(pid);
            caps_known = true;
        }
        return caller;
    }
    std::chrono::steady_clock::time_point last_active;
};

Broker::Broker(fsops::Filesystem& fs, Registry& registry, BrokerHooks hooks, BrokerConfig cfg)
    : fs_(fs), registry_(registry), hooks_(std::move(hooks)), cfg_(std::move(cfg)),
      stop_event_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

Broker::~Broker() = default;

int Broker::bind_and_listen(const std::string& mountpoint, const std::function<void()>& bound) {
    struct stat st {};
    if (stat(mountpoint.c_str(), &st) != 0) return errno;
    mount_dev_ = st.st_dev;
    // A bound socket pins the mount it was bound through, and `umount MNT` would then be EBUSY.
    // So bind through a private, detached clone of the mount (same superblock, so the socket
    // inode is the one every directory's lookup finds), and watch the mount table to notice
    // when the visible mount is gone.
    UniqueFd tree(open_tree(AT_FDCWD, mountpoint.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (!tree) {
        spdlog::warn("open_tree({}): {}; binding in the mount itself (umount will need -l)",
                     mountpoint, std::strerror(errno));
        tree.reset(open(mountpoint.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!tree) return errno;
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = "/proc/self/fd/" + std::to_string(tree.get()) + "/" +
                       std::string(protocol::kSocketName);
    std::memcpy(addr.sun_path, path.data(), path.size());
    listen_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!listen_) return errno;
    if (bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return errno;
    tree_ = std::move(tree);
    if (bound) bound();
    if (listen(listen_.get(), 4096) != 0) return errno;
    if (int e = setup_loop(); e != 0) return e;
    spdlog::info("broker listening at {}/{}", mountpoint, protocol::kSocketName);
    return 0;
}

int Broker::adopt(const std::string& mountpoint, UniqueFd listen_sock, UniqueFd tree) {
    struct stat st {};
    if (fstat(tree.get(), &st) != 0) return errno;
    mount_dev_ = st.st_dev;
    int flags = fcntl(listen_sock.get(), F_GETFL);
    if (flags < 0 || fcntl(listen_sock.get(), F_SETFL, flags | O_NONBLOCK) != 0) return errno;
    listen_ = std::move(listen_sock);
    tree_ = std::move(tree);
    if (int e = setup_loop(); e != 0) return e;
    spdlog::info("broker: serving the socket in {} again", mountpoint);
    return 0;
}

int Broker::setup_loop() {
    epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
    mountinfo_.reset(open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
    if (!epoll_ || !stop_event_ || !mountinfo_) return errno;
    for (int fd : {listen_.get(), stop_event_.get()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return errno;
    }
    epoll_event ev{};
    ev.events = EPOLLPRI | EPOLLERR;
    ev.data.fd = mountinfo_.get();
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, mountinfo_.get(), &ev) != 0) return errno;
    refresh_mount_state();
    return 0;
}

void Broker::adopt_connection(UniqueFd s) {
    int flags = fcntl(s.get(), F_GETFL);
    if (flags < 0 || fcntl(s.get(), F_SETFL, flags | O_NONBLOCK) != 0) return;
    auto c = std::make_unique<Conn>();
    c->caller = peer_ids(s.get(), &c->pid);
    c->last_active = std::chrono::steady_clock::now();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = s.get();
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s.get(), &ev) != 0) return;
    int fd = s.get();
    c->sock = std::move(s);
    conns_.emplace(fd, std::move(c));
}

std::vector<UniqueFd> Broker::take_connections() {
    std::vector<UniqueFd> out;
    for (auto& [fd, c] : conns_) {
        if (epoll_) epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        out.push_back(std::move(c->sock));
    }
    conns_.clear();
    return out;
}

void Broker::release_mount() {
    conns_.clear();
    listen_.reset();
    tree_.reset();
}

bool Broker::refresh_mount_state() {
    // mountinfo: "ID PARENT MAJ:MIN ROOT POINT MNTOPTS [TAGS...] - FSTYPE SOURCE SUPEROPTS".
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    std::string want = std::to_string(major(mount_dev_)) + ":" + std::to_string(minor(mount_dev_));
    bool found = false;
    mount_ro_.clear();
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string id, parent, dev, root, point, mntopts, field;
        ls >> id >> parent >> dev;
        if (dev != want) continue;
        found = true;
        ls >> root >> point >> mntopts;
        bool ro = mntopts == "ro" || mntopts.rfind("ro,", 0) == 0;
        mount_ro_[std::strtoull(id.c_str(), nullptr, 10)] = ro;
        while (ls >> field && field != "-") {
        }
        std::string fstype, source, superopts;
        ls >> fstype >> source >> superopts;
        sb_read_only_ = superopts == "ro" || superopts.rfind("ro,", 0) == 0;
    }
    return found;
}

bool Broker::walked_read_only(int dirfd) const {
    if (sb_read_only_) return true;
    struct statx sx {};
    if (statx(dirfd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &sx) == 0 &&
        (sx.stx_mask & STATX_MNT_ID)) {
        auto it = mount_ro_.find(sx.stx_mnt_id);
        if (it != mount_ro_.end()) return it->second;
    }
    // A mount we cannot see (the client's own mount namespace): ask the kernel.
    struct statvfs vfs {};
    return fstatvfs(dirfd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
}

void Broker::stop_for_handover() {
    handover_.store(true);
    stop();
}

void Broker::stop() {
    stopping_.store(true);
    if (stop_event_) {
        std::uint64_t one = 1;
        (void)!write(stop_event_.get(), &one, sizeof one);
    }
}

int Broker::run() {
    std::array<epoll_event, 64> events;
    while (!stopping_.load()) {
        int n = epoll_wait(epoll_.get(), events.data(), events.size(), 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            spdlog::error("broker: epoll_wait: {}", std::strerror(e));
            return e;
        }
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == stop_event_.get()) {
                if (!handover_.load()) conns_.clear();
                return 0;
            }
            if (fd == mountinfo_.get()) {
                if (!refresh_mount_state()) {
                    spdlog::info("the mount is gone (unmounted from outside); stopping");
                    conns_.clear();
                    if (hooks_.unmounted) hooks_.unmounted();
                    return 0;
                }
            } else if (fd == listen_.get()) {
                accept_all();
            } else if (events[i].events & EPOLLIN) {
                on_readable(fd);
            } else if (events[i].events & (EPOLLHUP | EPOLLERR)) {
                close_conn(fd);
            }
        }
        sweep_idle();
        if (mount_gone_) {
            spdlog::info("the mount is gone (unmounted from outside); stopping");
            conns_.clear();
            if (hooks_.unmounted) hooks_.unmounted();
            return 0;
        }
    }
    if (!handover_.load()) conns_.clear();
    return 0;
}

void Broker::accept_all() {
    while (true) {
        UniqueFd s(accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!s) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) spdlog::warn("broker: accept: {}", std::strerror(errno));
            return;
        }
        if (conns_.size() >= cfg_.max_connections) {
            spdlog::warn("broker: {} connections open; refusing another", conns_.size());
            continue;  // closes s
        }
        auto c = std::make_unique<Conn>();
        c->caller = peer_ids(s.get(), &c->pid);
        c->last_active = std::chrono::steady_clock::now();
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.fd = s.get();
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, s.get(), &ev) != 0) {
            spdlog::warn("broker: epoll_ctl: {}", std::strerror(errno));
            continue;
        }
        int fd = s.get();
        c->sock = std::move(s);
        conns_.emplace(fd, std::move(c));
    }
}

void Broker::close_conn(int fd) {
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    conns_.erase(fd);
}

void Broker::sweep_idle() {
    auto now = std::chrono::steady_clock::now();
    std::vector<int> idle;
    for (auto& [fd, c] : conns_) {
        if (now - c->last_active > cfg_.idle_timeout) idle.push_back(fd);
    }
    for (int fd : idle) {
        spdlog::debug("broker: closing idle connection (pid {})", conns_.at(fd)->pid);
        close_conn(fd);
    }
}

void Broker::on_readable(int fd) {
    Conn& c = *conns_.at(fd);
    c.last_active = std::chrono::steady_clock::now();
    // A few messages per wakeup, so one busy client cannot starve the others.
    for (int round = 0; round < 16; ++round) {
        std::array<std::uint8_t, protocol::kMaxMessage> buf;
        Received r = recv_with_fds(fd, buf, protocol::kMaxFds, MSG_DONTWAIT);
        if (r.error == EAGAIN) return;
        if (r.error != 0 || r.size == 0) return close_conn(fd);  // error or the peer left
        if (r.truncated || r.ctruncated) {
            spdlog::warn("broker: pid {}: oversized message or too many fds; closing", c.pid);
            return close_conn(fd);
        }
        auto req = protocol::decode_request(std::span(buf.data(), r.size));
        if (!req) {
            spdlog::warn("broker: pid {}: malformed request ({}); closing", c.pid,
                         strerrorname_np(req.error().value));
            return close_conn(fd);
        }
        UniqueFd out_fd;
        protocol::Reply rep;
        if (r.fds.size() != protocol::expected_fds(req->op)) {
            rep = error_reply(req->op, EINVAL);
        } else {
            try {
                rep = handle(c, *req, r.fds, out_fd);
            } catch (const std::bad_alloc&) {
                rep = error_reply(req->op, ENOMEM);
            } catch (const std::exception& ex) {
                spdlog::error("broker: {} failed: {}", op_name(req->op), ex.what());
                rep = error_reply(req->op, EIO);
            }
        }
        r.fds.clear();
        auto msg = protocol::encode(rep);
        std::array<int, 1> one{out_fd.get()};
        std::span<const int> fds = out_fd ? std::span<const int>(one) : std::span<const int>();
        if (int e = send_with_fds(fd, msg, fds); e != 0) {
            spdlog::debug("broker: pid {}: reply not sent ({}); closing", c.pid, std::strerror(e));
            return close_conn(fd);
        }
    }
}

protocol::Reply Broker::handle(Conn& c, const protocol::Request& req,
                               std::vector<UniqueFd>& fds, UniqueFd& out_fd) {
    protocol::Reply rep;
    switch (req.op) {
        case protocol::Op::pin: rep = do_pin(c, req.name, fds); break;
        case protocol::Op::get: rep = do_get(c, fds, out_fd); break;
        case protocol::Op::status: rep = do_status(); break;
        case protocol::Op::remount: rep = do_remount(c, req.name); break;
        case protocol::Op::upgrade: rep = do_upgrade(c, req.name); break;
    }
    spdlog::debug("op={} pid={} uid={} -> {}", op_name(req.op), c.pid, c.caller.uid,
                  rep.error == 0 ? "ok" : strerrorname_np(rep.error));
    return rep;
}

protocol::Reply Broker::do_pin(Conn& c, const std::string& name, std::vector<UniqueFd>& fds) {
    using protocol::Op;
    // 1. capability, 2. the fd, 3. the path (walked by the kernel; existence, read-only),
    // 4. a bpffs-fuse directory, 5-6. name and terminal rules (the core), 7. create.
    if (!c.with_caps().caps.sys_admin) return error_reply(Op::pin, EPERM);
    auto obj = identify(fds[0].get());
    if (!obj) return error_reply(Op::pin, obj.error().value);
    int dirfd = fds[1].get();
    struct stat st {};
    if (fstat(dirfd, &st) != 0) return error_reply(Op::pin, errno);
    if (!S_ISDIR(st.st_mode)) return error_reply(Op::pin, ENOTDIR);
    // A mount change the client made before asking must count: take a pending change of the
    // mount table first (the epoll loop may not have seen it yet).
    pollfd pf{mountinfo_.get(), POLLPRI, 0};
    if (poll(&pf, 1, 0) > 0 && (pf.revents & (POLLPRI | POLLERR)) && !refresh_mount_state()) {
        mount_gone_ = true;  // run() stops after this request
    }
    bool read_only = walked_read_only(dirfd);
    if (st.st_dev != mount_dev_) {
        struct stat child {};
        if (fstatat(dirfd, name.c_str(), &child, AT_SYMLINK_NOFOLLOW) == 0) {
            return error_reply(Op::pin, EEXIST);
        }
        return error_reply(Op::pin, read_only ? EROFS : EACCES);
    }
    auto handle = registry_.add(fds[0].get(), *obj);
    if (!handle) return error_reply(Op::pin, handle.error().value);
    auto attr = fs_.pin(c.caller, st.st_ino, name, obj->type, *handle, read_only);
    if (!attr) {
        registry_.release(*handle);
        return error_reply(Op::pin, attr.error().value);
    }
    if (hooks_.invalidate_entry) hooks_.invalidate_entry(st.st_ino, name);
    spdlog::info("pinned {} id {} as \"{}\" in dir {} (uid {})",
                 obj->type == fsops::ObjType::map ? "map" : "prog", obj->id, name, st.st_ino,
                 c.caller.uid);
    return error_reply(Op::pin, 0);
}

protocol::Reply Broker::do_get(Conn& c, std::vector<UniqueFd>& fds, UniqueFd& out_fd) {
    using protocol::Op;
    int node = fds[0].get();
    struct stat st {};
    if (fstat(node, &st) != 0) return error_reply(Op::get, errno);
    if (st.st_dev != mount_dev_) return error_reply(Op::get, EACCES);  // not our object
    // inode_permission(MAY_WRITE) checks the superblock (sb_permission), not the mount: a
    // read-only bind mount of a writable mount does not make get fail; a read-only superblock
    // does, for objects and directories alike, before any other check.
    if (sb_read_only_ && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        return error_reply(Op::get, EROFS);
    }
    // Mode bits first; capabilities only when they alone refuse (CAP_DAC_OVERRIDE may grant).
    auto got = fs_.get(c.caller, st.st_ino);
    if (!got && got.error().value == EACCES && !c.caps_known) got = fs_.get(c.with_caps(), st.st_ino);
    if (!got) return error_reply(Op::get, got.error().value);
    auto fd = registry_.open(got->handle);
    if (!fd) return error_reply(Op::get, fd.error().value);
    auto obj = registry_.object(got->handle);
    if (!obj) return error_reply(Op::get, obj.error().value);
    out_fd = std::move(*fd);
    protocol::Reply r;
    r.op = Op::get;
    r.get = protocol::GetReply{
        obj->type == fsops::ObjType::map ? protocol::ObjKind::map : protocol::ObjKind::prog,
        obj->id};
    return r;
}

protocol::Reply Broker::do_status() {
    protocol::Reply r;
    r.op = protocol::Op::status;
    auto opts = fs_.options();
    auto counts = fs_.counts();
    r.status = protocol::StatusInfo{static_cast<std::uint32_t>(getpid()), opts.uid, opts.gid,
                                    opts.mode, counts.dirs, counts.maps, counts.progs,
                                    cfg_.version};
    r.status->worker_pid = r.status->pid;
    if (hooks_.status) hooks_.status(*r.status);
    return r;
}

protocol::Reply Broker::do_upgrade(Conn& c, const std::string& path) {
    if (!c.with_caps().caps.sys_admin) return error_reply(protocol::Op::upgrade, EPERM);
    if (!hooks_.upgrade) return error_reply(protocol::Op::upgrade, ENOTSUP);
    int e = hooks_.upgrade(path);
    spdlog::info("upgrade to {} requested by pid {}: {}", path.empty() ? "the same binary" : path,
                 c.pid, e == 0 ? "handing over" : std::strerror(e));
    return error_reply(protocol::Op::upgrade, e);
}

protocol::Reply Broker::do_remount(Conn& c, const std::string& list) {
    if (!c.with_caps().caps.sys_admin) return error_reply(protocol::Op::remount, EPERM);
    auto opts = fsops::parse_remount_options(list, fs_.options());
    if (!opts) return error_reply(protocol::Op::remount, EINVAL);
    fs_.apply_options(*opts);
    if (hooks_.invalidate_inode) hooks_.invalidate_inode(fsops::kRootIno);
    spdlog::info("remount: {}", fsops::show_options(*opts).empty() ? "defaults"
                                                                   : fsops::show_options(*opts));
    return error_reply(protocol::Op::remount, 0);
}

}  // namespace bpffs::broker
