// SPDX-License-Identifier: GPL-2.0-or-later
// bpf(2)'s file_flags of BPF_OBJ_PIN / BPF_OBJ_GET, with the kernel's values (<linux/bpf.h>;
// BPF_F_PATH_FD is Linux 6.5 and missing from older headers, Debian 12's among them). One home
// for them: the core's policy judges them, the wire protocol carries them, the client library
// and the preload shim pass them on. No kernel header here, so the core may include it.
#pragma once

#include <cstdint>

namespace bpffs {

inline constexpr std::uint32_t kBpfFRdonly = 1U << 3;   // BPF_F_RDONLY
inline constexpr std::uint32_t kBpfFWronly = 1U << 4;   // BPF_F_WRONLY
inline constexpr std::uint32_t kBpfFPathFd = 1U << 14;  // BPF_F_PATH_FD
// Every flag today's kernel takes on a get (BPF_OBJ_FLAG_MASK) and on a pin.
inline constexpr std::uint32_t kBpfObjGetFlags = kBpfFRdonly | kBpfFWronly | kBpfFPathFd;
inline constexpr std::uint32_t kBpfObjPinFlags = kBpfFPathFd;

}  // namespace bpffs
