// SPDX-License-Identifier: GPL-2.0-or-later
// Get with flags and BPF_F_PATH_FD (spec section 7, issue 18): each test runs the same calls on a
// kernel bpffs (bpf(2) itself) and on a `bpffs-fuse -o compat=linux` mount (libbpffs, or bpf(2)
// under the preload shim) and compares the outcomes as strings: the errno, and for a fetched fd
// its kind, its open mode and what the kernel lets a map fd do (update, lookup). As root and as
// other users, with object modes set by chmod. A compat=seed mount keeps refusing every flag.
// Needs root (mounting, setresuid, maps).
//
// libbpf 1.1 (Debian 12) has no path_fd in bpf_obj_get_opts and no bpf_obj_pin_opts, and its
// <linux/bpf.h> no BPF_F_PATH_FD: the kernel side is called through bpf(2) with today's attr
// layout (pathname, bpf_fd, file_flags, path_fd).
#include "tests/bpf_test_util.hpp"
#include "tests/kernel_helpers.hpp"
#include "tests/mount_fixture.hpp"
#include "tests/result_helpers.hpp"

#include <bpffs/bpffs.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

using namespace bpffs::test;
using bpffs::UniqueFd;

namespace {

constexpr uid_t kAlice = 1000, kBob = 1001;
constexpr unsigned kRd = BPFFS_F_RDONLY, kWr = BPFFS_F_WRONLY, kPathFd = BPFFS_F_PATH_FD;

// BPF_OBJ_PIN / BPF_OBJ_GET through bpf(2): the fd (or 0) or -1 with errno.
int sys_obj(int cmd, const std::string& path, int bpf_fd, unsigned flags, int path_fd) {
    union bpf_attr a;
    std::memset(&a, 0, sizeof a);
    auto* b = reinterpret_cast<char*>(&a);
    auto ptr = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(path.c_str()));
    std::memcpy(b, &ptr, 8);
    std::memcpy(b + 8, &bpf_fd, 4);
    std::memcpy(b + 12, &flags, 4);
    std::memcpy(b + 16, &path_fd, 4);
    return static_cast<int>(syscall(__NR_bpf, cmd, &a, sizeof a));
}

bpffs_opts opts_of(unsigned flags, int path_fd) {
    bpffs_opts o{};
    o.sz = sizeof o;
    o.file_flags = flags;
    o.path_fd = path_fd;
    return o;
}

// One of the two filesystems: where it is and how a call reaches it (bpf(2) on the kernel's,
// libbpffs on ours).
struct Side {
    std::string root;
    bool kernel;
    std::string p(const std::string& rel) const { return root + "/" + rel; }

    int get(const std::string& path, unsigned flags = 0, int path_fd = 0) const {
        if (kernel) return sys_obj(BPF_OBJ_GET, path, 0, flags, path_fd);
        auto o = opts_of(flags, path_fd);
        return bpffs_obj_get_opts(path.c_str(), &o);
    }
    int pin(int fd, const std::string& path, unsigned flags = 0, int path_fd = 0) const {
        if (kernel) return sys_obj(BPF_OBJ_PIN, path, fd, flags, path_fd);
        auto o = opts_of(flags, path_fd);
        return bpffs_obj_pin_opts(fd, path.c_str(), &o);
    }
};

const char* acc_name(int fd) {
    switch (fcntl(fd, F_GETFL) & O_ACCMODE) {
        case O_RDONLY:
            return "ro";
        case O_WRONLY:
            return "wo";
        default:
            return "rw";
    }
}

// "EACCES", or "map rw update=ok lookup=ok" for what a get returned (the fd is closed here).
std::string fetched(int rc) {
    if (rc < 0) return ename(errno);
    UniqueFd fd(rc);
    std::string out = fd_kind(fd.get()) + " " + acc_name(fd.get());
    if (fd_kind(fd.get()) == "map") {
        std::uint64_t v = 0;
        out += " update=" + ename(map_update(fd.get(), 1, 7));
        out += " lookup=" + ename(map_lookup(fd.get(), 1, &v));
    }
    return out;
}

std::string done(int rc) { return rc < 0 ? ename(errno) : "OK"; }

// fn's string, computed in a child running as uid:uid (no capabilities unless uid 0).
std::string as(uid_t uid, const std::function<std::string()>& fn) {
    int p[2];
    REQUIRE(pipe2(p, O_CLOEXEC) == 0);
    UniqueFd rd(p[0]), wr(p[1]);
    int rc = run_as(uid, uid, [&] {
        std::string s = fn();
        return write(wr.get(), s.data(), s.size()) == static_cast<ssize_t>(s.size()) ? 0 : 1;
    });
    wr.reset();
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(rd.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return rc == 0 ? out : "child failed " + std::to_string(rc);
}

// A fresh map and program pinned as "m" and "p", and a directory "d", on side `s`.
void populate(const Side& s) {
    auto map = must_map("getflags");
    auto prog = must_prog("getflags");
    INFO((s.kernel ? "kernel" : "ours"));
    REQUIRE(done(s.pin(map.get(), s.p("m"))) == "OK");
    REQUIRE(done(s.pin(prog.get(), s.p("p"))) == "OK");
    REQUIRE(mkdir(s.p("d").c_str(), 0755) == 0);
}

using Steps = std::function<std::vector<std::string>(const Side&)>;

// Runs `steps` on a kernel bpffs and on a compat=linux mount, each populated first, and compares
// them step by step.
void compare(const Steps& steps) {
    KernelBpffs kernel;
    Mount ours("compat=linux");
    Side k{kernel.path(), true}, o{ours.path(), false};
    populate(k);
    populate(o);
    auto want = steps(k);
    auto got = steps(o);
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        INFO("step " << i);
        CHECK(got[i] == want[i]);
    }
}

const std::vector<unsigned> kAccessFlags = {0, kRd, kWr, kRd | kWr};

}  // namespace

TEST_CASE("linux: get flags ask ACC_MODE, a map's fd carries the mode, as root and as others",
          "[linux][kernel][getflags]") {
    compare([](const Side& s) {
        std::vector<std::string> out;
        for (const char* obj : {"m", "p"}) {
            REQUIRE(chown(s.p(obj).c_str(), kAlice, kAlice) == 0);
        }
        for (mode_t mode : {0600, 0400, 0200, 0644}) {
            for (const char* obj : {"m", "p"}) REQUIRE(chmod(s.p(obj).c_str(), mode) == 0);
            for (uid_t uid : {uid_t{0}, kAlice, kBob}) {
                out.push_back(as(uid, [&] {
                    std::string r;
                    for (const char* obj : {"m", "p"}) {
                        for (unsigned f : kAccessFlags) {
                            r += std::string(obj) + " flags " + std::to_string(f) + ": " +
                                 fetched(s.get(s.p(obj), f)) + "; ";
                        }
                    }
                    return r;
                }));
                INFO("mode " << std::oct << mode << " uid " << std::dec << uid);
                CAPTURE(out.back());
            }
        }
        return out;
    });
}

TEST_CASE("linux: a read-only mount refuses gets that ask write (EROFS), not BPF_F_RDONLY",
          "[linux][kernel][getflags][ro]") {
    compare([](const Side& s) {
        REQUIRE(mount(nullptr, s.root.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
        std::vector<std::string> out;
        for (const char* obj : {"m", "p", "d", "missing"}) {
            for (unsigned f : kAccessFlags) {
                out.push_back(std::string(obj) + " " + std::to_string(f) + ": " +
                              fetched(s.get(s.p(obj), f)));
            }
        }
        auto map = must_map("getflags_ro");
        out.push_back("pin: " + done(s.pin(map.get(), s.p("n"))));
        return out;
    });
}

TEST_CASE("linux: flags are judged before the path, a directory is EACCES whatever they ask",
          "[linux][kernel][getflags]") {
    compare([](const Side& s) {
        auto dir = o_path(s.root);
        std::vector<std::string> out;
        for (const char* obj : {"m", "d", "missing", "missing/x", "m/x"}) {
            // Refused by every kernel, then taken (BPF_F_PATH_FD alone: the cwd's walk).
            for (unsigned f :
                 {kRd | kWr, 1u, 4u, 32u, 0x80000000u, kRd | 0x8000u, 0u, kRd, kWr, kPathFd}) {
                out.push_back(std::string(obj) + " " + std::to_string(f) + ": " +
                              fetched(s.get(s.p(obj), f)));
            }
            // A path_fd without BPF_F_PATH_FD.
            out.push_back(std::string(obj) +
                          " path_fd alone: " + fetched(s.get(s.p(obj), 0, dir.get())));
        }
        auto map = must_map("getflags_pin");
        for (unsigned f : {kRd, kWr, 1u}) {
            out.push_back("pin flags " + std::to_string(f) + ": " +
                          done(s.pin(map.get(), s.p("n"), f)));
        }
        out.push_back("pin path_fd alone: " + done(s.pin(map.get(), s.p("n"), 0, dir.get())));
        return out;
    });
}

TEST_CASE("linux: BPF_F_PATH_FD: get and pin relative to path_fd, EBADF, ENOTDIR as the kernel",
          "[linux][kernel][getflags][pathfd]") {
    compare([](const Side& s) {
        auto root = o_path(s.root);
        auto d = o_path(s.p("d"));
        auto file = o_path(s.p("m"));
        const int closed_fd = 999;  // no test opens that many
        REQUIRE(fcntl(closed_fd, F_GETFD) == -1);
        std::vector<std::string> out;
        auto get = [&](const std::string& what, const std::string& path, unsigned f, int pfd) {
            out.push_back("get " + what + ": " + fetched(s.get(path, f, pfd)));
        };
        get("m from root", "m", kPathFd, root.get());
        get("m from root, read-only", "m", kPathFd | kRd, root.get());
        get("m from root, write-only", "m", kPathFd | kWr, root.get());
        get("p from root", "p", kPathFd, root.get());
        get("../m from d", "../m", kPathFd, d.get());
        get("missing from d", "m", kPathFd, d.get());
        get("d from root", "d", kPathFd, root.get());
        get("an absolute path ignores a bad fd", s.p("m"), kPathFd, closed_fd);
        get("a closed fd", "m", kPathFd, closed_fd);
        get("fd -1", "m", kPathFd, -1);
        get("a file's fd", "m", kPathFd, file.get());
        get("an empty path", "", kPathFd, root.get());
        get("both and a bad fd", "m", kPathFd | kRd | kWr, closed_fd);
        out.push_back("get as root from the working directory: " + as(0, [&] {
                          if (chdir(s.root.c_str()) != 0) return std::string("chdir failed");
                          return fetched(s.get("m", kPathFd, AT_FDCWD));
                      }));
        // Pins.
        auto map = must_map("getflags_pfd");
        auto pin = [&](const std::string& what, const std::string& path, unsigned f, int pfd) {
            out.push_back("pin " + what + ": " + done(s.pin(map.get(), path, f, pfd)));
        };
        pin("n into d", "n", kPathFd, d.get());
        out.push_back("then get d/n: " + fetched(s.get(s.p("d/n"))));
        pin("n into d again", "n", kPathFd, d.get());
        pin("d/n2 from root", "d/n2", kPathFd, root.get());
        pin("a closed fd", "n3", kPathFd, closed_fd);
        pin("fd -1", "n3", kPathFd, -1);
        pin("a file's fd", "n3", kPathFd, file.get());
        pin("read-only", "n3", kPathFd | kRd, d.get());
        return out;
    });
}

TEST_CASE("seed: every get and pin flag is EINVAL, as the seed's bpf(2), which had none",
          "[seed][kernel][getflags]") {
    Mount m;
    auto map = must_map("getflags_seed");
    must_pin(map.get(), m.p("m"));
    auto root = o_path(m.path());
    Side s{m.path(), false};
    CHECK(fetched(s.get(s.p("m"))) == "map rw update=ok lookup=ok");
    for (unsigned f : {kRd, kWr, kRd | kWr, 1u, 0x80000000u}) {
        INFO("flags " << f);
        CHECK(fetched(s.get(s.p("m"), f)) == "EINVAL");
    }
    CHECK(fetched(s.get("m", kPathFd, root.get())) == "EINVAL");
    CHECK(fetched(s.get("m", kPathFd | kRd, root.get())) == "EINVAL");
    CHECK(done(s.pin(map.get(), "n", kPathFd, root.get())) == "EINVAL");
    CHECK(done(s.pin(map.get(), s.p("n"), kRd)) == "EINVAL");
    CHECK(ename(errno_of(access(m.p("n").c_str(), F_OK))) == ename(ENOENT));
    // The kept connection too; and a missing name: the client walks before the broker's EINVAL
    // (docs/semantics.md).
    bpffs_conn* c = nullptr;
    REQUIRE(bpffs_conn_open(m.path().c_str(), &c) == 0);
    std::unique_ptr<bpffs_conn, void (*)(bpffs_conn*)> owned(c, bpffs_conn_close);
    CHECK(fetched(bpffs_conn_obj_get(c, m.p("m").c_str(), kRd)) == "EINVAL");
    CHECK(fetched(bpffs_conn_obj_get(c, m.p("m").c_str(), 0)) == "map rw update=ok lookup=ok");
    CHECK(fetched(s.get(s.p("missing"), kRd)) == "ENOENT");
    CHECK(fetched(s.get(s.p("missing"), kRd | kWr)) == "EINVAL");  // every kernel's, first
}

TEST_CASE("linux: a kept connection takes BPF_F_RDONLY and BPF_F_WRONLY, not BPF_F_PATH_FD",
          "[linux][kernel][getflags]") {
    Mount m("compat=linux");
    auto map = must_map("getflags_conn");
    auto prog = must_prog("getflags_conn");
    must_pin(map.get(), m.p("m"));
    must_pin(prog.get(), m.p("p"));
    bpffs_conn* c = nullptr;
    REQUIRE(bpffs_conn_open(m.path().c_str(), &c) == 0);
    std::unique_ptr<bpffs_conn, void (*)(bpffs_conn*)> owned(c, bpffs_conn_close);
    CHECK(fetched(bpffs_conn_obj_get(c, m.p("m").c_str(), kRd)) ==
          "map ro update=EPERM lookup=ENOENT");
    CHECK(fetched(bpffs_conn_obj_get(c, m.p("m").c_str(), kWr)) == "map wo update=ok lookup=EPERM");
    CHECK(fetched(bpffs_conn_obj_get(c, m.p("m").c_str(), 0)) == "map rw update=ok lookup=ok");
    CHECK(fetched(bpffs_conn_obj_get(c, m.p("p").c_str(), kRd)) == "prog rw");
    CHECK(fetched(bpffs_conn_obj_get(c, m.p("m").c_str(), kRd | kWr)) == "EINVAL");
    CHECK(fetched(bpffs_conn_obj_get(c, m.p("m").c_str(), kPathFd)) == "EINVAL");
    // bpffs_opts: an older caller's smaller sz has no flags; a larger one with a non-zero tail
    // is EINVAL; a connection takes no flags.
    struct Bigger {
        bpffs_opts o;
        unsigned long tail;
    } big{};
    big.o = opts_of(kRd, 0);
    big.o.sz = sizeof big;
    CHECK(fetched(bpffs_obj_get_opts(m.p("m").c_str(), &big.o)) == "map ro update=EPERM lookup=ok");
    big.tail = 1;
    CHECK(fetched(bpffs_obj_get_opts(m.p("m").c_str(), &big.o)) == "EINVAL");
    auto old = opts_of(kRd, 0);
    old.sz = offsetof(bpffs_opts, file_flags);
    CHECK(fetched(bpffs_obj_get_opts(m.p("m").c_str(), &old)) == "map rw update=ok lookup=ok");
    auto flagged = opts_of(kRd, 0);
    bpffs_conn* c2 = nullptr;
    CHECK(ename(-bpffs_conn_open_opts(m.path().c_str(), &flagged, &c2)) == ename(EINVAL));
    CHECK(c2 == nullptr);
}

TEST_CASE("linux: the preload shim passes file_flags and path_fd on, as bpf(2) on a kernel bpffs",
          "[linux][kernel][getflags][preload]") {
    KernelBpffs kernel;
    Mount ours("compat=linux");
    Mount seed;
    auto map = must_map("getflags_shim");
    REQUIRE(done(sys_obj(BPF_OBJ_PIN, kernel.p("m"), map.get(), 0, 0)) == "OK");
    must_pin(map.get(), ours.p("m"));
    must_pin(map.get(), seed.p("m"));
    auto probe = [](const std::string& root, bool shim, std::vector<std::string> args) {
        std::vector<std::string> argv{"/usr/bin/env"};
        if (shim) argv.push_back(std::string("LD_PRELOAD=") + BPFFS_PRELOAD_LIB);
        argv.push_back(PRELOAD_PROBE_BIN);
        for (auto& a : args) argv.push_back(a == "ROOT" ? root : a == "M" ? root + "/m" : a);
        auto r = run_cmd(argv);
        return r.out;
    };
    const std::vector<std::vector<std::string>> calls = {
        {"get", "M"},
        {"get", "M", "8"},
        {"get", "M", "16"},
        {"get", "M", "24"},
        {"get-at", "ROOT", "m", "0x4000"},
        {"get-at", "ROOT", "m", "0x4008"},
        {"get-at", "ROOT", "missing", "0x4000"},
        {"get-at", "ROOT", "m", "0"},
    };
    for (const auto& call : calls) {
        std::string want = probe(kernel.path(), false, call);
        INFO(call[0] << " " << call.back());
        CHECK(probe(ours.path(), true, call) == want);
    }
    CHECK(probe(kernel.path(), false, {"get", "M", "8"}).find("read-only") != std::string::npos);
    // On a compat=seed mount every flag stays EINVAL.
    CHECK(probe(seed.path(), true, {"get", "M", "8"}) == "EINVAL\n");
    CHECK(probe(seed.path(), true, {"get-at", "ROOT", "m", "0x4000"}) == "EINVAL\n");
}
