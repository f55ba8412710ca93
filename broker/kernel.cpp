// SPDX-License-Identifier: GPL-2.0-or-later
#include "broker/kernel.hpp"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace bpffs::broker {

Result<KernelObject> identify(int fd) {
    if (fd < 0 || fcntl(fd, F_GETFD) < 0) return fail(EBADF);
    char link[64];
    std::string proc = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = readlink(proc.c_str(), link, sizeof link - 1);
    if (n < 0) return fail(errno == ENOENT ? EBADF : errno);
    link[n] = '\0';
    KernelObject obj;
    if (std::strcmp(link, "anon_inode:bpf-map") == 0) {
        bpf_map_info info{};
        __u32 len = sizeof info;
        if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return fail(EINVAL);
        obj = {fsops::ObjType::map, info.id};
    } else if (std::strcmp(link, "anon_inode:bpf-prog") == 0) {
        bpf_prog_info info{};
        __u32 len = sizeof info;
        if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return fail(EINVAL);
        obj = {fsops::ObjType::prog, info.id};
    } else {
        return fail(EINVAL);
    }
    return obj;
}

Result<UniqueFd> open_by_id(const KernelObject& obj) {
    int fd = obj.type == fsops::ObjType::map ? bpf_map_get_fd_by_id(obj.id)
                                             : bpf_prog_get_fd_by_id(obj.id);
    if (fd < 0) return fail(-fd);
    return UniqueFd(fd);
}

}  // namespace bpffs::broker
