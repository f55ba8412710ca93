// SPDX-License-Identifier: GPL-2.0-or-later
// The two modes of bpffs-bench and what they share: the run's configuration, the mounts (our
// daemon, a minimal FUSE daemon, the kernel's bpffs), a kernel map to pin, and the small
// operations every measurement is made of.
#pragma once

#include "bench/environment.hpp"
#include "bench/harness.hpp"
#include "common/unique_fd.hpp"

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct bpffs_conn;

namespace bpffs::bench {

// The CPUs this process may run on (sched_getaffinity; 1 under `taskset -c 0`), at least 1.
int run_cpus();
// The client counts of the concurrency rows: 1, `cpus` and twice that, each once.
std::vector<int> client_counts(int cpus);

struct Config {
    bool quick = false;
    bool scale = false;
    std::uint64_t iterations = 2000;      // samples per latency row
    std::uint64_t objects = 1'000'000;    // scale mode: names pinned
    std::uint64_t dir_entries = 100'000;  // scale mode: names per directory at most
    std::vector<std::uint64_t> readdir_sizes{10'000, 100'000};
    int cpus = run_cpus();  // CPUs the run may use: the floor's threads, the client counts
    std::vector<int> clients = client_counts(cpus);
    double seconds = 1.0;     // per concurrency measurement
    int rounds = 3;           // concurrency measurements per row (median)
    std::string daemon_bin;   // bpffs-fuse
    std::string minfuse_bin;  // bpffs-bench-minfuse
    std::string daemon_log_level = "warn";
    int nice = -20;                 // scheduling priority of the run and its children
    std::vector<std::string> only;  // sections to run (empty: all)
    bool wants(const std::string& section) const;
};

// The mounts of one run, in a temp dir: ours/ (bpffs-fuse, compat=seed), kern/ (the kernel's
// bpffs, unless not wanted), min/ (the minimal FUSE daemon, unless not wanted), linux/ (a second
// bpffs-fuse, -o compat=linux, for the paths only that mode has; when wanted). Everything is
// taken down on destruction.
class Mounts {
public:
    Mounts(const Config& cfg, bool with_kernel, bool with_minfuse, bool with_linux = false);
    ~Mounts();
    std::string ours(const std::string& rel = "") const { return join(ours_dir_, rel); }
    std::string compat_linux(const std::string& rel = "") const { return join(linux_dir_, rel); }
    std::string kern(const std::string& rel = "") const { return join(kern_dir_, rel); }
    std::string min(const std::string& rel = "") const { return join(min_dir_, rel); }
    pid_t daemon_pid() const { return daemon_->pid(); }
    TempDir& tmp() { return tmp_; }
    std::string daemon_log() const { return daemon_->log_text(); }

private:
    static std::string join(const std::string& a, const std::string& rel) {
        return rel.empty() ? a : a + "/" + rel;
    }
    TempDir tmp_;
    std::string ours_dir_, kern_dir_, min_dir_, linux_dir_;
    std::unique_ptr<Daemon> daemon_, linux_daemon_;
    std::unique_ptr<FuseDaemon> minfuse_;
    std::unique_ptr<KernelBpffs> kernel_;
};

// A BPF_MAP_TYPE_HASH map (u32 -> u64, 16 entries). Throws on failure (needs CAP_BPF).
UniqueFd create_map(const char* name);

// The operations measurements are made of. Each returns 0 or a positive errno.
int lib_get(const std::string& path);  // bpffs_obj_get + close
// bpffs_obj_get_opts with file_flags `flags` (BPFFS_F_RDONLY...) + close
int lib_get_flags(const std::string& path, unsigned flags);
// bpffs_conn_obj_get with `flags` + close
int lib_conn_get(bpffs_conn* c, const std::string& path, unsigned flags = 0);
int kernel_get(const std::string& path);                        // bpf_obj_get + close
int kernel_get_flags(const std::string& path, unsigned flags);  // bpf_obj_get_opts + close
int stat_path(const std::string& path);
int stat_missing(const std::string& path);  // 0 when the answer is ENOENT
// Lists a directory with getdents64 (32 KiB buffer); 0 if it has `expect` entries besides "."
// and "..", EIO otherwise.
int list_dir(const std::string& path, std::uint64_t expect);
int mkdir_p(const std::string& path);  // mkdir, EEXIST is fine

int run_hot_paths(const Config& cfg);
// Rows of one program run bare on the kernel bpffs, under the preload shim and under the seccomp
// supervisor on ours (bench/intercept.cpp): gets of a/b/m, pins into p/.
void intercept_rows(Table& t, const Mounts& m, std::uint64_t n);
int run_scale(const Config& cfg);

}  // namespace bpffs::bench
