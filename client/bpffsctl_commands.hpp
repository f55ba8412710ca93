// SPDX-License-Identifier: GPL-2.0-or-later
// bpffsctl's verbs: one options struct and one function per subcommand. Each function prints
// its own messages ("bpffsctl: error: <what>: <strerror>" on stderr, results on stdout) and
// returns the process exit code: 0 ok, 1 failure, 2 usage (exec: 127 when CMD cannot be run;
// on success it does not return). The command line itself is parsed in bpffsctl_main.cpp.
#pragma once

#include "common/pin_attrs.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace bpffs::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCannotExec = 127;  // as shells report a command that cannot be run

// Every verb that talks to a broker takes --trust-uid (default $BPFFS_TRUST_UID): a uid whose
// daemon is trusted besides root's and the caller's own; 0 trusts no other. A broker that is
// not trusted is refused before anything is sent ("... is not served by a trusted bpffs-fuse
// daemon (peer uid N)").

struct PinOptions {
    std::uint32_t trust_uid = 0;  // --trust-uid
    enum class Source { map_id, prog_id, fd, path };
    Source source = Source::map_id;
    std::uint32_t id = 0;  // map_id, prog_id; fd: the fd number
    std::string from;      // path: an object pinned on a kernel bpffs or a bpffs-fuse mount
    std::string path;      // where to pin it on a bpffs-fuse mount
    PinAttrs attrs;        // --mode, --owner
};

struct MkdirOptions {
    std::vector<std::string> paths;
    bool parents = false;  // -p: make missing parents, accept existing directories
    PinAttrs attrs;        // --mode, --owner: of every directory this call makes
};

struct GetOptions {
    std::uint32_t trust_uid = 0;  // --trust-uid
    std::string path;
    bool json = false;
};

struct ExecOptions {
    std::uint32_t trust_uid = 0;       // --trust-uid
    std::vector<std::string> paths;    // fetched in order onto fds 3, 4, ...
    std::vector<std::string> command;  // CMD [ARGS...], everything after "--"
};

struct RunOptions {
    std::uint32_t trust_uid = 0;  // --trust-uid
    // How CMD's calls reach the brokers: the preload shim (dynamically linked programs that go
    // through libc), seccomp user notification (every program: bpffsctl_seccomp.hpp), or the
    // one that fits CMD.
    enum class Via { automatic, preload, seccomp };
    Via via = Via::automatic;
    std::vector<std::string> command;  // CMD [ARGS...], everything after "--"
};

struct LsOptions {
    std::uint32_t trust_uid = 0;  // --trust-uid
    std::string path;
    bool long_format = false;  // -l: modes, owners, and each object's facts
    bool recursive = false;    // -R
    bool json = false;         // --json: one array, every entry with its facts
};

struct AgentOptions {
    std::uint32_t trust_uid = 0;  // --trust-uid
    std::string socket;           // where the runtime connects (its listenerPath)
};

struct StatusOptions {
    std::uint32_t trust_uid = 0;  // --trust-uid
    std::string mountpoint;
    bool json = false;
};

struct RemountOptions {
    std::uint32_t trust_uid = 0;  // --trust-uid
    std::string mountpoint;
    std::vector<std::string> options;  // every -o list, joined with ','
};

struct UpgradeOptions {
    std::uint32_t trust_uid = 0;  // --trust-uid
    std::string mountpoint;
    std::string exec;  // the new binary; empty: the path the running one was started from
    double timeout = 30.0;
};

int run_pin(const PinOptions& o);
int run_get(const GetOptions& o);
// mkdir on a bpffs-fuse mount, each new directory given --owner then --mode; a failure removes
// the directories this path made.
int run_mkdir(const MkdirOptions& o);
int run_ls(const LsOptions& o);
int run_exec(const ExecOptions& o);  // returns only on failure
// Runs CMD with libbpffs-preload.so added to LD_PRELOAD ($BPFFS_PRELOAD, else the installed
// path): unmodified bpftool and libbpf programs then pin and get on bpffs-fuse mounts.
int run_run(const RunOptions& o);  // returns only on failure
int run_status(const StatusOptions& o);
// The seccomp agent for containers (client/bpffsctl_agent.cpp): serves until SIGINT/SIGTERM.
int run_agent(const AgentOptions& o);
int run_remount(const RemountOptions& o);
// Replaces the mount's worker with a new binary without unmounting, and waits until it serves.
int run_upgrade(const UpgradeOptions& o);

}  // namespace bpffs::ctl
