// SPDX-License-Identifier: GPL-2.0-or-later
// The cost of running an unmodified program on the mount (docs/preload.md): the same dynamically
// linked libbpf program (bench/intercepted.c) gets and pins bare on the kernel's bpffs, under
// the preload shim and under the seccomp supervisor on ours. Each is a process of its own, so
// the rows are not interleaved step by step: the three runs alternate in rounds instead, and
// each row takes the samples of all rounds.
#include "bench/bench.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bpffs::bench {
namespace {

// Runs the program `argv` and takes one latency per line of its output.
Samples run_samples(const std::vector<std::string>& argv) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    UniqueFd rd(p[0]), wr(p[1]);
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        dup2(wr.get(), 1);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    wr.reset();
    std::string out;
    char buf[4096];
    for (ssize_t got; (got = read(rd.get(), buf, sizeof buf)) > 0;) {
        out.append(buf, static_cast<std::size_t>(got));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        throw std::runtime_error(argv.front() + " ... " + argv[argv.size() - 3] + " failed");
    }
    Samples s;
    std::istringstream in(out);
    std::int64_t ns = 0;
    while (in >> ns) s.add(ns);
    return s;
}

}  // namespace

void intercept_rows(Table& t, const Mounts& m, std::uint64_t n) {
    const std::string prog = BPFFS_INTERCEPTED_BIN;
    const std::string ctl = BPFFSCTL_BIN;
    constexpr int kRounds = 3;
    const std::string per = std::to_string(std::max<std::uint64_t>(n / kRounds, 1));
    struct Way {
        std::vector<std::string> prefix;
        std::string root;
        Samples get, pin;
    };
    std::vector<Way> ways{
        {{"/usr/bin/env"}, m.kern(), {}, {}},
        {{"/usr/bin/env", std::string("LD_PRELOAD=") + BPFFS_PRELOAD_LIB}, m.ours(), {}, {}},
        {{ctl, "run", "--seccomp", "--"}, m.ours(), {}, {}}};
    for (int round = 0; round < kRounds; ++round) {
        for (Way& w : ways) {
            auto with = [&](std::vector<std::string> args) {
                std::vector<std::string> argv = w.prefix;
                argv.insert(argv.end(), args.begin(), args.end());
                return argv;
            };
            w.get.append(run_samples(with({prog, "get", w.root + "/a/b/m", per})));
            w.pin.append(run_samples(with({prog, "pin", w.root + "/p", per})));
        }
    }
    const Way &kernel = ways[0], &shim = ways[1], &seccomp = ways[2];
    t.latency("get, seccomp supervisor", seccomp.get, "preload shim", shim.get, Target{});
    t.latency("get, seccomp supervisor", seccomp.get, "kernel BPF_OBJ_GET", kernel.get, Target{});
    t.latency("get, preload shim", shim.get, "kernel BPF_OBJ_GET", kernel.get, Target{});
    t.latency("pin + unlink, seccomp supervisor", seccomp.pin, "preload shim", shim.pin, Target{});
    t.latency("pin + unlink, seccomp supervisor", seccomp.pin, "kernel bpffs", kernel.pin,
              Target{});
}

}  // namespace bpffs::bench
