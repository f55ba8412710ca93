// SPDX-License-Identifier: GPL-2.0-or-later
// The rules that differ between the seed's filesystem (compat=seed) and today's kernel bpffs
// (compat=linux, spec section 7), in one place: the operations ask the policy and never test a
// mode themselves. The mount options of both sets (defaults, unknown options, remount) are
// parsed in fsops/mount_options.cpp, where the set itself is chosen.
#pragma once

#include "fsops/mount_options.hpp"
#include "fsops/names.hpp"
#include "fsops/types.hpp"

#include "common/bpf_flags.hpp"
#include "common/result.hpp"

#include <cerrno>
#include <cstdint>
#include <string_view>

namespace bpffs::fsops {

class Policy {
public:
    explicit Policy(Compat compat = Compat::seed) : compat_(compat) {}

    Compat compat() const { return compat_; }

    // Who may pin at all, asked before the fd and the path (the seed's bpf_obj_pin_user):
    // CAP_SYS_ADMIN, else EPERM. 0: allowed.
    Errno pin_denied(bool cap_sys_admin) const {
        if (seed() && !cap_sys_admin)
            return refusal(EPERM, "pinning needs CAP_SYS_ADMIN (compat=seed)");
        return {};
    }
    // A pin's fd that is no BPF object (`e`: EBADF closed or O_PATH, EINVAL another file): the
    // seed's probe says which; today's bpf_fd_probe_obj says EINVAL for all.
    int pin_fd_error(int e) const { return seed() ? e : EINVAL; }
    // A pin of an object of this type: the seed's kernel knew maps and programs (a link's fd was
    // "any other file", EINVAL); today's pins links too. 0: allowed.
    Errno object_refused(ObjType type) const {
        if (seed() && type == ObjType::link) return refusal(EINVAL, "compat=seed pins no links");
        return {};
    }
    // What a pin asks of its caller on the parent directory, beyond the walk's search
    // permission: the seed bypasses may_create (0); today's kernel creates like any file (W+X).
    int pin_parent_access() const { return seed() ? 0 : kMayWrite | kMayExec; }
    // The permission bits of a pinned object: the seed's 0600; today's 0600 minus the umask.
    std::uint32_t new_object_mode(std::uint32_t umask) const {
        return seed() ? 0600 : 0600 & ~umask;
    }
    // A pin whose parent is on another filesystem (past EEXIST and EROFS): the seed's bpffs
    // never sees it (EACCES from the walk's permission); today's says EPERM.
    int foreign_parent_error() const { return seed() ? EACCES : EPERM; }
    // open(2) of an object the caller may open: the seed's ENXIO; today's bpffs has no open for
    // an object but a map with BTF (map_text_view) and says EIO.
    int open_object_error() const { return seed() ? ENXIO : EIO; }
    // May open(2) of an object of this type give a text view? Today's bpffs shows a map whose BTF
    // has a value type as text (bpffs_map_fops: read-only, one line per element); whether the map
    // has one is the broker's answer (broker/btf_text.hpp), so a map opens and the caller asks,
    // answering open_object_error() if not. The seed has no text view.
    bool map_text_view(ObjType type) const { return !seed() && type == ObjType::map; }
    // getxattr of an object's attribute other than this product's bpf.type: the seed's ENODATA;
    // today's bpffs has no xattr handlers (EOPNOTSUPP).
    int other_xattr_error() const { return seed() ? ENODATA : EOPNOTSUPP; }
    // The terminal rule, mkdir's half: no directory beside objects (EPERM). 0: allowed.
    // Today's kernel has no terminal rule.
    Errno mkdir_refused(std::uint32_t objects_in_parent) const {
        if (seed() && objects_in_parent > 0)
            return refusal(EPERM, "the terminal-directory rule: the parent holds objects");
        return {};
    }
    // The terminal rule, pin's half: no object beside directories (EBUSY). 0: allowed.
    Errno pin_refused(std::uint32_t subdirs_in_parent) const {
        if (seed() && subdirs_in_parent > 0)
            return refusal(EBUSY, "the terminal-directory rule: the parent holds directories");
        return {};
    }
    // A lookup of a name that exists nowhere in the tree: the seed says ENOENT like any missing
    // name; today's bpf_lookup refuses every dotted name with EPERM before looking. 0: look.
    Errno lookup_refused(std::string_view name) const {
        if (!seed() && is_dotted(name)) return refusal(EPERM, kDottedRule);
        return {};
    }
    // The mode of a new directory. The seed's bpf_mkdir copies the parent's whole mode; today's
    // takes the mode asked for (the VFS has applied the umask and kept 0777 and the sticky bit)
    // and, as inode_init_owner, the setgid bit of a setgid parent.
    std::uint32_t new_dir_mode(std::uint32_t parent_mode, std::uint32_t requested) const {
        if (seed()) return parent_mode & 07777;
        return (requested & 01777) | (parent_mode & 02000);
    }
    // The file_flags a pin may carry (asked first, as bpf_obj_pin's CHECK_ATTR): the seed's
    // BPF_PIN_FD had none; today's takes BPF_F_PATH_FD. EINVAL otherwise; 0: allowed.
    int pin_flags_refused(std::uint32_t file_flags) const {
        std::uint32_t allowed = seed() ? 0 : kBpfObjPinFlags;
        return (file_flags & ~allowed) != 0 ? EINVAL : 0;
    }
    // What a get with these file_flags asks, or EINVAL (asked before the path, as bpf_obj_get
    // does). The seed's BPF_NEW_FD had no flags and asked MAY_WRITE for a read-write fd. Today's
    // takes BPF_F_PATH_FD (the walk's business) and asks ACC_MODE of bpf_get_file_flag:
    // BPF_F_RDONLY MAY_READ and a read-only fd, BPF_F_WRONLY MAY_WRITE and a write-only one,
    // neither both and a read-write one, both EINVAL.
    Result<GetAccess> get_access(std::uint32_t file_flags) const {
        if (seed()) {
            if (file_flags != 0) return fail(EINVAL);
            return GetAccess{kMayWrite, FdMode::read_write};
        }
        bool rd = (file_flags & kBpfFRdonly) != 0, wr = (file_flags & kBpfFWronly) != 0;
        if ((file_flags & ~kBpfObjGetFlags) != 0 || (rd && wr)) return fail(EINVAL);
        if (rd) return GetAccess{kMayRead, FdMode::read_only};
        if (wr) return GetAccess{kMayWrite, FdMode::write_only};
        return GetAccess{kMayRead | kMayWrite, FdMode::read_write};
    }
    // rename, link and symlink: the seed's bpffs had none of these operations (the VFS says
    // EPERM); today's has all three (simple_rename, simple_link, bpf_symlink). 0: allowed. A
    // restored state holds hard links and symlinks only where they are allowed.
    Errno name_ops_refused() const {
        if (seed()) return refusal(EPERM, "compat=seed has no rename, link or symlink");
        return {};
    }
    // The options a mount shows: the seed's stored ones (a chmod of the root leaves them);
    // today's bpf_show_options reads the root inode's owner and mode.
    bool options_from_root() const { return !seed(); }
    // May a directory hold both objects and directories (also when restored)?
    bool mixed_dirs_allowed() const { return !seed(); }

private:
    bool seed() const { return compat_ == Compat::seed; }
    Compat compat_;
};

}  // namespace bpffs::fsops
