// SPDX-License-Identifier: GPL-2.0-or-later
// The name of the broker's socket in every directory of a mount: where a client finds the
// broker (common/protocol.hpp), the name the core reserves at the root (fsops/types.hpp), what
// the preload shim looks for.
#pragma once

#include <string_view>

namespace bpffs {

inline constexpr std::string_view kSocketName = ".bpffs.sock";

}  // namespace bpffs
