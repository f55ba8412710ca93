// SPDX-License-Identifier: GPL-2.0-or-later
// Is a node on a bpffs-fuse mount (bpffs_node.hpp)?
#include "common/bpffs_node.hpp"

#include "common/socket_name.hpp"
#include "common/unique_fd.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace bpffs::node {

namespace {

constexpr long kFuseMagic = FUSE_SUPER_MAGIC;

enum class Verdict { no, yes, unknown };

// Does directory `dfd` hold the broker's socket on its own device? unknown: it cannot be
// searched (or fstat failed).
Verdict dir_has_broker(int dfd) {
    struct stat d {};
    struct stat s {};
    if (fstat(dfd, &d) != 0) return Verdict::unknown;
    if (fstatat(dfd, bpffs::kSocketName.data(), &s,  // a literal: NUL-terminated
                AT_SYMLINK_NOFOLLOW) != 0) {
        return errno == ENOENT ? Verdict::no : Verdict::unknown;
    }
    return S_ISSOCK(s.st_mode) && s.st_dev == d.st_dev ? Verdict::yes : Verdict::no;
}

// Directory `dir` (relative to `dirfd`): a directory of device `dev` that holds the broker?
Verdict parent_has_broker(int dirfd, const char* dir, dev_t dev) {
    UniqueFd pfd(openat(dirfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!pfd) return Verdict::unknown;
    struct stat st {};
    if (fstat(pfd.get(), &st) != 0) return Verdict::unknown;
    if (st.st_dev != dev) return Verdict::no;  // the node is a mount root, or on another mount
    return dir_has_broker(pfd.get());
}

// Cuts `buf` (a path of `len` bytes, NUL-terminated) to its directory part in place, as the
// kernel's walk sees it: "a/b" -> "a", "b" -> ".", "/b" -> "/", trailing slashes ignored.
// False for "/" itself (no parent).
bool to_dir_part(char* buf, std::size_t len) {
    while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
    if (std::strcmp(buf, "/") == 0) return false;
    char* slash = std::strrchr(buf, '/');
    if (slash == nullptr) {
        std::strcpy(buf, ".");
    } else if (slash == buf) {
        buf[1] = '\0';
    } else {
        *slash = '\0';
    }
    return true;
}

// The parent directory of the open node `fd` (of device `dev`) through /proc/self/fd: for
// fstatfs (no path), and for directories that cannot be searched.
Verdict proc_parent_has_broker(int fd, dev_t dev) {
    char link[32] = "/proc/self/fd/";
    char digits[16];
    int n = 0;
    for (unsigned v = static_cast<unsigned>(fd); n == 0 || v != 0; v /= 10) {
        digits[n++] = static_cast<char>('0' + v % 10);
    }
    std::size_t at = std::strlen(link);
    while (n > 0) link[at++] = digits[--n];
    link[at] = '\0';
    char path[PATH_MAX];
    ssize_t len = readlink(link, path, sizeof path - 1);
    if (len <= 0 || path[0] != '/') return Verdict::unknown;  // no /proc, or not a path
    path[len] = '\0';
    if (!to_dir_part(path, static_cast<std::size_t>(len))) return Verdict::no;
    return parent_has_broker(AT_FDCWD, path, dev);
}

// The directory that holds what `path` (relative to `dirfd`) names, of device `dev`: the lexical
// parent, after following a final symlink as the kernel would (at most 40 links, its limit).
Verdict path_parent_has_broker(int dirfd, const char* path, dev_t dev) {
    std::size_t len = strnlen(path, PATH_MAX);
    if (len == 0 || len >= PATH_MAX) return Verdict::unknown;
    char cur[PATH_MAX];
    std::memcpy(cur, path, len + 1);
    for (int links = 0; links <= 40; ++links) {
        struct stat lst {};
        if (fstatat(dirfd, cur, &lst, AT_SYMLINK_NOFOLLOW) != 0) return Verdict::unknown;
        if (!S_ISLNK(lst.st_mode)) {
            if (!to_dir_part(cur, std::strlen(cur))) return Verdict::no;
            return parent_has_broker(dirfd, cur, dev);
        }
        char target[PATH_MAX];
        ssize_t n = readlinkat(dirfd, cur, target, sizeof target - 1);
        if (n <= 0) return Verdict::unknown;
        target[n] = '\0';
        if (target[0] == '/') {
            std::memcpy(cur, target, static_cast<std::size_t>(n) + 1);
            continue;
        }
        // A relative target is relative to the link's directory.
        std::size_t cur_len = std::strlen(cur);
        while (cur_len > 0 && cur[cur_len - 1] != '/') --cur_len;  // keep "dir/" (or nothing)
        if (cur_len + static_cast<std::size_t>(n) >= PATH_MAX) return Verdict::unknown;
        std::memcpy(cur + cur_len, target, static_cast<std::size_t>(n) + 1);
    }
    return Verdict::unknown;  // ELOOP: the kernel's open would have failed already
}

}  // namespace

bool on_fuse(int fd) {
    // The system call itself: an interposed fstatfs (the shim's) must not see this one.
    struct statfs s {};
    return syscall(SYS_fstatfs, fd, &s) == 0 && s.f_type == kFuseMagic;
}

// Is the open node `fd` (already known to be on a FUSE filesystem) on a bpffs-fuse mount?
// `path` (relative to `dirfd`), when given, is how the caller named it: the directory holding
// it is then found from the path, so that no /proc is needed.
bool node_on_bpffs_fuse(int fd, int dirfd, const char* path) {
    struct stat st {};
    if (fstat(fd, &st) != 0) return false;
    if (S_ISDIR(st.st_mode)) {
        Verdict v = dir_has_broker(fd);
        if (v != Verdict::unknown) return v == Verdict::yes;
    } else if (path != nullptr) {
        Verdict v = path_parent_has_broker(dirfd, path, st.st_dev);
        if (v != Verdict::unknown) return v == Verdict::yes;
    }
    return proc_parent_has_broker(fd, st.st_dev) == Verdict::yes;
}

// statfs(path) follows symlinks, and so does this.
bool on_bpffs_fuse(const char* path) {
    UniqueFd fd(open(path, O_PATH | O_CLOEXEC));
    return fd && node_on_bpffs_fuse(fd.get(), AT_FDCWD, path);
}

bool on_bpffs_fuse(int fd) { return node_on_bpffs_fuse(fd, AT_FDCWD, nullptr); }

// The target of a pin: its parent directory must be a bpffs-fuse directory. `path` has been read
// by the kernel already (it is a valid string shorter than PATH_MAX).
bool pin_target_on_bpffs_fuse(int dirfd, const char* path) {
    std::size_t len = strnlen(path, PATH_MAX);
    if (len == 0 || len >= PATH_MAX) return false;
    char dir[PATH_MAX];
    std::memcpy(dir, path, len + 1);
    if (!to_dir_part(dir, len)) return false;
    UniqueFd dfd(openat(dirfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
    return dfd && on_fuse(dfd.get()) && node_on_bpffs_fuse(dfd.get(), dirfd, nullptr);
}

bool get_target_on_bpffs_fuse(int dirfd, const char* path) {
    UniqueFd node(openat(dirfd, path, O_PATH | O_CLOEXEC));
    return node && on_fuse(node.get()) && node_on_bpffs_fuse(node.get(), dirfd, path);
}

}  // namespace bpffs::node
