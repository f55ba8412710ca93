// SPDX-License-Identifier: GPL-2.0-or-later
// libbpffs. pin and get check locally what the kernel would check before the path (capability,
// fd type) so that errors come in the kernel's order, then let the kernel walk the path with an
// O_PATH open and send that fd to the broker, which checks everything again with the
// credentials the kernel recorded for the connection. The broker's answer is authoritative.
//
// Connections: the one-shot calls open one per call; a bpffs_conn keeps one (the broker serves
// any number of requests on it, one at a time). Both go through a Channel, which reconnects and
// resends when a connection breaks before its reply (client.hpp says why). A resent pin that is
// answered EEXIST fetches what is pinned under the name and compares kernel ids with the fd it
// pinned: the same object means the first attempt did it, and the pin succeeded.
//
// Trust: every connect, first or again, goes through connect_broker, which sends nothing to a
// socket that is not served by a trusted bpffs-fuse daemon (client.hpp says what it checks) and
// fails with EPERM instead; the calls below pass the caller's Trust down to it.
//
// "No broker" is decided at the first connect only (ENOENT or ECONNREFUSED there: not a
// bpffs-fuse directory, EACCES/EROFS as the kernel would say); a reconnect that fails after a
// connection broke returns connect's own errno (the broker went away).
#include "client/client.hpp"

#include "client/kept.hpp"

#include "common/bpf_fd.hpp"
#include "common/bpf_flags.hpp"
#include "common/caps.hpp"
#include "common/proc_status.hpp"

#include "bpffs/bpffs.h"
#include "common/scm.hpp"

#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <utility>

namespace bpffs::client {
namespace {

constexpr int kTimeoutSec = 10;
bool has_cap_sys_admin() {
    auto caps = effective_caps(0);
    return !caps || cap_in(*caps, kCapSysAdmin);  // unknown: let the broker decide
}

// 0, EBADF (closed), EINVAL (open but not a BPF map, program or link). *link: it is a link.
int check_bpf_fd(int fd, bool* link) {
    auto kind = bpf_kind(fd);
    if (!kind)
        return kind.error().value == EBADF ? EBADF : 0;  // no /proc (a chroot): the broker checks
    // A link goes on: whether this mount pins links is the broker's policy (compat=).
    *link = *kind == BpfKind::link;
    return *kind != BpfKind::other ? 0 : EINVAL;
}

// Are two fds the same kernel object? Maps and programs have separate id spaces, so the kind
// counts too (unknown without /proc: the ids alone decide).
bool same_object(int a, int b) {
    std::uint32_t ia = bpf_object_id(a), ib = bpf_object_id(b);
    if (ia == 0 || ia != ib) return false;
    auto ka = bpf_kind(a), kb = bpf_kind(b);
    return !ka || !kb || *ka == *kb;
}

int set_errno(int e) {
    errno = e;
    return -e;
}

// Sleeps `d` (monotonic), also through signals.
void pause_for(std::chrono::nanoseconds d) {
    timespec until{};
    clock_gettime(CLOCK_MONOTONIC, &until);
    auto ns = static_cast<long long>(until.tv_nsec) + d.count();
    until.tv_sec += static_cast<time_t>(ns / 1'000'000'000);
    until.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) == EINTR) {}
}

// Is the listener's uid one the caller trusts?
bool trusted(uid_t peer, const Trust& t) {
    return peer == 0 || peer == geteuid() || (t.uid && *t.uid == peer);
}

// What connect_broker compares of a node: its device, inode, type and mount.
struct NodeInfo {
    dev_t dev;
    ino_t ino;
    mode_t mode;
    std::uint64_t mnt_id;  // 0 when the kernel gives no unique mount id (before Linux 6.8)
};

// statx of an fd's node from the kernel's cache (AT_STATX_DONT_SYNC: on FUSE, no GETATTR round
// trip; nothing asked here changes): its type, inode, device and mount ids; an fstat's, without
// mount ids, where statx is refused (an old seccomp filter). 0 or an errno.
int statx_node(int fd, struct statx* sx) {
    constexpr unsigned kMask = STATX_TYPE | STATX_INO | STATX_MNT_ID | kStatxMntIdUnique;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, kMask, sx) == 0) return 0;
    if (errno != ENOSYS && errno != EPERM) return errno;
    struct stat st {};
    if (fstat(fd, &st) != 0) return errno;
    *sx = {};
    sx->stx_mask = STATX_TYPE | STATX_INO;
    sx->stx_mode = static_cast<std::uint16_t>(st.st_mode);
    sx->stx_ino = st.st_ino;
    sx->stx_dev_major = major(st.st_dev);
    sx->stx_dev_minor = minor(st.st_dev);
    return 0;
}

int node_info(int fd, NodeInfo* out) {
    struct statx sx {};
    if (int e = statx_node(fd, &sx); e != 0) return e;
    *out = NodeInfo{makedev(sx.stx_dev_major, sx.stx_dev_minor), sx.stx_ino, sx.stx_mode,
                    (sx.stx_mask & kStatxMntIdUnique) != 0 ? sx.stx_mnt_id : 0};
    return 0;
}

// Mounts known to be FUSE mounts, by unique mount id (never reused, and a mount's filesystem
// never changes): fstatfs on FUSE is a round trip to the FUSE server, paid once per mount and
// process this way. Lock-free (fork-safe); a lost race only costs another fstatfs. The only
// mutable global of the library: a cache of facts that cannot go stale.
constexpr std::size_t kFuseMountSlots = 32;
constinit std::atomic<std::uint64_t> g_fuse_mounts[kFuseMountSlots] = {};
constinit std::atomic<std::size_t> g_fuse_mounts_next{0};

bool on_fuse_mount(int fd, const NodeInfo& n) {
    if (n.mnt_id != 0) {
        for (const auto& slot : g_fuse_mounts) {
            if (slot.load(std::memory_order_relaxed) == n.mnt_id) return true;
        }
    }
    // The system call itself: the preload shim, which has this library compiled in, makes
    // libc's fstatfs report the bpf filesystem's magic on a bpffs-fuse mount.
    struct statfs fs {};
    if (syscall(SYS_fstatfs, fd, &fs) != 0 || fs.f_type != FUSE_SUPER_MAGIC) return false;
    if (n.mnt_id != 0) {
        std::size_t i = g_fuse_mounts_next.fetch_add(1, std::memory_order_relaxed);
        g_fuse_mounts[i % kFuseMountSlots].store(n.mnt_id, std::memory_order_relaxed);
    }
    return true;
}

// connect(2) to an address path, again after EINTR (an interrupted AF_UNIX connect leaves the
// socket unconnected). 0 or errno.
int connect_path(int s, const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return ENAMETOOLONG;
    std::memcpy(addr.sun_path, path.data(), path.size());
    while (connect(s, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        if (errno != EINTR) return errno;
    }
    return 0;
}

}  // namespace

std::string dir_part(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    auto end = path.find_last_not_of('/', slash);
    if (end == std::string::npos) return "/";
    return path.substr(0, end + 1);
}

std::string name_part(const std::string& path) {
    auto slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string describe(const Refusal& r) {
    std::string why;
    switch (r.why) {
        case Refusal::Why::not_on_mount:
            why = "not a socket on the directory's own mount";
            break;
        case Refusal::Why::not_fuse:
            why = "not on a FUSE mount";
            break;
        case Refusal::Why::peer:
            why = "peer uid " + std::to_string(r.peer_uid);
            break;
    }
    return r.socket + " is not served by a trusted bpffs-fuse daemon (" + why + ")";
}

Result<UniqueFd> connect_broker(const std::string& dir, int dirfd, const Trust& trust,
                                Refusal* why) {
    UniqueFd own_dirfd;
    if (dirfd < 0) {
        own_dirfd.reset(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!own_dirfd) return fail(errno);
        dirfd = own_dirfd.get();
    }
    // $BPFFS_SOCKET is the caller's own choice (followed); the mount's name is not: a symlink
    // there could lead to any socket. Not from the environment of a set-user-ID program.
    const char* env = secure_getenv("BPFFS_SOCKET");
    bool overridden = env != nullptr && *env != '\0';
    std::string name =
        overridden ? std::string(env)
                   : (dir == "/" ? std::string() : dir) + "/" + std::string(protocol::kSocketName);
    std::string sock_name(protocol::kSocketName);
    UniqueFd node(overridden ? open(env, O_PATH | O_CLOEXEC)
                             : openat(dirfd, sock_name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!node) return fail(errno);  // ENOENT: no broker here
    NodeInfo d{}, n{};
    if (int e = node_info(dirfd, &d); e != 0) return fail(e);
    if (int e = node_info(node.get(), &n); e != 0) return fail(e);
    auto refuse = [&](Refusal::Why w, uid_t uid = 0) -> Result<UniqueFd> {
        if (why != nullptr) *why = Refusal{w, uid, name};
        return fail(kUntrusted);
    };
    if (!S_ISSOCK(n.mode) && !S_ISLNK(n.mode)) return fail(ECONNREFUSED);  // as connect(2) says
    if (!S_ISSOCK(n.mode) || n.dev != d.dev) return refuse(Refusal::Why::not_on_mount);
    if (!on_fuse_mount(node.get(), n)) return refuse(Refusal::Why::not_fuse);

    UniqueFd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!s) return fail(errno);
    timeval tv{kTimeoutSec, 0};
    setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    // Through the very node checked above; without /proc (a chroot), by its name, and the name
    // is checked again afterwards.
    int e = connect_path(s.get(), "/proc/self/fd/" + std::to_string(node.get()));
    if (e == ENOENT) {
        e = connect_path(s.get(), name);
        if (e == 0) {
            UniqueFd again(overridden
                               ? open(env, O_PATH | O_CLOEXEC)
                               : openat(dirfd, sock_name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
            NodeInfo a{};
            if (!again || node_info(again.get(), &a) != 0 || a.dev != n.dev || a.ino != n.ino) {
                return refuse(Refusal::Why::not_on_mount);
            }
        }
    }
    // A directory elsewhere has no such name (ENOENT); a name that is not a listening socket is
    // ECONNREFUSED.
    if (e != 0) return fail(e);
    ucred peer{};
    socklen_t len = sizeof peer;
    if (getsockopt(s.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) return fail(errno);
    if (!trusted(peer.uid, trust)) return refuse(Refusal::Why::peer, peer.uid);
    return s;
}

Result<Response> exchange(int sock, const protocol::Request& req, std::span<const int> fds,
                          bool* sent) {
    if (sent != nullptr) *sent = false;
    auto msg = protocol::encode(req);
    if (int e = send_with_fds(sock, msg, fds); e != 0) return fail(e == EAGAIN ? ETIMEDOUT : e);
    if (sent != nullptr) *sent = true;
    std::array<std::uint8_t, protocol::kMaxMessage> buf;
    Received r = recv_with_fds(sock, buf, 1);
    if (r.error != 0) return fail(r.error == EAGAIN ? ETIMEDOUT : r.error);
    if (r.size == 0) return fail(ECONNRESET);
    // A reply fd that could not be installed (the caller is at its fd limit) arrives as
    // MSG_CTRUNC: the kernel's BPF_OBJ_GET would have failed with EMFILE.
    if (r.ctruncated) return fail(EMFILE);
    if (r.truncated) return fail(EPROTO);
    auto rep = protocol::decode_reply(std::span(buf.data(), r.size));
    if (!rep) return rep.error();
    if (rep->op != req.op) return fail(EPROTO);
    bool want_fd = rep->error == 0 && req.op == protocol::Op::get;
    if (r.fds.size() != (want_fd ? 1u : 0u)) return fail(EPROTO);
    Response out{std::move(*rep), {}};
    if (want_fd) out.fd = std::move(r.fds.front());
    return out;
}

bool is_broken_connection(int e) { return e == ECONNRESET || e == EPIPE; }

bool is_transient_connect_error(int e) { return e == ECONNREFUSED || e == EAGAIN; }

Channel::Channel(std::string dir, int dirfd, RetryPolicy policy, Trust trust)
    : dir_(std::move(dir)), dirfd_(dirfd), policy_(std::move(policy)), trust_(trust) {}

Channel::Channel(std::string dir, UniqueFd dirfd, RetryPolicy policy, Trust trust)
    : dir_(std::move(dir)), owned_dirfd_(std::move(dirfd)), dirfd_(owned_dirfd_.get()),
      policy_(std::move(policy)), trust_(trust) {}

Result<void> Channel::connect_once() {
    auto s = connect_broker(dir_, dirfd_, trust_, &refusal_);
    if (!s) return s.error();
    sock_ = std::move(*s);
    pid_ = getpid();
    return {};
}

void Channel::adopt(UniqueFd sock) {
    sock_ = std::move(sock);
    pid_ = getpid();
}

UniqueFd Channel::release() {
    if (pid_ != getpid()) return {};
    return std::move(sock_);
}

Result<void> Channel::connect() {
    if (sock_ && pid_ == getpid()) return {};
    sock_.reset();
    using clock = std::chrono::steady_clock;
    clock::time_point deadline{};
    auto pause = std::chrono::nanoseconds(policy_.first_pause);
    while (true) {
        auto r = connect_once();
        if (r) return r;
        int e = r.error().value;
        if (!is_transient_connect_error(e)) return r;
        auto now = clock::now();
        if (deadline == clock::time_point{}) deadline = now + policy_.budget;
        if (now >= deadline) return r;
        pause_for(std::min<std::chrono::nanoseconds>(pause, deadline - now));
        pause *= 2;
        if (policy_.before_retry) policy_.before_retry(e);
    }
}

Result<Channel::Outcome> Channel::call(const protocol::Request& req, std::span<const int> fds) {
    using clock = std::chrono::steady_clock;
    clock::time_point deadline{};
    auto pause = std::chrono::nanoseconds(policy_.first_pause);
    bool maybe_done = false;
    // A socket inherited over fork() belongs to the parent's conversation.
    if (sock_ && pid_ != getpid()) sock_.reset();
    // A kept connection that breaks at once was most likely closed while idle (the broker
    // closes idle connections): the first new attempt goes without a pause.
    bool kept = sock_.valid();
    while (true) {
        int e = 0;
        if (!sock_) {
            auto c = connect_once();
            if (!c) e = c.error().value;
            if (e != 0 && !is_transient_connect_error(e)) return fail(e);
        }
        if (e == 0) {
            bool sent = false;
            auto r = exchange(sock_.get(), req, fds, &sent);
            if (r) return Outcome{std::move(*r), maybe_done};
            e = r.error().value;
            sock_.reset();
            if (!is_broken_connection(e)) return fail(e);
            maybe_done = maybe_done || sent;
            if (std::exchange(kept, false)) {
                if (policy_.before_retry) policy_.before_retry(e);
                continue;
            }
        }
        auto now = clock::now();
        if (deadline == clock::time_point{}) deadline = now + policy_.budget;
        if (now >= deadline) return fail(e);
        pause_for(std::min<std::chrono::nanoseconds>(pause, deadline - now));
        pause *= 2;
        if (policy_.before_retry) policy_.before_retry(e);
    }
}

namespace {

static_assert(kBpfFRdonly == BPFFS_F_RDONLY && kBpfFWronly == BPFFS_F_WRONLY &&
              kBpfFPathFd == BPFFS_F_PATH_FD);

// How a pin or get is asked: whose broker to trust besides root's and the caller's, the bpf(2)
// file_flags, and the directory a relative path starts from.
struct CallOpts {
    Trust trust;
    std::uint32_t file_flags = 0;
    int path_fd = 0;
    PinAttrs attrs;  // pin only
    // path_fd with BPF_F_PATH_FD, else the working directory (bpf_obj_pin / bpf_obj_get).
    int base() const { return (file_flags & kBpfFPathFd) != 0 ? path_fd : AT_FDCWD; }
};

// The flag checks bpf(2) makes before anything else, which every mount shares (a compat=seed
// broker refuses every flag later, after the path): bits the command does not take, both
// BPF_F_RDONLY and BPF_F_WRONLY, a path_fd without BPF_F_PATH_FD. 0 or EINVAL.
int check_flags(protocol::Op op, const CallOpts& o) {
    std::uint32_t f = o.file_flags;
    if ((f & ~protocol::allowed_flags(op)) != 0) return EINVAL;
    if ((f & kBpfFRdonly) != 0 && (f & kBpfFWronly) != 0) return EINVAL;
    if (o.path_fd != 0 && (f & kBpfFPathFd) == 0) return EINVAL;
    return 0;
}

// `path` as a name the kernel resolves from the working directory: relative to `base` through
// /proc/self/fd (for realpath, which has no *at form).
std::string from_base(int base, const std::string& path) {
    if (base == AT_FDCWD || path.front() == '/') return path;
    return "/proc/self/fd/" + std::to_string(base) + "/" + path;
}

// A pin's parent directory and name, once the checks before the broker have passed, and what
// the client found of the caller and the fd, whose errors come first in the seed's order.
struct PinTarget {
    std::string dir, name;
    UniqueFd dirfd;
    bool no_cap = false;  // no CAP_SYS_ADMIN: EPERM first on a compat=seed mount
    int fd_error = 0;     // EBADF (closed), EINVAL (no map, program or link)
    bool link = false;    // a link: the seed's EINVAL unless a compat=linux broker takes it
};

// An error found before any broker answered, in the seed's order (the capability, the fd, the
// path): a mount that is not there cannot say it follows compat=linux.
int seed_order(const PinTarget& t, int path_error) {
    if (t.no_cap) return EPERM;
    if (t.link) return EINVAL;  // the seed had no links: any other file
    return t.fd_error != 0 ? t.fd_error : path_error;
}

// The lookup of the last component as the caller: search permission on the parent (EACCES),
// then EEXIST. 0 when the name does not exist.
int lookup_last(const PinTarget& t) {
    struct stat st {};
    if (fstatat(t.dirfd.get(), t.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return EEXIST;
    return errno == ENOENT ? 0 : errno;
}

// The path's part of a pin's checks: the parent's walk, the name. 0 or an errno.
int pin_walk(const char* pathname, const CallOpts& o, PinTarget* t) {
    std::string path(pathname);
    if (path.empty()) return ENOENT;
    // Trailing slashes: the kernel's filename_create() still looks the name up, so an existing
    // name is EEXIST; a new one is ENOENT.
    bool trailing_slash = false;
    while (path.size() > 1 && path.back() == '/') {
        path.pop_back();
        trailing_slash = true;
    }
    t->dir = dir_part(path);
    t->name = name_part(path);
    if (t->name.empty() || t->name == "/") return EEXIST;  // "/" itself
    t->dirfd.reset(openat(o.base(), t->dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!t->dirfd) return errno;
    if (t->name.size() > 255) return ENAMETOOLONG;
    // The lookup of the last component (search permission on the parent, EEXIST) is the
    // broker's, which answers in the kernel's order without the FUSE LOOKUP this would cost;
    // asked here only where the broker cannot: a trailing '/' (EEXIST or ENOENT) and a
    // directory without a broker (no_broker_error).
    if (trailing_slash) {
        int e = lookup_last(*t);
        return e != 0 ? e : ENOENT;
    }
    return 0;
}

// The checks the kernel makes before the filesystem is asked, in its order. 0 or an errno (the
// capability's and the fd's only once the path's walk fails: seed_order(); a broker's mount
// decides otherwise, pin_on()).
int pin_prelude(int fd, const char* pathname, const CallOpts& o, PinTarget* t) {
    if (int e = check_flags(protocol::Op::pin, o); e != 0) return e;
    if (pathname == nullptr) return EFAULT;
    t->no_cap = !has_cap_sys_admin();
    t->fd_error = check_bpf_fd(fd, &t->link);
    int e = pin_walk(pathname, o, t);
    return e != 0 ? seed_order(*t, e) : 0;
}

// A directory without a broker: not a bpffs-fuse directory (after the lookup and EROFS, as
// mnt_want_write() comes first in the kernel).
int no_broker_error(const PinTarget& t) {
    if (int e = lookup_last(t); e != 0) return e;
    struct statvfs vfs {};
    if (fstatvfs(t.dirfd.get(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) return EROFS;
    return EACCES;
}

bool no_broker(int e) { return e == ENOENT || e == ECONNREFUSED; }

// Is the object `fd` what is pinned as dirfd/name? Asked on the same channel, with a get.
bool pinned_there(Channel& ch, int fd, int dirfd, const std::string& name) {
    UniqueFd node(openat(dirfd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!node) return false;
    std::array<int, 1> fds{node.get()};
    auto out = ch.call(protocol::Request{protocol::Op::get, {}, 0}, fds);
    if (!out || out->resp.reply.error != 0 || !out->resp.fd) return false;
    return same_object(fd, out->resp.fd.get());
}

// A closed fd cannot travel, so the mount's rule set is asked for what it makes of one: EINVAL
// under compat=linux (bpf_fd_probe_obj), the seed's EPERM or EBADF otherwise.
int closed_fd_error(Channel& ch, const PinTarget& t) {
    auto out = ch.call(protocol::Request{protocol::Op::status, {}, 0}, {});
    const auto* st = out && out->resp.reply.error == 0 && out->resp.reply.status
                         ? &*out->resp.reply.status
                         : nullptr;
    if (st != nullptr && st->compat == protocol::StatusInfo::kCompatLinux) return EINVAL;
    return seed_order(t, EBADF);
}

// Sends the pin on `ch` (connected or not), with the caller's umask. A resent pin answered
// EEXIST is a success when the name now holds this very object: the attempt whose reply was
// lost did it.
int pin_on(Channel& ch, int fd, const PinTarget& t, std::uint32_t file_flags,
           const PinAttrs& attrs) {
    if (t.fd_error == EBADF) return closed_fd_error(ch, t);
    std::array<int, 2> fds{fd, t.dirfd.get()};
    protocol::Request req{protocol::Op::pin, t.name, file_flags};
    req.umask = read_proc_status(getpid()).umask;
    req.attrs = attrs;
    auto out = ch.call(req, fds);
    if (!out) return out.error().value;
    int e = out->resp.reply.error;
    if (e == EEXIST && out->maybe_done_before && pinned_there(ch, fd, t.dirfd.get(), t.name)) {
        return 0;
    }
    return e;
}

int obj_pin(int fd, const char* pathname, const CallOpts& o) {
    PinTarget t;
    if (int e = pin_prelude(fd, pathname, o, &t); e != 0) return e;
    struct statx dir {};
    auto key = statx_node(t.dirfd.get(), &dir) == 0 ? mount_key(dir, o.trust) : std::nullopt;
    ThreadCreds creds = key ? ThreadCreds::now() : ThreadCreds{};
    Channel ch(t.dir, t.dirfd.get(), {}, o.trust);
    if (auto k = key ? take_kept(*key, creds) : std::nullopt) {
        ch.adopt(std::move(k->sock));
    } else if (auto c = ch.connect(); !c) {
        return no_broker(c.error().value) ? seed_order(t, no_broker_error(t)) : c.error().value;
    }
    int e = pin_on(ch, fd, t, o.file_flags, o.attrs);
    if (key) keep(*key, creds, ch.release());
    return e;
}

// The node a get names, opened O_PATH, its fstat, and the directory whose broker answers for
// it (its name, and an O_PATH fd of it).
struct GetTarget {
    UniqueFd node;
    struct statx sx {};  // statx_node()
    std::string dir;
    mode_t mode() const { return sx.stx_mode; }
    dev_t dev() const { return makedev(sx.stx_dev_major, sx.stx_dev_minor); }
    int base = AT_FDCWD;  // where `dir` starts, if relative
};

// The walk of a get's path from `base` (AT_FDCWD or BPF_F_PATH_FD's path_fd). 0 or an errno.
int get_prelude(const char* pathname, int base, GetTarget* t) {
    if (pathname == nullptr) return EFAULT;
    std::string path(pathname);
    if (path.empty()) return ENOENT;
    t->node.reset(openat(base, path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!t->node) return errno;
    if (int e = statx_node(t->node.get(), &t->sx); e != 0) return e;
    if (S_ISLNK(t->mode())) {
        // A final symlink may lead to another mount: ask the broker of where it leads.
        char resolved[PATH_MAX];
        if (realpath(from_base(base, path).c_str(), resolved) == nullptr) return errno;
        path = resolved;
        base = AT_FDCWD;
        t->node.reset(open(path.c_str(), O_PATH | O_CLOEXEC));
        if (!t->node) return errno;
        if (int e = statx_node(t->node.get(), &t->sx); e != 0) return e;
    }
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    // The broker beside the node: in its directory, or in the node itself when it is a
    // directory (the mount's root has no parent on the mount).
    t->dir = S_ISDIR(t->mode()) ? path : dir_part(path);
    t->base = base;
    return 0;
}

// The directory whose broker answers for a get's node, opened O_PATH: only a call that connects
// needs it (a kept connection does not walk the path again).
UniqueFd broker_dir(const GetTarget& t) {
    return UniqueFd(S_ISDIR(t.mode())
                        ? fcntl(t.node.get(), F_DUPFD_CLOEXEC, 3)
                        : openat(t.base, t.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
}

// Sends the get on `ch`; 0 and the new fd in *out, or an errno.
int get_on(Channel& ch, int node, std::uint32_t file_flags, int* out) {
    std::array<int, 1> fds{node};
    auto r = ch.call(protocol::Request{protocol::Op::get, {}, file_flags}, fds);
    if (!r) return r.error().value;
    if (r->resp.reply.error != 0) return r->resp.reply.error;
    *out = r->resp.fd.release();
    return 0;
}

// A get on a kept connection, which is kept again once answered. *done: false when the
// connection broke (a get is safe to send again, on a new connection).
int get_on_kept(const MountKey& key, const ThreadCreds& creds, Kept k, int node,
                std::uint32_t file_flags, int* out, bool* done) {
    std::array<int, 1> fds{node};
    auto r = exchange(k.sock.get(), protocol::Request{protocol::Op::get, {}, file_flags}, fds);
    *done = r || !is_broken_connection(r.error().value);
    if (!r) return r.error().value;  // its state is unknown: it is not kept
    keep(key, creds, std::move(k));
    if (r->reply.error != 0) return r->reply.error;
    *out = r->fd.release();
    return 0;
}

int obj_get(const char* pathname, int* out, const CallOpts& o) {
    if (int e = check_flags(protocol::Op::get, o); e != 0) return e;
    GetTarget t;
    if (int e = get_prelude(pathname, o.base(), &t); e != 0) return e;
    auto key = mount_key(t.sx, o.trust);
    ThreadCreds creds = key ? ThreadCreds::now() : ThreadCreds{};
    if (auto k = key ? take_kept(*key, creds) : std::nullopt) {
        bool done = false;
        int e = get_on_kept(*key, creds, std::move(*k), t.node.get(), o.file_flags, out, &done);
        if (done) return e;
    }
    UniqueFd dirfd = broker_dir(t);
    if (!dirfd) return errno;
    Channel ch(t.dir, dirfd.get(), {}, o.trust);
    if (auto c = ch.connect(); !c) {
        // No broker beside it: not an object of a bpffs-fuse mount.
        return no_broker(c.error().value) ? EACCES : c.error().value;
    }
    int e = get_on(ch, t.node.get(), o.file_flags, out);
    if (key) keep(*key, creds, ch.release());
    return e;
}

}  // namespace

std::optional<Refusal> refusal_for(const std::string& path, bool pin, const Trust& trust) {
    std::string dir;
    if (pin) {
        std::string p = path;
        while (p.size() > 1 && p.back() == '/') p.pop_back();
        dir = dir_part(p);
    } else {
        GetTarget t;
        if (get_prelude(path.c_str(), AT_FDCWD, &t) != 0) return std::nullopt;
        dir = t.dir;
    }
    Refusal why;
    auto s = connect_broker(dir, -1, trust, &why);
    if (s || s.error().value != kUntrusted) return std::nullopt;
    return why;
}

}  // namespace bpffs::client

// A kept connection: the channel to one mount's broker, and that mount's device number, which
// tells the paths it can answer for. The mutex makes one request at a time (the protocol's
// rule) out of calls from several threads. `trust` serves the reconnects and the one-shot
// calls for paths on other mounts.
struct bpffs_conn {
    bpffs_conn(std::string dir, bpffs::UniqueFd dirfd, dev_t d, bpffs::client::Trust t)
        : ch(std::move(dir), std::move(dirfd), {}, t), dev(d), trust(t) {}
    std::mutex mu;
    bpffs::client::Channel ch;  // guarded by mu
    dev_t dev;
    bpffs::client::Trust trust;
};

namespace bpffs::client {
namespace {

int conn_open(const char* path_in_mount, const Trust& trust, std::unique_ptr<bpffs_conn>* out) {
    if (path_in_mount == nullptr) return EFAULT;
    if (*path_in_mount == '\0') return ENOENT;
    // An absolute path without symlinks, so that a reconnect later finds the same directory
    // whatever the process's working directory is by then.
    char resolved[PATH_MAX];
    if (realpath(path_in_mount, resolved) == nullptr) return errno;
    std::string path(resolved);
    UniqueFd node(open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!node) return errno;
    struct stat st {};
    if (fstat(node.get(), &st) != 0) return errno;
    std::string dir = path;
    UniqueFd dirfd = std::move(node);
    if (!S_ISDIR(st.st_mode)) {
        dir = dir_part(path);
        dirfd.reset(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!dirfd) return errno;
        if (fstat(dirfd.get(), &st) != 0) return errno;
    }
    auto c = std::make_unique<bpffs_conn>(dir, std::move(dirfd), st.st_dev, trust);
    if (auto r = c->ch.connect(); !r) {
        // No broker there: not on a bpffs-fuse mount.
        return no_broker(r.error().value) ? EACCES : r.error().value;
    }
    *out = std::move(c);
    return 0;
}

int conn_get(bpffs_conn* c, const char* pathname, unsigned flags, int* out) {
    if (c == nullptr) return EINVAL;
    CallOpts o{c->trust, flags, 0};
    // No path_fd here: BPF_F_PATH_FD would name none.
    if ((flags & kBpfFPathFd) != 0) return EINVAL;
    if (int e = check_flags(protocol::Op::get, o); e != 0) return e;
    GetTarget t;
    if (int e = get_prelude(pathname, AT_FDCWD, &t); e != 0) return e;
    if (t.dev() != c->dev) return obj_get(pathname, out, o);  // another mount
    std::lock_guard lock(c->mu);
    return get_on(c->ch, t.node.get(), flags, out);
}

int conn_pin(bpffs_conn* c, int fd, const char* pathname) {
    if (c == nullptr) return EINVAL;
    CallOpts o{c->trust, 0, 0};
    PinTarget t;
    if (int e = pin_prelude(fd, pathname, o, &t); e != 0) return e;
    struct stat st {};
    if (fstat(t.dirfd.get(), &st) != 0) return errno;
    if (st.st_dev != c->dev) return obj_pin(fd, pathname, o);  // another mount
    std::lock_guard lock(c->mu);
    return pin_on(c->ch, fd, t, 0, {});
}

// Every C entry point: exceptions never cross the ABI.
template <class F>
int guarded(F&& body) {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return ENOMEM;
    } catch (...) {
        return EIO;
    }
}

}  // namespace
}  // namespace bpffs::client

using bpffs::client::CallOpts;
using bpffs::client::guarded;
using bpffs::client::set_errno;

namespace {

// Does an opts struct of `sz` bytes hold the field at `offset` of `size` bytes (OPTS_HAS)?
constexpr bool has_field(std::size_t sz, std::size_t offset, std::size_t size) {
    return sz >= offset + size;
}

// The pin_set fields of an opts struct that has them. 0 or EINVAL.
int pin_attrs_of(const bpffs_opts& opts, CallOpts* out) {
    constexpr unsigned kAll = BPFFS_PIN_MODE | BPFFS_PIN_UID | BPFFS_PIN_GID;
    if ((opts.pin_set & ~kAll) != 0) return EINVAL;
    bpffs::PinAttrs& a = out->attrs;
    if ((opts.pin_set & BPFFS_PIN_MODE) != 0) a.mode = opts.mode;
    if ((opts.pin_set & BPFFS_PIN_UID) != 0) a.uid = opts.uid;
    if ((opts.pin_set & BPFFS_PIN_GID) != 0) a.gid = opts.gid;
    return a.valid() ? 0 : EINVAL;
}

// What an opts struct asks for. libbpf's rule for growing structs: a caller built against an
// older header passes a smaller sz (the fields it lacks keep their defaults, 0); bytes beyond
// the fields this version knows must be zero. 0 or EINVAL.
int opts_of(const bpffs_opts* opts, CallOpts* out) {
    *out = {};
    if (opts == nullptr) return 0;
    if (opts->sz < sizeof opts->sz) return EINVAL;
    const auto* bytes = reinterpret_cast<const unsigned char*>(opts);
    for (std::size_t i = sizeof(bpffs_opts); i < opts->sz; ++i) {
        if (bytes[i] != 0) return EINVAL;
    }
    if (has_field(opts->sz, offsetof(bpffs_opts, trust_uid), sizeof(uid_t)) &&
        opts->trust_uid != 0) {
        out->trust.uid = opts->trust_uid;
    }
    if (has_field(opts->sz, offsetof(bpffs_opts, file_flags), sizeof(unsigned))) {
        out->file_flags = opts->file_flags;
    }
    if (has_field(opts->sz, offsetof(bpffs_opts, path_fd), sizeof(int))) {
        out->path_fd = opts->path_fd;
    }
    return has_field(opts->sz, offsetof(bpffs_opts, gid), sizeof(gid_t)) ? pin_attrs_of(*opts, out)
                                                                         : 0;
}

}  // namespace

extern "C" BPFFS_API int bpffs_obj_pin_opts(int fd, const char* pathname,
                                            const struct bpffs_opts* opts) {
    CallOpts o;
    if (int e = opts_of(opts, &o); e != 0) return set_errno(e);
    int e = guarded([&] { return bpffs::client::obj_pin(fd, pathname, o); });
    return e == 0 ? 0 : set_errno(e);
}

extern "C" BPFFS_API int bpffs_obj_pin(int fd, const char* pathname) {
    return bpffs_obj_pin_opts(fd, pathname, nullptr);
}

extern "C" BPFFS_API int bpffs_obj_get_opts(const char* pathname, const struct bpffs_opts* opts) {
    CallOpts o;
    if (int e = opts_of(opts, &o); e != 0) return set_errno(e);
    if (!o.attrs.empty()) return set_errno(EINVAL);  // pin only
    int fd = -1;
    int e = guarded([&] { return bpffs::client::obj_get(pathname, &fd, o); });
    return e == 0 ? fd : set_errno(e);
}

extern "C" BPFFS_API int bpffs_obj_get(const char* pathname) {
    return bpffs_obj_get_opts(pathname, nullptr);
}

extern "C" BPFFS_API int bpffs_conn_open_opts(const char* path_in_mount,
                                              const struct bpffs_opts* opts,
                                              struct bpffs_conn** out) {
    if (out == nullptr) return set_errno(EFAULT);
    *out = nullptr;
    CallOpts o;
    if (int e = opts_of(opts, &o); e != 0) return set_errno(e);
    // Flags and a path_fd are for pin and get; a connection takes none.
    if (o.file_flags != 0 || o.path_fd != 0 || !o.attrs.empty()) return set_errno(EINVAL);
    std::unique_ptr<bpffs_conn> c;
    int e = guarded([&] { return bpffs::client::conn_open(path_in_mount, o.trust, &c); });
    if (e != 0) return set_errno(e);
    *out = c.release();
    return 0;
}

extern "C" BPFFS_API int bpffs_conn_open(const char* path_in_mount, struct bpffs_conn** out) {
    return bpffs_conn_open_opts(path_in_mount, nullptr, out);
}

extern "C" BPFFS_API int bpffs_conn_obj_get(struct bpffs_conn* conn, const char* pathname,
                                            unsigned flags) {
    int fd = -1;
    int e = guarded([&] { return bpffs::client::conn_get(conn, pathname, flags, &fd); });
    return e == 0 ? fd : set_errno(e);
}

extern "C" BPFFS_API int bpffs_conn_obj_pin(struct bpffs_conn* conn, int fd, const char* pathname) {
    int e = guarded([&] { return bpffs::client::conn_pin(conn, fd, pathname); });
    return e == 0 ? 0 : set_errno(e);
}

extern "C" BPFFS_API void bpffs_close_kept_connections(void) {
    guarded([] {
        bpffs::client::close_kept();
        return 0;
    });
}

extern "C" BPFFS_API void bpffs_conn_close(struct bpffs_conn* conn) {
    std::unique_ptr<bpffs_conn> owned(conn);  // closes the socket and the directory fd
}
