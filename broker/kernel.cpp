// SPDX-License-Identifier: GPL-2.0-or-later
// What the broker asks bpf(2): which object an fd is, and a new fd for an object by id.
#include "broker/kernel.hpp"

#include "common/bpf_fd.hpp"
#include "common/bpf_flags.hpp"

#include <bpf/bpf.h>

#include <cerrno>

namespace bpffs::broker {

Result<KernelObject> identify(int fd) {
    auto kind = bpf_kind(fd);
    if (!kind) return fail(kind.error().value == ENOENT ? EBADF : kind.error().value);
    if (*kind == BpfKind::other) return fail(EINVAL);
    std::uint32_t id = bpf_object_id(fd);
    if (id == 0) return fail(EINVAL);
    auto type = *kind == BpfKind::map    ? fsops::ObjType::map
                : *kind == BpfKind::prog ? fsops::ObjType::prog
                                         : fsops::ObjType::link;
    return KernelObject{type, id};
}

static_assert(kBpfFRdonly == BPF_F_RDONLY && kBpfFWronly == BPF_F_WRONLY);

Result<UniqueFd> open_by_id(const KernelObject& obj, fsops::FdMode mode) {
    if (obj.type != fsops::ObjType::map) {
        int fd = obj.type == fsops::ObjType::prog ? bpf_prog_get_fd_by_id(obj.id)
                                                  : bpf_link_get_fd_by_id(obj.id);
        if (fd < 0) return fail(-fd);
        return UniqueFd(fd);
    }
    LIBBPF_OPTS(bpf_get_fd_by_id_opts, opts);
    if (mode == fsops::FdMode::read_only) opts.open_flags = BPF_F_RDONLY;
    if (mode == fsops::FdMode::write_only) opts.open_flags = BPF_F_WRONLY;
    int fd = bpf_map_get_fd_by_id_opts(obj.id, &opts);
    if (fd < 0) return fail(-fd);
    return UniqueFd(fd);
}

}  // namespace bpffs::broker
