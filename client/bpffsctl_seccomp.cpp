// SPDX-License-Identifier: GPL-2.0-or-later
// bpffsctl's seccomp supervisor (bpffsctl_seccomp.hpp).
#include "client/bpffsctl_seccomp.hpp"

#include "common/bpf_flags.hpp"
#include "common/bpffs_node.hpp"
#include "common/caps.hpp"
#include "common/proc_status.hpp"
#include "common/scm.hpp"

#include "bpffs/bpffs.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <optional>

namespace bpffs::ctl::seccomp {
namespace {

#if defined(__x86_64__)
constexpr std::uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
#error "the seccomp supervisor knows x86_64 and aarch64"
#endif

constexpr unsigned kMaxAttrSize = 4096;  // the kernel's limit for a bpf_attr

// The filter: bpf(2) with cmd BPF_OBJ_PIN or BPF_OBJ_GET, statfs(2) and fstatfs(2) of this
// architecture go to the listener; everything else (other architectures' calls included) is
// allowed. bpf(2)'s cmd is an int: the low 32 bits of the first argument.
std::vector<sock_filter> filter_program() {
    constexpr std::uint32_t kArg0Low =
        offsetof(seccomp_data, args) + (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 0 : 4);
    return {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),  // 0
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 0, 7),                  // 1: else 9
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),    // 2
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_bpf, 2, 0),               // 3: to 6
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_statfs, 5, 0),            // 4: to 10
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fstatfs, 4, 3),           // 5: 10, else 9
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg0Low),                      // 6
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, BPF_OBJ_PIN, 2, 0),            // 7: to 10
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, BPF_OBJ_GET, 1, 0),            // 8: to 10
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),                      // 9
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),                 // 10
    };
}

long seccomp_call(unsigned op, unsigned flags, void* arg) {
    return syscall(SYS_seccomp, op, flags, arg);
}

// What serving a call came to: leave it to the kernel, a return value, an errno, a new fd to
// put into the caller; a statfs (value 0) carries what to write into its buffer.
struct Outcome {
    enum class Kind : std::int32_t { cont, value, error, fd } kind = Kind::cont;
    std::int64_t value = 0;  // value: the return value; error: a positive errno
    UniqueFd fd;
    std::optional<struct statfs> statfs;
    static Outcome cont() { return {}; }
    static Outcome val(std::int64_t v) { return {Kind::value, v, {}, {}}; }
    static Outcome err(int e) { return {Kind::error, e, {}, {}}; }
};

// What one notified call asks, read from the caller.
struct Request {
    int nr = 0;
    int cmd = 0;  // bpf(2): BPF_OBJ_PIN or BPF_OBJ_GET
    std::uint32_t bpf_fd = 0, file_flags = 0;
    std::int32_t path_fd = 0;
    bool extra = false;  // bpf(2): a non-zero byte after path_fd
    std::string path;    // bpf(2), statfs(2)
    int fd = -1;         // fstatfs(2)
    mode_t umask = 022;  // the caller's: a compat=linux pin's mode is 0600 & ~umask
    bool relative() const { return !path.empty() && path.front() != '/'; }
    bool with_path_fd() const { return nr == __NR_bpf && (file_flags & kBpfFPathFd) != 0; }
};

// What the caller lends to serve its call, taken while it waits: the directory its relative
// paths start from (its path_fd, or its working directory), the object a pin pins, the node an
// fstatfs asks about.
struct Lent {
    UniqueFd base, obj, node;
};

std::string proc_path(pid_t tid, const std::string& rest) {
    return "/proc/" + std::to_string(tid) + "/" + rest;
}

bool same_inode(const std::string& a, const std::string& b) {
    struct stat sa {};
    struct stat sb {};
    return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

ProcStatus sorted_status(pid_t pid) {
    ProcStatus s = read_proc_status(pid);
    std::sort(s.groups.begin(), s.groups.end());
    return s;
}

// Our own credentials, read once.
const ProcStatus& own_status() {
    static const ProcStatus own = sorted_status(getpid());
    return own;
}

bool same_credentials(const ProcStatus& a, const ProcStatus& b) {
    return std::equal(a.uids, a.uids + 4, b.uids) && std::equal(a.gids, a.gids + 4, b.gids) &&
           a.groups == b.groups && a.cap_eff == b.cap_eff;
}

// May this process take on another caller's credentials, root and mount namespace (a root
// supervisor: bpffsctl run as root, the container agent)?
bool can_take_on() {
    const ProcStatus& own = own_status();
    constexpr int kCapSetgid = 6, kCapSetuid = 7, kCapSysChroot = 18;
    return own.uids[1] == 0 && cap_in(own.cap_eff, kCapSetgid) && cap_in(own.cap_eff, kCapSetuid) &&
           cap_in(own.cap_eff, kCapSysChroot) && cap_in(own.cap_eff, kCapSysAdmin);
}

// Serves `r` in this process's world (credentials, root, mount namespace), which is the
// caller's: ours when they are the same, a helper's that took the caller's on. Relative paths
// start from the lent directory: the working directory moves there (the supervisor has no use
// for its own), so no /proc is needed.
Outcome serve_here(const Request& r, Lent& l, std::uint32_t trust_uid) {
    if (r.relative() && !r.with_path_fd() && (!l.base || fchdir(l.base.get()) != 0)) {
        return Outcome::cont();
    }
    const char* path = r.path.c_str();
    if (r.nr != __NR_bpf) {  // statfs, fstatfs
        UniqueFd own_node;
        int node = l.node.get();
        if (r.nr == __NR_statfs) {
            own_node.reset(open(path, O_PATH | O_CLOEXEC));  // statfs follows symlinks
            node = own_node.get();
        }
        struct statfs st {};
        if (node < 0 || !node::on_fuse(node) || !node::on_bpffs_fuse(node) ||
            fstatfs(node, &st) != 0) {
            return Outcome::cont();
        }
        st.f_type = BPF_FS_MAGIC;
        Outcome o = Outcome::val(0);
        o.statfs = st;
        return o;
    }
    int dirfd = r.with_path_fd() ? l.base.get() : AT_FDCWD;
    // The library sends this process's umask with a pin: the caller's, for this call.
    struct UmaskAs {
        mode_t old;
        explicit UmaskAs(mode_t m) : old(umask(m)) {}
        ~UmaskAs() { umask(old); }
    } umask_as(r.umask);
    bool ours = r.cmd == BPF_OBJ_PIN ? node::pin_target_on_bpffs_fuse(dirfd, path)
                                     : node::get_target_on_bpffs_fuse(dirfd, path);
    if (!ours) return Outcome::cont();
    // CHECK_ATTR(BPF_OBJ): nothing after path_fd; BPF_OBJ_GET takes no fd.
    if (r.extra || (r.cmd == BPF_OBJ_GET && r.bpf_fd != 0)) return Outcome::err(EINVAL);
    bpffs_opts opts{};
    opts.sz = sizeof opts;
    opts.trust_uid = trust_uid;
    opts.file_flags = r.file_flags;
    if (r.with_path_fd()) opts.path_fd = l.base.get();
    if (r.cmd == BPF_OBJ_PIN) {
        int e = bpffs_obj_pin_opts(l.obj ? l.obj.get() : -1, path, &opts);
        return e == 0 ? Outcome::val(0) : Outcome::err(-e);
    }
    int fd = bpffs_obj_get_opts(path, &opts);
    if (fd < 0) return Outcome::err(-fd);
    Outcome o{Outcome::Kind::fd, 0, UniqueFd(fd), {}};
    return o;
}

// An Outcome as a helper sends it to the supervisor (the fd travels beside it).
struct WireOutcome {
    Outcome::Kind kind;
    std::int64_t value;
    bool has_statfs;
    struct statfs st;
};

// In a forked helper: takes on the caller's credentials (`st`), root and mount namespace, then
// serves `r` as serve_here does and sends the outcome on `sock`. Never returns.
[[noreturn]] void helper_main(int sock, const ProcStatus& st, int root, int mntns, const Request& r,
                              Lent& l, std::uint32_t trust_uid) {
    // What could not be taken on is said (the call is then the kernel's): setns of a mount
    // namespace, for one, refuses a process with threads.
    auto give_up = [&](const char* step) {
        std::fprintf(stderr, "bpffsctl: seccomp helper: %s of the caller: %s; left to the kernel\n",
                     step, std::strerror(errno));
        WireOutcome w{Outcome::Kind::cont, 0, false, {}};
        send_with_fds(sock, std::span(reinterpret_cast<const std::uint8_t*>(&w), sizeof w), {});
        _exit(1);
    };
    if (mntns >= 0 && setns(mntns, CLONE_NEWNS) != 0) give_up("entering the mount namespace");
    if (fchdir(root) != 0 || chroot(".") != 0) give_up("chroot to the root");
    std::vector<gid_t> groups(st.groups.begin(), st.groups.end());
    if (setgroups(groups.size(), groups.data()) != 0 ||
        setresgid(st.gids[0], st.gids[1], st.gids[2]) != 0) {
        give_up("taking the groups");
    }
    setfsgid(st.gids[3]);
    if (setresuid(st.uids[0], st.uids[1], st.uids[2]) != 0) give_up("taking the uids");
    setfsuid(st.uids[3]);
    // A caller still root keeps only the capabilities it has (others lose them all with uid 0).
    if (st.uids[1] == 0) {
        __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        data[0].effective = data[0].permitted = static_cast<std::uint32_t>(st.cap_eff);
        data[1].effective = data[1].permitted = static_cast<std::uint32_t>(st.cap_eff >> 32);
        if (syscall(SYS_capset, &hdr, data) != 0) give_up("taking the capabilities");
    }
    Outcome o = serve_here(r, l, trust_uid);
    WireOutcome w{o.kind, o.value, o.statfs.has_value(), {}};
    if (o.statfs) w.st = *o.statfs;
    std::array<int, 1> fds{o.fd.get()};
    send_with_fds(sock, std::span(reinterpret_cast<const std::uint8_t*>(&w), sizeof w),
                  o.fd ? std::span<const int>(fds) : std::span<const int>());
    _exit(0);
}

// Serves `r` in a helper that takes on the caller's world (`st`; its root and mount namespace
// through /proc/TID/). CONTINUE when the helper cannot.
Outcome serve_as_caller(pid_t tid, const ProcStatus& st, const Request& r, Lent& l,
                        std::uint32_t trust_uid) {
    UniqueFd root(open(proc_path(tid, "root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    bool other_ns = !same_inode(proc_path(tid, "ns/mnt"), "/proc/self/ns/mnt");
    UniqueFd mntns(other_ns ? open(proc_path(tid, "ns/mnt").c_str(), O_RDONLY | O_CLOEXEC) : -1);
    int sv[2];
    if (!root || (other_ns && !mntns) ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        return Outcome::cont();
    }
    UniqueFd ours(sv[0]), theirs(sv[1]);
    pid_t pid = fork();
    if (pid < 0) return Outcome::cont();
    if (pid == 0) helper_main(theirs.get(), st, root.get(), mntns.get(), r, l, trust_uid);
    theirs.reset();
    WireOutcome w{};
    Received got =
        recv_with_fds(ours.get(), std::span(reinterpret_cast<std::uint8_t*>(&w), sizeof w), 1);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got.size != sizeof w) return Outcome::cont();
    Outcome o{w.kind, w.value, {}, {}};
    if (w.has_statfs) o.statfs = w.st;
    if (w.kind == Outcome::Kind::fd) {
        if (got.fds.size() != 1) return Outcome::err(EIO);
        o.fd = std::move(got.fds[0]);
    }
    return o;
}

}  // namespace

// One notification being answered: the caller's thread, what is read of it and lent by it.
struct Call {
    Supervisor& sup;
    const seccomp_notif& n;

    pid_t tid() const { return static_cast<pid_t>(n.pid); }
    std::uint64_t arg(int i) const { return n.data.args[i]; }

    // Is the caller still blocked in this call (its pid not reused)?
    bool valid() const {
        auto id = n.id;
        return ioctl(sup.listener_.get(), SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
    }

    bool read(void* dst, std::uint64_t addr, std::size_t len) const {
        iovec local{dst, len};
        iovec remote{reinterpret_cast<void*>(static_cast<std::uintptr_t>(addr)), len};
        return process_vm_readv(tid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
    }

    bool write(std::uint64_t addr, const void* src, std::size_t len) const {
        iovec local{const_cast<void*>(src), len};
        iovec remote{reinterpret_cast<void*>(static_cast<std::uintptr_t>(addr)), len};
        return process_vm_writev(tid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
    }

    // A NUL-terminated string of the caller's, read a page at a time (a read must not cross
    // into an unmapped page). Nothing when unreadable, empty or PATH_MAX long: the kernel's.
    std::optional<std::string> read_string(std::uint64_t addr) const {
        std::string s;
        while (s.size() < PATH_MAX) {
            std::size_t in_page = 4096 - (addr % 4096);
            std::size_t n = std::min<std::size_t>(in_page, PATH_MAX - s.size());
            char buf[4096];
            if (!read(buf, addr, n)) return std::nullopt;
            const char* nul = static_cast<const char*>(std::memchr(buf, '\0', n));
            if (nul != nullptr) {
                s.append(buf, static_cast<std::size_t>(nul - buf));
                if (s.empty()) return std::nullopt;
                return s;
            }
            s.append(buf, n);
            addr += n;
        }
        return std::nullopt;
    }

    // The call's arguments; nothing when the kernel is to answer (a bad pointer or size).
    std::optional<Request> request() const {
        Request r;
        r.nr = n.data.nr;
        if (r.nr == __NR_fstatfs) {
            r.fd = static_cast<int>(arg(0));
            return r;
        }
        if (r.nr == __NR_statfs) {
            auto path = read_string(arg(0));
            if (!path) return std::nullopt;
            r.path = std::move(*path);
            return r;
        }
        // bpf(2): the attr's layout (pathname u64, bpf_fd u32, file_flags u32, path_fd s32).
        r.cmd = static_cast<int>(arg(0));
        const auto size = static_cast<unsigned>(arg(2));
        if (size < sizeof(std::uint64_t) || size > kMaxAttrSize) return std::nullopt;
        std::array<unsigned char, kMaxAttrSize> attr{};
        if (!read(attr.data(), arg(1), size)) return std::nullopt;
        std::uint64_t pathname = 0;
        std::memcpy(&pathname, attr.data(), 8);
        std::memcpy(&r.bpf_fd, attr.data() + 8, 4);
        std::memcpy(&r.file_flags, attr.data() + 12, 4);
        std::memcpy(&r.path_fd, attr.data() + 16, 4);
        r.extra = std::any_of(attr.begin() + 20, attr.begin() + std::max(size, 20u),
                              [](unsigned char b) { return b != 0; });
        auto path = read_string(pathname);
        if (!path) return std::nullopt;
        r.path = std::move(*path);
        return r;
    }

    // A copy of the caller's fd `fd` (pidfd_getfd), or an invalid one.
    UniqueFd caller_fd(const ProcStatus& st, int fd) const {
        if (st.tgid == 0) return {};
        UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, st.tgid, 0)));
        if (!pidfd) return {};
        return UniqueFd(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
    }

    Lent lend(const Request& r, const ProcStatus& st) const {
        Lent l;
        if (r.with_path_fd() && r.path_fd != AT_FDCWD) {
            l.base.reset(open(proc_path(tid(), "fd/" + std::to_string(r.path_fd)).c_str(),
                              O_PATH | O_CLOEXEC));
        } else if (r.relative() || r.with_path_fd()) {  // AT_FDCWD: the working directory
            l.base.reset(open(proc_path(tid(), "cwd").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        }
        if (r.nr == __NR_bpf && r.cmd == BPF_OBJ_PIN)
            l.obj = caller_fd(st, static_cast<int>(r.bpf_fd));
        if (r.nr == __NR_fstatfs) l.node = caller_fd(st, r.fd);
        return l;
    }

    // Serves the call where the caller would: here when it shares our world, else in a helper
    // that takes its world on (when we may), else not at all (CONTINUE, said once).
    Outcome serve() {
        auto r = request();
        if (!r) return Outcome::cont();
        ProcStatus st = sorted_status(tid());
        r->umask = st.umask;
        Lent l = lend(*r, st);
        if (!st.ok || !valid()) return Outcome::err(ENOENT);  // gone: the answer goes nowhere
        bool same = same_credentials(st, own_status()) &&
                    same_inode(proc_path(tid(), "root"), "/proc/self/root") &&
                    same_inode(proc_path(tid(), "ns/mnt"), "/proc/self/ns/mnt");
        if (same) return serve_here(*r, l, sup.trust_uid_);
        if (can_take_on()) return serve_as_caller(tid(), st, *r, l, sup.trust_uid_);
        if (!sup.warned_other_world_) {
            sup.warned_other_world_ = true;
            std::fprintf(stderr,
                         "bpffsctl: run: process %d has other credentials, another root or "
                         "another mount namespace than bpffsctl, which is not root: its pins, "
                         "gets and statfs are left to the kernel\n",
                         tid());
        }
        return Outcome::cont();
    }
};

int install_filter() {
    auto caps = effective_caps(0);
    if (!(caps && cap_in(*caps, kCapSysAdmin)) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        return -errno;
    }
    std::vector<sock_filter> code = filter_program();
    sock_fprog prog{static_cast<unsigned short>(code.size()), code.data()};
    long fd = seccomp_call(
        SECCOMP_SET_MODE_FILTER,
        SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
    if (fd < 0 && errno == EINVAL) {  // before 5.19: no killable wait
        fd = seccomp_call(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    }
    return fd < 0 ? -errno : static_cast<int>(fd);
}

Supervisor::Supervisor(UniqueFd listener, std::uint32_t trust_uid)
    : listener_(std::move(listener)), trust_uid_(trust_uid) {}

void Supervisor::answer(const seccomp_notif& n) {
    Call call{*this, n};
    Outcome o = call.serve();
    if (o.kind == Outcome::Kind::fd) {
        seccomp_notif_addfd add{};
        add.id = n.id;
        add.flags = SECCOMP_ADDFD_FLAG_SEND;
        add.srcfd = static_cast<std::uint32_t>(o.fd.get());
        add.newfd_flags = O_CLOEXEC;
        // Our copy closes with `o`, whether the caller took it or went away.
        ++(ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_ADDFD, &add) >= 0 ? figures_.served
                                                                        : figures_.gone);
        return;
    }
    seccomp_notif_resp r{};
    r.id = n.id;
    if (o.statfs && !call.write(call.arg(1), &*o.statfs, sizeof *o.statfs)) {
        o = Outcome::err(EFAULT);
    }
    if (o.kind == Outcome::Kind::cont) {
        r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    } else if (o.kind == Outcome::Kind::value) {
        r.val = o.value;
    } else {
        r.error = -static_cast<std::int32_t>(o.value);
    }
    if (ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_SEND, &r) != 0) {
        ++figures_.gone;
    } else {
        ++(o.kind == Outcome::Kind::cont ? figures_.continued : figures_.served);
    }
}

bool Supervisor::serve(pid_t child) {
    seccomp_notif_sizes sizes{};
    if (seccomp_call(SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) {
        std::fprintf(stderr, "bpffsctl: run: seccomp notification sizes: %s\n",
                     std::strerror(errno));
        return false;
    }
    // The kernel's struct may be larger than our header's: a buffer of its size.
    std::vector<unsigned char> req(
        std::max<std::size_t>(sizes.seccomp_notif, sizeof(seccomp_notif)));
    UniqueFd child_fd(child > 0 ? static_cast<int>(syscall(SYS_pidfd_open, child, 0)) : -1);
    for (;;) {
        std::array<pollfd, 2> p{pollfd{listener_.get(), POLLIN, 0},
                                pollfd{child_fd.get(), POLLIN, 0}};
        if (poll(p.data(), child_fd ? 2 : 1, -1) < 0) {
            if (errno == EINTR) continue;
            std::fprintf(stderr, "bpffsctl: run: poll: %s\n", std::strerror(errno));
            return false;
        }
        if (child_fd && (p[1].revents & POLLIN) != 0) {  // reaped, it lets go of the filter
            waitpid(child, &child_status_, 0);
            child_fd.reset();
        }
        if ((p[0].revents & POLLIN) == 0) {
            if ((p[0].revents & (POLLHUP | POLLERR)) == 0) continue;
            // No task uses the filter (kernels differ on whether a zombie still does).
            if (child_fd) waitpid(child, &child_status_, 0);
            return true;
        }
        std::fill(req.begin(), req.end(), 0);
        if (ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_RECV, req.data()) != 0) {
            if (errno == EINTR || errno == ENOENT) continue;  // the caller went away
            std::fprintf(stderr, "bpffsctl: run: seccomp notification: %s\n", std::strerror(errno));
            return false;
        }
        seccomp_notif n{};
        std::memcpy(&n, req.data(), sizeof n);
        answer(n);
    }
}

int run_supervised(const std::vector<std::string>& command, std::uint32_t trust_uid) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        std::fprintf(stderr, "bpffsctl: error: run: socketpair: %s\n", std::strerror(errno));
        return 1;
    }
    UniqueFd ours(sv[0]), theirs(sv[1]);
    std::fflush(nullptr);
    pid_t child = fork();
    if (child < 0) {
        std::fprintf(stderr, "bpffsctl: error: run: fork: %s\n", std::strerror(errno));
        return 1;
    }
    if (child == 0) {
        ours.reset();
        int fd = install_filter();
        std::uint8_t status = fd < 0 ? static_cast<std::uint8_t>(-fd) : 0;
        std::array<int, 1> fds{fd};
        send_with_fds(theirs.get(), std::span(&status, 1),
                      fd < 0 ? std::span<const int>() : std::span<const int>(fds));
        if (fd < 0) _exit(1);
        close(fd);
        theirs.reset();
        std::vector<char*> argv;
        for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        execvp(argv[0], argv.data());
        std::fprintf(stderr, "bpffsctl: error: run %s: %s\n", command.front().c_str(),
                     std::strerror(errno));
        _exit(127);
    }
    theirs.reset();
    // The terminal's ^C and ^\ are for the command; the supervisor stays until it is done.
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    std::uint8_t status = 0;
    Received got = recv_with_fds(ours.get(), std::span(&status, 1), 1);
    int wstatus = 0;
    if (got.size != 1 || status != 0 || got.fds.size() != 1) {
        waitpid(child, &wstatus, 0);
        std::fprintf(stderr, "bpffsctl: error: run: cannot install the seccomp filter: %s\n",
                     std::strerror(status != 0 ? status : EPROTO));
        return 1;
    }
    bool ok = false;
    {
        Supervisor sup(std::move(got.fds[0]), trust_uid);
        ok = sup.serve(child);
        wstatus = sup.child_status();
    }  // a failed supervisor's listener closes here: pending calls fail with ENOSYS
    if (!ok) {
        waitpid(child, &wstatus, 0);
        return 1;
    }
    if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 1;
}

}  // namespace bpffs::ctl::seccomp
