// SPDX-License-Identifier: GPL-2.0-or-later
// What a run sets up and always takes down: a mount namespace, temp dirs, the daemons, children.
#include "bench/environment.hpp"

#include "tests/bpf_test_util.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace bpffs::bench {
namespace {

// What the signal handler undoes. Fixed-size, written only outside the handler with the
// signals blocked, so the handler sees a consistent list.
struct SignalCleanup {
    static constexpr int kMax = 64;
    static constexpr int kPath = 256;
    pid_t pids[kMax];
    int npids = 0;
    char mounts[kMax][kPath];
    int nmounts = 0;
    char paths[kMax][kPath];  // removed with rmdir/unlink, last registered first
    int npaths = 0;
};
SignalCleanup g_cleanup;  // the one mutable global: see environment.hpp

// Blocks the cleanup signals for the life of a scope (list edits are then atomic to the handler).
class SignalBlock {
public:
    SignalBlock() {
        sigset_t s;
        sigemptyset(&s);
        for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&s, sig);
        sigprocmask(SIG_BLOCK, &s, &old_);
    }
    ~SignalBlock() { sigprocmask(SIG_SETMASK, &old_, nullptr); }

private:
    sigset_t old_;
};

void copy_path(char (&dst)[SignalCleanup::kPath], const std::string& s) {
    std::size_t n = std::min(s.size(), static_cast<std::size_t>(SignalCleanup::kPath - 1));
    std::memcpy(dst, s.data(), n);
    dst[n] = '\0';
}

using PathList = char[SignalCleanup::kMax][SignalCleanup::kPath];

// Adds p to a list of the signal handler's (dropped if the list is full).
void add_path(PathList& list, int& n, const std::string& p) {
    SignalBlock b;
    if (n < SignalCleanup::kMax) copy_path(list[n++], p);
}

// Removes the first p from such a list, keeping the order of the others.
void remove_path(PathList& list, int& n, const std::string& p) {
    SignalBlock b;
    for (int i = 0; i < n; ++i) {
        if (p == list[i]) {
            for (int j = i + 1; j < n; ++j) std::memcpy(list[j - 1], list[j], SignalCleanup::kPath);
            --n;
            return;
        }
    }
}

void register_path(const std::string& p) { add_path(g_cleanup.paths, g_cleanup.npaths, p); }
void unregister_path(const std::string& p) { remove_path(g_cleanup.paths, g_cleanup.npaths, p); }

extern "C" void on_fatal_signal(int sig) {
    // Async-signal-safe calls only.
    for (int i = 0; i < g_cleanup.npids; ++i) kill(g_cleanup.pids[i], SIGKILL);
    for (int i = 0; i < g_cleanup.nmounts; ++i) umount2(g_cleanup.mounts[i], MNT_DETACH);
    for (int i = g_cleanup.npaths - 1; i >= 0; --i) {
        if (rmdir(g_cleanup.paths[i]) != 0) unlink(g_cleanup.paths[i]);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

[[noreturn]] void sys_fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

// In a child just forked: `death_signal` when this process dies, the cleanup signals back to
// their defaults and unblocked (the fork happened inside a SignalBlock).
void child_signals(int death_signal) {
    prctl(PR_SET_PDEATHSIG, death_signal);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

// test::spawn with the child's signals set up and its pid registered for the signal handler
// before a signal can see the child unlisted.
pid_t spawn(const std::vector<std::string>& argv, int out_fd, int death_signal) {
    SignalBlock b;
    pid_t pid = test::spawn(argv, out_fd, [death_signal] { child_signals(death_signal); });
    if (pid < 0) sys_fail("fork");
    cleanup_register_pid(pid);
    return pid;
}

// A test::Child with its signals set up, registered as spawn's children are.
test::Child start_child(const std::function<int()>& fn) {
    SignalBlock b;
    test::Child c([&] {
        child_signals(SIGKILL);
        return fn();
    });
    if (c.pid() < 0) sys_fail("fork");
    cleanup_register_pid(c.pid());
    return c;
}

}  // namespace

void enter_private_namespace() {
    if (unshare(CLONE_NEWNS) != 0) sys_fail("unshare(CLONE_NEWNS) (run as root)");
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) sys_fail("make / private");
}

void install_signal_cleanup() {
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sa.sa_mask, sig);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
}

void cleanup_register_pid(pid_t pid) {
    SignalBlock b;
    if (g_cleanup.npids < SignalCleanup::kMax) g_cleanup.pids[g_cleanup.npids++] = pid;
}

void cleanup_unregister_pid(pid_t pid) {
    SignalBlock b;
    auto* end = std::remove(g_cleanup.pids, g_cleanup.pids + g_cleanup.npids, pid);
    g_cleanup.npids = static_cast<int>(end - g_cleanup.pids);
}

void cleanup_register_mount(const std::string& path) {
    add_path(g_cleanup.mounts, g_cleanup.nmounts, path);
}

void cleanup_unregister_mount(const std::string& path) {
    remove_path(g_cleanup.mounts, g_cleanup.nmounts, path);
}

TempDir::TempDir() {
    char tmpl[] = "/tmp/bpffs-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) sys_fail("mkdtemp");
    path_ = tmpl;
    chmod(path_.c_str(), 0755);
    register_path(path_);
}

TempDir::~TempDir() {
    for (auto it = files_.rbegin(); it != files_.rend(); ++it) {
        unlink(it->c_str());
        unregister_path(*it);
    }
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
        rmdir(it->c_str());
        unregister_path(*it);
    }
    rmdir(path_.c_str());
    unregister_path(path_);
}

std::string TempDir::subdir(const std::string& name) {
    std::string p = path_ + "/" + name;
    if (mkdir(p.c_str(), 0755) != 0) sys_fail("mkdir " + p);
    dirs_.push_back(p);
    register_path(p);
    return p;
}

std::string TempDir::file(const std::string& name) {
    std::string p = path_ + "/" + name;
    files_.push_back(p);
    register_path(p);
    return p;
}

FuseDaemon::FuseDaemon(std::vector<std::string> argv, std::string mountpoint, std::string fstype,
                       std::string log, const std::function<bool()>& ready)
    : mountpoint_(std::move(mountpoint)), fstype_(std::move(fstype)), log_(std::move(log)) {
    UniqueFd out(open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!out) sys_fail("open " + log_);
    pid_ = spawn(argv, out.get(), SIGTERM);
    cleanup_register_mount(mountpoint_);
    bool up = test::wait_for(
        [&] {
            if (test::is_mounted(mountpoint_, fstype_) && ready()) return true;
            int status;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                cleanup_unregister_pid(pid_);
                pid_ = -1;
                return true;
            }
            return false;
        },
        10000);
    if (!up || pid_ < 0) {
        std::string msg = argv[0] + " did not mount " + mountpoint_ + ": " + log_text();
        stop();
        throw std::runtime_error(msg);
    }
}

FuseDaemon::~FuseDaemon() { stop(); }

void FuseDaemon::stop() {
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        if (test::wait_status(pid_, 10000) == -1) {
            kill(pid_, SIGKILL);
            test::wait_status(pid_, 10000);
        }
        cleanup_unregister_pid(pid_);
        pid_ = -1;
    }
    if (!mountpoint_.empty()) {
        if (test::is_mounted(mountpoint_, fstype_)) umount2(mountpoint_.c_str(), MNT_DETACH);
        cleanup_unregister_mount(mountpoint_);
        mountpoint_.clear();
    }
}

std::string FuseDaemon::log_text() const { return test::read_file(log_); }

Daemon::Daemon(const std::string& bin, const std::string& mountpoint, const std::string& log,
               const std::string& log_level, const std::string& options)
    : fuse_({bin, "-f", mountpoint, "-o", options, "--log-level", log_level}, mountpoint,
            "fuse.bpffs-fuse", log,
            [sock = mountpoint + "/.bpffs.sock"] { return test::can_connect(sock); }) {}

KernelBpffs::KernelBpffs(std::string dir) : dir_(std::move(dir)) {
    cleanup_register_mount(dir_);
    if (mount("bpf", dir_.c_str(), "bpf", 0, "mode=0700") != 0) {
        int e = errno;
        cleanup_unregister_mount(dir_);
        errno = e;
        sys_fail("mount -t bpf on " + dir_);
    }
}

KernelBpffs::~KernelBpffs() {
    umount2(dir_.c_str(), MNT_DETACH);
    cleanup_unregister_mount(dir_);
}

Cgroup::Cgroup() { register_path(cg_.path()); }

Cgroup::~Cgroup() { unregister_path(cg_.path()); }

Child::Child(const std::function<int()>& fn) : child_(start_child(fn)) {}

void Child::kill_now() {
    pid_t pid = child_.pid();
    if (pid <= 0) return;
    child_.kill_now();
    cleanup_unregister_pid(pid);
}

int Child::wait(int timeout_ms) {
    pid_t pid = child_.pid();
    int rc = child_.wait(timeout_ms);  // kills it if it overruns
    if (pid > 0) cleanup_unregister_pid(pid);
    return rc;
}

namespace {

// The value of a "Key:   123 kB" line of /proc/PID/status, in bytes (0 if absent).
std::size_t status_kib(const std::string& status, const std::string& key) {
    std::istringstream in(status);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key, 0) == 0) return std::stoull(line.substr(key.size())) * 1024;
    }
    return 0;
}

std::string proc_status(pid_t pid) {
    return test::read_file("/proc/" + std::to_string(pid) + "/status");
}

}  // namespace

std::size_t rss_bytes(pid_t pid) { return status_kib(proc_status(pid), "VmRSS:"); }

std::size_t peak_rss_bytes(pid_t pid) { return status_kib(proc_status(pid), "VmHWM:"); }

std::size_t tree_rss_bytes(pid_t root) {
    std::size_t sum = 0;
    for (pid_t p : test::process_tree(root)) sum += rss_bytes(p);
    return sum;
}

namespace {

std::string mib(std::size_t b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(b) / (1 << 20));
    return buf;
}

}  // namespace

std::size_t DaemonMemory::rss() const {
    std::size_t sum = 0;
    for (const auto& p : procs) sum += p.rss;
    return sum;
}

std::size_t DaemonMemory::total() const {
    std::size_t sum = rss();
    for (const auto& m : memfds) {
        if (!m.mapped) sum += m.allocated;
    }
    return sum;
}

std::string DaemonMemory::describe() const {
    std::string out;
    for (std::size_t i = 0; i < procs.size(); ++i) {
        const auto& p = procs[i];
        if (!out.empty()) out += "; ";
        out += (i == 0 ? "supervisor " : "worker ") + mib(p.rss) + " (anon " + mib(p.anon) +
               ", shmem " + mib(p.shmem) + ")";
    }
    for (const auto& m : memfds) {
        out += "; memfd " + m.name + " " + mib(m.allocated) + " of " + mib(m.size) +
               (m.mapped ? " (mapped)" : " (unmapped: added)");
    }
    return out + " MiB";
}

DaemonMemory daemon_memory(pid_t root) {
    DaemonMemory out;
    std::map<std::uint64_t, std::size_t> by_ino;  // memfd inode -> index in out.memfds
    std::vector<std::uint64_t> mapped;
    for (pid_t pid : test::process_tree(root)) {
        std::string dir = "/proc/" + std::to_string(pid);
        std::string status = proc_status(pid);
        out.procs.push_back(ProcMemory{pid, status_kib(status, "VmRSS:"),
                                       status_kib(status, "RssAnon:"),
                                       status_kib(status, "RssShmem:")});
        if (DIR* d = opendir((dir + "/fd").c_str())) {
            while (dirent* e = readdir(d)) {
                if (e->d_name[0] == '.') continue;
                std::string fd = dir + "/fd/" + e->d_name;
                char link[256];
                ssize_t n = readlink(fd.c_str(), link, sizeof link - 1);
                if (n <= 0) continue;
                std::string target(link, static_cast<std::size_t>(n));
                if (target.rfind("/memfd:", 0) != 0) continue;
                struct stat st {};
                if (stat(fd.c_str(), &st) != 0) continue;
                auto [it, fresh] = by_ino.try_emplace(st.st_ino, out.memfds.size());
                if (!fresh) continue;
                std::string name = target.substr(7);
                if (auto sp = name.find(' '); sp != std::string::npos) name.resize(sp);
                out.memfds.push_back(MemfdUse{name, static_cast<std::size_t>(st.st_size),
                                              static_cast<std::size_t>(st.st_blocks) * 512, false});
            }
            closedir(d);
        }
        // /proc/PID/maps: "start-end perms offset dev inode path"; memfd mappings name
        // "/memfd:NAME (deleted)".
        std::istringstream maps(test::read_file(dir + "/maps"));
        std::string line;
        while (std::getline(maps, line)) {
            if (line.find("/memfd:") == std::string::npos) continue;
            std::istringstream f(line);
            std::string range, perms, offset, dev;
            std::uint64_t ino = 0;
            if (f >> range >> perms >> offset >> dev >> ino) mapped.push_back(ino);
        }
    }
    for (auto [ino, i] : by_ino) {
        out.memfds[i].mapped = std::find(mapped.begin(), mapped.end(), ino) != mapped.end();
    }
    return out;
}

}  // namespace bpffs::bench
