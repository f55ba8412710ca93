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
#include <linux/audit.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/magic.h>
#include <linux/seccomp.h>
#include <poll.h>
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

// The answer to one notification.
struct Answer {
    enum class Kind { cont, value, error, fd } kind = Kind::cont;
    std::int64_t value = 0;  // value: the call's return value; error: a positive errno
    UniqueFd fd;             // fd: to put into the caller as the call's return value
    static Answer cont() { return {}; }
    static Answer val(std::int64_t v) { return {Kind::value, v, {}}; }
    static Answer err(int e) { return {Kind::error, e, {}}; }
    static Answer with_fd(UniqueFd f) { return {Kind::fd, 0, std::move(f)}; }
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

// Our own credentials, as /proc/self/status shows them (one reading per supervisor).
const ProcStatus& own_status() {
    static const ProcStatus own = [] {
        ProcStatus s = read_proc_status(getpid());
        std::sort(s.groups.begin(), s.groups.end());
        return s;
    }();
    return own;
}

}  // namespace

// One notification being answered: the caller's thread and what the supervisor learns of it.
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
    // into an unmapped page). Nothing when unreadable or PATH_MAX long: the kernel's to answer.
    std::optional<std::string> read_string(std::uint64_t addr) const {
        std::string s;
        while (s.size() < PATH_MAX) {
            std::size_t in_page = 4096 - (addr % 4096);
            std::size_t n = std::min<std::size_t>(in_page, PATH_MAX - s.size());
            char buf[4096];
            if (!read(buf, addr, n)) return std::nullopt;
            const char* nul = static_cast<const char*>(std::memchr(buf, '\0', n));
            if (nul != nullptr) return s.append(buf, static_cast<std::size_t>(nul - buf));
            s.append(buf, n);
            addr += n;
        }
        return std::nullopt;
    }

    // Does the caller share our credentials, root and mount namespace, so that what we do is
    // what it would do?
    bool same_world() const {
        const ProcStatus& own = own_status();
        ProcStatus st = read_proc_status(tid());
        std::sort(st.groups.begin(), st.groups.end());
        bool same = st.ok && std::equal(st.uids, st.uids + 4, own.uids) &&
                    std::equal(st.gids, st.gids + 4, own.gids) && st.groups == own.groups &&
                    st.cap_eff == own.cap_eff &&
                    same_inode(proc_path(tid(), "root"), "/proc/self/root") &&
                    same_inode(proc_path(tid(), "ns/mnt"), "/proc/self/ns/mnt");
        if (!same && !sup.warned_other_world_ && valid()) {
            sup.warned_other_world_ = true;
            std::fprintf(stderr,
                         "bpffsctl: run: process %d has other credentials, another root or "
                         "another mount namespace than bpffsctl (a setuid change, chroot or "
                         "unshare): its pins, gets and statfs are left to the kernel\n",
                         tid());
        }
        return same;
    }

    // A copy of the caller's fd `fd` (pidfd_getfd), or an invalid one.
    UniqueFd caller_fd(int fd) const {
        ProcStatus st = read_proc_status(tid());
        if (!st.ok || st.tgid == 0) return {};
        UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, st.tgid, 0)));
        if (!pidfd) return {};
        return UniqueFd(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
    }

    // Where the caller's relative paths start: its path_fd with BPF_F_PATH_FD, else its working
    // directory; opened O_PATH through /proc/TID/. Invalid when /proc does not give it.
    UniqueFd base_dir(bool path_fd, int fd) const {
        std::string p =
            path_fd ? proc_path(tid(), "fd/" + std::to_string(fd)) : proc_path(tid(), "cwd");
        return UniqueFd(open(p.c_str(), O_PATH | O_CLOEXEC));
    }
};

namespace {

// `path` as the client library resolves it from the working directory: relative to `base`
// through /proc/self/fd (absolute ones as they are: the caller shares our root).
std::string from_base(int base, const std::string& path) {
    if (path.empty() || path.front() == '/') return path;
    return "/proc/self/fd/" + std::to_string(base) + "/" + path;
}

// bpf(2) BPF_OBJ_PIN / BPF_OBJ_GET. The layout of the attr (pathname u64, bpf_fd u32, file_flags
// u32, path_fd s32) and CHECK_ATTR's rule (nothing after path_fd) as the preload shim reads them.
Answer serve_bpf(Call& c, std::uint32_t trust_uid) {
    const int cmd = static_cast<int>(c.arg(0));
    const auto size = static_cast<unsigned>(c.arg(2));
    if (size < sizeof(std::uint64_t) || size > kMaxAttrSize) return Answer::cont();
    std::array<unsigned char, kMaxAttrSize> attr{};
    if (!c.read(attr.data(), c.arg(1), size)) return Answer::cont();  // EFAULT: the kernel's
    std::uint64_t pathname = 0;
    std::uint32_t bpf_fd = 0, file_flags = 0;
    std::int32_t path_fd = 0;
    std::memcpy(&pathname, attr.data(), 8);
    std::memcpy(&bpf_fd, attr.data() + 8, 4);
    std::memcpy(&file_flags, attr.data() + 12, 4);
    std::memcpy(&path_fd, attr.data() + 16, 4);
    bool extra = std::any_of(attr.begin() + 20, attr.begin() + std::max(size, 20u),
                             [](unsigned char b) { return b != 0; });
    auto path = c.read_string(pathname);
    if (!path || path->empty() || !c.same_world()) return Answer::cont();
    const bool with_path_fd = (file_flags & kBpfFPathFd) != 0;
    UniqueFd base = c.base_dir(with_path_fd, path_fd);
    if (!c.valid()) return Answer::err(ENOENT);  // gone; the answer goes nowhere
    if (!base && path->front() != '/') return Answer::cont();
    int dirfd = base ? base.get() : AT_FDCWD;
    bool ours = cmd == BPF_OBJ_PIN ? node::pin_target_on_bpffs_fuse(dirfd, path->c_str())
                                   : node::get_target_on_bpffs_fuse(dirfd, path->c_str());
    if (!ours) return Answer::cont();
    // CHECK_ATTR(BPF_OBJ): nothing after path_fd; BPF_OBJ_GET takes no fd.
    if (extra || (cmd == BPF_OBJ_GET && bpf_fd != 0)) return Answer::err(EINVAL);
    bpffs_opts opts{};
    opts.sz = sizeof opts;
    opts.trust_uid = trust_uid;
    opts.file_flags = file_flags;
    std::string where = *path;
    if (with_path_fd) {
        opts.path_fd = base.get();
    } else {
        where = from_base(base.get(), *path);
    }
    if (cmd == BPF_OBJ_PIN) {
        UniqueFd obj = c.caller_fd(static_cast<int>(bpf_fd));
        int r = bpffs_obj_pin_opts(obj ? obj.get() : -1, where.c_str(), &opts);
        return r == 0 ? Answer::val(0) : Answer::err(-r);
    }
    int fd = bpffs_obj_get_opts(where.c_str(), &opts);
    return fd >= 0 ? Answer::with_fd(UniqueFd(fd)) : Answer::err(-fd);
}

// statfs(2) (`by_path`) and fstatfs(2): the kernel's answer, with the bpf magic on a bpffs-fuse
// mount, written into the caller's buffer.
Answer serve_statfs(Call& c, bool by_path) {
    UniqueFd node;
    if (by_path) {
        auto path = c.read_string(c.arg(0));
        if (!path || path->empty() || !c.same_world()) return Answer::cont();
        UniqueFd base = c.base_dir(false, 0);
        if (!base && path->front() != '/') return Answer::cont();
        std::string where = base ? from_base(base.get(), *path) : *path;
        node.reset(open(where.c_str(), O_PATH | O_CLOEXEC));  // statfs follows symlinks
    } else {
        if (!c.same_world()) return Answer::cont();
        node = c.caller_fd(static_cast<int>(c.arg(0)));
    }
    if (!node || !node::on_fuse(node.get()) || !node::on_bpffs_fuse(node.get())) {
        return Answer::cont();
    }
    struct statfs st {};
    if (fstatfs(node.get(), &st) != 0) return Answer::cont();
    st.f_type = BPF_FS_MAGIC;
    if (!c.valid()) return Answer::err(ENOENT);
    if (!c.write(c.arg(1), &st, sizeof st)) return Answer::err(EFAULT);
    return Answer::val(0);
}

Answer dispatch(Call& c, std::uint32_t trust_uid) {
    switch (c.n.data.nr) {
        case __NR_bpf:
            return serve_bpf(c, trust_uid);
        case __NR_statfs:
            return serve_statfs(c, true);
        case __NR_fstatfs:
            return serve_statfs(c, false);
        default:
            return Answer::cont();
    }
}

}  // namespace

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
    Answer a = dispatch(call, trust_uid_);
    if (a.kind == Answer::Kind::fd) {
        seccomp_notif_addfd add{};
        add.id = n.id;
        add.flags = SECCOMP_ADDFD_FLAG_SEND;
        add.srcfd = static_cast<std::uint32_t>(a.fd.get());
        add.newfd_flags = O_CLOEXEC;
        // Our copy closes with `a`, whether the caller took it or went away.
        ++(ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_ADDFD, &add) >= 0 ? figures_.served
                                                                        : figures_.gone);
        return;
    }
    seccomp_notif_resp r{};
    r.id = n.id;
    if (a.kind == Answer::Kind::cont) {
        r.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    } else if (a.kind == Answer::Kind::value) {
        r.val = a.value;
    } else {
        r.error = -static_cast<std::int32_t>(a.value);
    }
    if (ioctl(listener_.get(), SECCOMP_IOCTL_NOTIF_SEND, &r) != 0) {
        ++figures_.gone;
    } else {
        ++(a.kind == Answer::Kind::cont ? figures_.continued : figures_.served);
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
            if ((p[0].revents & (POLLHUP | POLLERR)) != 0) return true;  // no task uses it
            continue;
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
