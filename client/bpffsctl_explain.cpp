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

std::string parent_of(const std::string& path) {
    auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

namespace {

std::string_view last_name(const std::string& path) {
    auto slash = path.find_last_of('/');
    return slash == std::string::npos ? std::string_view(path)
                                      : std::string_view(path).substr(slash + 1);
}

bool have_sys_admin() {
    auto caps = effective_caps(0);
    return caps && cap_in(*caps, kCapSysAdmin);
}

const char* kernel_tool(Verb verb) {
    switch (verb) {
        case Verb::pin:
            return "bpftool map pin";
        case Verb::mkdir:
            return "mkdir";
        case Verb::chown:
        case Verb::pin_chown:
            return "chown";
        default:
            return "bpftool map show pinned";
    }
}

// The sentence for a path that is not on a bpffs-fuse mount, or "".
std::string off_the_mount(Verb verb, const std::string& path) {
    const bool new_name = verb == Verb::pin || verb == Verb::mkdir;
    switch (where_is(path, new_name)) {
        case Where::kernel_bpffs:
            return path + " is on the kernel's bpffs, not a bpffs-fuse mount: use " +
                   kernel_tool(verb) + " there";
        case Where::other:
            return (new_name ? parent_of(path) : path) + " is not on a bpffs-fuse mount (no " +
                   std::string(kSocketName) + ")";
        default:
            return "";
    }
}

// What refuses a new name of either kind (pin, mkdir), or "".
std::string explain_create(const std::string& path, int e) {
    switch (e) {
        case EEXIST:
            return path + " exists: unlink it first";
        case EACCES:
            return "creating a name in " + parent_of(path) +
                   " needs write and search permission there";
        case ENOSPC:
            return "the mount holds as many nodes as it may (its nr_inodes, or your uid's share, "
                   "nr_inodes_per_uid)";
        case EROFS:
            return "the mount is read-only";
        default:
            return "";
    }
}

std::string explain_mkdir(const std::string& path, int e) {
    if (e == EPERM && fsops::is_dotted(last_name(path)))
        return "names containing '.' are reserved (for the entries the daemon makes)";
    if (e == EPERM)
        return parent_of(path) +
               " holds objects, so it cannot hold directories (the terminal-directory rule of "
               "compat=seed): make the directory beside it";
    if (e == EEXIST) return path + " exists (with -p, an existing directory is fine)";
    return explain_create(path, e);
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
        case EINVAL:
            return "only maps, programs and links can be pinned, and links only on a "
                   "compat=linux mount";
        default:
            return explain_create(path, e);
    }
}

// A new node's owner and mode (pin --owner, mkdir --owner): chown(2)'s rules. A pin without
// CAP_SYS_ADMIN may have met the seed's rule first, which bpffsctl cannot tell from here.
std::string explain_chown(Verb verb, int e) {
    if (e != EPERM) return "";
    std::string why =
        "giving it to another owner needs CAP_CHOWN, and to another group membership of that "
        "group or CAP_CHOWN";
    if (verb == Verb::pin && !have_sys_admin())
        why += " (and on a compat=seed mount, pinning at all needs CAP_SYS_ADMIN)";
    return why;
}

std::string explain_get(const std::string& path, int e) {
    switch (e) {
        case EACCES:
            return "fetching needs read and write permission on " + path +
                   " (a compat=seed mount asks write permission only; on a compat=linux mount, "
                   "read permission is enough for a read-only fd, BPF_F_RDONLY)";
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
        case Verb::mkdir:
            return explain_mkdir(path, e);
        case Verb::chown:
            return explain_chown(Verb::mkdir, e);
        case Verb::pin_chown:  // the reserved name's EPERM comes first
            if (fsops::is_dotted(last_name(path))) return explain_pin(path, e);
            return explain_chown(Verb::pin, e);
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
