// SPDX-License-Identifier: GPL-2.0-or-later
// Request handling mirrors the seed's bpf_obj_pin_user / bpf_obj_get_user, in the spec's order
// (docs/semantics.md). Registration comes before publication: an object is in the registry
// before its name is linked in the core, so a get that finds the name always finds the fd; an
// unlink releases the name first, then the registry entry, so a racing get gets a valid fd or
// ENOENT, never a closed one.
#include "broker/broker.hpp"

#include "broker/kernel.hpp"
#include "broker/peer.hpp"
#include "fsops/mount_options.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bpffs::broker {

using protocol::op_name;
using protocol::reply_error;

namespace {
const char* type_name(fsops::ObjType t) {
    return t == fsops::ObjType::map ? "map" : t == fsops::ObjType::prog ? "prog" : "link";
}
// ", mode 0640, owner 1000:1000" for a pin's attrs ("" without).
std::string attrs_text(const PinAttrs& a) {
    std::string s;
    if (a.mode) s += fmt::format(", mode {:04o}", *a.mode);
    if (a.uid || a.gid) {
        s += ", owner ";
        if (a.uid) s += std::to_string(*a.uid);
        if (a.gid) s += ":" + std::to_string(*a.gid);
    }
    return s;
}
// A refusal's reply; its rule, where the core named one, goes to the debug log first (the
// request's own line follows with the errno).
protocol::Reply refused(protocol::Op op, const RequestCreds& c, const Errno& e) {
    if (e.rule != nullptr) {
        spdlog::debug("op={} uid={} refused: {} ({})", op_name(op), c.ids().uid,
                      strerrorname_np(e.value), e.rule);
    }
    return reply_error(op, e.value);
}
protocol::ObjKind obj_kind(fsops::ObjType t) {
    return t == fsops::ObjType::map    ? protocol::ObjKind::map
           : t == fsops::ObjType::prog ? protocol::ObjKind::prog
                                       : protocol::ObjKind::link;
}

// Where a client's fd points (the client sends O_PATH fds of its walk), from what the kernel has
// cached (AT_STATX_DONT_SYNC): another FUSE filesystem's server is not asked, so it cannot hold
// the serving thread. (Closing it is the closer's business.)
struct Where {
    mode_t mode = 0;
    ino_t ino = 0;
    dev_t dev = 0;
    std::uint64_t mnt_id = 0;  // 0: unknown
};
Result<Where> look(int fd) {
    struct statx sx {};
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE | STATX_INO | STATX_MNT_ID,
              &sx) != 0)
        return fail(errno);
    return Where{sx.stx_mode, sx.stx_ino, makedev(sx.stx_dev_major, sx.stx_dev_minor),
                 (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0};
}
}  // namespace

protocol::Reply Broker::handle(RequestCreds& c, const protocol::Request& req,
                               std::vector<UniqueFd>& fds, UniqueFd& out_fd) {
    protocol::Reply rep;
    switch (req.op) {
        case protocol::Op::pin:
            rep = do_pin(c, req, fds);
            break;
        case protocol::Op::get:
            rep = do_get(c, req.flags, fds, out_fd);
            break;
        case protocol::Op::status:
            rep = do_status(c);
            break;
        case protocol::Op::remount:
            rep = do_remount(c, req.name);
            break;
        case protocol::Op::upgrade:
            rep = do_upgrade(c, req.name);
            break;
    }
    spdlog::debug("op={} pid={} uid={} -> {}", op_name(req.op), c.sender_pid(), c.ids().uid,
                  rep.error == 0 ? "ok" : strerrorname_np(rep.error));
    return rep;
}

protocol::Reply Broker::do_pin(RequestCreds& c, const protocol::Request& req,
                               std::vector<UniqueFd>& fds) {
    using protocol::Op;
    const std::string& name = req.name;
    // 1. flags and capability, 2. the fd, 3. the path (walked by the kernel up to the parent;
    // search permission on the parent, existence, read-only), 4. a bpffs-fuse directory, 5-6.
    // name and terminal rules (the core), 7. create: a MKNOD the kernel sees (hooks_.publish_pin).
    if (auto ok = fs_.may_pin(c.with_caps(), req.flags); !ok)
        return refused(Op::pin, c, ok.error());
    auto obj = identify(fds[0].get());
    if (!obj) return reply_error(Op::pin, fs_.policy().pin_fd_error(obj.error().value));
    if (Errno e = fs_.policy().object_refused(obj->type)) return refused(Op::pin, c, e);
    int dirfd = fds[1].get();
    auto st = look(dirfd);
    if (!st) return reply_error(Op::pin, st.error().value);
    if (!S_ISDIR(st->mode)) return reply_error(Op::pin, ENOTDIR);
    if (st->dev != mount_dev_) {  // not looked into: its name is not looked up (no EEXIST)
        bool ro = st->mnt_id != 0 && mount_read_only(st->mnt_id);
        return reply_error(Op::pin, ro ? EROFS : fs_.policy().foreign_parent_error());
    }
    bool read_only = walked_read_only(dirfd);
    // The kernel's lookup of the last component needs search permission on the parent
    // (may_lookup), before the name is found to exist: the client does not look it up itself.
    if (auto x = fs_.permission(c.with_caps(), st->ino, fsops::kMayExec); !x) {
        return refused(Op::pin, c, x.error());
    }
    if (!hooks_.publish_pin) return reply_error(Op::pin, ENOTSUP);
    auto handle = registry_.add(fds[0].get(), *obj);
    if (!handle) return reply_error(Op::pin, handle.error().value);
    int e = hooks_.publish_pin(dirfd, name,
                               fsops::PinRequest{c.with_caps(), st->ino, name, obj->type, *handle,
                                                 read_only, req.umask, req.attrs});
    if (e != 0) {
        registry_.release(*handle);
        return reply_error(Op::pin, e);
    }
    // A line per pin for root's (the seed's only) pins; under compat=linux any user may pin, as
    // often as it likes: those at debug level, so that none can flood the log.
    auto level = c.with_caps().caps.sys_admin ? spdlog::level::info : spdlog::level::debug;
    if (spdlog::should_log(level)) {
        std::string dir = fs_.path_of(st->ino);
        spdlog::log(level, "pinned {} id {} as \"{}{}{}\" (uid {}{})", type_name(obj->type),
                    obj->id, dir, dir == "/" ? "" : "/", name, c.ids().uid, attrs_text(req.attrs));
    }
    return reply_error(Op::pin, 0);
}

protocol::Reply Broker::do_get(RequestCreds& c, std::uint32_t flags, std::vector<UniqueFd>& fds,
                               UniqueFd& out_fd) {
    using protocol::Op;
    // The flags are judged before the path (bpf_obj_get): EINVAL, and the permission they ask.
    auto access = fs_.get_access(flags);
    if (!access) return refused(Op::get, c, access.error());
    auto st = look(fds[0].get());
    if (!st) return reply_error(Op::get, st.error().value);
    if (st->dev != mount_dev_) return reply_error(Op::get, EACCES);  // not our object
    // inode_permission(MAY_WRITE) checks the superblock (sb_permission), not the mount: a
    // read-only bind mount of a writable mount does not make get fail; a read-only superblock
    // does, for objects and directories alike, before any other check. A get that asks no
    // MAY_WRITE (today's BPF_F_RDONLY) passes it.
    bool writes = (access->may & fsops::kMayWrite) != 0;
    if (writes && (S_ISREG(st->mode) || S_ISDIR(st->mode)) && superblock_read_only()) {
        return reply_error(Op::get, EROFS);
    }
    // Mode bits first; capabilities only when they alone refuse (CAP_DAC_OVERRIDE may grant).
    auto got = fs_.get(c.ids(), st->ino, flags);
    if (!got && got.error().value == EACCES && !c.caps_known()) {
        got = fs_.get(c.with_caps(), st->ino, flags);
    }
    if (!got) return refused(Op::get, c, got.error());
    KernelObject obj;
    auto fd = registry_.open(got->handle, got->mode, &obj);
    if (!fd) return reply_error(Op::get, fd.error().value);
    out_fd = std::move(*fd);
    protocol::Reply r;
    r.op = Op::get;
    r.get = protocol::GetReply{obj_kind(obj.type), obj.id};
    return r;
}

// Anyone who reaches the socket learns what stat(2) of the mount root and the daemon's
// --version tell (options, version, pids); the counts, which take in directories the caller
// may not list, only a caller that may pin.
protocol::Reply Broker::do_status(RequestCreds& c) {
    protocol::Reply r;
    r.op = protocol::Op::status;
    auto opts = fs_.options();
    constexpr auto hidden = protocol::StatusInfo::kHidden;
    fsops::Counts counts{hidden, hidden, hidden, hidden};
    if (c.with_caps().caps.sys_admin) counts = fs_.counts();
    r.status = protocol::StatusInfo{static_cast<std::uint32_t>(getpid()),
                                    opts.uid,
                                    opts.gid,
                                    opts.mode,
                                    counts.dirs,
                                    counts.maps,
                                    counts.progs,
                                    cfg_.version};
    r.status->worker_pid = r.status->pid;
    r.status->compat = opts.compat == fsops::Compat::linux ? protocol::StatusInfo::kCompatLinux
                                                           : protocol::StatusInfo::kCompatSeed;
    r.status->links = counts.links;
    auto& service = r.status->service.emplace();
    {
        std::lock_guard l(conns_mu_);
        service.connections = static_cast<std::uint32_t>(open_);
        service.refused = refused_;
    }
    service.max_conns = cfg_.limits.max_conns;
    service.max_conns_per_uid = cfg_.limits.max_conns_per_uid;
    service.files_closing = static_cast<std::uint32_t>(closer_.waiting());
    service.fuse_aborted = closer_.connections_aborted();
    service.nodes = fs_.node_count();
    auto bound = fs_.node_limits();
    service.nr_inodes = static_cast<std::uint32_t>(bound.max_nodes);
    service.nr_inodes_per_uid = static_cast<std::uint32_t>(bound.max_nodes_per_uid);
    if (hooks_.status) hooks_.status(*r.status);
    return r;
}

protocol::Reply Broker::do_upgrade(RequestCreds& c, const std::string& path) {
    if (!c.with_caps().caps.sys_admin) return reply_error(protocol::Op::upgrade, EPERM);
    if (!hooks_.upgrade) return reply_error(protocol::Op::upgrade, ENOTSUP);
    int e = hooks_.upgrade(path);
    spdlog::info("upgrade to {} requested by pid {}: {}", path.empty() ? "the same binary" : path,
                 c.sender_pid(), e == 0 ? "handing over" : std::strerror(e));
    return reply_error(protocol::Op::upgrade, e);
}

protocol::Reply Broker::do_remount(RequestCreds& c, const std::string& list) {
    if (!c.with_caps().caps.sys_admin) return reply_error(protocol::Op::remount, EPERM);
    auto opts = fsops::parse_remount_options(list, fs_.options());
    if (!opts) return reply_error(protocol::Op::remount, EINVAL);
    fs_.apply_options(*opts);
    if (hooks_.invalidate_inode) hooks_.invalidate_inode(fsops::kRootIno);
    spdlog::info("remount: {}",
                 fsops::show_options(*opts).empty() ? "defaults" : fsops::show_options(*opts));
    return reply_error(protocol::Op::remount, 0);
}

}  // namespace bpffs::broker
