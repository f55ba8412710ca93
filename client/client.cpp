// SPDX-License-Identifier: GPL-2.0-or-later
// libbpffs. pin and get check locally what the kernel would check before the path (capability,
// fd type) so that errors come in the kernel's order, then let the kernel walk the path with an
// O_PATH open and send that fd to the broker, which checks everything again with the
// credentials the kernel recorded for the connection. The broker's answer is authoritative.
#include "client/client.hpp"

#include "bpffs/bpffs.h"
#include "common/scm.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>

namespace bpffs::client {
namespace {

constexpr int kTimeoutSec = 10;
constexpr int kCapSysAdmin = 21;

bool has_cap_sys_admin() {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &hdr, data) != 0) return true;  // let the broker decide
    return (data[kCapSysAdmin / 32].effective >> (kCapSysAdmin % 32)) & 1;
}

// 0, EBADF (closed), EINVAL (open but not a BPF map or program).
int check_bpf_fd(int fd) {
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) return EBADF;
    char link[64];
    std::string proc = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = readlink(proc.c_str(), link, sizeof link - 1);
    if (n < 0) return 0;  // no /proc (a chroot): the broker checks
    link[n] = '\0';
    if (std::strcmp(link, "anon_inode:bpf-map") == 0 || std::strcmp(link, "anon_inode:bpf-prog") == 0) {
        return 0;
    }
    return EINVAL;
}

int set_errno(int e) {
    errno = e;
    return -e;
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

Result<UniqueFd> connect_broker(const std::string& dir, int dirfd) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path;
    if (const char* env = std::getenv("BPFFS_SOCKET"); env != nullptr && *env != '\0') {
        path = env;
    } else {
        path = (dir == "/" ? std::string() : dir) + "/" + std::string(protocol::kSocketName);
    }
    UniqueFd own_dirfd;
    if (path.size() >= sizeof addr.sun_path && std::getenv("BPFFS_SOCKET") == nullptr) {
        if (dirfd < 0) {
            own_dirfd.reset(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
            if (!own_dirfd) return fail(errno);
            dirfd = own_dirfd.get();
        }
        path = "/proc/self/fd/" + std::to_string(dirfd) + "/" + std::string(protocol::kSocketName);
    }
    if (path.size() >= sizeof addr.sun_path) return fail(ENAMETOOLONG);
    std::memcpy(addr.sun_path, path.data(), path.size());
    UniqueFd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!s) return fail(errno);
    timeval tv{kTimeoutSec, 0};
    setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    while (connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        // A directory elsewhere has no such name (ENOENT); a name that is not a socket
        // (ECONNREFUSED on a non-socket is reported as such by the kernel) is not ours either.
        return fail(e);
    }
    return s;
}

Result<Response> exchange(int sock, const protocol::Request& req, std::span<const int> fds) {
    auto msg = protocol::encode(req);
    if (int e = send_with_fds(sock, msg, fds); e != 0) return fail(e == EAGAIN ? ETIMEDOUT : e);
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

namespace {

int obj_pin(int fd, const char* pathname) {
    if (pathname == nullptr) return EFAULT;
    if (!has_cap_sys_admin()) return EPERM;
    if (int e = check_bpf_fd(fd); e != 0) return e;
    std::string path(pathname);
    if (path.empty()) return ENOENT;
    // Trailing slashes: the kernel's filename_create() still looks the name up, so an existing
    // name is EEXIST; a new one is ENOENT.
    bool trailing_slash = false;
    while (path.size() > 1 && path.back() == '/') {
        path.pop_back();
        trailing_slash = true;
    }
    std::string dir = dir_part(path), name = name_part(path);
    if (name.empty() || name == "/") return EEXIST;  // "/" itself
    UniqueFd dirfd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dirfd) return errno;
    if (name.size() > 255) return ENAMETOOLONG;
    // The lookup of the last component: search permission on the parent (EACCES) and EEXIST,
    // before anything the filesystem says.
    struct stat st {};
    if (fstatat(dirfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return EEXIST;
    if (errno != ENOENT) return errno;
    if (trailing_slash) return ENOENT;
    auto sock = connect_broker(dir, dirfd.get());
    if (!sock) {
        // No broker there: not a bpffs-fuse directory (after EROFS, as mnt_want_write()
        // comes first in the kernel).
        if (sock.error().value == ENOENT || sock.error().value == ECONNREFUSED) {
            struct statvfs vfs {};
            if (fstatvfs(dirfd.get(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) return EROFS;
            return EACCES;
        }
        return sock.error().value;
    }
    protocol::Request req{protocol::Op::pin, name};
    std::array<int, 2> fds{fd, dirfd.get()};
    auto rep = exchange(sock->get(), req, fds);
    if (!rep) return rep.error().value;
    return rep->reply.error;
}

int obj_get(const char* pathname, int* out) {
    if (pathname == nullptr) return EFAULT;
    std::string path(pathname);
    if (path.empty()) return ENOENT;
    UniqueFd node(open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!node) return errno;
    struct stat st {};
    if (fstat(node.get(), &st) != 0) return errno;
    if (S_ISLNK(st.st_mode)) {
        // A final symlink may lead to another mount: ask the broker of where it leads.
        char resolved[PATH_MAX];
        if (realpath(path.c_str(), resolved) == nullptr) return errno;
        path = resolved;
        node.reset(open(path.c_str(), O_PATH | O_CLOEXEC));
        if (!node) return errno;
        if (fstat(node.get(), &st) != 0) return errno;
    }
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    // The broker beside the node: in its directory, or in the node itself when it is a
    // directory (the mount's root has no parent on the mount).
    std::string dir = S_ISDIR(st.st_mode) ? path : dir_part(path);
    auto sock = connect_broker(dir, -1);
    if (!sock) {
        // No broker beside it: not an object of a bpffs-fuse mount.
        if (sock.error().value == ENOENT || sock.error().value == ECONNREFUSED) return EACCES;
        return sock.error().value;
    }
    std::array<int, 1> fds{node.get()};
    auto rep = exchange(sock->get(), protocol::Request{protocol::Op::get, {}}, fds);
    if (!rep) return rep.error().value;
    if (rep->reply.error != 0) return rep->reply.error;
    *out = rep->fd.release();
    return 0;
}

}  // namespace
}  // namespace bpffs::client

extern "C" BPFFS_API int bpffs_obj_pin(int fd, const char* pathname) {
    try {
        int e = bpffs::client::obj_pin(fd, pathname);
        return e == 0 ? 0 : bpffs::client::set_errno(e);
    } catch (const std::bad_alloc&) {
        return bpffs::client::set_errno(ENOMEM);
    } catch (...) {
        return bpffs::client::set_errno(EIO);
    }
}

extern "C" BPFFS_API int bpffs_obj_get(const char* pathname) {
    try {
        int fd = -1;
        int e = bpffs::client::obj_get(pathname, &fd);
        return e == 0 ? fd : bpffs::client::set_errno(e);
    } catch (const std::bad_alloc&) {
        return bpffs::client::set_errno(ENOMEM);
    } catch (...) {
        return bpffs::client::set_errno(EIO);
    }
}
