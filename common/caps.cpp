// SPDX-License-Identifier: GPL-2.0-or-later
// A process's effective capabilities, from capget(2).
#include "common/caps.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>

namespace bpffs {

std::optional<std::uint64_t> effective_caps(pid_t pid) {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, pid};
    std::array<__user_cap_data_struct, _LINUX_CAPABILITY_U32S_3> data{};
    if (syscall(SYS_capget, &hdr, data.data()) != 0) return std::nullopt;
    return std::uint64_t{data[0].effective} | (std::uint64_t{data[1].effective} << 32);
}

}  // namespace bpffs
