// SPDX-License-Identifier: GPL-2.0-or-later
// bpffsctl's seccomp supervisor (`bpffsctl run --seccomp`, docs/preload.md): serves bpf(2)'s
// BPF_OBJ_PIN and BPF_OBJ_GET and statfs(2)/fstatfs(2) on bpffs-fuse mounts for programs the
// preload shim cannot reach (statically linked ones, Go programs: raw system calls), through
// seccomp user notification.
//
// The child installs a filter (install_filter) that sends to a listener only bpf(2) with cmd
// BPF_OBJ_PIN or BPF_OBJ_GET, statfs(2) and fstatfs(2), and lets every other call through in the
// kernel, untouched; then it execs the command. Its threads and children inherit the filter.
// The supervisor (Supervisor::serve) takes each notification and
//   - for a path on a bpffs-fuse mount (common/bpffs_node.hpp) serves it with the client library
//     as the calling thread would: the pin or get goes to the mount's broker, the new fd is put
//     into the caller with SECCOMP_IOCTL_NOTIF_ADDFD (close-on-exec, as the kernel makes bpf
//     fds), a statfs is answered with the bpf filesystem's magic written into the caller's
//     buffer;
//   - answers CONTINUE for anything else, so the kernel does what it would have done (a kernel
//     bpffs path behaves exactly as without the supervisor, errno included).
//
// Soundness, against the known traps of user notification:
//   - The caller's memory (the bpf_attr, the path, the statfs buffer) is read and written with
//     process_vm_readv/writev, never through a pointer of ours. After every read of the caller's
//     state (its memory, /proc/TID/...) and before acting on it, the notification is checked
//     still valid (SECCOMP_IOCTL_NOTIF_ID_VALID): a pid that no longer is that thread, blocked
//     in that call, is never acted for.
//   - Paths are resolved in the caller's context: a relative one from the thread's working
//     directory (/proc/TID/cwd) or its path_fd (/proc/TID/fd/N), an absolute one from the root.
//     A caller with the supervisor's credentials (uids, gids, groups, effective capabilities),
//     root and mount namespace is served by the supervisor itself; any other, when the
//     supervisor is root, by a helper forked for the call that enters the caller's mount
//     namespace, chroots to its root and takes its credentials first; when it is not root, the
//     call is left to the kernel (CONTINUE), said once on stderr. Never with more than the
//     caller has.
//   - Signals: the filter asks SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV where the kernel has it
//     (5.19): a call that has been received waits killably, so a signal (Go preempts threads
//     with SIGURG) does not interrupt it while it is served; before that the kernel restarts it.
//     A notification whose caller went away (ENOENT) is dropped, its fds closed.
//   - The supervisor serves until no task uses the filter any more (the listener reports
//     POLLHUP). If it dies, the kernel fails every pending and later call with ENOSYS: no call
//     hangs.
#pragma once

#include "common/unique_fd.hpp"

#include <linux/seccomp.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bpffs::ctl::seccomp {

// In the child before exec: sets no_new_privs unless it holds CAP_SYS_ADMIN (the kernel's
// condition for a filter), installs the filter and returns the listener fd, or a negative errno.
int install_filter();

// What a supervisor did, for its closing line and the tests.
struct Figures {
    std::uint64_t served = 0;     // answered by bpffs-fuse (pins, gets, statfs)
    std::uint64_t continued = 0;  // left to the kernel
    std::uint64_t gone = 0;       // callers that went away before their answer
};

class Supervisor {
public:
    // `trust_uid`: a daemon's uid to trust besides root's and ours (bpffs_opts.trust_uid).
    // Single-threaded use only: serving a call may fork a helper and move the working
    // directory.
    Supervisor(UniqueFd listener, std::uint32_t trust_uid);
    // Serves notifications until no task uses the filter any more. `child` (0: none), the
    // process the filter was installed in, is reaped when it exits (a zombie still holds the
    // filter), its wait status kept in child_status(). False when the listener failed (said on
    // stderr).
    bool serve(pid_t child = 0);
    int child_status() const { return child_status_; }
    const Figures& figures() const { return figures_; }

private:
    UniqueFd listener_;
    std::uint32_t trust_uid_;
    Figures figures_;
    int child_status_ = 0;
    bool warned_other_world_ = false;
    void answer(const seccomp_notif& n);
    friend struct Call;
};

// `bpffsctl run --seccomp -- CMD`: runs CMD under the filter, serves it until its last task is
// gone, and returns CMD's exit status (128 + N for a signal, as a shell says), 127 when CMD
// cannot be run, 1 when the filter cannot be installed.
int run_supervised(const std::vector<std::string>& command, std::uint32_t trust_uid);

}  // namespace bpffs::ctl::seccomp
