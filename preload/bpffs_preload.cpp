// SPDX-License-Identifier: GPL-2.0-or-later
// libbpffs-preload.so: lets unmodified programs (bpftool, libbpf programs, tc) pin and fetch on a
// bpffs-fuse mount. Loaded with LD_PRELOAD (or `bpffsctl run -- CMD`), it interposes five libc
// functions:
//   syscall(__NR_bpf, BPF_OBJ_PIN | BPF_OBJ_GET, attr, size)  served by bpffs_obj_pin/get when
//                                  the path lies on a bpffs-fuse mount
//   statfs, statfs64, fstatfs, fstatfs64                      report f_type BPF_FS_MAGIC there
// and forwards everything else, arguments and errno untouched, to the next definition (libc).
//
// "On a bpffs-fuse mount" is decided from the filesystem, never from the path's text
// (common/bpffs_node.hpp).
//
// Constraints, and how they are met:
// - Thread-safe and async-signal-safe on every path that does not end on a bpffs-fuse mount: no
//   locks, no allocation, only system calls (open, fstat, fstatat, readlink, close,
//   process_vm_readv) and stack buffers. A pin or get that *is* served on the mount goes through
//   the client library, which allocates: that path is thread-safe but not async-signal-safe.
// - errno: the caller's errno is restored before any forwarded call and after every check, so
//   the untouched path leaves errno exactly as libc would.
// - No constructor side effects beyond resolving the real symbols with dlsym(RTLD_NEXT). A call
//   that arrives before the constructor (from another library's constructor) resolves lazily.
// - syscall() is variadic: like glibc's own, the interposer reads six long arguments and passes
//   all six on; the kernel ignores those a system call does not take.
// - The bpf_attr is read with process_vm_readv on the own process, so a bad pointer ends in the
//   kernel's EFAULT rather than a crash; where that call is not allowed (a seccomp filter) the
//   attr is read directly, as the kernel would have.
//
// Trust: the client library checks the broker's socket before it sends anything (bpffs.h). The
// shim has no channel but the environment for a uid to trust besides root and the caller:
// $BPFFS_TRUST_UID (a decimal uid), read with secure_getenv, so a set-user-ID program ignores
// it. A value that is not a uid trusts nobody more.
//
// Served calls follow bpffs_obj_pin_opts/bpffs_obj_get_opts's errno rules (the mount's: compat=
// seed or linux). file_flags (BPF_F_RDONLY, BPF_F_WRONLY, BPF_F_PATH_FD) and path_fd are passed
// on to them: the library refuses what every kernel refuses (unknown bits, RDONLY with WRONLY, a
// path_fd without BPF_F_PATH_FD: EINVAL), a compat=seed broker every flag, as the seed's
// CHECK_ATTR did. A non-zero byte after path_fd (today's last field of the command), or a
// non-zero bpf_fd for BPF_OBJ_GET, is EINVAL here, as bpf(2) says.
#include "bpffs/bpffs.h"
#include "common/bpf_flags.hpp"
#include "common/bpffs_node.hpp"
#include "common/socket_name.hpp"
#include "common/unique_fd.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

constexpr long kFuseMagic = FUSE_SUPER_MAGIC;
constexpr long kBpfMagic = BPF_FS_MAGIC;
using bpffs::kBpfFPathFd;
constexpr unsigned kMaxAttrSize = 4096;  // the kernel's limit (PAGE_SIZE): E2BIG above

// The next definitions of the interposed functions: the shim's only state, and its only
// mutable global (an interposed libc function has no object to keep it in). Constant-
// initialised, so no dynamic initialisation runs at load time; racing resolutions store the
// same pointer.
enum class Real { syscall, statfs, statfs64, fstatfs, fstatfs64, count };
constexpr int kRealCount = static_cast<int>(Real::count);
constexpr const char* kRealNames[kRealCount] = {"syscall", "statfs", "statfs64", "fstatfs",
                                                "fstatfs64"};
constinit std::atomic<void*> g_real[kRealCount] = {};

void* real(Real which) {
    auto i = static_cast<int>(which);
    void* p = g_real[i].load(std::memory_order_acquire);
    if (p == nullptr) {
        p = dlsym(RTLD_NEXT, kRealNames[i]);
        g_real[i].store(p, std::memory_order_release);
    }
    return p;
}

__attribute__((constructor)) void resolve_real_symbols() {
    for (int i = 0; i < kRealCount; ++i) real(static_cast<Real>(i));
}

// Keeps the caller's errno across the checks and restores it when it goes out of scope.
class ErrnoGuard {
public:
    ErrnoGuard() : saved_(errno) {}
    ~ErrnoGuard() { errno = saved_; }
    ErrnoGuard(const ErrnoGuard&) = delete;
    ErrnoGuard& operator=(const ErrnoGuard&) = delete;

private:
    int saved_;
};

// Copies `n` bytes of the caller's memory at `addr`. False when the memory is not readable (the
// kernel would answer EFAULT).
bool read_user(void* dst, std::uintptr_t addr, std::size_t n) {
    iovec local{dst, n};
    iovec remote{reinterpret_cast<void*>(addr), n};
    ssize_t r = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (r == static_cast<ssize_t>(n)) return true;
    if (r >= 0 || errno == EFAULT) return false;
    std::memcpy(dst, reinterpret_cast<const void*>(addr), n);  // not allowed here (seccomp)
    return true;
}

// The arguments of a BPF_OBJ_PIN / BPF_OBJ_GET call that bpffs-fuse serves.
struct ObjCall {
    int cmd;
    const char* path;
    std::uint32_t bpf_fd;
    std::uint32_t file_flags;
    std::int32_t path_fd;
    bool extra;  // a non-zero byte after path_fd
};

// Is this bpf(2) call a BPF_OBJ_PIN / BPF_OBJ_GET of a path on a bpffs-fuse mount? Then true,
// with its arguments in *call. False when the kernel should have it: another command, an attr
// or path the kernel must judge (bad pointer, size, length), a path elsewhere. errno is kept.
bool is_bpffs_fuse_call(long cmd_arg, long attr_arg, long size_arg, ObjCall* call) {
    int cmd = static_cast<int>(cmd_arg);  // the kernel's bpf(int cmd, union bpf_attr*, unsigned)
    unsigned size = static_cast<unsigned>(size_arg);
    if (cmd != BPF_OBJ_PIN && cmd != BPF_OBJ_GET) return false;
    if (size < sizeof(std::uint64_t) || size > kMaxAttrSize) return false;
    auto addr = static_cast<std::uintptr_t>(attr_arg);

    ErrnoGuard keep_errno;
    // pathname (u64) at 0, bpf_fd (u32) at 8, file_flags (u32) at 12, path_fd (s32) at 16.
    unsigned char head[20] = {};
    std::size_t head_len = size < sizeof head ? size : sizeof head;
    if (!read_user(head, addr, head_len)) return false;
    std::uint64_t pathname;
    std::memcpy(&pathname, head, 8);
    std::memcpy(&call->bpf_fd, head + 8, 4);
    std::memcpy(&call->file_flags, head + 12, 4);
    std::memcpy(&call->path_fd, head + 16, 4);
    call->cmd = cmd;
    call->extra = false;
    for (unsigned off = sizeof head; !call->extra && off < size; off += 64) {
        unsigned char chunk[64];
        std::size_t n = size - off < sizeof chunk ? size - off : sizeof chunk;
        if (!read_user(chunk, addr + off, n)) return false;
        for (std::size_t i = 0; i < n; ++i) call->extra = call->extra || chunk[i] != 0;
    }
    int dirfd = (call->file_flags & kBpfFPathFd) != 0 ? call->path_fd : AT_FDCWD;
    call->path = reinterpret_cast<const char*>(static_cast<std::uintptr_t>(pathname));
    if (call->path == nullptr) return false;

    // The kernel reads the string first: a bad pointer or a too long path stays its answer.
    if (cmd == BPF_OBJ_GET) return bpffs::node::get_target_on_bpffs_fuse(dirfd, call->path);
    struct stat st {};
    if (fstatat(dirfd, call->path, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
        (errno == EFAULT || errno == ENAMETOOLONG || errno == EBADF)) {
        return false;
    }
    return bpffs::node::pin_target_on_bpffs_fuse(dirfd, call->path);
}

// $BPFFS_TRUST_UID as client options (trust_uid 0, the default, when unset or not a uid).
bpffs_opts trust_opts() {
    bpffs_opts o{};
    o.sz = sizeof o;
    const char* v = secure_getenv("BPFFS_TRUST_UID");
    if (v == nullptr || *v == '\0' || std::strlen(v) > 10) return o;
    unsigned long long uid = 0;
    for (const char* c = v; *c != '\0'; ++c) {
        if (*c < '0' || *c > '9') return o;
        uid = uid * 10 + static_cast<unsigned>(*c - '0');
    }
    if (uid < static_cast<uid_t>(-1)) o.trust_uid = static_cast<uid_t>(uid);
    return o;
}

// Serves a call is_bpffs_fuse_call accepted, as the system call would answer: 0 or a new fd,
// or -1 with errno set. On success errno is left as the caller had it.
long serve(const ObjCall& call) {
    // CHECK_ATTR(BPF_OBJ): nothing after path_fd; BPF_OBJ_GET takes no fd. The flags are the
    // library's to judge.
    if (call.extra || (call.cmd == BPF_OBJ_GET && call.bpf_fd != 0)) {
        errno = EINVAL;
        return -1;
    }
    int saved = errno;
    bpffs_opts opts = trust_opts();
    opts.file_flags = call.file_flags;
    opts.path_fd = call.path_fd;
    long r = call.cmd == BPF_OBJ_PIN
                 ? bpffs_obj_pin_opts(static_cast<int>(call.bpf_fd), call.path, &opts)
                 : bpffs_obj_get_opts(call.path, &opts);
    if (r < 0) return -1;  // errno set by the client library
    errno = saved;
    return r;
}

// statfs/statfs64 by path and fstatfs/fstatfs64 by fd (`what`): the next definition's answer,
// with the bpf magic where it is a bpffs-fuse mount.
template <typename What, typename Buf>
int statfs_of(Real which, What what, Buf* buf) {
    auto next = reinterpret_cast<int (*)(What, Buf*)>(real(which));
    if (next == nullptr) {
        errno = ENOSYS;
        return -1;
    }
    int r = next(what, buf);
    if (r == 0 && buf->f_type == kFuseMagic) {
        ErrnoGuard keep;
        if (bpffs::node::on_bpffs_fuse(what)) buf->f_type = kBpfMagic;
    }
    return r;
}

}  // namespace

#define BPFFS_INTERPOSE extern "C" __attribute__((visibility("default")))

BPFFS_INTERPOSE long syscall(long number, ...) noexcept {
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (long& x : a) x = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_bpf) {
        ObjCall call{};
        if (is_bpffs_fuse_call(a[0], a[1], a[2], &call)) return serve(call);
    }
    auto next = reinterpret_cast<long (*)(long, ...)>(real(Real::syscall));
    if (next == nullptr) {
        errno = ENOSYS;
        return -1;
    }
    return next(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

BPFFS_INTERPOSE int statfs(const char* path, struct statfs* buf) noexcept {
    return statfs_of(Real::statfs, path, buf);
}

BPFFS_INTERPOSE int statfs64(const char* path, struct statfs64* buf) noexcept {
    return statfs_of(Real::statfs64, path, buf);
}

BPFFS_INTERPOSE int fstatfs(int fd, struct statfs* buf) noexcept {
    return statfs_of(Real::fstatfs, fd, buf);
}

BPFFS_INTERPOSE int fstatfs64(int fd, struct statfs64* buf) noexcept {
    return statfs_of(Real::fstatfs64, fd, buf);
}
