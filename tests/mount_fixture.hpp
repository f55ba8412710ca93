// SPDX-License-Identifier: GPL-2.0-or-later
// Test fixtures for tests that mount the real daemon: a Mount that starts bpffs-fuse in the
// foreground on a fresh temp dir and always unmounts and removes it (on failure too), a way to
// run code as another user in a forked child, and a way to run a command and collect its output.
// Needs root (mounting, setresuid).
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace bpffs::test {

// Is `path` a mount point of type fuse.bpffs-fuse (per /proc/self/mountinfo)?
bool is_bpffs_mounted(const std::string& path);

class Mount {
public:
    // Starts `bpffs-fuse -f <dir> [-o opts] [extra...]` and waits (10 s at most) until the mount
    // serves requests (its broker socket exists). Throws std::runtime_error, with the daemon's log, if it does not.
    explicit Mount(const std::string& opts = "", const std::vector<std::string>& extra = {});
    ~Mount();
    Mount(const Mount&) = delete;
    Mount& operator=(const Mount&) = delete;

    const std::string& path() const { return dir_; }
    std::string p(std::string_view rel) const { return dir_ + "/" + std::string(rel); }
    pid_t pid() const { return pid_; }
    std::string log() const;  // what the daemon wrote to stderr
    // Sends SIGTERM and waits (10 s at most) for the daemon; returns its wait status, or -1.
    int stop();
    // A test that kills or upgrades the worker says so; otherwise a worker restart (which the
    // supervisor would hide from the test) fails the test when the mount is cleaned up.
    void allow_restarts() { allow_restarts_ = true; }

private:
    void cleanup();  // stops the daemon, unmounts, removes the temp dir; idempotent
    std::string base_;  // the temp dir holding the mount point and the log
    std::string dir_;
    pid_t pid_ = -1;
    bool allow_restarts_ = false;
};

// Runs fn in a forked child with credentials uid/gid (groups: `groups`, no capabilities) and
// returns what fn returned (0..255: an errno or 0), or -1 if the child died otherwise.
int run_as(uid_t uid, gid_t gid, const std::function<int()>& fn,
           const std::vector<gid_t>& groups = {});

struct CmdResult {
    int exit_code = -1;  // -1: killed or not started
    std::string out;     // stdout and stderr together
};
// Runs argv (argv[0] a path) with a timeout of 30 s; stdin is /dev/null.
CmdResult run_cmd(const std::vector<std::string>& argv);

// Waits until pred() holds, polling, for at most timeout_ms. Returns pred()'s last value.
bool wait_for(const std::function<bool()>& pred, int timeout_ms = 10000);

}  // namespace bpffs::test
