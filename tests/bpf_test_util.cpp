// SPDX-License-Identifier: GPL-2.0-or-later
// Test support shared by the tests and the bench: maps, programs, children, temp dirs, mounts.
#include "tests/bpf_test_util.hpp"

#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>

namespace bpffs::test {

UniqueFd create_hash_map(const char* name) {
    int fd = bpf_map_create(BPF_MAP_TYPE_HASH, name, sizeof(std::uint32_t), sizeof(std::uint64_t),
                            16, nullptr);
    if (fd < 0) errno = -fd;
    return UniqueFd(fd < 0 ? -1 : fd);
}

namespace {
// "r0 = imm; exit" as a program of `type` (license GPL). Invalid on failure (errno set).
UniqueFd load_return(bpf_prog_type type, const char* name, std::int32_t imm) {
    const bpf_insn insns[2] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K,
         .dst_reg = BPF_REG_0,
         .src_reg = 0,
         .off = 0,
         .imm = imm},
        {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    };
    int fd = bpf_prog_load(type, name, "GPL", insns, 2, nullptr);
    if (fd < 0) errno = -fd;
    return UniqueFd(fd < 0 ? -1 : fd);
}
}  // namespace

UniqueFd load_trivial_prog(const char* name) {
    return load_return(BPF_PROG_TYPE_SOCKET_FILTER, name, 0);
}

UniqueFd load_cgroup_skb_prog(const char* name) {
    return load_return(BPF_PROG_TYPE_CGROUP_SKB, name, 1);
}

UniqueFd attach_cgroup_link(int prog_fd, const std::string& cgroup) {
    UniqueFd cg(open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg) return UniqueFd();
    int fd = bpf_link_create(prog_fd, cg.get(), BPF_CGROUP_INET_INGRESS, nullptr);
    if (fd < 0) errno = -fd;
    return UniqueFd(fd < 0 ? -1 : fd);
}

std::string fd_kind(int fd) {
    char link[256];
    std::string proc = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = readlink(proc.c_str(), link, sizeof link - 1);
    if (n < 0) return "";
    std::string s(link, static_cast<std::size_t>(n));
    if (s == "anon_inode:bpf-map") return "map";
    if (s == "anon_inode:bpf-prog") return "prog";
    return s;
}

std::uint32_t kernel_id(int fd) {
    std::string kind = fd_kind(fd);
    if (kind != "map" && kind != "prog") return 0;
    std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
    std::string key = kind + "_id:";
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key, 0) == 0)
            return static_cast<std::uint32_t>(std::stoul(line.substr(key.size())));
    }
    return 0;
}

namespace {
bool id_alive(int fd) {
    if (fd >= 0) {
        ::close(fd);
        return true;
    }
    // Anything but ENOENT (EPERM without privileges, say) must not read as "freed".
    return -fd != ENOENT;
}
}  // namespace

bool map_id_alive(std::uint32_t id) { return id_alive(bpf_map_get_fd_by_id(id)); }
bool prog_id_alive(std::uint32_t id) { return id_alive(bpf_prog_get_fd_by_id(id)); }
bool link_id_alive(std::uint32_t id) { return id_alive(bpf_link_get_fd_by_id(id)); }

int map_update(int fd, std::uint32_t key, std::uint64_t value) {
    int rc = bpf_map_update_elem(fd, &key, &value, BPF_ANY);
    return rc == 0 ? 0 : -rc;
}

int map_lookup(int fd, std::uint32_t key, std::uint64_t* value) {
    int rc = bpf_map_lookup_elem(fd, &key, value);
    return rc == 0 ? 0 : -rc;
}

namespace {
// The targets of pid's fds ("socket:[123]", "/dev/fuse", "anon_inode:bpf-map", ...).
std::vector<std::string> fd_links(pid_t pid, bool* ok) {
    std::vector<std::string> out;
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = opendir(dir.c_str());
    *ok = d != nullptr;
    if (d == nullptr) return out;
    const int own = pid == getpid() ? dirfd(d) : -1;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        if (own >= 0 && std::to_string(own) == e->d_name) continue;
        char link[256];
        ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
        out.emplace_back(link, len > 0 ? static_cast<std::size_t>(len) : 0);
    }
    closedir(d);
    return out;
}
}  // namespace

int count_fds(pid_t pid) {
    bool ok = false;
    auto links = fd_links(pid, &ok);
    if (!ok) return -1;
    int n = 0;
    for (const auto& l : links) {
        if (l.rfind("/proc/", 0) != 0) ++n;
    }
    return n;
}

int count_connections(pid_t pid) {
    // /proc/net/unix: Num RefCount Protocol Flags Type St Inode [Path]; Flags 00010000 is
    // __SO_ACCEPTCON (listening), Type 0005 SOCK_SEQPACKET.
    std::set<std::string> conns;
    std::ifstream in("/proc/net/unix");
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string num, refs, proto, flags, type, st, ino, path;
        if (!(ls >> num >> refs >> proto >> flags >> type >> st >> ino)) continue;
        // Accepted connections carry the listener's path; the supervisor's control socketpair
        // has none.
        if (type == "0005" && flags != "00010000" && (ls >> path)) {
            conns.insert("socket:[" + ino + "]");
        }
    }
    bool ok = false;
    auto links = fd_links(pid, &ok);
    if (!ok) return -1;
    int n = 0;
    for (const auto& l : links) n += conns.count(l) ? 1 : 0;
    return n;
}

pid_t worker_of(pid_t daemon) {
    std::ifstream in("/proc/" + std::to_string(daemon) + "/task/" + std::to_string(daemon) +
                     "/children");
    pid_t child = -1;
    if (in >> child) return child;
    return -1;
}

std::vector<int> FdGroup::raw() const {
    std::vector<int> out;
    for (const auto& f : fds_) out.push_back(f.get());
    return out;
}

FdGroup make_pipes(std::size_t n) {
    FdGroup g;
    for (std::size_t i = 0; i < n; ++i) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        g.add(UniqueFd(p[0]));
        g.add(UniqueFd(p[1]));
    }
    return g;
}

TempCgroup::TempCgroup() {
    std::string root;
    for (const auto& m : mount_table()) {
        if (m.fstype == "cgroup2" && (m.path == "/sys/fs/cgroup" || root.empty())) root = m.path;
    }
    if (root.empty()) throw std::runtime_error("no cgroup2 mount");
    std::string tmpl = root + "/bpffs-ktest-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr)
        throw std::runtime_error("mkdir in " + root + ": " + std::strerror(errno));
    path_ = tmpl;
}

TempCgroup::~TempCgroup() { rmdir(path_.c_str()); }

UniqueFd new_cgroup_link(const TempCgroup& cg) {
    UniqueFd prog = load_cgroup_skb_prog("bpffs_link");
    if (!prog) return prog;
    return attach_cgroup_link(prog.get(), cg.path());
}

TempDir::TempDir(const std::string& parent) {
    std::string tmpl = parent + "/bpffs-ktest-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr)
        throw std::runtime_error("mkdtemp in " + parent + " failed");
    path_ = tmpl;
    chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
    // FTW_MOUNT: never descend into a mount point left behind (a bpffs-fuse mount, a bind).
    nftw(
        path_.c_str(),
        [](const char* p, const struct stat* st, int, FTW*) {
            if (S_ISDIR(st->st_mode)) {
                rmdir(p);
            } else {
                unlink(p);
            }
            return 0;
        },
        16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int closed_fd_number() {
    int fd = fcntl(0, F_DUPFD_CLOEXEC, 900);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "F_DUPFD");
    ::close(fd);
    return fd;
}

CreateWatch::CreateWatch(const std::string& dir) : fd_(inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) {
    if (fd_ && inotify_add_watch(fd_.get(), dir.c_str(), IN_CREATE) < 0) fd_.reset();
}

std::string CreateWatch::next(int timeout_ms) {
    if (queued_.empty()) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (!fd_ || poll(&p, 1, timeout_ms) != 1) return "";
        alignas(inotify_event) char buf[4096];
        ssize_t n = read(fd_.get(), buf, sizeof buf);
        for (ssize_t off = 0; n > 0 && off + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
            const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
            if ((ev->mask & IN_CREATE) != 0 && ev->len > 0) queued_.emplace_back(ev->name);
            off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        }
        if (queued_.empty()) return "";
    }
    std::string name = queued_.front();
    queued_.erase(queued_.begin());
    return name;
}

KernelBpffs::KernelBpffs(const std::string& opts) {
    if (mount("bpf", dir_.path().c_str(), "bpf", 0, opts.empty() ? nullptr : opts.c_str()) != 0) {
        throw std::runtime_error("mount -t bpf -o '" + opts + "' on " + dir_.path() + ": " +
                                 ename(errno));
    }
}

KernelBpffs::~KernelBpffs() { umount2(dir_.path().c_str(), MNT_DETACH); }

BindMount::BindMount(const std::string& source, const std::string& target) : target_(target) {
    ok_ = mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) == 0;
    if (!ok_) error_ = errno;
}

BindMount::~BindMount() {
    if (ok_) umount2(target_.c_str(), MNT_DETACH);
}

Child::Child(const std::function<int()>& fn) {
    pid_ = fork();
    if (pid_ == 0) {
        int rc = 255;
        try {
            rc = fn();
        } catch (...) {}
        _exit(rc & 0xff);
    }
}

int Child::wait(int timeout_ms) {
    if (pid_ <= 0) return -1;
    int status = wait_status(pid_, timeout_ms);
    if (status == -1) {
        kill_now();
        return -1;
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void Child::kill_now() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
    pid_ = -1;
}

int run_child(const std::function<int()>& fn) {
    Child c(fn);
    return c.wait();
}

int drop_dac_caps() {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    if (syscall(SYS_capget, &hdr, data) != 0) return errno;
    for (int cap : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER}) {
        data[cap / 32].effective &= ~(1u << (cap % 32));
    }
    if (syscall(SYS_capset, &hdr, data) != 0) return errno;
    return 0;
}

namespace {
void walk(const std::string& dir, const std::string& rel, std::set<std::string>& out) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return;
    std::vector<std::string> subdirs;
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        struct stat st {};
        std::string full = dir + "/" + n;
        bool is_dir = lstat(full.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
        out.insert(rel + n + (is_dir ? "/" : ""));
        if (is_dir) subdirs.push_back(n);
    }
    closedir(d);
    for (const auto& s : subdirs) walk(dir + "/" + s, rel + s + "/", out);
}
}  // namespace

std::set<std::string> tree(const std::string& dir) {
    std::set<std::string> out;
    walk(dir, "", out);
    return out;
}

bool wait_for(const std::function<bool()>& pred, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    auto pause = std::chrono::microseconds(200);
    while (true) {
        if (pred()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return pred();
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
}

int wait_status(pid_t pid, int timeout_ms) {
    int status = -1;
    bool done = wait_for([&] { return waitpid(pid, &status, WNOHANG) == pid; }, timeout_ms);
    return done ? status : -1;
}

pid_t spawn(const std::vector<std::string>& argv, int out_fd,
            const std::function<void()>& in_child) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    if (in_child) in_child();
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    dup2(devnull, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
}

std::vector<pid_t> process_tree(pid_t root) {
    std::vector<pid_t> out{root};
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::string task_dir = "/proc/" + std::to_string(out[i]) + "/task";
        DIR* d = opendir(task_dir.c_str());
        if (d == nullptr) continue;  // exited meanwhile
        while (dirent* e = readdir(d)) {
            if (e->d_name[0] == '.') continue;
            std::ifstream in(task_dir + "/" + e->d_name + "/children");
            pid_t child;
            while (in >> child) out.push_back(child);
        }
        closedir(d);
    }
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

namespace {
// Decodes the octal escapes (\040) mountinfo uses for spaces and the like.
std::string unescape_mountinfo(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            out += static_cast<char>(std::strtol(s.substr(i + 1, 3).c_str(), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}
}  // namespace

std::vector<MountEntry> mount_table() {
    std::ifstream in("/proc/self/mountinfo");
    std::vector<MountEntry> out;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string id, parent, devno, root, mnt, f;
        MountEntry e;
        ls >> id >> parent >> devno >> root >> mnt >> e.options;
        while (ls >> f && f != "-") {}
        std::string source;
        ls >> e.fstype >> source >> e.super_options;
        e.path = unescape_mountinfo(mnt);
        out.push_back(std::move(e));
    }
    return out;
}

bool is_mounted(const std::string& path, const std::string& fstype) {
    for (const auto& e : mount_table()) {
        if (e.path == path && e.fstype == fstype) return true;
    }
    return false;
}

UniqueFd raw_connect(const std::string& sock_path, int timeout_s) {
    UniqueFd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!s) return s;
    timeval tv{timeout_s, 0};
    setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (sock_path.size() >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return UniqueFd();
    }
    std::memcpy(addr.sun_path, sock_path.data(), sock_path.size());
    if (connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return UniqueFd();
    return s;
}

bool can_connect(const std::string& sock_path) { return static_cast<bool>(raw_connect(sock_path)); }

std::string copy_for_others(const std::string& path, const std::string& dir) {
    std::string to = dir + "/" + path.substr(path.find_last_of('/') + 1);
    std::filesystem::copy_file(path, to, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::permissions(to, std::filesystem::perms(0755));
    return to;
}

}  // namespace bpffs::test
