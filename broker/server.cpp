// SPDX-License-Identifier: GPL-2.0-or-later
// The broker's server: the socket, the connections and their serving threads, each message's
// credentials (peer.hpp), the mount-table watch. The requests themselves: handlers.cpp.
#include "broker/broker.hpp"
#include "common/log_limit.hpp"

#include "broker/peer.hpp"
#include "common/scm.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <shared_mutex>
#include <sstream>
#include <thread>

namespace bpffs::broker {

unsigned usable_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return static_cast<unsigned>(CPU_COUNT(&set));
    return std::max(std::thread::hardware_concurrency(), 1u);
}

namespace {

// The epoll data of the loop's own fds; connections have ids from 16 up.
constexpr std::uint64_t kListenId = 1;
constexpr std::uint64_t kStopId = 2;
constexpr std::uint64_t kMountinfoId = 3;
constexpr std::uint32_t kConnEvents = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
// Refused connections kept until their first request comes, to answer it with the refusal; past
// that many, one is closed unanswered (the idle sweep drops those that never ask).
constexpr std::size_t kMaxRefusing = 64;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// SO_PASSCRED: the kernel attaches each message's sender (SCM_CREDENTIALS). 0 or an errno.
int pass_credentials(int sock) {
    int one = 1;
    return setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == 0 ? 0 : errno;
}

}  // namespace

struct Broker::Conn {
    UniqueFd sock;
    std::uint64_t id = 0;
    // Only the thread that serves the connection (one at a time: EPOLLONESHOT) touches it.
    Peer peer;  // as the kernel recorded it at connect (broker/peer.hpp)
    std::atomic<std::int64_t> last_active{0};  // now_ns(); read by the idle sweep
    int refusal = 0;  // over a limit: its first request is answered with this errno, then closed
    bool counted = false;  // holds a place in open_ and conns_of_uid_ (from its admission on)
    std::atomic<bool> busy{false};  // a thread is serving it (evict_idle_of_uid_locked)
};

Broker::Broker(fsops::Filesystem& fs, Registry& registry, BrokerHooks hooks, BrokerConfig cfg)
    : fs_(fs), registry_(registry), hooks_(std::move(hooks)), cfg_(std::move(cfg)),
      self_userns_(own_user_namespace()), stop_event_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      closer_(cfg_.closer) {}

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
    std::string path =
        "/proc/self/fd/" + std::to_string(tree.get()) + "/" + std::string(protocol::kSocketName);
    std::memcpy(addr.sun_path, path.data(), path.size());
    listen_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!listen_) return errno;
    if (int e = pass_credentials(listen_.get()); e != 0) return e;
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
    if (int e = pass_credentials(listen_sock.get()); e != 0) return e;
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
    // The listening socket is one-shot too: one thread accepts at a time, then re-arms it.
    const std::array<std::pair<int, epoll_event>, 3> fds{{
        {listen_.get(), {EPOLLIN | EPOLLONESHOT, {.u64 = kListenId}}},
        {stop_event_.get(), {EPOLLIN, {.u64 = kStopId}}},
        {mountinfo_.get(), {EPOLLPRI | EPOLLERR, {.u64 = kMountinfoId}}},
    }};
    for (auto [fd, ev] : fds) {
        if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return errno;
    }
    refresh_mount_state();
    return 0;
}

void Broker::adopt_connection(UniqueFd s) {
    int flags = fcntl(s.get(), F_GETFL);
    if (flags < 0 || fcntl(s.get(), F_SETFL, flags | O_NONBLOCK) != 0) return;
    register_conn(std::move(s));
}

std::shared_ptr<Broker::Conn> Broker::new_conn(UniqueFd s) {
    auto c = std::make_shared<Conn>();
    // Every message then carries its sender's credentials (accepted sockets inherit the option
    // from the listening socket; a connection handed over by an older worker may lack it).
    int one = 1;
    setsockopt(s.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    c->peer = peer_at_connect(s.get());
    c->last_active.store(now_ns());
    c->sock = std::move(s);
    return c;
}

void Broker::register_conn(UniqueFd s) { register_conn(new_conn(std::move(s))); }

void Broker::register_conn(std::shared_ptr<Conn> c) {
    int fd = c->sock.get();
    std::lock_guard l(conns_mu_);
    c->id = next_conn_id_++;
    epoll_event ev{};
    ev.events = kConnEvents;
    ev.data.u64 = c->id;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        spdlog::warn("broker: epoll_ctl: {}", std::strerror(errno));
        uncount_locked(*c);
        return;  // closes the socket
    }
    if (c->refusal != 0)
        ++refusing_;
    else if (!c->counted)
        count_locked(*c);  // one handed over by an earlier worker
    conns_.emplace(c->id, std::move(c));
}

void Broker::count_locked(Conn& c) {
    ++conns_of_uid_[c.peer.uid];
    ++open_;
    c.counted = true;
}

void Broker::uncount_locked(Conn& c) {
    if (!c.counted) return;
    c.counted = false;
    --open_;
    if (auto n = conns_of_uid_.find(c.peer.uid); n != conns_of_uid_.end() && --n->second == 0)
        conns_of_uid_.erase(n);
}

void Broker::forget_conn_locked(
    std::unordered_map<std::uint64_t, std::shared_ptr<Conn>>::iterator it) {
    if (it->second->refusal != 0)
        --refusing_;
    else
        uncount_locked(*it->second);
    conns_.erase(it);
}

int Broker::admit_locked(const Peer& peer, bool privileged) const {
    const fsops::ServiceLimits& limits = cfg_.limits;
    if (open_ >= limits.max_conns) return EUSERS;
    if (privileged) return 0;
    if (open_ + limits.reserved_conns() >= limits.max_conns) return EUSERS;
    auto it = conns_of_uid_.find(peer.uid);
    if (it != conns_of_uid_.end() && it->second >= limits.max_conns_per_uid) return EUSERS;
    return 0;
}

bool Broker::evict_idle_of_uid_locked(const Peer& peer, std::int64_t now) {
    auto held = conns_of_uid_.find(peer.uid);
    if (held == conns_of_uid_.end() || held->second < cfg_.limits.max_conns_per_uid) return false;
    // A quarter of the idle timeout: a client between two requests is not idle, one that keeps a
    // connection for later calls (libbpffs's one-shot calls do) is.
    const std::int64_t idle_to_evict =
        std::chrono::duration_cast<std::chrono::nanoseconds>(cfg_.idle_timeout).count() / 4;
    auto oldest = conns_.end();
    for (auto it = conns_.begin(); it != conns_.end(); ++it) {
        const Conn& c = *it->second;
        if (c.peer.uid != peer.uid || !c.counted || c.refusal != 0 || c.busy.load()) continue;
        if (now - c.last_active.load() < idle_to_evict) continue;
        if (oldest == conns_.end() || c.last_active.load() < oldest->second->last_active.load())
            oldest = it;
    }
    if (oldest == conns_.end()) return false;
    spdlog::debug("broker: uid {} holds its share; closing its connection idle longest (pid {})",
                  peer.uid, oldest->second->peer.pid);
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, oldest->second->sock.get(), nullptr);
    forget_conn_locked(oldest);
    return true;
}

// A connection over a limit: its first request is answered with its refusal, so the client can
// say why, and the connection is closed. False while that request has not come yet.
bool Broker::refuse(Conn& c) {
    std::array<std::uint8_t, protocol::kMaxMessage> buf;
    Received r = recv_with_fds(c.sock.get(), buf, protocol::kMaxFds, MSG_DONTWAIT);
    for (auto& f : r.fds) closer_.close(std::move(f), c.peer.uid);
    if (r.error == EAGAIN) return false;
    if (r.error != 0 || r.size == 0 || r.truncated) return true;
    auto req = protocol::decode_request(std::span(buf.data(), r.size));
    if (req) {
        auto msg = protocol::encode(protocol::reply_error(req->op, c.refusal));
        send_with_fds(c.sock.get(), msg, {});
    }
    return true;
}

std::vector<UniqueFd> Broker::take_connections() {
    std::vector<UniqueFd> out;
    std::lock_guard l(conns_mu_);
    for (auto& [id, c] : conns_) {
        if (epoll_) epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c->sock.get(), nullptr);
        out.push_back(std::move(c->sock));
    }
    conns_.clear();
    conns_of_uid_.clear();
    open_ = 0;
    return out;
}

void Broker::release_mount() {
    {
        std::lock_guard l(conns_mu_);
        conns_.clear();
        conns_of_uid_.clear();
        open_ = 0;
    }
    listen_.reset();
    tree_.reset();
}

bool Broker::refresh_mount_state() {
    std::lock_guard l(mount_mu_);
    return refresh_mount_state_locked();
}

bool Broker::refresh_mount_state_locked() {
    // mountinfo: "ID PARENT MAJ:MIN ROOT POINT MNTOPTS [TAGS...] - FSTYPE SOURCE SUPEROPTS".
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    std::string want = std::to_string(major(mount_dev_)) + ":" + std::to_string(minor(mount_dev_));
    bool found = false;
    bool sb_ro = false;
    mount_ro_.clear();
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string id, parent, dev, root, point, mntopts, field;
        ls >> id >> parent >> dev >> root >> point >> mntopts;
        bool ro = mntopts == "ro" || mntopts.rfind("ro,", 0) == 0;
        mount_ro_[std::strtoull(id.c_str(), nullptr, 10)] = ro;
        if (dev != want) continue;
        found = true;
        while (ls >> field && field != "-") {}
        std::string fstype, source, superopts;
        ls >> fstype >> source >> superopts;
        sb_ro = superopts == "ro" || superopts.rfind("ro,", 0) == 0;
    }
    if (found) sb_read_only_.store(sb_ro);
    return found;
}

namespace {
// A serving thread's own /proc/self/mountinfo (Broker::serve), polled for changes of the mount
// table: poll() reports a change once per open file, so each thread sees every change on its
// own, without a lock, and re-reads the table (under mount_mu_) only when there was one.
thread_local const Broker* t_broker = nullptr;
thread_local int t_mountinfo = -1;

bool changed(int mountinfo) {
    pollfd pf{mountinfo, POLLPRI, 0};
    return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLPRI | POLLERR));
}
}  // namespace

// A mount change the client made before asking must count: take a pending change of the mount
// table first (no thread's epoll_wait may have seen it yet). On a serving thread, through its
// own mountinfo file; elsewhere through the shared one, under mount_mu_, so that a thread that
// finds nothing pending waits for one that is re-reading.
void Broker::take_pending_mount_change() {
    if (t_broker == this && t_mountinfo >= 0) {
        if (!changed(t_mountinfo)) return;
        std::lock_guard l(mount_mu_);
        if (!refresh_mount_state_locked()) mount_gone_.store(true);
        return;
    }
    std::lock_guard l(mount_mu_);
    if (changed(mountinfo_.get()) && !refresh_mount_state_locked()) {
        mount_gone_.store(true);  // the threads stop after this request
    }
}

bool Broker::superblock_read_only() {
    take_pending_mount_change();
    return sb_read_only_.load();
}

bool Broker::walked_read_only(int dirfd) {
    struct statx sx {};
    bool have_id = statx(dirfd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID, &sx) == 0 &&
                   (sx.stx_mask & STATX_MNT_ID);
    take_pending_mount_change();
    {
        std::lock_guard l(mount_mu_);
        if (sb_read_only_.load()) return true;
        if (have_id) {
            auto it = mount_ro_.find(sx.stx_mnt_id);
            if (it != mount_ro_.end()) return it->second;
        }
    }
    // A mount we cannot see (the client's own mount namespace): ask the kernel.
    struct statvfs vfs {};
    return fstatvfs(dirfd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
}

bool Broker::mount_read_only(std::uint64_t mnt_id) {
    take_pending_mount_change();
    std::lock_guard l(mount_mu_);
    auto it = mount_ro_.find(mnt_id);
    return it != mount_ro_.end() && it->second;
}

void Broker::stop_for_handover() {
    handover_.store(true);
    stop();
}

void Broker::stop() {
    stopping_.store(true);
    wake_all();
}

void Broker::wake_all() {
    if (stop_event_) {
        std::uint64_t one = 1;
        (void)!write(stop_event_.get(), &one, sizeof one);
    }
}

int Broker::run() {
    unsigned n = cfg_.threads;
    if (n == 0) n = usable_cpus();
    std::vector<std::thread> more;
    std::atomic<int> fatal{0};
    for (unsigned i = 1; i < n; ++i) {
        more.emplace_back([this, &fatal] {
            if (int e = serve(); e != 0) fatal.store(e);
        });
    }
    int e = serve();
    for (auto& t : more) t.join();
    if (e == 0) e = fatal.load();
    if (mount_gone_.load()) {
        spdlog::info("the mount is gone (unmounted from outside); stopping");
        {
            std::lock_guard l(conns_mu_);
            conns_.clear();
            conns_of_uid_.clear();
            open_ = 0;
        }
        if (hooks_.unmounted) hooks_.unmounted();
        return 0;
    }
    if (!handover_.load()) {
        std::lock_guard l(conns_mu_);
        conns_.clear();
        conns_of_uid_.clear();
        open_ = 0;
    }
    return e;
}

// One serving thread. Returns when stop() was called or another thread saw the end.
int Broker::serve() {
    std::array<epoll_event, 8> events;
    UniqueFd mountinfo(open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
    t_broker = this;
    t_mountinfo = mountinfo.get();
    struct Unset {
        ~Unset() {
            t_broker = nullptr;
            t_mountinfo = -1;
        }
    } unset;
    // A change between the table's first read and this open is not reported on this file. (As
    // at the first read, a mount not found here is left to the shared watch to decide.)
    if (mountinfo) refresh_mount_state();
    while (!stopping_.load() && !ending_.load()) {
        int n = epoll_wait(epoll_.get(), events.data(), events.size(), 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            spdlog::error("broker: epoll_wait: {}", std::strerror(e));
            ending_.store(true);
            wake_all();
            return e;
        }
        for (int i = 0; i < n; ++i) {
            std::uint64_t id = events[i].data.u64;
            if (id == kStopId) return 0;
            if (id == kMountinfoId) {
                if (!refresh_mount_state()) mount_gone_.store(true);
            } else if (id == kListenId) {
                if (int e = accept_one(); e != 0) {
                    ending_.store(true);
                    wake_all();
                    return e;
                }
            } else {
                serve_conn(id, events[i].events);
            }
        }
        sweep_idle();
        if (mount_gone_.load()) {
            ending_.store(true);
            wake_all();
            return 0;
        }
    }
    return 0;
}

// One connection per wakeup of the listening socket, which is re-armed at once, so that the next
// one goes to whichever thread is free. A client sends its request right after connect, so it is
// usually waiting already: it is answered before the connection joins the epoll set (one wakeup
// less per one-shot request; no other thread can see the connection yet). 0, or the errno of a
// socket that cannot be re-armed (fatal).
int Broker::accept_one() {
    UniqueFd s;
    do {
        s.reset(accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    } while (!s && (errno == EINTR || errno == ECONNABORTED));
    int accept_error = s ? 0 : errno;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = kListenId;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, listen_.get(), &ev) != 0) {
        int e = errno;
        spdlog::error("broker: cannot re-arm the socket: {}", std::strerror(e));
        return e;
    }
    if (!s) {
        if (accept_error != EAGAIN) spdlog::warn("broker: accept: {}", std::strerror(accept_error));
        return 0;
    }
    auto c = new_conn(std::move(s));
    // Root and the mount's owner have the reserved connections (fsops::ServiceLimits).
    bool privileged = c->peer.uid == 0 || c->peer.uid == fs_.options().uid;
    int refusal = closer_.over_share(c->peer.uid) ? EUSERS : 0;
    std::uint64_t refused = 0;
    bool wait_for_request = false;  // a refused connection whose request is still to come
    {
        std::lock_guard l(conns_mu_);
        if (refusal == 0) refusal = admit_locked(c->peer, privileged);
        // Its own kept connections, idle, must not lock a uid out: one gives way.
        if (refusal == EUSERS && evict_idle_of_uid_locked(c->peer, now_ns()))
            refusal = admit_locked(c->peer, privileged);
        if (refusal != 0) {
            refused = ++refused_;
            wait_for_request = refusing_ < kMaxRefusing;
        } else {
            count_locked(*c);  // now: its client may connect again as soon as it is answered
        }
    }
    if (refusal != 0) {
        if (worth_logging(refused))
            spdlog::warn(
                "broker: refused a connection of uid {} (pid {}) over its limits; {} "
                "refused so far",
                c->peer.uid, c->peer.pid, refused);
        c->refusal = refusal;
        if (!refuse(*c) && wait_for_request) register_conn(std::move(c));
        return 0;
    }
    if (on_readable(*c)) {
        register_conn(std::move(c));
    } else {
        std::lock_guard l(conns_mu_);
        uncount_locked(*c);
    }
    return 0;
}

void Broker::serve_conn(std::uint64_t id, std::uint32_t events) {
    std::shared_ptr<Conn> c;
    {
        std::shared_lock l(conns_mu_);
        auto it = conns_.find(id);
        if (it == conns_.end()) return;  // closed meanwhile (idle sweep)
        c = it->second;
    }
    c->last_active.store(now_ns());
    c->busy.store(true);
    struct Idle {
        Conn& c;
        ~Idle() { c.busy.store(false); }
    } idle{*c};
    bool keep =
        (events & (EPOLLIN | EPOLLRDHUP)) ? on_readable(*c) : !(events & (EPOLLHUP | EPOLLERR));
    if (keep) {
        epoll_event ev{};
        ev.events = kConnEvents;
        ev.data.u64 = id;
        // ENOENT: the idle sweep removed it meanwhile.
        keep = epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c->sock.get(), &ev) == 0;
    }
    if (!keep) {
        std::lock_guard l(conns_mu_);
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c->sock.get(), nullptr);
        if (auto it = conns_.find(id); it != conns_.end()) forget_conn_locked(it);
    }
}

// At most once a second, from whichever thread comes by.
void Broker::sweep_idle() {
    std::int64_t now = now_ns();
    std::int64_t due = next_sweep_.load();
    if (now < due || !next_sweep_.compare_exchange_strong(due, now + 1'000'000'000)) return;
    std::int64_t limit =
        std::chrono::duration_cast<std::chrono::nanoseconds>(cfg_.idle_timeout).count();
    std::lock_guard l(conns_mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
        Conn& c = *it->second;
        if (now - c.last_active.load() > limit) {
            spdlog::debug("broker: closing idle connection (pid {})", c.peer.pid);
            epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c.sock.get(), nullptr);
            forget_conn_locked(it++);  // a thread serving it still holds it
        } else {
            ++it;
        }
    }
}

bool Broker::on_readable(Conn& c) {
    if (c.refusal != 0) return !refuse(c);
    const int fd = c.sock.get();
    // One message per wakeup: a client sends its next request only once answered, so a second
    // read would find nothing (a system call per request for nothing), and one that sends more
    // gets them answered one per turn, after the other connections' (the re-armed connection
    // wakes a thread again at once). None once a stop is asked for (a handover leaves it queued
    // for the next worker).
    if (stopping_.load()) return true;
    if (closer_.over_share(c.peer.uid)) return false;  // its files do not close: no more
    std::array<std::uint8_t, protocol::kMaxMessage> buf;
    Received r = recv_with_fds(fd, buf, protocol::kMaxFds, MSG_DONTWAIT);
    // Every fd it sent goes to the closer, whatever becomes of the message, and before the
    // reply (a client that umounts once answered must find the mount unused).
    struct ToCloser {
        Closer& closer;
        uid_t uid;
        std::vector<UniqueFd>& fds;
        void now() {
            for (auto& f : fds) closer.close(std::move(f), uid);
            fds.clear();
        }
        ~ToCloser() { now(); }
    } to_closer{closer_, c.peer.uid, r.fds};
    if (r.error == EAGAIN) return true;
    if (r.error != 0 || r.size == 0) return false;  // error or the peer left
    if (r.truncated || r.ctruncated) {
        if (std::uint64_t n = ++bad_messages_; worth_logging(n))
            spdlog::warn(
                "broker: uid {} pid {}: oversized message or too many fds; closing "
                "({} malformed messages so far)",
                c.peer.uid, c.peer.pid, n);
        return false;
    }
    auto req = protocol::decode_request(std::span(buf.data(), r.size));
    if (!req) {
        if (std::uint64_t n = ++bad_messages_; worth_logging(n))
            spdlog::warn(
                "broker: uid {} pid {}: malformed request ({}); closing ({} malformed "
                "messages so far)",
                c.peer.uid, c.peer.pid, strerrorname_np(req.error().value), n);
        return false;
    }
    if (cfg_.stall_op == req->op) return true;  // a test's worker that dies on this request
    UniqueFd out_fd;
    protocol::Reply rep;
    if (r.fds.size() != protocol::expected_fds(req->op)) {
        rep = protocol::reply_error(req->op, EINVAL);
    } else {
        try {
            RequestCreds creds(fd, c.peer, r.sender, self_userns_);
            rep = handle(creds, *req, r.fds, out_fd);
        } catch (const std::bad_alloc&) {
            rep = protocol::reply_error(req->op, ENOMEM);
        } catch (const std::exception& ex) {
            spdlog::error("broker: {} failed: {}", protocol::op_name(req->op), ex.what());
            rep = protocol::reply_error(req->op, EIO);
        }
    }
    to_closer.now();
    auto msg = protocol::encode(rep);
    std::array<int, 1> one{out_fd.get()};
    std::span<const int> fds = out_fd ? std::span<const int>(one) : std::span<const int>();
    if (int e = send_with_fds(fd, msg, fds); e != 0) {
        spdlog::debug("broker: pid {}: reply not sent ({}); closing", c.peer.pid, std::strerror(e));
        return false;
    }
    return true;
}

}  // namespace bpffs::broker
