// SPDX-License-Identifier: GPL-2.0-or-later
// A pinned map read as text, as today's kernel bpffs shows it (compat=linux): kernel/bpf/inode.c
// gives a map whose BTF has a value type, and whose map type prints elements
// (map_seq_show_elem), a seq_file of two "# WARNING!!" lines and one element after another;
// every other object opens EIO. What an element looks like is btf_type_seq_show's business
// (kernel/bpf/btf.c, NONAME|COMPACT|ZERO|UNSAFE), emulated in btf_text.cpp with libbpf's view
// of the map's BTF; the formats, quirks included, are listed at the top of that file.
#pragma once

#include "common/result.hpp"

#include <cstddef>
#include <optional>
#include <string>

namespace bpffs::broker {

// The most text one view holds (it is kept for as long as the file is open): a map whose text
// is longer fails with EFBIG, where the kernel would stream it.
inline constexpr std::size_t kMapTextMax = std::size_t{64} << 20;

// The text of the map behind `map_fd` (borrowed) now, every element looked up once. nullopt:
// the kernel's bpffs has no text for this map (no BTF value type, or a map type that prints no
// elements: the caller answers the policy's open error). Errors: bpf(2)'s, from the map's info,
// its BTF (BPF_BTF_GET_FD_BY_ID needs CAP_SYS_ADMIN: EPERM) and its lookups (EPERM through a
// write-only fd); ENOMEM; EFBIG past kMapTextMax. Thread-safe (no state).
Result<std::optional<std::string>> map_text(int map_fd);

}  // namespace bpffs::broker
