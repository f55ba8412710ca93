// SPDX-License-Identifier: GPL-2.0-or-later
// The rules that differ between the seed's filesystem (compat=seed) and today's kernel bpffs
// (compat=linux, spec section 7), in one place: the operations ask the policy and never test a
// mode themselves. Only the seed's rules exist so far; compat=linux adds its answers here.
#pragma once

#include <cerrno>
#include <cstdint>

namespace bpffs::fsops {

class Policy {
public:
    // Who may pin at all, asked before the fd and the path (the seed's bpf_obj_pin_user):
    // CAP_SYS_ADMIN, else EPERM. 0: allowed.
    int pin_denied(bool cap_sys_admin) const { return cap_sys_admin ? 0 : EPERM; }
    // The seed's terminal rule, mkdir's half: no directory beside objects (EPERM). 0: allowed.
    int mkdir_refused(std::uint32_t objects_in_parent) const {
        return objects_in_parent > 0 ? EPERM : 0;
    }
    // The terminal rule, pin's half: no object beside directories (EBUSY). 0: allowed.
    int pin_refused(std::uint32_t subdirs_in_parent) const {
        return subdirs_in_parent > 0 ? EBUSY : 0;
    }
    // The permission bits of a new directory: the seed's bpf_mkdir copies the parent's.
    std::uint32_t new_dir_mode(std::uint32_t parent_mode) const { return parent_mode & 07777; }
    // May a restored directory hold both objects and directories?
    bool mixed_dirs_allowed() const { return false; }
};

}  // namespace bpffs::fsops
