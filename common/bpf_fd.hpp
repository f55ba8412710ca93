// SPDX-License-Identifier: GPL-2.0-or-later
// What an open fd is to bpf(2): a map, a program, a link or something else, and its kernel id.
// Shared by the broker (what a pin hands it), the client library (a pin's fd, a resent pin's
// answer) and bpffsctl. Raw system calls and /proc: no libbpf.
#pragma once

#include "common/result.hpp"

#include <cstdint>

namespace bpffs {

enum class BpfKind { map, prog, link, other };

// As /proc/self/fd/N shows it (anon_inode:bpf-map, bpf-prog, bpf_link or bpf-link). EBADF: not an
// open fd; another errno: /proc cannot tell (not mounted, as in a bare chroot).
Result<BpfKind> bpf_kind(int fd);

// The kernel id of a map, program or link (BPF_OBJ_GET_INFO_BY_FD; every info struct begins with
// `type, id`, and the kernel copies no more than the length given). 0 if the call fails.
std::uint32_t bpf_object_id(int fd);

}  // namespace bpffs
