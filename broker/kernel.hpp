// SPDX-License-Identifier: GPL-2.0-or-later
// The few bpf(2) facts the broker needs, through libbpf: what an fd is (map, program or link, its
// kernel id), and a new fd for an object the broker holds.
#pragma once

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "fsops/types.hpp"

#include <cstdint>

namespace bpffs::broker {

struct KernelObject {
    fsops::ObjType type = fsops::ObjType::map;
    std::uint32_t id = 0;
};

// EBADF: not an open fd; EINVAL: open, but not a BPF map, program or link (whether a link may be
// pinned is the policy's answer: Policy::object_refused).
Result<KernelObject> identify(int fd);

// A new open file for the object with this id (BPF_*_GET_FD_BY_ID; needs CAP_SYS_ADMIN). A map's
// is opened with `mode` (open_flags BPF_F_RDONLY / BPF_F_WRONLY: the kernel then refuses
// updates / lookups through it with EPERM); a program's or link's is O_RDWR whatever `mode`
// says, as the kernel's BPF_OBJ_GET gives. The caller holds a reference, so the id cannot have been
// reused.
Result<UniqueFd> open_by_id(const KernelObject& obj,
                            fsops::FdMode mode = fsops::FdMode::read_write);

}  // namespace bpffs::broker
