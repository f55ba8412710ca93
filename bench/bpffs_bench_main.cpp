// SPDX-License-Identifier: GPL-2.0-or-later
// bpffs-bench: measures bpffs-fuse's hot paths against the kernel's bpffs, the bare SCM_RIGHTS
// floor and a minimal FUSE daemon, all mounted by the run itself, and prints one table
// (docs/performance.md). --scale pins a million names instead.
//
//   bpffs-bench [--quick] [--iterations N]            the hot paths
//   bpffs-bench --scale [--objects N] [--quick]       the scale run
//
// Needs root (mounts, bpf maps). Exit status: 0 when every measurement ran (targets missed or
// not), 1 when an operation failed or the setup did, 2 for usage errors. Timing is never
// asserted: the smoke test only checks that the benchmark still runs.
#include "bench/bench.hpp"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>

#ifndef BPFFS_FUSE_BIN
#define BPFFS_FUSE_BIN "bpffs-fuse"
#endif
#ifndef BPFFS_MINFUSE_BIN
#define BPFFS_MINFUSE_BIN "bpffs-bench-minfuse"
#endif

namespace {

using bpffs::bench::Config;

// The machine's load average and CPU pressure (the share of time runnable tasks waited for a
// CPU): other processes' work skews every number, ratios less so.
void print_load(const char* when) {
    auto first_line = [](const char* path) {
        char buf[160] = "";
        if (FILE* f = std::fopen(path, "r")) {
            if (std::fgets(buf, sizeof buf, f) == nullptr) buf[0] = '\0';
            std::fclose(f);
        }
        buf[std::strcspn(buf, "\n")] = '\0';
        return std::string(buf);
    };
    std::printf("# %s: load average %s; cpu pressure %s\n", when,
                first_line("/proc/loadavg").c_str(), first_line("/proc/pressure/cpu").c_str());
    std::fflush(stdout);
}

void print_header(const Config& cfg, int argc, char** argv) {
    utsname u{};
    uname(&u);
    char when[64];
    std::time_t now = std::time(nullptr);
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
    std::string cmd;
    for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
    std::printf("# %s\n# %s, kernel %s %s, %ld CPUs online, nice %d, daemon log level %s\n",
                cmd.c_str(), when, u.release, u.machine, sysconf(_SC_NPROCESSORS_ONLN),
                getpriority(PRIO_PROCESS, 0), cfg.daemon_log_level.c_str());
    std::string clients;
    for (int c : cfg.clients) clients += (clients.empty() ? "" : ", ") + std::to_string(c);
    std::printf(
        "# CPUs the run may use: %d (sched_getaffinity); floor threads %d; concurrent "
        "clients %s; broker threads: bpffs-fuse's default\n",
        cfg.cpus, cfg.cpus, clients.c_str());
    print_load("at start");
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    Config cfg;
    cfg.daemon_bin = BPFFS_FUSE_BIN;
    cfg.minfuse_bin = BPFFS_MINFUSE_BIN;
    std::uint64_t iterations = 0, objects = 0;
    double seconds = 0;
    CLI::App app{
        "bpffs-bench: bpffs-fuse against the kernel's bpffs, the SCM_RIGHTS floor and a "
        "minimal FUSE daemon (needs root)",
        "bpffs-bench"};
    app.add_flag("--quick", cfg.quick, "tiny counts: checks that every path runs (smoke test)");
    app.add_flag("--scale", cfg.scale, "the scale run: pin --objects names in one mount");
    app.add_option("--objects", objects, "scale: names to pin (default 1000000; --quick: 3000)");
    app.add_option("--dir-entries", cfg.dir_entries, "scale: names per directory at most")
        ->capture_default_str();
    app.add_option("--iterations", iterations,
                   "samples per latency row (default 2000; --quick: 30)");
    app.add_option("--seconds", seconds,
                   "seconds per concurrent-gets measurement (default 1; --quick: 0.05)");
    app.add_option("--daemon", cfg.daemon_bin, "the bpffs-fuse binary")->capture_default_str();
    app.add_option("--minfuse", cfg.minfuse_bin, "the minimal FUSE daemon")->capture_default_str();
    app.add_option("--nice", cfg.nice,
                   "nice value of the run, its daemons and clients: other processes' load "
                   "disturbs it less")
        ->capture_default_str();
    app.add_option("--only", cfg.only,
                   "hot paths: run only these sections (get, rdonly, link, rename, pin, stat, "
                   "mkdir, getxattr, readdir, concurrent, intercept; rdonly, link and rename on a "
                   "compat=linux mount)")
        ->delimiter(',');
    app.add_option("--daemon-log-level", cfg.daemon_log_level,
                   "bpffs-fuse's --log-level for the run")
        ->capture_default_str();
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    if (cfg.quick) {
        cfg.iterations = 30;
        cfg.objects = 3000;
        cfg.dir_entries = 1000;
        cfg.readdir_sizes = {100, 1000};
        cfg.seconds = 0.05;
        cfg.rounds = 1;
    }
    if (iterations > 0) cfg.iterations = iterations;
    if (objects > 0) cfg.objects = objects;
    if (seconds > 0) cfg.seconds = seconds;
    if (geteuid() != 0) {
        std::fprintf(stderr, "bpffs-bench: error: needs root (mounts and bpf maps)\n");
        return 1;
    }

    if (setpriority(PRIO_PROCESS, 0, cfg.nice) != 0) {
        std::fprintf(stderr, "bpffs-bench: warning: setpriority(%d): %s\n", cfg.nice,
                     std::strerror(errno));
    }
    print_header(cfg, argc, argv);
    try {
        bpffs::bench::enter_private_namespace();
        bpffs::bench::install_signal_cleanup();
        int rc = cfg.scale ? bpffs::bench::run_scale(cfg) : bpffs::bench::run_hot_paths(cfg);
        print_load("at the end");
        return rc;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bpffs-bench: error: %s\n", e.what());
        return 1;
    }
}
