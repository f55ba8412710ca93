// SPDX-License-Identifier: GPL-2.0-or-later
// What an fd is to bpf(2), from /proc and the raw system call.
#include "common/bpf_fd.hpp"

#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>

namespace bpffs {

Result<BpfKind> bpf_kind(int fd) {
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) return fail(EBADF);
    char link[64];
    std::string proc = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = readlink(proc.c_str(), link, sizeof link);
    if (n < 0) return fail(errno);
    std::string_view l(link, static_cast<std::size_t>(n));
    if (l == "anon_inode:bpf-map") return BpfKind::map;
    if (l == "anon_inode:bpf-prog") return BpfKind::prog;
    // A link made by BPF_LINK_CREATE is "bpf_link" (bpf_link_prime); one opened by id or
    // BPF_OBJ_GET is "bpf-link" (bpf_link_new_fd).
    if (l == "anon_inode:bpf_link" || l == "anon_inode:bpf-link") return BpfKind::link;
    return BpfKind::other;
}

std::uint32_t bpf_object_id(int fd) {
    struct {
        std::uint32_t type, id;
    } info{};
    bpf_attr attr{};
    attr.info.bpf_fd = static_cast<std::uint32_t>(fd);
    attr.info.info_len = sizeof info;
    attr.info.info = reinterpret_cast<std::uintptr_t>(&info);
    if (syscall(SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof attr) != 0) return 0;
    return info.id;
}

}  // namespace bpffs
