// SPDX-License-Identifier: GPL-2.0-or-later
// bpffs-fuse: mounts the bpf filesystem of the 2015 patch with FUSE.
//   bpffs-fuse [SOURCE] MOUNTPOINT [-o OPTIONS] [-f] [-d] [--log-level L] [--help] [--version]
// SOURCE is what mount.fuse3 passes for an fstab line of type fuse.bpffs-fuse; it becomes the
// fsname. uid=, gid= and mode= are ours (parsed by the core); standard FUSE/mount options pass
// through to libfuse; anything else refuses to mount. default_permissions and allow_other are
// always on. Start-up errors are exceptions caught here; nothing is left mounted on failure.
#include "common/bpffs_mount.hpp"
#include "common/caps.hpp"
#include "daemon/logging.hpp"
#include "daemon/notify.hpp"
#include "daemon/supervisor.hpp"
#include "daemon/worker.hpp"
#include "fsops/mount_options.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace bpffs;

// May this mount have allow_other, which lets users other than the mounter in (the point of a
// shared bpffs)? The kernel takes it from a mounter with CAP_SYS_ADMIN (root, or root of a user
// namespace that mounts there); fusermount3, through which an unprivileged mount goes, only with
// user_allow_other in /etc/fuse.conf, and refuses the whole mount otherwise.
bool allow_other_allowed() {
    auto caps = effective_caps(0);
    if (caps && cap_in(*caps, kCapSysAdmin)) return true;
    std::ifstream conf("/etc/fuse.conf");
    for (std::string line; std::getline(conf, line);) {
        auto start = line.find_first_not_of(" \t");
        if (start != std::string::npos && line.compare(start, 16, "user_allow_other") == 0)
            return true;
    }
    return false;
}

struct Options {
    std::vector<std::string> positional;  // [SOURCE] MOUNTPOINT
    std::vector<std::string> o;           // every -o list, in order
    bool foreground = false;
    bool debug = false;
    std::string log_level;
    std::string log_file;  // absolute
};

// A start-up failure: the message is printed as "bpffs-fuse: error: <message>".
struct StartupError : std::runtime_error {
    int exit_code;
    StartupError(const std::string& m, int code) : std::runtime_error(m), exit_code(code) {}
};

std::string join(const std::vector<std::string>& v, char sep) {
    std::string s;
    for (const auto& x : v) {
        if (x.empty()) continue;
        if (!s.empty()) s += sep;
        s += x;
    }
    return s;
}

// libfuse splits -o lists at commas; a backslash escapes one.
std::string escape_opt(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == ',' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

// Detaching from the terminal: the parent waits on a pipe until the child reports that the
// mount serves requests (the broker listens), so `bpffs-fuse MNT && use MNT` is safe and
// start-up errors still reach the terminal with a non-zero exit.
class Detacher {
public:
    // In the foreground: nothing. Else forks; only the child returns.
    explicit Detacher(bool foreground) {
        if (foreground) return;
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0)
            throw StartupError("pipe: " + std::string(std::strerror(errno)), 1);
        pid_t pid = fork();
        if (pid < 0) throw StartupError("fork: " + std::string(std::strerror(errno)), 1);
        if (pid > 0) {
            ::close(p[1]);
            char ok = 0;
            ssize_t n;
            while ((n = read(p[0], &ok, 1)) < 0 && errno == EINTR) {}
            if (n == 1) _exit(0);
            int status = 0;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            _exit(WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1);
        }
        ::close(p[0]);
        ready_fd_ = p[1];
        setsid();
    }
    // Called once the mount serves requests: detach stdio, tell the parent.
    void ready() {
        if (ready_fd_ < 0) return;
        daemon::detach_from_terminal();
        char ok = 1;
        (void)!write(ready_fd_, &ok, 1);
        ::close(ready_fd_);
        ready_fd_ = -1;
    }

private:
    int ready_fd_ = -1;
};

// Every pinned object arrives as an fd: allow as many as the hard limit does.
void raise_nofile_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

// The options the mount is made with: ours, then the standard ones given (-o), but ro and rw.
std::string fuse_options(const std::string& source, const std::string& mountpoint,
                         const std::vector<std::string>& passthrough) {
    std::vector<std::string> fuse_opts = {"default_permissions", "fsname=" + escape_opt(source),
                                          "subtype=bpffs-fuse"};
    if (allow_other_allowed()) {
        fuse_opts.push_back("allow_other");
    } else {
        std::fprintf(stderr,
                     "bpffs-fuse: warning: mounting without allow_other (not privileged, and "
                     "/etc/fuse.conf has no user_allow_other): only uid %u can use %s, not "
                     "even root\n",
                     static_cast<unsigned>(getuid()), mountpoint.c_str());
    }
    // A read-only mount is made read-write and turned read-only once the broker's socket
    // exists: binding it is a mknod, which a read-only filesystem refuses.
    for (const auto& p : passthrough) {
        if (p != "ro" && p != "rw") fuse_opts.push_back(p);
    }
    return join(fuse_opts, ',');
}

int run(const Options& cli) {
    std::string source = cli.positional.size() == 2 ? cli.positional[0] : "bpffs";
    std::string mountpoint = cli.positional.back();

    std::string list = join(cli.o, ',');
    if (("," + list + ",").find(",remount,") != std::string::npos) {
        // mount -o remount starts a new helper instead of reaching the running daemon.
        throw StartupError("remount does not reach a FUSE daemon; use: bpffsctl remount " +
                               mountpoint + " -o uid=N,gid=N,mode=OCTAL",
                           2);
    }
    // Who mounts: compat=linux's root is theirs by default.
    auto parsed = fsops::parse_mount_options(list, {}, fsops::Mounter{geteuid(), getegid()});
    if (!parsed) throw StartupError(parsed.error().message, 2);
    struct stat st {};
    if (::stat(mountpoint.c_str(), &st) != 0) {
        int e = errno;
        throw StartupError("mountpoint " + mountpoint + ": " + std::strerror(e), 1);
    }
    if (!S_ISDIR(st.st_mode)) {
        throw StartupError("mountpoint " + mountpoint + ": " + std::strerror(ENOTDIR), 1);
    }
    char real[PATH_MAX];
    if (realpath(mountpoint.c_str(), real) == nullptr) {
        int e = errno;
        throw StartupError("mountpoint " + mountpoint + ": " + std::strerror(e), 1);
    }
    mountpoint = real;
    if (bpffs::on_bpffs_fuse(mountpoint)) {  // a second daemon would hide the first
        throw StartupError("mountpoint " + mountpoint +
                               " is on a bpffs-fuse mount already: use that one, or unmount it "
                               "first",
                           1);
    }
    bool read_only = false;
    for (const auto& p : parsed->passthrough) {
        if (p == "ro") read_only = true;
        if (p == "rw") read_only = false;
    }

    daemon::SupervisorConfig sc;
    sc.source = source;
    sc.mountpoint = mountpoint;
    sc.fuse_options = fuse_options(source, mountpoint, parsed->passthrough);
    // The worker reads back exactly these.
    sc.our_options = fsops::full_options(parsed->ours, parsed->limits);
    sc.read_only = read_only;
    sc.debug = cli.debug;
    sc.detached = !cli.foreground;
    sc.log_level = cli.log_level;
    sc.log_file = cli.log_file;
    sc.stored = daemon::take_listen_fds();

    raise_nofile_limit();
    Detacher detacher(cli.foreground);
    try {
        return daemon::supervisor_main(std::move(sc), [&] {
            spdlog::info("ready: serving {}", mountpoint);
            detacher.ready();
            if (int ne = daemon::sd_notify_state("READY=1\nSTATUS=serving " + mountpoint);
                ne != 0) {
                spdlog::warn("sd_notify READY=1: {}", std::strerror(ne));
            }
        });
    } catch (const std::runtime_error& e) {
        throw StartupError(e.what(), 1);
    }
}

// Before detaching without --log-file on a machine without syslog: where the log will go.
void say_where_the_log_goes(const Options& cli) {
    if (cli.foreground || !cli.log_file.empty() || daemon::syslog_available()) return;
    if (daemon::log_stays_on_stderr()) {
        std::fprintf(stderr,
                     "bpffs-fuse: no syslog here (/dev/log is no socket): the detached "
                     "daemon keeps logging to this stderr\n");
    } else {
        std::fprintf(stderr,
                     "bpffs-fuse: warning: no syslog here (/dev/log is no socket) and stderr "
                     "is no file: once the daemon detaches, its log goes nowhere; use "
                     "--log-file PATH, or -f under a service manager\n");
    }
}

}  // namespace

int main(int argc, char** argv) {
    Options cli;
    CLI::App app{
        "bpffs-fuse: the bpf filesystem (persistent eBPF maps and programs) in FUSE.\n"
        "Pinned objects are created and fetched with libbpffs or bpffsctl.",
        "bpffs-fuse"};
    app.add_option("MOUNTPOINT", cli.positional,
                   "[SOURCE] MOUNTPOINT: the directory to mount on, required; SOURCE (default "
                   "\"bpffs\") names the mount in /proc/mounts")
        ->expected(1, 2);
    app.add_option("-o", cli.o,
                   "mount options: uid=N, gid=N (default 0), mode=OCTAL (default 0700), and "
                   "standard FUSE/mount options (ro, nosuid, nodev, noexec, noatime, fsname=, "
                   "...)");
    app.add_flag("-f,--foreground", cli.foreground, "stay in the foreground");
    app.add_flag("-d,--debug", cli.debug,
                 "debug: foreground, debug log level, libfuse's request trace");
    app.add_option("--log-file", cli.log_file,
                   "append the log to this file (the supervisor's and its workers'), also once "
                   "detached; default: stderr, then syslog once detached");
    app.add_option("--log-level", cli.log_level,
                   "trace, debug, info, warn, error, critical, off (default: $SPDLOG_LEVEL or "
                   "info)");
    int worker_fd = -1;
    app.add_option("--worker", worker_fd, "internal: run as the supervisor's worker")->group("");
    app.set_version_flag("-V,--version", std::string("bpffs-fuse ") + BPFFS_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForVersion&) {
        std::printf("bpffs-fuse %s\n", BPFFS_VERSION);
        return 0;
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "bpffs-fuse: error: %s\n", e.what());
        std::fprintf(stderr, "Run with --help for more information.\n");
        return 2;
    }
    if (worker_fd >= 0) return daemon::worker_main(worker_fd);
    if (cli.debug) {
        cli.foreground = true;
        if (cli.log_level.empty()) cli.log_level = "debug";
    }
    if (cli.positional.empty()) {
        std::fprintf(stderr, "bpffs-fuse: error: MOUNTPOINT is required\n");
        std::fprintf(stderr, "Run with --help for more information.\n");
        return 2;
    }
    if (!cli.log_file.empty()) cli.log_file = std::filesystem::absolute(cli.log_file);
    try {
        daemon::setup_logging(cli.log_level, cli.log_file);
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "bpffs-fuse: error: %s\n", e.what());
        return 2;  // an invalid argument, as bpffs-fuse(8) says
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bpffs-fuse: error: --log-file %s: %s\n", cli.log_file.c_str(),
                     e.what());
        return 2;
    }
    say_where_the_log_goes(cli);
    try {
        return run(cli);
    } catch (const StartupError& e) {
        std::fprintf(stderr, "bpffs-fuse: error: %s\n", e.what());
        return e.exit_code;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bpffs-fuse: error: %s\n", e.what());
        return 1;
    }
}
