// SPDX-License-Identifier: GPL-2.0-or-later
// What a benchmark run sets up and must always take down: a private mount namespace, a temp
// directory, a bpffs-fuse daemon, a minimal FUSE daemon, a kernel bpffs, forked helper processes.
//
// Cleanup on every exit path:
//  - The run lives in its own mount namespace (unshare(CLONE_NEWNS), / made private), so every
//    mount it makes vanishes with its last process even after a SIGKILL, and none is seen from
//    outside.
//  - Every child is started with PR_SET_PDEATHSIG: daemons get SIGTERM (and unmount), helpers
//    SIGKILL, when the benchmark dies.
//  - The owners below undo their part on destruction; SIGINT/SIGTERM/SIGHUP run an
//    async-signal-safe handler that kills the registered children, detaches the registered
//    mounts, removes the registered paths and re-raises the signal. That handler's list is the
//    program's one mutable global (a signal handler can reach nothing else).
#pragma once

#include "common/unique_fd.hpp"
#include "tests/bpf_test_util.hpp"  // the support library the tests share: wait_for, mounts, Child

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace bpffs::bench {

// Enters a private mount namespace and installs the signal handlers. Throws on failure.
void enter_private_namespace();
void install_signal_cleanup();

// Registration for the signal handler (the owners below register and unregister themselves).
void cleanup_register_pid(pid_t pid);
void cleanup_unregister_pid(pid_t pid);
void cleanup_register_mount(const std::string& path);
void cleanup_unregister_mount(const std::string& path);

// A fresh directory /tmp/bpffs-bench-XXXXXX; on destruction removes the files and directories
// that were made through it (never recursively into what might still be a mount).
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    // Creates (mkdir) a subdirectory and remembers it for removal; returns its path.
    std::string subdir(const std::string& name);
    // Remembers a file for removal; returns its path.
    std::string file(const std::string& name);

private:
    std::string path_;
    std::vector<std::string> dirs_, files_;
};

// A FUSE daemon run in the foreground by this process: argv[0] is the binary, the mount point
// is `mountpoint`, stderr/stdout go to `log`. Ready when `ready()` holds (10 s at most); throws,
// with the daemon's log, if it is not (the daemon stopped and the mount gone).
class FuseDaemon {
public:
    FuseDaemon(std::vector<std::string> argv, std::string mountpoint, std::string fstype,
               std::string log, const std::function<bool()>& ready);
    ~FuseDaemon();
    FuseDaemon(const FuseDaemon&) = delete;
    FuseDaemon& operator=(const FuseDaemon&) = delete;
    pid_t pid() const { return pid_; }
    // SIGTERM, wait (10 s), SIGKILL if needed, detach the mount if still there. Idempotent.
    void stop();
    std::string log_text() const;

private:
    std::string mountpoint_, fstype_, log_;
    pid_t pid_ = -1;
};

// bpffs-fuse (`bin`) mounted on `mountpoint` (-o `options`, --log-level `log_level`), logging
// to `log`: returns once the mount serves (its broker accepts connections); stopped and
// unmounted on destruction, and when it does not come up (the constructor throws then).
class Daemon {
public:
    Daemon(const std::string& bin, const std::string& mountpoint, const std::string& log,
           const std::string& log_level, const std::string& options = "mode=0755");
    pid_t pid() const { return fuse_.pid(); }  // the supervisor, if it has a worker
    std::string log_text() const { return fuse_.log_text(); }

private:
    FuseDaemon fuse_;
};

// The kernel's bpf filesystem mounted on `dir` (mode 0700); detached on destruction.
class KernelBpffs {
public:
    explicit KernelBpffs(std::string dir);
    ~KernelBpffs();
    KernelBpffs(const KernelBpffs&) = delete;
    KernelBpffs& operator=(const KernelBpffs&) = delete;
    const std::string& path() const { return dir_; }

private:
    std::string dir_;
};

// A fresh cgroup (test::TempCgroup) that the signal handler removes too; removed on
// destruction. Throws if there is no cgroup2 mount.
class Cgroup {
public:
    Cgroup();
    ~Cgroup();
    Cgroup(const Cgroup&) = delete;
    Cgroup& operator=(const Cgroup&) = delete;
    const test::TempCgroup& get() const { return cg_; }

private:
    test::TempCgroup cg_;
};

// A forked helper process running fn (its exit status is fn's value), with the signal
// registration and the parent-death signal of this file's top; killed (SIGKILL) and reaped on
// destruction unless waited for.
class Child {
public:
    explicit Child(const std::function<int()>& fn);
    ~Child() { kill_now(); }
    Child(Child&&) noexcept = default;
    pid_t pid() const { return child_.pid(); }
    // Waits (timeout_ms at most, then kills); fn's value, or -1 if it died otherwise.
    int wait(int timeout_ms);
    void kill_now();

private:
    test::Child child_;
};

// VmRSS of a process in bytes (0 if unreadable).
std::size_t rss_bytes(pid_t pid);
// VmHWM: the most VmRSS the process ever had.
std::size_t peak_rss_bytes(pid_t pid);
// VmRSS summed over `root` and its descendants: the daemon's memory, whether it runs as one
// process or as a supervisor and a worker (each exec'ed: they share no pages but libraries').
std::size_t tree_rss_bytes(pid_t root);

// Where a daemon's memory is: each process's VmRSS split into RssAnon and RssShmem (RssFile:
// the rest), and the memfds its processes hold (the state log, the in-flight area) with the
// bytes they allocate. A memfd's pages count in the RssShmem of a process that maps and has
// touched them; one that no process maps is memory all the same, which VmRSS misses: total()
// adds those.
struct ProcMemory {
    pid_t pid = 0;
    std::size_t rss = 0, anon = 0, shmem = 0;
};
struct MemfdUse {
    std::string name;           // "bpffs-state", "bpffs-inflight"
    std::size_t size = 0;       // st_size
    std::size_t allocated = 0;  // st_blocks * 512: its pages in memory
    bool mapped = false;        // some process of the tree maps it
};
struct DaemonMemory {
    std::vector<ProcMemory> procs;  // the root first
    std::vector<MemfdUse> memfds;   // each memfd once
    std::size_t rss() const;        // VmRSS summed
    std::size_t total() const;      // rss() + what unmapped memfds allocate
    std::string describe() const;   // one line, for the table
};
DaemonMemory daemon_memory(pid_t root);

}  // namespace bpffs::bench
