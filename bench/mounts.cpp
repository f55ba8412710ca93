// SPDX-License-Identifier: GPL-2.0-or-later
// The run's configuration helpers, its mounts and the small operations the measurements are
// made of.
#include "bench/bench.hpp"

#include "bpffs/bpffs.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace bpffs::bench {

int run_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    return std::max(CPU_COUNT(&set), 1);
}

std::vector<int> client_counts(int cpus) {
    std::vector<int> out{1, cpus, 2 * cpus};
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

bool Config::wants(const std::string& section) const {
    return only.empty() || std::find(only.begin(), only.end(), section) != only.end();
}

Mounts::Mounts(const Config& cfg, bool with_kernel, bool with_minfuse, bool with_linux) {
    ours_dir_ = tmp_.subdir("ours");
    std::string log = tmp_.file("bpffs-fuse.log");
    daemon_ = std::make_unique<Daemon>(cfg.daemon_bin, ours_dir_, log, cfg.daemon_log_level);
    if (with_linux) {
        linux_dir_ = tmp_.subdir("linux");
        linux_daemon_ =
            std::make_unique<Daemon>(cfg.daemon_bin, linux_dir_, tmp_.file("bpffs-fuse-linux.log"),
                                     cfg.daemon_log_level, "compat=linux,mode=0755");
    }
    if (with_minfuse) {
        min_dir_ = tmp_.subdir("min");
        std::string mlog = tmp_.file("minfuse.log");
        minfuse_ =
            std::make_unique<FuseDaemon>(std::vector<std::string>{cfg.minfuse_bin, min_dir_},
                                         min_dir_, "fuse.minfuse", mlog, [] { return true; });
    }
    if (with_kernel) {
        kern_dir_ = tmp_.subdir("kern");
        kernel_ = std::make_unique<KernelBpffs>(kern_dir_);
    }
}

Mounts::~Mounts() {
    kernel_.reset();
    minfuse_.reset();
    linux_daemon_.reset();
    daemon_.reset();
}

UniqueFd create_map(const char* name) {
    int fd = bpf_map_create(BPF_MAP_TYPE_HASH, name, 4, 8, 16, nullptr);
    if (fd < 0) {
        throw std::runtime_error(std::string("bpf_map_create: ") + std::strerror(-fd) +
                                 " (needs CAP_BPF)");
    }
    return UniqueFd(fd);
}

int lib_get(const std::string& path) {
    UniqueFd fd(bpffs_obj_get(path.c_str()));
    return fd ? 0 : errno;
}

int lib_get_flags(const std::string& path, unsigned flags) {
    bpffs_opts opts{};
    opts.sz = sizeof opts;
    opts.file_flags = flags;
    UniqueFd fd(bpffs_obj_get_opts(path.c_str(), &opts));
    return fd ? 0 : errno;
}

int lib_conn_get(bpffs_conn* c, const std::string& path, unsigned flags) {
    UniqueFd fd(bpffs_conn_obj_get(c, path.c_str(), flags));
    return fd ? 0 : errno;
}

int kernel_get(const std::string& path) {
    UniqueFd fd(bpf_obj_get(path.c_str()));
    return fd ? 0 : errno;
}

int kernel_get_flags(const std::string& path, unsigned flags) {
    LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = flags);
    UniqueFd fd(bpf_obj_get_opts(path.c_str(), &opts));
    return fd ? 0 : errno;
}

int stat_path(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? 0 : errno;
}

int stat_missing(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) return EEXIST;
    return errno == ENOENT ? 0 : errno;
}

int list_dir(const std::string& path, std::uint64_t expect) {
    UniqueFd d(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) return errno;
    std::vector<char> buf(32 * 1024);
    std::uint64_t n = 0;
    while (true) {
        long got = syscall(SYS_getdents64, d.get(), buf.data(), buf.size());
        if (got < 0) return errno;
        if (got == 0) break;
        for (long off = 0; off < got;) {
            auto* de = reinterpret_cast<const dirent64*>(buf.data() + off);
            ++n;
            off += de->d_reclen;
        }
    }
    return n == expect + 2 ? 0 : EIO;
}

int mkdir_p(const std::string& path) {
    if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return 0;
    return errno;
}

}  // namespace bpffs::bench
