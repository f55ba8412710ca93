// SPDX-License-Identifier: GPL-2.0-or-later
// bpffsctl's words for a failure (bpffsctl_explain.hpp).
#include "client/bpffsctl_explain.hpp"

#include "common/bpffs_mount.hpp"
#include "common/caps.hpp"
#include "common/socket_name.hpp"
#include "fsops/names.hpp"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <string_view>

namespace bpffs::ctl {
namespace {

std::string parent_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string_view last_name(const std::string& path) {
    auto slash = path.find_last_of('/');
    return slash == std::string::npos ? std::string_view(path)
                                      : std::string_view(path).substr(slash + 1);
}

bool have_sys_admin() {
    auto caps = effective_caps(0);
    return caps && cap_in(*caps, kCapSysAdmin);
}

// The sentence for a path that is not on a bpffs-fuse mount, or "".
std::string off_the_mount(Verb verb, const std::string& path) {
    const bool pin = verb == Verb::pin;
    switch (where_is(path, pin)) {
        case Where::kernel_bpffs:
            return path + " is on the kernel's bpffs, not a bpffs-fuse mount: use bpftool there (" +
                   (pin ? "bpftool map pin" : "bpftool map show pinned") + ")";
        case Where::other:
            return (pin ? parent_of(path) : path) + " is not on a bpffs-fuse mount (no " +
                   std::string(kSocketName) + ")";
        default:
            return "";
    }
}

std::string explain_pin(const std::string& path, int e) {
    const std::string dir = parent_of(path);
    switch (e) {
        case EPERM:
            if (fsops::is_dotted(last_name(path)))
                return "names containing '.' are reserved (for the entries the daemon makes)";
            if (!have_sys_admin())
                return "pinning on this mount needs CAP_SYS_ADMIN (its rule set is compat=seed; on "
                       "a "
                       "compat=linux mount, write permission on the directory is enough)";
            return "";
        case EBUSY:
            return dir +
                   " holds subdirectories, so it cannot hold objects (the terminal-directory rule "
                   "of compat=seed): pin into a directory without subdirectories";
        case EEXIST:
            return path + " exists: unlink it first";
        case EACCES:
            return "creating a name in " + dir + " needs write and search permission there";
        case ENOSPC:
            return "the mount holds as many nodes as it may (its nr_inodes, or your uid's share, "
                   "nr_inodes_per_uid)";
        case EROFS:
            return "the mount is read-only";
        case EINVAL:
            return "the object cannot be pinned on this mount (a link needs compat=linux)";
        default:
            return "";
    }
}

std::string explain_get(const std::string& path, int e) {
    switch (e) {
        case EACCES:
            return "fetching needs write permission on " + path +
                   " (compat=seed; on a compat=linux mount, read permission is enough for a "
                   "read-only fd)";
        case EPERM:
            if (fsops::is_dotted(last_name(path)))
                return "names containing '.' are reserved (a compat=linux mount looks none up)";
            return "";
        default:
            return "";
    }
}

}  // namespace

Where where_is(const std::string& path, bool new_name) {
    const std::string at = new_name ? parent_of(path) : path;
    struct statfs fs {};
    if (statfs(at.c_str(), &fs) != 0) return errno == ENOENT ? Where::missing : Where::other;
    if (fs.f_type == BPF_FS_MAGIC) return Where::kernel_bpffs;
    // The socket is in `at` itself when it is a directory (the mount's root has no parent on
    // the mount), else in its parent.
    struct stat st {};
    bool dir = new_name || (stat(at.c_str(), &st) == 0 && S_ISDIR(st.st_mode));
    return on_bpffs_fuse(dir ? at : parent_of(path)) ? Where::bpffs_fuse : Where::other;
}

std::string explain(Verb verb, const std::string& path, int e) {
    if (verb != Verb::upgrade) {
        if (std::string off = off_the_mount(verb, path); !off.empty()) return off;
    }
    switch (verb) {
        case Verb::pin:
            return explain_pin(path, e);
        case Verb::get:
            return explain_get(path, e);
        case Verb::upgrade:
            if (e == ENOEXEC)
                return path +
                       " is not a bpffs-fuse binary the daemon can run (it checks that the "
                       "binary answers --version as bpffs-fuse)";
            return "";
    }
    return "";
}

}  // namespace bpffs::ctl
