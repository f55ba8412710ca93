// SPDX-License-Identifier: GPL-2.0-or-later
// Is a directory on a live bpffs-fuse mount? One answer for the daemon (which refuses to mount
// over one) and bpffsctl (which says when a path is not on one), from the node check the shim
// and the seccomp supervisor use (common/bpffs_node.hpp).
#pragma once

#include "common/bpffs_node.hpp"
#include "common/unique_fd.hpp"

#include <fcntl.h>

#include <string>

namespace bpffs {

// A FUSE filesystem whose broker's socket is found in the directory `dir` (it is, in every
// directory of a bpffs-fuse mount). Both questions ask the daemon when there is one.
inline bool on_bpffs_fuse(const std::string& dir) {
    UniqueFd fd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    return fd && node::on_fuse(fd.get()) && node::on_bpffs_fuse(fd.get());
}

}  // namespace bpffs
