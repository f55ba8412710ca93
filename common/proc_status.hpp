// SPDX-License-Identifier: GPL-2.0-or-later
// What /proc/<pid>/status says of a process's credentials: its ids, its supplementary groups and
// its effective capability set; and what /proc/<pid>/stat says of its state. The daemon's FUSE
// adapter and the broker both need it for callers the kernel identifies only by pid; reading it
// costs more than a whole request, so both read it only when an answer depends on it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

namespace bpffs {

struct ProcStatus {
    bool ok = false;  // false: no such process, or not visible (pid 0: another pid namespace)
    std::vector<std::uint32_t> groups;
    std::uint64_t cap_eff = 0;  // bit N is capability N (CAP_DAC_OVERRIDE = 1, ...)
    std::uint32_t umask = 022;  // the process's file mode creation mask
    // Uid: and Gid: lines: real, effective, saved set, filesystem.
    std::uint32_t uids[4] = {65534, 65534, 65534, 65534};
    std::uint32_t gids[4] = {65534, 65534, 65534, 65534};
    std::uint32_t tgid = 0;  // the thread group (process) a thread belongs to
};

ProcStatus read_proc_status(pid_t pid);

// The state letter of /proc/<pid>/stat ('R', 'S', 'D', 'Z' zombie, 'X' dead, ...), read after
// the last ')' (the command name may hold any byte); '?' when there is no such process.
char process_state(pid_t pid);

}  // namespace bpffs
