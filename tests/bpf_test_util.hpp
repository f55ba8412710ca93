// SPDX-License-Identifier: GPL-2.0-or-later
// Helpers for the kernel tests: real bpf maps and programs (libbpf), their kernel ids, fd
// bookkeeping, forked children, temp dirs and bind mounts that clean up after themselves.
//
// Ownership: every function that creates something returns an owner (UniqueFd, FdGroup,
// TempDir, BindMount, Child) that releases it on destruction, so a failed REQUIRE leaks nothing.
// Creating maps and programs needs CAP_BPF (the tests run as root); using a map fd one was
// handed (lookup, update, kernel_id) works without privileges.
#pragma once

#include "common/unique_fd.hpp"
#include "tests/result_helpers.hpp"  // ename

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace bpffs::test {

// A BPF_MAP_TYPE_HASH map (u32 key, u64 value, 16 entries) named `name` (at most 15 chars).
// Invalid on failure (errno set).
UniqueFd create_hash_map(const char* name);
// The two-instruction socket filter "r0 = 0; exit" (license GPL). Invalid on failure.
UniqueFd load_trivial_prog(const char* name);

// A BPF_PROG_TYPE_CGROUP_SKB program "r0 = 1; exit" (every packet passes). Invalid on failure.
UniqueFd load_cgroup_skb_prog(const char* name);
// A BPF link attaching `prog_fd` (a cgroup_skb program) to the cgroup directory `cgroup` at
// BPF_CGROUP_INET_INGRESS. Invalid on failure (errno set).
UniqueFd attach_cgroup_link(int prog_fd, const std::string& cgroup);

// The kernel id of a bpf map or program fd (from /proc/self/fdinfo, so it works for unprivileged
// processes too); 0 if `fd` is not a bpf map or program.
std::uint32_t kernel_id(int fd);
// "map", "prog", or what else /proc/self/fd/N links to ("" if closed).
std::string fd_kind(int fd);

// Does the kernel still hold the map (program) with this id? bpf_*_get_fd_by_id: ENOENT once
// the last reference is gone. Needs CAP_SYS_ADMIN.
bool map_id_alive(std::uint32_t id);
bool prog_id_alive(std::uint32_t id);
bool link_id_alive(std::uint32_t id);

// 0 or the positive errno of the bpf(2) call.
int map_update(int fd, std::uint32_t key, std::uint64_t value);
int map_lookup(int fd, std::uint32_t key, std::uint64_t* value);

// Entries of /proc/<pid>/fd (use getpid() for this process), except those that point into
// /proc (short-lived reads of /proc/<peer>/status and the like come and go at any time); -1 if
// unreadable.
int count_fds(pid_t pid);
// Those of pid's fds that are connected (not listening) AF_UNIX SOCK_SEQPACKET sockets: for the
// daemon, the broker's open client connections.
int count_connections(pid_t pid);
// The worker that serves a daemon's mount (its supervisor's child), -1 if none.
pid_t worker_of(pid_t daemon);

// Waits until pred() holds, polling, for at most timeout_ms. Returns pred()'s last value.
bool wait_for(const std::function<bool()>& pred, int timeout_ms = 10000);

// waitpid(pid) for at most timeout_ms: the wait status, or -1 if pid has not exited by then.
int wait_status(pid_t pid, int timeout_ms);

// fork + exec of argv (argv[0] a path) with stdin on /dev/null and stdout and stderr on out_fd;
// in_child, if given, runs in the child first. The child's pid, or -1 if fork failed.
pid_t spawn(const std::vector<std::string>& argv, int out_fd,
            const std::function<void()>& in_child = {});

// `root` and its descendants (the children of each of its threads, recursively): a daemon's
// supervisor and its worker.
std::vector<pid_t> process_tree(pid_t root);

// The contents of a file ("" if it cannot be read).
std::string read_file(const std::string& path);

// One line of /proc/self/mountinfo: the mount point (unescaped), its type, its mount options
// and its superblock options.
struct MountEntry {
    std::string path, fstype, options, super_options;
};
std::vector<MountEntry> mount_table();
// Is `path` the mount point of a filesystem of type `fstype` ("fuse.bpffs-fuse")?
bool is_mounted(const std::string& path, const std::string& fstype);

// A SOCK_SEQPACKET connection to `sock_path` with send and receive timeouts; invalid if the
// connect fails (errno set).
UniqueFd raw_connect(const std::string& sock_path, int timeout_s = 5);
// Does such a connection succeed (a broker that serves, say)? Closed at once.
bool can_connect(const std::string& sock_path);

// An RAII owner of many fds (the SCM_RIGHTS tests send hundreds).
class FdGroup {
public:
    void add(UniqueFd fd) { fds_.push_back(std::move(fd)); }
    std::vector<int> raw() const;
    std::size_t size() const { return fds_.size(); }
    void clear() { fds_.clear(); }

private:
    std::vector<UniqueFd> fds_;
};
// n pipes (2n fds).
FdGroup make_pipes(std::size_t n);

// An fd number that is not open, and high enough not to be reused by the test's next open().
int closed_fd_number();

// A fresh directory under /tmp (mode 0755), removed recursively on destruction (it must not
// contain mount points by then: unmount first).
// A copy of the program `path` in `dir` (0755 there), for running it as another user: the build
// tree may be where only root can go (a checkout under /root). Returns the copy's path.
std::string copy_for_others(const std::string& path, const std::string& dir);

class TempDir {
public:
    // A new 0755 directory in `parent`. "/var/lib" gives one that an upgrade trusts (root's
    // directories all the way up, writable by no one else); /tmp, which anyone may write, does
    // not.
    explicit TempDir(const std::string& parent = "/tmp");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string p(const std::string& rel) const { return path_ + "/" + rel; }

private:
    std::string path_;
};

// An inotify watch of IN_CREATE on one directory, from construction to destruction.
class CreateWatch {
public:
    explicit CreateWatch(const std::string& dir);
    bool ok() const { return static_cast<bool>(fd_); }
    // The name of the next IN_CREATE, waiting at most timeout_ms; "" if none came.
    std::string next(int timeout_ms = 5000);

private:
    UniqueFd fd_;
    std::vector<std::string> queued_;  // names read, not yet returned (oldest first)
};

// A kernel bpffs (mount -t bpf -o `opts`) on a fresh temp dir, unmounted (lazily) and removed on
// destruction. Throws std::runtime_error, naming the errno, if the mount fails. Not copyable
// (its TempDir is not).
class KernelBpffs {
public:
    explicit KernelBpffs(const std::string& opts = "");
    ~KernelBpffs();
    const std::string& path() const { return dir_.path(); }
    std::string p(const std::string& rel) const { return dir_.p(rel); }

private:
    TempDir dir_;
};

// A fresh cgroup directory under the cgroup2 mount (/sys/fs/cgroup, or its `unified` child on a
// hybrid hierarchy), with no process in it; removed on destruction (rmdir: links attached to it
// go defunct). Throws std::runtime_error if there is no cgroup2 mount or the mkdir fails.
class TempCgroup {
public:
    TempCgroup();
    ~TempCgroup();
    TempCgroup(const TempCgroup&) = delete;
    TempCgroup& operator=(const TempCgroup&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// A BPF link of a new cgroup_skb program (load_cgroup_skb_prog) to `cg`: the link holds the
// program. Invalid on failure (errno set).
UniqueFd new_cgroup_link(const TempCgroup& cg);

// mount(2) MS_BIND of `source` on `target` (an existing directory); detached on destruction.
// Declare it after the Mount it binds from, so it goes first.
class BindMount {
public:
    BindMount(const std::string& source, const std::string& target);
    ~BindMount();
    BindMount(const BindMount&) = delete;
    BindMount& operator=(const BindMount&) = delete;
    bool ok() const { return ok_; }
    int error() const { return error_; }

private:
    std::string target_;
    bool ok_ = false;
    int error_ = 0;
};

// Runs fn in a forked child that keeps this process's credentials and returns fn's value
// (0..255), or -1 if the child died otherwise or ran over 60 s (it is killed then).
int run_child(const std::function<int()>& fn);

// A forked child started now and reaped (killed if still running) on destruction; wait()
// returns fn's value as run_child does. pid() is -1 if the fork failed or once it is reaped.
class Child {
public:
    explicit Child(const std::function<int()>& fn);
    ~Child() { kill_now(); }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    Child(Child&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
    int wait(int timeout_ms = 60000);
    void kill_now();  // SIGKILL and reap, now
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

// Drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and CAP_FOWNER from this process's effective set
// (in a child: a root that keeps CAP_SYS_ADMIN but obeys file modes). 0 or errno.
int drop_dac_caps();

// Every path under `dir` (relative, directories with a trailing '/'), "." and ".." excepted.
std::set<std::string> tree(const std::string& dir);

}  // namespace bpffs::test
