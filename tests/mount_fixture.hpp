// SPDX-License-Identifier: GPL-2.0-or-later
// Test fixtures for tests that mount the real daemon: a Mount that starts bpffs-fuse in the
// foreground on a fresh temp dir and always unmounts and removes it (on failure too), a way to
// run code as another user in a forked child, and a way to run a command and collect its output.
// Needs root (mounting, setresuid).
#pragma once

#include "tests/bpf_test_util.hpp"  // wait_for, TempDir, mount_table

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
    // serves requests (its broker socket exists). Throws std::runtime_error, with the daemon's log,
    // if it does not.
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
    void cleanup();     // stops the daemon, unmounts, removes the temp dir; idempotent
    std::string base_;  // the temp dir holding the mount point and the log
    std::string dir_;
    pid_t pid_ = -1;
    bool allow_restarts_ = false;
};

// A FUSE mount served by bench/bpffs-bench-minfuse (`bin`: an in-memory filesystem that takes
// any node, sockets and regular files included) on a fresh temp dir, made as fusermount3 makes
// one for user `uid`: mount(2) of /dev/fuse with user_id=uid, group_id=gid, allow_other and
// default_permissions, and the daemon, running as uid:gid, gets the fd ("/dev/fd/3"). Its
// root is 0755, owned by uid. The constructor returns once the mount answers; the destructor
// unmounts, reaps the daemon and removes the dir (also when the constructor throws).
class MinFuse {
public:
    explicit MinFuse(const std::string& bin, uid_t uid = 0, gid_t gid = 0);
    ~MinFuse();
    MinFuse(const MinFuse&) = delete;
    MinFuse& operator=(const MinFuse&) = delete;

    const std::string& path() const { return dir_; }
    std::string p(std::string_view rel) const { return dir_ + "/" + std::string(rel); }

private:
    void cleanup();
    std::string base_;
    std::string dir_;
    bool mounted_ = false;
    pid_t pid_ = -1;
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

}  // namespace bpffs::test
