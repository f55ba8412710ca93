// SPDX-License-Identifier: GPL-2.0-or-later
// The default mode: every hot path against its baseline, measured in the same run (interleaved,
// see harness.hpp), printed as one table.
//
// Baselines:
//  - kernel: the kernel's bpffs mounted beside ours (BPF_OBJ_GET, BPF_OBJ_PIN, stat, mkdir...);
//  - floor: a bare SCM_RIGHTS round trip to another process (floor.hpp), served by as many
//    threads as the run has CPUs, the least any broker costs, on a kept connection (as a
//    bpffs_conn does, and libbpffs's one-shot calls with the connection they keep per mount) or
//    with a connection per request;
//  - minimal FUSE: bpffs-bench-minfuse, the cost of one FUSE round trip for the same syscall.
#include "bench/bench.hpp"
#include "bench/floor.hpp"

#include "bpffs/bpffs.h"
#include "client/client.hpp"
#include "common/protocol.hpp"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>

namespace bpffs::bench {
namespace {

// What `clients` processes doing `op` in a loop for `seconds` achieve together.
struct Throughput {
    double per_sec = 0;
    Samples latency;  // a sample of the per-operation latencies, all clients
};

// Shared memory the client processes report into (one slot each).
struct ClientSlot {
    static constexpr std::size_t kMaxSamples = 20000;
    std::uint64_t count;
    int error;
    std::uint32_t nsamples;
    std::int64_t samples[kMaxSamples];
};

class SharedSlots {
public:
    explicit SharedSlots(std::size_t n) : n_(n) {
        void* p = mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
        slots_ = static_cast<ClientSlot*>(p);
    }
    ~SharedSlots() { munmap(slots_, bytes()); }
    SharedSlots(const SharedSlots&) = delete;
    SharedSlots& operator=(const SharedSlots&) = delete;
    ClientSlot& operator[](std::size_t i) { return slots_[i]; }

private:
    std::size_t bytes() const { return n_ * sizeof(ClientSlot); }
    std::size_t n_;
    ClientSlot* slots_ = nullptr;
};

Throughput run_clients(int clients, double seconds, const std::function<int()>& op) {
    SharedSlots slots(static_cast<std::size_t>(clients));
    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    UniqueFd go_r(go[0]), go_w(go[1]);
    auto duration = static_cast<std::int64_t>(seconds * 1e9);
    std::vector<Child> kids;
    for (int k = 0; k < clients; ++k) {
        // The child runs the lambda at once (in Child's constructor), while `slot` is alive.
        ClientSlot& slot = slots[static_cast<std::size_t>(k)];
        kids.emplace_back([&] {
            go_w.reset();  // this child's copy: the parent's close then starts everyone
            char c;
            while (read(go_r.get(), &c, 1) < 0 && errno == EINTR) {}
            std::int64_t end = now_ns() + duration;
            slot.count = 0;
            slot.error = 0;
            slot.nsamples = 0;
            while (true) {
                std::int64_t t0 = now_ns();
                if (t0 >= end) break;
                int e = op();
                std::int64_t t1 = now_ns();
                if (e != 0) {
                    slot.error = e;
                    return 1;
                }
                if (slot.nsamples < ClientSlot::kMaxSamples) {
                    slot.samples[slot.nsamples++] = t1 - t0;
                }
                ++slot.count;
            }
            return 0;
        });
    }
    go_w.reset();  // every child starts now
    Throughput t;
    std::uint64_t total = 0;
    for (int k = 0; k < clients; ++k) {
        int rc = kids[static_cast<std::size_t>(k)].wait(static_cast<int>(seconds * 1000) + 60000);
        ClientSlot& slot = slots[static_cast<std::size_t>(k)];
        if (rc != 0) {
            throw std::runtime_error("concurrent client failed: " +
                                     std::string(slot.error ? std::strerror(slot.error) : "died"));
        }
        total += slot.count;
        for (std::uint32_t i = 0; i < slot.nsamples; ++i) t.latency.add(slot.samples[i]);
    }
    t.per_sec = static_cast<double>(total) / seconds;
    return t;
}

double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// get on a kept connection speaking the wire protocol with nothing around it (no fstat, no
// lock, no fork check): what the library's own work adds to a kept-connection get.
int protocol_get(int sock, const std::string& path) {
    UniqueFd node(open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!node) return errno;
    std::array<int, 1> fds{node.get()};
    auto rep = client::exchange(sock, protocol::Request{protocol::Op::get, {}}, fds);
    if (!rep) return rep.error().value;
    if (rep->reply.error != 0) return rep->reply.error;
    return rep->fd ? 0 : EPROTO;
}

int pin_unlink_ours(int map, const std::string& path) {
    if (bpffs_obj_pin(map, path.c_str()) != 0) return errno;
    return unlink(path.c_str()) == 0 ? 0 : errno;
}

int pin_unlink_kernel(int map, const std::string& path) {
    if (bpf_obj_pin(map, path.c_str()) != 0) return errno;
    return unlink(path.c_str()) == 0 ? 0 : errno;
}

int pin_unlink_conn(bpffs_conn* c, int map, const std::string& path) {
    if (bpffs_conn_obj_pin(c, map, path.c_str()) != 0) return errno;
    return unlink(path.c_str()) == 0 ? 0 : errno;
}

int mknod_unlink(const std::string& path) {
    if (mknod(path.c_str(), S_IFREG | 0600, 0) != 0) return errno;
    return unlink(path.c_str()) == 0 ? 0 : errno;
}

int mkdir_rmdir(const std::string& path) {
    if (mkdir(path.c_str(), 0755) != 0) return errno;
    return rmdir(path.c_str()) == 0 ? 0 : errno;
}

// getxattr of bpf.type; the kernel's bpffs of today has no xattrs (ENODATA/EOPNOTSUPP are its
// answers, and count as done).
int get_type_xattr(const std::string& path, bool expect_value) {
    char buf[16];
    ssize_t n = getxattr(path.c_str(), "bpf.type", buf, sizeof buf);
    if (n >= 0) return expect_value && n != 4 ? EIO : 0;
    if (!expect_value && (errno == ENODATA || errno == EOPNOTSUPP)) return 0;
    return errno;
}

void progress(const std::string& what) { std::fprintf(stderr, "bpffs-bench: %s\n", what.c_str()); }

using ConnPtr = std::unique_ptr<bpffs_conn, void (*)(bpffs_conn*)>;

// A kept connection to the broker of the mount that holds `dir`. Throws on failure.
ConnPtr open_conn(const std::string& dir) {
    bpffs_conn* raw = nullptr;
    if (bpffs_conn_open(dir.c_str(), &raw) != 0) {
        throw std::runtime_error("bpffs_conn_open: " + std::string(std::strerror(errno)));
    }
    return ConnPtr(raw, bpffs_conn_close);
}

// A kept connection to the floor server. Throws on failure.
UniqueFd connect_floor(const FloorServer& floor) {
    UniqueFd sock;
    if (int e = floor_connect(floor.path(), &sock); e != 0) {
        throw std::runtime_error("connect to the floor: " + std::string(std::strerror(e)));
    }
    return sock;
}

// One request and reply on a kept connection to the floor.
int floor_kept(int sock) {
    UniqueFd fd;
    return floor_exchange(sock, &fd);
}

const std::string kKernel = "kernel bpffs";
const std::string kMin = "minimal FUSE";

// What every section works with.
struct Run {
    const Config& cfg;
    Mounts& m;
    int map;
    const FloorServer& floor;
    Table& t;
    std::uint64_t n;     // samples per row
    std::uint64_t warm;  // unmeasured steps first
};

// The one-shot get (bpffs_obj_get, which keeps a connection per mount inside the process) and
// the get on a bpffs_conn, against the floor with a kept connection, the floor with a connection
// per request, the kernel's get and the bare wire protocol on a kept connection to the broker.
void section_get(Run& r) {
    progress("get");
    std::string ours = r.m.ours("a/b/m"), kern = r.m.kern("a/b/m");
    ConnPtr conn = open_conn(r.m.ours("a/b"));
    UniqueFd fsock = connect_floor(r.floor);
    auto psock = client::connect_broker(r.m.ours("a/b"), -1);
    if (!psock) throw std::runtime_error("connect to the broker failed");
    auto s = measure_interleaved(
        {{"get (libbpffs)", [&](std::uint64_t) { return lib_get(ours); }},
         {"get (libbpffs, kept connection)",
          [&](std::uint64_t) { return lib_conn_get(conn.get(), ours); }},
         {"floor kept connection", [&](std::uint64_t) { return floor_kept(fsock.get()); }},
         {"floor one-shot", [&](std::uint64_t) { return floor_get_oneshot(r.floor.path()); }},
         {"get (kernel)", [&](std::uint64_t) { return kernel_get(kern); }},
         {"get (wire protocol, kept connection)",
          [&](std::uint64_t) { return protocol_get(psock->get(), ours); }}},
        r.n, r.warm);
    const std::string one = "get, libbpffs one-shot", kept = "get, libbpffs persistent connection";
    r.t.latency(one, s[0], "floor, kept connection", s[2], Target::at_most(1.2));
    r.t.latency(one, s[0], "floor, connect per request", s[3], Target{});
    r.t.latency(one, s[0], "kernel BPF_OBJ_GET", s[4], Target{});
    r.t.latency(kept, s[1], "floor, kept connection", s[2], Target::at_most(1.2));
    r.t.latency(kept, s[1], "kernel BPF_OBJ_GET", s[4], Target{});
    r.t.latency(kept, s[1], "bare wire protocol, kept connection", s[5], Target{});
}

// A fetched map fd that must refuse writes (BPF_F_RDONLY): the benchmark is a smoke test too.
void check_read_only(const std::string& path) {
    bpffs_opts opts{};
    opts.sz = sizeof opts;
    opts.file_flags = BPFFS_F_RDONLY;
    UniqueFd fd(bpffs_obj_get_opts(path.c_str(), &opts));
    if (!fd) throw std::runtime_error("get BPF_F_RDONLY: " + std::string(std::strerror(errno)));
    std::uint32_t key = 0;
    std::uint64_t value = 0;
    if (bpf_map_update_elem(fd.get(), &key, &value, BPF_ANY) == 0 || errno != EPERM) {
        throw std::runtime_error("a map fetched with BPF_F_RDONLY took an update");
    }
}

// A get of one kind on the compat=linux mount (a read-only map, a link): one-shot and on a kept
// connection against the floor's, the kernel's same get, and another get on the same mount
// (`other`), which tells what this kind adds.
struct GetKind {
    std::string what;          // "get BPF_F_RDONLY"
    Step oneshot, kept;        // ours
    std::string kernel_label;  // "kernel BPF_OBJ_GET BPF_F_RDONLY"
    Step kernel;
    std::string other_label;  // "get without flags, same mount"
    Step other;
};

void get_kind_rows(Run& r, const GetKind& k) {
    UniqueFd fsock = connect_floor(r.floor);
    auto s = measure_interleaved(
        {{k.what + " (libbpffs)", k.oneshot},
         {k.other_label, k.other},
         {k.kernel_label, k.kernel},
         {k.what + " (libbpffs, kept connection)", k.kept},
         {"floor kept connection", [&](std::uint64_t) { return floor_kept(fsock.get()); }}},
        r.n, r.warm);
    // The one-shot call keeps its connection too (client/kept.hpp): both against the kept floor.
    const std::string op = k.what + ", libbpffs one-shot";
    r.t.latency(op, s[0], "floor, kept connection", s[4], Target{});
    r.t.latency(op, s[0], k.kernel_label, s[2], Target{});
    r.t.latency(op, s[0], k.other_label, s[1], Target{});
    const std::string kept = k.what + ", libbpffs persistent connection";
    r.t.latency(kept, s[3], "floor, kept connection", s[4], Target{});
    r.t.latency(kept, s[3], k.kernel_label, s[2], Target{});
}

// A get that asks BPF_F_RDONLY (compat=linux only): the broker opens the map by id with
// read-only open flags instead of handing out a read-write fd.
void section_rdonly(Run& r) {
    progress("read-only get");
    std::string ours = r.m.compat_linux("a/b/m"), kern = r.m.kern("a/b/m");
    check_read_only(ours);
    ConnPtr conn = open_conn(r.m.compat_linux("a/b"));
    get_kind_rows(
        r, {"get BPF_F_RDONLY", [&](std::uint64_t) { return lib_get_flags(ours, BPFFS_F_RDONLY); },
            [&](std::uint64_t) { return lib_conn_get(conn.get(), ours, BPFFS_F_RDONLY); },
            "kernel BPF_OBJ_GET BPF_F_RDONLY",
            [&](std::uint64_t) { return kernel_get_flags(kern, BPF_F_RDONLY); },
            "get without flags, same mount", [&](std::uint64_t) { return lib_get(ours); }});
}

// The get of a pinned BPF link (compat=linux only): a cgroup_skb program attached to a cgroup
// of the run's own, the link pinned on both bpffs, fetched by path.
void section_link(Run& r) {
    progress("link get");
    Cgroup cg;
    std::string ours = r.m.compat_linux("l/link"), kern = r.m.kern("l/link");
    {
        UniqueFd link = test::new_cgroup_link(cg.get());
        if (!link) throw std::runtime_error("cgroup link: " + std::string(std::strerror(errno)));
        if (bpffs_obj_pin(link.get(), ours.c_str()) != 0 ||
            bpf_obj_pin(link.get(), kern.c_str()) != 0) {
            throw std::runtime_error("pinning the link: " + std::string(std::strerror(errno)));
        }
    }  // the pins hold the link now
    ConnPtr conn = open_conn(r.m.compat_linux("l"));
    std::string map = r.m.compat_linux("a/b/m");
    get_kind_rows(
        r, {"get of a pinned link", [&](std::uint64_t) { return lib_get(ours); },
            [&](std::uint64_t) { return lib_conn_get(conn.get(), ours); },
            "kernel BPF_OBJ_GET of the link", [&](std::uint64_t) { return kernel_get(kern); },
            "get of a map, same mount", [&](std::uint64_t) { return lib_get(map); }});
    // The last names go before the cgroup: the link is released, not left defunct.
    unlink(ours.c_str());
    unlink(kern.c_str());
}

// rename(2) of a pinned name to another and back, one FUSE RENAME each (compat=linux; the seed
// has no rename), against the same on the minimal FUSE (a plain file) and the kernel's bpffs.
void section_rename(Run& r) {
    progress("rename");
    // Step i renames n/a to n/b when i is even, back when odd (the index runs on through the
    // warm-up, so every step finds its source).
    auto flip = [](const std::string& dir) {
        return [a = dir + "/a", b = dir + "/b"](std::uint64_t i) {
            const std::string& from = i % 2 == 0 ? a : b;
            const std::string& to = i % 2 == 0 ? b : a;
            return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
        };
    };
    auto s = measure_interleaved({{"rename (ours)", flip(r.m.compat_linux("n"))},
                                  {"rename (kernel)", flip(r.m.kern("n"))},
                                  {"rename (minimal FUSE)", flip(r.m.min("n"))}},
                                 r.n, r.warm);
    r.t.latency("rename of a pin", s[0], "minimal FUSE rename", s[2], Target{});
    r.t.latency("rename of a pin", s[0], kKernel, s[1], Target{});
}

void section_pin(Run& r) {
    progress("pin + unlink");
    auto name = [](std::uint64_t i) { return numbered("p/o", i); };
    // A pinning tool that pins many names keeps a connection: its row is beside the one-shot
    // one (whose socket and connect alone cost about what a FUSE round trip does).
    ConnPtr conn = open_conn(r.m.ours("p"));
    UniqueFd fsock = connect_floor(r.floor);
    auto s = measure_interleaved(
        {{"pin+unlink (ours)",
          [&](std::uint64_t i) { return pin_unlink_ours(r.map, r.m.ours(name(i))); }},
         {"pin+unlink (kernel)",
          [&](std::uint64_t i) { return pin_unlink_kernel(r.map, r.m.kern(name(i))); }},
         {"mknod+unlink (minimal FUSE)",
          [&](std::uint64_t i) { return mknod_unlink(r.m.min(name(i))); }},
         {"pin+unlink (ours, kept connection)",
          [&](std::uint64_t i) {
              return pin_unlink_conn(conn.get(), r.map, r.m.ours(name(i) + "k"));
          }},
         // A pin asks the broker, which makes the name through FUSE: the floor is both round
         // trips (the "plus one socket round trip").
         {"mknod+unlink (minimal FUSE) + floor round trip",
          [&](std::uint64_t i) {
              if (int e = floor_kept(fsock.get()); e != 0) return e;
              return mknod_unlink(r.m.min(name(i) + "f"));
          }}},
        r.n, r.warm);
    r.t.latency("pin + unlink", s[0], "minimal FUSE mknod + unlink + socket round trip", s[4],
                Target::at_most(1.2));
    r.t.latency("pin + unlink", s[0], "minimal FUSE mknod + unlink", s[2], Target{});
    r.t.latency("pin + unlink", s[0], kKernel, s[1], Target{});
    r.t.latency("pin + unlink, kept connection", s[3], "minimal FUSE mknod + unlink", s[2],
                Target{});
}

// stat of one path on the three mounts; `missing`: the answer is ENOENT.
void stat_rows(Run& r, const std::string& rel, const std::string& label, bool missing) {
    auto op = [missing](const std::string& p) {
        return [p, missing](std::uint64_t) { return missing ? stat_missing(p) : stat_path(p); };
    };
    auto s = measure_interleaved({{label + " (ours)", op(r.m.ours(rel))},
                                  {label + " (kernel)", op(r.m.kern(rel))},
                                  {label + " (minimal FUSE)", op(r.m.min(rel))}},
                                 r.n, r.warm);
    r.t.latency(label, s[0], kKernel, s[1], Target::at_most(1.2));
    r.t.latency(label, s[0], kMin, s[2], Target{});
}

void section_stat(Run& r) {
    progress("stat");
    stat_rows(r, "a/b/m", "stat a/b/m (cached)", false);
    stat_rows(r, "a/b/nope", "stat a/b/missing (ENOENT)", true);
}

void section_mkdir(Run& r) {
    progress("mkdir + rmdir");
    auto name = [](std::uint64_t i) { return numbered("d/x", i); };
    auto s = measure_interleaved(
        {{"mkdir+rmdir (ours)", [&](std::uint64_t i) { return mkdir_rmdir(r.m.ours(name(i))); }},
         {"mkdir+rmdir (kernel)", [&](std::uint64_t i) { return mkdir_rmdir(r.m.kern(name(i))); }},
         {"mkdir+rmdir (minimal FUSE)",
          [&](std::uint64_t i) { return mkdir_rmdir(r.m.min(name(i))); }}},
        r.n, r.warm);
    r.t.latency("mkdir + rmdir", s[0], kMin, s[2], Target::at_most(1.2));
    r.t.latency("mkdir + rmdir", s[0], kKernel, s[1], Target{});
}

void section_getxattr(Run& r) {
    progress("getxattr");
    std::string ours = r.m.ours("a/b/m"), kern = r.m.kern("a/b/m"), min = r.m.min("a/b/m");
    auto s = measure_interleaved(
        {{"getxattr (ours)", [&](std::uint64_t) { return get_type_xattr(ours, true); }},
         {"getxattr (kernel)", [&](std::uint64_t) { return get_type_xattr(kern, false); }},
         {"getxattr (minimal FUSE)", [&](std::uint64_t) { return get_type_xattr(min, true); }}},
        r.n, r.warm);
    r.t.latency("getxattr bpf.type", s[0], kMin, s[2], Target::at_most(1.2));
    r.t.latency("getxattr bpf.type", s[0], kKernel + " (no xattrs: ENODATA)", s[1], Target{});
}

void section_readdir(Run& r, std::uint64_t size) {
    std::string label = "readdir " + fmt_count(size) + " entries";
    progress("fill " + fmt_count(size) + " entries");
    std::string dir = numbered("r", size);
    for (const auto& root : {r.m.ours(dir), r.m.kern(dir), r.m.min(dir)}) mkdir_p(root);
    for (std::uint64_t i = 0; i < size; ++i) {
        std::string nm = dir + numbered("/o", i);
        if (bpffs_obj_pin(r.map, r.m.ours(nm).c_str()) != 0 ||
            bpf_obj_pin(r.map, r.m.kern(nm).c_str()) != 0 ||
            mknod(r.m.min(nm).c_str(), S_IFREG | 0600, 0) != 0) {
            throw std::runtime_error("filling " + nm + ": " + std::strerror(errno));
        }
    }
    progress(label);
    std::uint64_t iters = size >= 100'000 ? (r.cfg.quick ? 2 : 5)
                                          : std::max<std::uint64_t>(r.cfg.quick ? 3 : 5, r.n / 100);
    std::string ours = r.m.ours(dir), kern = r.m.kern(dir), min = r.m.min(dir);
    auto s = measure_interleaved(
        {{label + " (ours)", [&](std::uint64_t) { return list_dir(ours, size); }},
         {label + " (kernel)", [&](std::uint64_t) { return list_dir(kern, size); }},
         {label + " (minimal FUSE)", [&](std::uint64_t) { return list_dir(min, size); }}},
        iters, 1, 1);
    r.t.latency(label, s[0], kKernel, s[1], Target::at_most(0.6));
    r.t.latency(label, s[0], kMin + " (plain readdir)", s[2], Target{});

    // The first listing after the directory changed: the kernel's cache of our listing is gone
    // (a name is pinned and unlinked first, untimed), so this one reaches the daemon.
    progress(label + ", after a change");
    std::string xo = ours + "/x", xk = kern + "/x", xm = min + "/x";
    struct Side {
        std::function<int()> change;
        std::string dir;
    };
    std::vector<Side> sides{{[&] { return pin_unlink_ours(r.map, xo); }, ours},
                            {[&] { return pin_unlink_kernel(r.map, xk); }, kern},
                            {[&] { return mknod_unlink(xm); }, min}};
    std::vector<Samples> c(sides.size());
    for (std::uint64_t i = 0; i < iters + 1; ++i) {
        for (std::size_t k = 0; k < sides.size(); ++k) {
            if (int e = sides[k].change(); e != 0) {
                throw std::runtime_error("change before listing: " + std::string(std::strerror(e)));
            }
            std::int64_t t0 = now_ns();
            int e = list_dir(sides[k].dir, size);
            std::int64_t t1 = now_ns();
            if (e != 0) throw std::runtime_error(label + ": " + std::strerror(e));
            if (i > 0) c[k].add(t1 - t0);  // the first round warms up
        }
    }
    r.t.latency(label + ", after a change", c[0], kKernel, c[1], Target{});
    r.t.latency(label + ", after a change", c[0], kMin + " (plain readdir)", c[2], Target{});
}

// "1 client", "4 clients".
std::string counted(int n, const std::string& what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

// What one kind of client achieved in each round, and (ours only) its latencies over all rounds.
struct Rate {
    std::vector<double> per_sec;
    Samples latency;
    double median() const { return median_of(per_sec); }
};

struct ConcurrentRates {
    Rate ours, ours_kept, floor_kept, floor_oneshot, kernel;
};

// `clients` forked clients of each kind in turn, `rounds` times over.
ConcurrentRates measure_concurrent(Run& r, int clients) {
    std::string ours = r.m.ours("a/b/m"), kern = r.m.kern("a/b/m");
    ConcurrentRates c;
    auto add = [&](Rate& into, bool latencies, const std::function<int()>& op) {
        auto t = run_clients(clients, r.cfg.seconds, op);
        into.per_sec.push_back(t.per_sec);
        if (latencies) into.latency.append(t.latency);
    };
    for (int round = 0; round < r.cfg.rounds; ++round) {
        add(c.ours, true, [&] { return lib_get(ours); });
        bpffs_conn* conn = nullptr;  // every forked client opens its own, at its first get
        add(c.ours_kept, true, [&] {
            if (conn == nullptr && bpffs_conn_open(r.m.ours("a/b").c_str(), &conn) != 0) {
                return errno;
            }
            return lib_conn_get(conn, ours);
        });
        UniqueFd fsock;  // the same for the floor
        add(c.floor_kept, false, [&] {
            if (!fsock) {
                if (int e = floor_connect(r.floor.path(), &fsock); e != 0) return e;
            }
            return floor_kept(fsock.get());
        });
        add(c.floor_oneshot, false, [&] { return floor_get_oneshot(r.floor.path()); });
        add(c.kernel, false, [&] { return kernel_get(kern); });
    }
    return c;
}

// Gets/s of `clients` clients: one-shot gets (bpffs_obj_get) and gets on a bpffs_conn each,
// against the floor's kept connections (served by as many threads as the run has CPUs) and the
// kernel's get with as many clients; the one-shot gets also against the floor with a connection
// per request, and per CPU.
void section_concurrent(Run& r, int clients) {
    progress(numbered("concurrent gets, ", static_cast<std::uint64_t>(clients)) + " client(s)");
    ConcurrentRates c = measure_concurrent(r, clients);
    std::string n = counted(clients, "client");
    const std::string op = "gets/s, " + n, kept = op + ", kept connections";
    const std::string floor = "floor, kept connections",
                      kernel = "kernel BPF_OBJ_GET, same clients";
    double ours = c.ours.median(), p99 = c.ours.latency.p99();
    r.t.throughput(op, ours, p99, floor, c.floor_kept.median(), Target::at_least(0.9));
    r.t.throughput(op, ours, p99, kernel, c.kernel.median(), Target::at_least(0.4));
    r.t.throughput(op, ours, p99, "floor, connect per request", c.floor_oneshot.median(), Target{});
    auto cpus = static_cast<double>(r.cfg.cpus);
    r.t.rate("gets/s per CPU (" + counted(r.cfg.cpus, "CPU") + "), " + n, ours / cpus,
             "kernel BPF_OBJ_GET per CPU, same clients", c.kernel.median() / cpus, Target{});
    double ko = c.ours_kept.median(), kp99 = c.ours_kept.latency.p99();
    r.t.throughput(kept, ko, kp99, floor, c.floor_kept.median(), Target::at_least(0.9));
    r.t.throughput(kept, ko, kp99, kernel, c.kernel.median(), Target::at_least(0.4));
}

// The tree on all three mounts: a/b/m (an object; a plain file on the minimal FUSE), p/ for
// pins, d/ for mkdir; r<N>/ for the listings are made by their section. With a compat=linux
// mount: a/b/m and l/ (for a link) there, and n/a to rename on it, the kernel's and the minimal
// FUSE (l/ and n/ made on all three).
void make_tree(Mounts& m, int map) {
    for (const char* dir : {"a", "a/b", "p", "d"}) {
        for (const auto& path : {m.ours(dir), m.kern(dir), m.min(dir)}) {
            if (int e = mkdir_p(path); e != 0) {
                throw std::runtime_error("mkdir " + path + ": " + std::strerror(e));
            }
        }
    }
    if (bpffs_obj_pin(map, m.ours("a/b/m").c_str()) != 0) {
        throw std::runtime_error("bpffs_obj_pin: " + std::string(std::strerror(errno)));
    }
    if (bpf_obj_pin(map, m.kern("a/b/m").c_str()) != 0) {
        throw std::runtime_error("bpf_obj_pin: " + std::string(std::strerror(errno)));
    }
    if (mknod(m.min("a/b/m").c_str(), S_IFREG | 0600, 0) != 0) {
        throw std::runtime_error("mknod on the minimal FUSE: " + std::string(std::strerror(errno)));
    }
    if (m.compat_linux().empty()) return;
    for (const char* dir : {"a", "a/b", "l", "n"}) {
        for (const auto& path : {m.compat_linux(dir), m.kern(dir), m.min(dir)}) {
            if (int e = mkdir_p(path); e != 0) {
                throw std::runtime_error("mkdir " + path + ": " + std::strerror(e));
            }
        }
    }
    if (bpffs_obj_pin(map, m.compat_linux("a/b/m").c_str()) != 0 ||
        bpffs_obj_pin(map, m.compat_linux("n/a").c_str()) != 0 ||
        bpf_obj_pin(map, m.kern("n/a").c_str()) != 0 ||
        mknod(m.min("n/a").c_str(), S_IFREG | 0600, 0) != 0) {
        throw std::runtime_error("the names to rename: " + std::string(std::strerror(errno)));
    }
}

}  // namespace

int run_hot_paths(const Config& cfg) {
    const bool linux_rows = cfg.wants("rdonly") || cfg.wants("link") || cfg.wants("rename");
    Mounts m(cfg, true, true, linux_rows);
    UniqueFd map = create_map("bench");
    FloorServer floor(m.tmp().file("floor.sock"), map.get(), cfg.cpus);
    make_tree(m, map.get());

    Table t("bpffs-bench: hot paths (medians and p99 of " + fmt_count(cfg.iterations) +
            " samples per latency row; ratio = ours / baseline)");
    Run r{cfg,
          m,
          map.get(),
          floor,
          t,
          cfg.iterations,
          std::max<std::uint64_t>(cfg.iterations / 20, 3)};
    if (cfg.wants("get")) section_get(r);
    if (cfg.wants("rdonly")) section_rdonly(r);
    if (cfg.wants("link")) section_link(r);
    if (cfg.wants("rename")) section_rename(r);
    if (cfg.wants("pin")) section_pin(r);
    if (cfg.wants("stat")) section_stat(r);
    if (cfg.wants("mkdir")) section_mkdir(r);
    if (cfg.wants("getxattr")) section_getxattr(r);
    if (cfg.wants("readdir")) {
        for (std::uint64_t size : cfg.readdir_sizes) section_readdir(r, size);
    }
    if (cfg.wants("concurrent")) {
        for (int c : cfg.clients) section_concurrent(r, c);
    }
    if (cfg.wants("intercept")) {
        progress("intercepted programs");
        intercept_rows(t, m, r.n);
    }

    t.print_report();
    return 0;
}

}  // namespace bpffs::bench
