// SPDX-License-Identifier: GPL-2.0-or-later
// Kernel bpffs mounts under this mount (mount_watch.hpp).
#include "daemon/mount_watch.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

namespace bpffs::daemon {
namespace {

// A mountinfo field with its octal escapes (\040 for a space...) undone.
std::string unescape(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            int v = 0;
            bool ok = true;
            for (std::size_t k = 1; k <= 3; ++k) {
                char c = s[i + k];
                ok = ok && c >= '0' && c <= '7';
                v = v * 8 + (c - '0');
            }
            if (ok) {
                out += static_cast<char>(v);
                i += 3;
                continue;
            }
        }
        out += s[i];
    }
    return out;
}

std::string read_all(int fd) {
    std::string s;
    char buf[8192];
    if (lseek(fd, 0, SEEK_SET) != 0) return s;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<std::size_t>(n));
    return s;
}

}  // namespace

std::vector<std::string> kernel_bpffs_within(const std::string& mountinfo,
                                             const std::string& mountpoint) {
    std::vector<std::string> out;
    std::istringstream lines(mountinfo);
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream f(line);
        std::vector<std::string> fields;
        for (std::string w; f >> w;) fields.push_back(w);
        // id parent major:minor root mountpoint options [optional...] - fstype source super
        std::size_t dash = 0;
        for (std::size_t i = 6; i < fields.size(); ++i) {
            if (fields[i] == "-") {
                dash = i;
                break;
            }
        }
        if (dash == 0 || dash + 1 >= fields.size() || fields[dash + 1] != "bpf") continue;
        std::string at = unescape(fields[4]);
        if (at == mountpoint || at.rfind(mountpoint + "/", 0) == 0) out.push_back(at);
    }
    return out;
}

MountWatch::MountWatch(std::string mountpoint)
    : mountpoint_(std::move(mountpoint)), fd_(open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)) {
    if (!fd_) spdlog::warn("cannot watch /proc/self/mountinfo: {}", std::strerror(errno));
}

void MountWatch::changed() {
    if (!fd_) return;
    std::set<std::string> now;
    for (auto& at : kernel_bpffs_within(read_all(fd_.get()), mountpoint_)) {
        bool fresh = false;
        {
            std::lock_guard l(mu_);
            fresh = seen_.count(at) == 0;
        }
        if (fresh) {
            spdlog::warn(
                "a kernel bpffs is mounted at {}, on this bpffs-fuse mount: what is pinned there "
                "is "
                "the kernel's, and hides what this mount has there (bpftool and libbpf do this "
                "when run without `bpffsctl run`); unmount it",
                at);
        }
        now.insert(std::move(at));
    }
    std::lock_guard l(mu_);
    seen_ = std::move(now);
}

std::vector<std::string> MountWatch::current() const {
    std::lock_guard l(mu_);
    return {seen_.begin(), seen_.end()};
}

}  // namespace bpffs::daemon
