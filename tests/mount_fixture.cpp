// SPDX-License-Identifier: GPL-2.0-or-later
// The mount fixture: the real daemon on a temp dir, always unmounted, and children as other users.
#include "tests/mount_fixture.hpp"

#include "tests/bpf_test_util.hpp"

#include "common/unique_fd.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace bpffs::test {
bool is_bpffs_mounted(const std::string& path) { return is_mounted(path, "fuse.bpffs-fuse"); }

Mount::Mount(const std::string& opts, const std::vector<std::string>& extra) {
    char tmpl[] = "/tmp/bpffs-test-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    base_ = tmpl;
    chmod(base_.c_str(), 0755);  // unprivileged test users must reach the mount point
    dir_ = base_ + "/mnt";
    mkdir(dir_.c_str(), 0755);
    UniqueFd log(
        open((base_ + "/daemon.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    std::vector<std::string> argv = {BPFFS_FUSE_BIN, "-f", dir_};
    if (!opts.empty()) {
        argv.push_back("-o");
        argv.push_back(opts);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    pid_ = spawn(argv, log.get());
    // Ready when the broker accepts connections (the daemon has mounted and serves requests).
    std::string sock = dir_ + "/.bpffs.sock";
    bool up = wait_for([&] {
        if (is_bpffs_mounted(dir_) && can_connect(sock)) return true;
        int status;
        return waitpid(pid_, &status, WNOHANG) == pid_ && (pid_ = -1, true);
    });
    if (!up || pid_ < 0) {
        std::string msg = "bpffs-fuse did not mount: " + this->log();
        cleanup();
        throw std::runtime_error(msg);
    }
}

std::string Mount::log() const { return read_file(base_ + "/daemon.log"); }

int Mount::stop() {
    if (pid_ < 0) return -1;
    kill(pid_, SIGTERM);
    int status = wait_status(pid_, 10000);
    if (status == -1) {
        kill(pid_, SIGKILL);
        wait_status(pid_, 10000);
    }
    pid_ = -1;
    return status;
}

Mount::~Mount() { cleanup(); }

void Mount::cleanup() {
    if (!allow_restarts_ && !base_.empty() && std::uncaught_exceptions() == 0) {
        std::string l = log();
        INFO("daemon log:\n" << l);
        CHECK(l.find("starting another") == std::string::npos);  // no worker crashed
    }
    stop();
    if (!dir_.empty() && is_bpffs_mounted(dir_)) umount2(dir_.c_str(), MNT_DETACH);
    if (!dir_.empty()) rmdir(dir_.c_str());
    if (!base_.empty()) {
        unlink((base_ + "/daemon.log").c_str());
        rmdir(base_.c_str());
    }
    dir_.clear();
    base_.clear();
}

MinFuse::MinFuse(const std::string& bin, uid_t uid, gid_t gid) {
    char tmpl[] = "/tmp/bpffs-minfuse-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    base_ = tmpl;
    chmod(base_.c_str(), 0755);
    dir_ = base_ + "/mnt";
    mkdir(dir_.c_str(), 0755);
    UniqueFd dev(open("/dev/fuse", O_RDWR | O_CLOEXEC));
    std::string opts = "fd=" + std::to_string(dev.get()) +
                       ",rootmode=40000,user_id=" + std::to_string(uid) +
                       ",group_id=" + std::to_string(gid) + ",allow_other,default_permissions";
    if (!dev ||
        mount("minfuse", dir_.c_str(), "fuse.minfuse", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
        int e = errno;
        cleanup();
        throw std::system_error(e, std::generic_category(), "minfuse: mount");
    }
    mounted_ = true;
    std::vector<std::string> argv = {bin, "/dev/fd/3"};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
        // fd 3 first: /dev/null, opened after, cannot land on it.
        int placed = dev.get() == 3 ? fcntl(3, F_SETFD, 0) : dup2(dev.get(), 3);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (placed < 0 || null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0) {
            _exit(126);
        }
        if (uid != 0 && (setgroups(0, nullptr) != 0 || setresgid(gid, gid, gid) != 0 ||
                         setresuid(uid, uid, uid) != 0)) {
            _exit(126);
        }
        execv(args[0], args.data());
        _exit(127);
    }
    dev.reset();  // the daemon's is the only one left: if it dies, the mount fails at once
    // The first request waits for the daemon's answer to FUSE_INIT.
    struct statfs sf {};
    if (pid_ < 0 || statfs(dir_.c_str(), &sf) != 0 || sf.f_type != 0x65735546) {
        cleanup();
        throw std::runtime_error("minfuse did not start");
    }
}

MinFuse::~MinFuse() { cleanup(); }

void MinFuse::cleanup() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
    mounted_ = false;
    if (pid_ > 0) {
        // The detached mount goes once its last user is gone, and the daemon's read then ends.
        if (wait_status(pid_, 2000) == -1) {
            kill(pid_, SIGTERM);
            if (wait_status(pid_, 10000) == -1) {
                kill(pid_, SIGKILL);
                wait_status(pid_, 10000);
            }
        }
    }
    pid_ = -1;
    if (!dir_.empty()) rmdir(dir_.c_str());
    if (!base_.empty()) rmdir(base_.c_str());
    dir_.clear();
    base_.clear();
}

int run_as(uid_t uid, gid_t gid, const std::function<int()>& fn, const std::vector<gid_t>& groups) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (setgroups(groups.size(), groups.data()) != 0 || setresgid(gid, gid, gid) != 0 ||
            setresuid(uid, uid, uid) != 0) {
            _exit(254);
        }
        _exit(fn() & 0xff);
    }
    int status = wait_status(pid, 30000);
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

CmdResult run_cmd(const std::vector<std::string>& argv) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return {};
    UniqueFd rd(fds[0]), wr(fds[1]);
    pid_t pid = spawn(argv, wr.get());
    wr.reset();
    CmdResult r;
    char buf[4096];
    ssize_t n;
    while ((n = read(rd.get(), buf, sizeof buf)) > 0) r.out.append(buf, static_cast<size_t>(n));
    int status = wait_status(pid, 30000);
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return r;
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

}  // namespace bpffs::test
