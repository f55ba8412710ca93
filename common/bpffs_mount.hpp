// SPDX-License-Identifier: GPL-2.0-or-later
// Is a directory on a live bpffs-fuse mount? One answer for the daemon (which refuses to mount
// over one) and bpffsctl (which says when a path is not on one).
#pragma once

#include "common/socket_name.hpp"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <string>

namespace bpffs {

// A FUSE filesystem whose broker's socket is found in `dir` (it is, in every directory of a
// bpffs-fuse mount). statfs and lstat: both ask the daemon when there is one.
inline bool on_bpffs_fuse(const std::string& dir) {
    struct statfs fs {};
    if (statfs(dir.c_str(), &fs) != 0 || fs.f_type != FUSE_SUPER_MAGIC) return false;
    struct stat st {};
    std::string sock = (dir == "/" ? "" : dir) + "/" + std::string(kSocketName);
    return lstat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace bpffs
