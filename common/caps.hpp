// SPDX-License-Identifier: GPL-2.0-or-later
// Capabilities as numbers and sets (bit N = capability N, as capget(2) and /proc/PID/status
// show them): one decoding for the core, the broker and the client library.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace bpffs {

inline constexpr int kCapChown = 0;
inline constexpr int kCapDacOverride = 1;
inline constexpr int kCapDacReadSearch = 2;
inline constexpr int kCapSysAdmin = 21;

constexpr bool cap_in(std::uint64_t set, int cap) { return ((set >> cap) & 1) != 0; }

// The effective set of process `pid` (0: this thread), from capget(2); nothing if it fails.
std::optional<std::uint64_t> effective_caps(pid_t pid);

}  // namespace bpffs
