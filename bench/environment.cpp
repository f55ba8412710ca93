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
#include <cinttypes>
#include <cstdio>
#include <map>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
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

void register_path(const std::string& p) {
    SignalBlock b;
    if (g_cleanup.npaths < SignalCleanup::kMax) copy_path(g_cleanup.paths[g_cleanup.npaths++], p);
}
void unregister_path(const std::string& p) {
    SignalBlock b;
    for (int i = 0; i < g_cleanup.npaths; ++i) {
        if (p == g_cleanup.paths[i]) {
            for (int j = i + 1; j < g_cleanup.npaths; ++j) {
                std::memcpy(g_cleanup.paths[j - 1], g_cleanup.paths[j], SignalCleanup::kPath);
            }
            --g_cleanup.npaths;
            return;
        }
    }
}

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

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

[[noreturn]] void sys_fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

int wait_status(pid_t pid, int timeout_ms) {
    int status = -1;
    bool done = wait_until([&] { return waitpid(pid, &status, WNOHANG) == pid; }, timeout_ms);
    return done ? status : -1;
}

// fork + exec of argv with stdout/stderr on out_fd and stdin on /dev/null; the child gets
// `death_signal` when this process dies. The pid is registered for the signal handler before a
// signal can see the child unlisted.
pid_t spawn(std::vector<std::string> argv, int out_fd, int death_signal) {
    SignalBlock b;
    pid_t pid = fork();
    if (pid < 0) sys_fail("fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, death_signal);
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        dup2(devnull, 0);
        dup2(out_fd, 1);
        dup2(out_fd, 2);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    cleanup_register_pid(pid);
    return pid;
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
    SignalBlock b;
    if (g_cleanup.nmounts < SignalCleanup::kMax) {
        copy_path(g_cleanup.mounts[g_cleanup.nmounts++], path);
    }
}

void cleanup_unregister_mount(const std::string& path) {
    SignalBlock b;
    for (int i = 0; i < g_cleanup.nmounts; ++i) {
        if (path == g_cleanup.mounts[i]) {
            for (int j = i + 1; j < g_cleanup.nmounts; ++j) {
                std::memcpy(g_cleanup.mounts[j - 1], g_cleanup.mounts[j], SignalCleanup::kPath);
            }
            --g_cleanup.nmounts;
            return;
        }
    }
}

bool wait_until(const std::function<bool()>& pred, int timeout_ms) {
    return test::wait_for(pred, timeout_ms);
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

bool is_mounted(const std::string& path, const std::string& fstype) {
    for (const auto& e : test::mount_table()) {
        if (e.path == path && e.fstype == fstype) return true;
    }
    return false;
}

Daemon::Daemon(std::vector<std::string> argv, std::string mountpoint, std::string fstype,
               std::string log, const std::function<bool()>& ready)
    : mountpoint_(std::move(mountpoint)), fstype_(std::move(fstype)), log_(std::move(log)) {
    UniqueFd out(open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!out) sys_fail("open " + log_);
    pid_ = spawn(argv, out.get(), SIGTERM);
    cleanup_register_mount(mountpoint_);
    bool up = wait_until(
        [&] {
            if (is_mounted(mountpoint_, fstype_) && ready()) return true;
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

Daemon::~Daemon() { stop(); }

void Daemon::stop() {
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        if (wait_status(pid_, 10000) == -1) {
            kill(pid_, SIGKILL);
            wait_status(pid_, 10000);
        }
        cleanup_unregister_pid(pid_);
        pid_ = -1;
    }
    if (!mountpoint_.empty()) {
        if (is_mounted(mountpoint_, fstype_)) umount2(mountpoint_.c_str(), MNT_DETACH);
        cleanup_unregister_mount(mountpoint_);
        mountpoint_.clear();
    }
}

std::string Daemon::log_text() const { return read_all(log_); }

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

Child::Child(const std::function<int()>& fn) {
    SignalBlock b;
    pid_ = fork();
    if (pid_ < 0) sys_fail("fork");
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        int rc = 255;
        try {
            rc = fn();
        } catch (...) {
        }
        _exit(rc & 0xff);
    }
    cleanup_register_pid(pid_);
}

Child::~Child() { kill_now(); }

void Child::kill_now() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    cleanup_unregister_pid(pid_);
    pid_ = -1;
}

int Child::wait(int timeout_ms) {
    if (pid_ <= 0) return -1;
    int status = wait_status(pid_, timeout_ms);
    if (status == -1) {
        kill_now();
        return -1;
    }
    cleanup_unregister_pid(pid_);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::size_t rss_bytes(pid_t pid) {
    std::istringstream in(read_all("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
    }
    return 0;
}

std::vector<pid_t> process_tree(pid_t root) {
    std::vector<pid_t> out{root};
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::string tasks = "/proc/" + std::to_string(out[i]) + "/task";
        DIR* d = opendir(tasks.c_str());
        if (d == nullptr) continue;  // exited meanwhile
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::istringstream in(read_all(tasks + "/" + e->d_name + "/children"));
            pid_t child;
            while (in >> child) out.push_back(child);
        }
        closedir(d);
    }
    return out;
}

std::size_t tree_rss_bytes(pid_t root) {
    std::size_t sum = 0;
    for (pid_t p : process_tree(root)) sum += rss_bytes(p);
    return sum;
}

namespace {

std::size_t status_kib(const std::string& status, const std::string& key) {
    std::istringstream in(status);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key, 0) == 0) return std::stoull(line.substr(key.size())) * 1024;
    }
    return 0;
}

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
    for (pid_t pid : process_tree(root)) {
        std::string dir = "/proc/" + std::to_string(pid);
        std::string status = read_all(dir + "/status");
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
                                              static_cast<std::size_t>(st.st_blocks) * 512,
                                              false});
            }
            closedir(d);
        }
        // /proc/PID/maps: "start-end perms offset dev inode path"; memfd mappings name
        // "/memfd:NAME (deleted)".
        std::istringstream maps(read_all(dir + "/maps"));
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
