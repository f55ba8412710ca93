// SPDX-License-Identifier: GPL-2.0-or-later
// Kernel bpf filesystems mounted on or under this mount. bpftool and libbpf, run without
// `bpffsctl run`, see no bpf filesystem at a bpffs-fuse path and mount a kernel bpffs there
// (bpftool's mount_bpffs_for_pin): what they pin then lands in a filesystem that hides the
// directory, with no error. The worker watches /proc/self/mountinfo for that, logs each such
// mount once, and status shows them.
#pragma once

#include "common/unique_fd.hpp"

#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace bpffs::daemon {

// The mount points of kernel bpffs mounts (type "bpf") at `mountpoint` or below it, from a
// mountinfo text (proc_pid_mountinfo(5); octal escapes undone).
std::vector<std::string> kernel_bpffs_within(const std::string& mountinfo,
                                             const std::string& mountpoint);

class MountWatch {
public:
    explicit MountWatch(std::string mountpoint);
    // /proc/self/mountinfo: poll it for POLLPRI, then call changed().
    int fd() const { return fd_.get(); }
    // Reads the mount table again and logs each kernel bpffs under the mount not seen before.
    void changed();
    // The kernel bpffs mounts under the mount as of the last changed() (any thread).
    std::vector<std::string> current() const;

private:
    std::string mountpoint_;
    UniqueFd fd_;
    mutable std::mutex mu_;  // seen_: changed() on the worker's main thread, current() anywhere
    std::set<std::string> seen_;
};

}  // namespace bpffs::daemon
