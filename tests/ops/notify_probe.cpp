// SPDX-License-Identifier: GPL-2.0-or-later
// The readiness protocol as systemd's Type=notify sees it, without systemd: this program plays
// the service manager. It binds a datagram socket, runs the daemon with $NOTIFY_SOCKET pointing
// at it, and checks what the unit relies on:
//   - READY=1 comes from the main process, and at the moment it arrives the mount answers: it is
//     in the mount table as fuse.bpffs-fuse, its root has the expected mode/owner, .bpffs.sock is
//     a socket and the broker answers a status request with the daemon's pid;
//   - on SIGTERM (systemctl stop) or an external umount, STOPPING=1 arrives, the daemon exits
//     0 and the mount is gone;
//   - a daemon that cannot start never sends READY=1 and exits non-zero.
//
//   ops_notify_probe [--stop=sigterm|umount|none] [--expect-root=MODE,UID,GID]
//                    [--at-ready=SHELL_COMMAND] -- CMD [ARG...]
//
// "{MNT}" in any ARG and in SHELL_COMMAND is replaced by a fresh mount point made here.
// --at-ready runs SHELL_COMMAND (sh -c) once the checks at READY=1 are done; it must exit 0.
// --stop=none: the daemon is expected to fail before READY=1. Exits 0 when every check holds, else
// prints each failure and exits 1. Whatever happens, the daemon is stopped (SIGTERM, then SIGKILL),
// the mount detached and the temp dir removed.
#include "common/protocol.hpp"
#include "common/unique_fd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using bpffs::UniqueFd;
using Clock = std::chrono::steady_clock;

int failures = 0;

void check(bool ok, const std::string& what) {
    if (ok) {
        std::printf("ops_notify_probe: ok: %s\n", what.c_str());
    } else {
        std::printf("ops_notify_probe: FAILED: %s\n", what.c_str());
        ++failures;
    }
    std::fflush(stdout);
}

std::string errstr(int e) { return std::strerror(e); }

// Decodes the octal escapes (\040) of /proc/self/mountinfo.
std::string unescape(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

// The fstype of the topmost mount at `path`, or "" when nothing is mounted there.
std::string mounted_type(const std::string& path) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line, found;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string id, parent, devno, root, mnt, f, fstype;
        ls >> id >> parent >> devno >> root >> mnt;
        while (ls >> f && f != "-") {}
        ls >> fstype;
        if (unescape(mnt) == path) found = fstype;
    }
    return found;
}

struct Notification {
    std::string text;
    pid_t sender = -1;
};

// Waits up to `timeout` for one datagram. nullopt on timeout.
std::optional<Notification> receive(int sock, std::chrono::milliseconds timeout) {
    pollfd p{sock, POLLIN, 0};
    int n;
    while ((n = poll(&p, 1, static_cast<int>(timeout.count()))) < 0 && errno == EINTR) {}
    if (n <= 0) return std::nullopt;
    char buf[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t len;
    while ((len = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
    if (len < 0) return std::nullopt;
    Notification out{std::string(buf, static_cast<std::size_t>(len)), -1};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
            ucred cred{};
            std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
            out.sender = cred.pid;
        }
    }
    return out;
}

bool has_line(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    std::string l;
    while (std::getline(in, l)) {
        if (l == line) return true;
    }
    return false;
}

std::string printable(std::string s) {
    for (auto& c : s) {
        if (c == '\n') c = '|';
    }
    return s;
}

// The broker answers: connect to .bpffs.sock and ask for the status. Returns the pid it
// reports, or an error message.
std::string ask_status(const std::string& mnt, pid_t* pid) {
    UniqueFd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!s) return "socket: " + errstr(errno);
    timeval tv{5, 0};
    setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = mnt + "/" + std::string(bpffs::protocol::kSocketName);
    if (path.size() >= sizeof addr.sun_path) return "socket path too long";
    std::memcpy(addr.sun_path, path.data(), path.size());
    int rc;
    while ((rc = connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr)) < 0 &&
           errno == EINTR) {}
    if (rc < 0) return "connect " + path + ": " + errstr(errno);
    auto msg = bpffs::protocol::encode(bpffs::protocol::Request{bpffs::protocol::Op::status, {}});
    if (send(s.get(), msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) {
        return "send: " + errstr(errno);
    }
    std::vector<std::uint8_t> buf(bpffs::protocol::kMaxMessage);
    ssize_t n;
    while ((n = recv(s.get(), buf.data(), buf.size(), 0)) < 0 && errno == EINTR) {}
    if (n <= 0) return "recv: " + (n == 0 ? std::string("connection closed") : errstr(errno));
    auto rep = bpffs::protocol::decode_reply({buf.data(), static_cast<std::size_t>(n)});
    if (!rep) return "undecodable reply";
    if (rep->error != 0) return "status: " + errstr(rep->error);
    if (!rep->status) return "status reply without status";
    *pid = static_cast<pid_t>(rep->status->pid);
    return "";
}

struct Expected {
    bool set = false;
    unsigned mode = 0, uid = 0, gid = 0;
};

// Runs every check of the moment READY=1 arrives.
void check_serving(const std::string& mnt, pid_t daemon, const Expected& root) {
    check(mounted_type(mnt) == "fuse.bpffs-fuse", "at READY=1, " + mnt +
                                                      " is mounted as fuse.bpffs-fuse (found '" +
                                                      mounted_type(mnt) + "')");
    struct stat st {};
    std::string sock = mnt + "/" + std::string(bpffs::protocol::kSocketName);
    bool is_sock = lstat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
    check(is_sock, "at READY=1, " + sock + " is a socket");
    pid_t reported = -1;
    std::string err = ask_status(mnt, &reported);
    check(err.empty(), "at READY=1, the broker answers a status request" +
                           (err.empty() ? "" : std::string(": ") + err));
    if (err.empty()) {
        check(reported == daemon, "the broker reports the daemon's pid (" +
                                      std::to_string(reported) + " vs " + std::to_string(daemon) +
                                      ")");
    }
    if (root.set) {
        struct stat r {};
        bool ok = stat(mnt.c_str(), &r) == 0;
        char buf[128];
        std::snprintf(buf, sizeof buf, "root is %04o %u:%u (want %04o %u:%u)",
                      ok ? r.st_mode & 07777u : 0u, ok ? r.st_uid : 0u, ok ? r.st_gid : 0u,
                      root.mode, root.uid, root.gid);
        check(
            ok && (r.st_mode & 07777u) == root.mode && r.st_uid == root.uid && r.st_gid == root.gid,
            buf);
    }
}

// Waits up to `timeout` for the child; returns its wait status or nullopt.
std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    auto pause = std::chrono::milliseconds(1);
    while (true) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return status;
        if (r < 0 && errno != EINTR) return std::nullopt;
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

// Everything the probe made, undone on every path.
struct Cleanup {
    std::string base, mnt, sock;
    pid_t child = -1;
    ~Cleanup() {
        if (child > 0) {
            kill(child, SIGTERM);
            if (!wait_child(child, std::chrono::seconds(10))) {
                kill(child, SIGKILL);
                wait_child(child, std::chrono::seconds(10));
            }
        }
        if (!mnt.empty() && !mounted_type(mnt).empty()) {
            std::printf("ops_notify_probe: cleanup: detaching %s\n", mnt.c_str());
            umount2(mnt.c_str(), MNT_DETACH);
        }
        if (!sock.empty()) unlink(sock.c_str());
        if (!mnt.empty()) rmdir(mnt.c_str());
        if (!base.empty()) rmdir(base.c_str());
    }
};

int usage() {
    std::fprintf(stderr,
                 "usage: ops_notify_probe [--stop=sigterm|umount|none] "
                 "[--expect-root=MODE,UID,GID] [--at-ready=SHELL_COMMAND] -- CMD [ARG...]\n");
    return 2;
}

std::string with_mnt(std::string a, const std::string& mnt) {
    for (auto p = a.find("{MNT}"); p != std::string::npos; p = a.find("{MNT}", p + mnt.size())) {
        a.replace(p, 5, mnt);
    }
    return a;
}

// Runs `sh -c command` with stdin from /dev/null and waits (60 s at most). Returns its wait
// status, or nullopt when it could not run or did not finish (it is then killed).
std::optional<int> run_shell(const std::string& command) {
    pid_t pid = fork();
    if (pid < 0) return std::nullopt;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (devnull >= 0) dup2(devnull, 0);
        execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    auto st = wait_child(pid, std::chrono::seconds(60));
    if (!st) {
        kill(pid, SIGKILL);
        wait_child(pid, std::chrono::seconds(10));
    }
    return st;
}

}  // namespace

int main(int argc, char** argv) {
    std::string stop = "sigterm";
    std::string at_ready;
    Expected root;
    int i = 1;
    for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
        std::string a = argv[i];
        if (a.rfind("--stop=", 0) == 0) {
            stop = a.substr(7);
            if (stop != "sigterm" && stop != "umount" && stop != "none") return usage();
        } else if (a.rfind("--expect-root=", 0) == 0) {
            if (std::sscanf(a.c_str() + 14, "%o,%u,%u", &root.mode, &root.uid, &root.gid) != 3) {
                return usage();
            }
            root.set = true;
        } else if (a.rfind("--at-ready=", 0) == 0) {
            at_ready = a.substr(11);
        } else {
            return usage();
        }
    }
    if (i + 1 >= argc) return usage();

    Cleanup c;
    char tmpl[] = "/tmp/bpffs-notify-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
        std::fprintf(stderr, "ops_notify_probe: mkdtemp: %s\n", std::strerror(errno));
        return 1;
    }
    c.base = tmpl;
    c.mnt = c.base + "/mnt";
    c.sock = c.base + "/notify";
    if (mkdir(c.mnt.c_str(), 0755) != 0) {
        std::fprintf(stderr, "ops_notify_probe: mkdir: %s\n", std::strerror(errno));
        return 1;
    }

    // The service manager's end: a datagram socket that learns each sender's pid.
    UniqueFd sock(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, c.sock.data(), c.sock.size());
    int one = 1;
    if (!sock || bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        setsockopt(sock.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) {
        std::fprintf(stderr, "ops_notify_probe: notify socket: %s\n", std::strerror(errno));
        return 1;
    }

    std::vector<std::string> args;
    for (int j = i + 1; j < argc; ++j) args.push_back(with_mnt(argv[j], c.mnt));
    std::string shown;
    for (const auto& a : args) shown += (shown.empty() ? "" : " ") + a;
    std::printf("ops_notify_probe: NOTIFY_SOCKET=%s %s\n", c.sock.c_str(), shown.c_str());
    std::fflush(stdout);

    pid_t pid = fork();
    if (pid < 0) {
        std::fprintf(stderr, "ops_notify_probe: fork: %s\n", std::strerror(errno));
        return 1;
    }
    if (pid == 0) {
        std::vector<char*> cargv;
        for (auto& a : args) cargv.push_back(a.data());
        cargv.push_back(nullptr);
        setenv("NOTIFY_SOCKET", c.sock.c_str(), 1);
        execvp(cargv[0], cargv.data());
        std::fprintf(stderr, "ops_notify_probe: exec %s: %s\n", cargv[0], std::strerror(errno));
        _exit(127);
    }
    c.child = pid;

    // Until READY=1, or the daemon's exit, or 30 s.
    bool ready = false;
    std::optional<int> early_exit;
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!ready && Clock::now() < deadline) {
        auto n = receive(sock.get(), std::chrono::milliseconds(50));
        if (n) {
            std::printf("ops_notify_probe: received from pid %d: %s\n", n->sender,
                        printable(n->text).c_str());
            if (has_line(n->text, "READY=1")) {
                ready = true;
                check_serving(c.mnt, pid, root);
                check(n->sender == pid, "READY=1 is sent by the main process (pid " +
                                            std::to_string(n->sender) + ", main " +
                                            std::to_string(pid) + ")");
                if (!at_ready.empty()) {
                    std::string command = with_mnt(at_ready, c.mnt);
                    std::printf("ops_notify_probe: running %s\n", command.c_str());
                    std::fflush(stdout);
                    auto st = run_shell(command);
                    check(st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0,
                          "at ready: " + command + " (" +
                              (st ? describe_status(*st) : std::string("did not finish")) + ")");
                }
            }
            continue;
        }
        if (auto st = wait_child(pid, std::chrono::milliseconds(0))) {
            c.child = -1;
            early_exit = st;
            // A datagram sent just before the exit may still be queued.
            while (auto late = receive(sock.get(), std::chrono::milliseconds(0))) {
                std::printf("ops_notify_probe: received after exit: %s\n",
                            printable(late->text).c_str());
                if (has_line(late->text, "READY=1")) ready = true;
            }
            break;
        }
    }

    if (stop == "none") {
        check(!ready, "a daemon that cannot start never sends READY=1");
        if (!early_exit && c.child > 0) early_exit = wait_child(pid, std::chrono::seconds(10));
        if (early_exit) c.child = -1;
        check(early_exit && !(WIFEXITED(*early_exit) && WEXITSTATUS(*early_exit) == 0),
              "it exits with a failure (" +
                  (early_exit ? describe_status(*early_exit) : std::string("still running")) + ")");
        check(mounted_type(c.mnt).empty(), "nothing is left mounted");
        return failures == 0 ? 0 : 1;
    }

    check(ready, "READY=1 arrives" +
                     (early_exit ? " (the daemon " + describe_status(*early_exit) + " first)"
                                 : std::string(" within 30 s")));
    if (!ready || early_exit) return 1;

    if (stop == "sigterm") {
        check(kill(pid, SIGTERM) == 0, "SIGTERM sent to the daemon");
    } else {
        // An external umount: the daemon notices that its mount left the mount table.
        check(umount(c.mnt.c_str()) == 0, "umount " + c.mnt);
    }
    bool stopping = false;
    deadline = Clock::now() + std::chrono::seconds(15);
    while (!stopping && Clock::now() < deadline) {
        auto n = receive(sock.get(), std::chrono::milliseconds(200));
        if (!n) continue;
        std::printf("ops_notify_probe: received from pid %d: %s\n", n->sender,
                    printable(n->text).c_str());
        check(!has_line(n->text, "READY=1"), "no second READY=1");
        if (has_line(n->text, "STOPPING=1")) stopping = true;
    }
    check(stopping, "STOPPING=1 arrives after " + stop);
    auto st = wait_child(pid, std::chrono::seconds(15));
    if (st) c.child = -1;
    check(
        st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0,
        "the daemon exits 0 (" + (st ? describe_status(*st) : std::string("still running")) + ")");
    check(mounted_type(c.mnt).empty(), "the mount is gone");
    return failures == 0 ? 0 : 1;
}
