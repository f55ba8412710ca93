// SPDX-License-Identifier: GPL-2.0-or-later
// The scale mode: pins `objects` names (1,000,000 by default) in one mount, a few kernel maps
// under many names (the registry keeps one fd per distinct object), spread over directories of
// at most `dir_entries` names, and reports what that costs: pin rate, daemon memory per pinned
// name, whether lookups and gets stay flat from 100 names to all of them, a listing of a full
// directory, the time to unlink everything and the memory left after.
//
// Flatness is measured against a second mount that holds 100 names, probed in alternation with
// the big one at the same time (the machine's drift over the minutes of pinning would swamp a
// before/after comparison). Each probe of a lookup first unlinks and re-pins a random name
// (untimed; the count stays), so the timed stat is a FUSE LOOKUP answered from the daemon's
// tables (the pin invalidated the kernel's dentry). "Cached" is a repeated stat of one name
// (the kernel's dcache; the daemon is not asked), "get" fetches names whose dentries are cached.
// The daemon's memory is VmRSS summed over its process tree (a supervisor and its worker), plus
// the bytes of any memfd the daemon holds that no process of it maps (bench/environment.hpp).
#include "bench/bench.hpp"

#include "bpffs/bpffs.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>

namespace bpffs::bench {
namespace {

constexpr int kMaps = 8;               // distinct kernel objects behind all the names
constexpr std::uint64_t kSmall = 100;  // names in the comparison mount

std::string dir_name(std::uint64_t d) { return numbered("s", d); }
std::string obj_name(std::uint64_t i) { return numbered("o", i); }

// One mount with `count` names o0..o<count-1> in directories s0, s1, ... of `per_dir` names.
struct Tree {
    Mounts& m;
    std::uint64_t count;
    std::uint64_t per_dir;
    std::uint64_t dirs() const { return (count + per_dir - 1) / per_dir; }
    std::string path(std::uint64_t i) const {
        return m.ours(dir_name(i / per_dir) + "/" + obj_name(i));
    }
};

int pin(int map, const std::string& path) {
    return bpffs_obj_pin(map, path.c_str()) == 0 ? 0 : errno;
}

[[noreturn]] void failed(const std::string& what, int e) {
    throw std::runtime_error(what + ": " + std::strerror(e));
}

// Pins the names [0, t.count), reporting progress every 10 s; returns their latencies.
Samples pin_all(const Tree& t, const std::vector<UniqueFd>& maps) {
    for (std::uint64_t d = 0; d < t.dirs(); ++d) {
        if (int e = mkdir_p(t.m.ours(dir_name(d))); e != 0) failed("mkdir", e);
    }
    Samples lat;
    std::int64_t last_report = now_ns();
    for (std::uint64_t i = 0; i < t.count; ++i) {
        std::string path = t.path(i);
        std::int64_t t0 = now_ns();
        int e = pin(maps[i % kMaps].get(), path);
        std::int64_t t1 = now_ns();
        if (e != 0) failed("pin " + path, e);
        lat.add(t1 - t0);
        if (t1 - last_report > 10'000'000'000LL) {
            auto rss = static_cast<double>(tree_rss_bytes(t.m.daemon_pid()));
            std::fprintf(stderr, "bpffs-bench: pinned %s of %s (daemon RSS %s)\n",
                         fmt_count(i + 1).c_str(), fmt_count(t.count).c_str(),
                         fmt_bytes(rss).c_str());
            last_report = t1;
        }
    }
    return lat;
}

// A step that re-pins a random name (untimed) and stats it (timed): one uncached lookup.
struct UncachedLookup {
    const Tree& t;
    const std::vector<UniqueFd>& maps;
    std::mt19937_64& rng;
    Samples samples;
    void once() {
        std::uint64_t i = std::uniform_int_distribution<std::uint64_t>(0, t.count - 1)(rng);
        std::string path = t.path(i);
        if (unlink(path.c_str()) != 0) failed("unlink " + path, errno);
        if (int e = pin(maps[i % kMaps].get(), path); e != 0) failed("pin " + path, e);
        std::int64_t t0 = now_ns();
        int e = stat_path(path);
        std::int64_t t1 = now_ns();
        if (e != 0) failed("stat " + path, e);
        samples.add(t1 - t0);
    }
};

// Names to fetch: up to 100 spread over the tree, looked up once so their dentries are cached.
std::vector<std::string> get_targets(const Tree& t) {
    std::vector<std::string> out;
    std::uint64_t step = std::max<std::uint64_t>(1, t.count / kSmall);
    for (std::uint64_t i = 0; i < t.count && out.size() < kSmall; i += step) {
        out.push_back(t.path(i));
        if (int e = stat_path(out.back()); e != 0) failed("stat " + out.back(), e);
    }
    return out;
}

// What the run measured, for the table.
struct Results {
    // Pinning the big tree.
    Samples pin_lat;
    double pin_secs = 0;
    std::size_t rss_empty = 0, rss_full = 0;
    DaemonMemory mem_full;
    // Probes of both trees in alternation: [0] big, [1] small.
    Samples uncached[2];
    std::vector<Samples> cached, gets;
    // A listing of the big tree's first (full) directory.
    std::uint64_t first_dir = 0;
    Samples listing;
    // A worker killed at full size: its VmRSS, the next one's peak (its restore), the time until
    // a get works again.
    std::size_t worker_live = 0, worker_restored_peak = 0;
    double restart_secs = 0;
    // Unlinking everything.
    Samples unlink_lat;
    double unlink_secs = 0;
    std::size_t rss_after = 0;
};

// Pins the small tree, then the big one, timed, with the daemon's memory before and after.
void pin_phase(const Tree& big, const Tree& small, const std::vector<UniqueFd>& maps, Results& r) {
    pin_all(small, maps);
    std::fprintf(stderr, "bpffs-bench: scale: pinning %s names in %s directories\n",
                 fmt_count(big.count).c_str(), fmt_count(big.dirs()).c_str());
    pid_t daemon = big.m.daemon_pid();
    r.rss_empty = daemon_memory(daemon).total();
    std::int64_t t0 = now_ns();
    r.pin_lat = pin_all(big, maps);
    r.pin_secs = static_cast<double>(now_ns() - t0) / 1e9;
    r.mem_full = daemon_memory(daemon);
    r.rss_full = r.mem_full.total();
}

// Lookups (uncached and cached), gets and a full listing, the big tree against the small one.
void probe_phase(const Config& cfg, const Tree& big, const Tree& small,
                 const std::vector<UniqueFd>& maps, Results& r) {
    std::fprintf(stderr, "bpffs-bench: scale: probing at %s and at %s names\n",
                 fmt_count(big.count).c_str(), fmt_count(small.count).c_str());
    const std::uint64_t n = cfg.iterations;
    std::mt19937_64 rng(42);
    UncachedLookup ub{big, maps, rng, {}}, us{small, maps, rng, {}};
    for (std::uint64_t k = 0; k < n; ++k) {
        ub.once();
        us.once();
    }
    r.uncached[0] = std::move(ub.samples);
    r.uncached[1] = std::move(us.samples);
    std::string hot_big = big.path(0), hot_small = small.path(0);
    r.cached = measure_interleaved(
        {{"stat (cached, big)", [&](std::uint64_t) { return stat_path(hot_big); }},
         {"stat (cached, small)", [&](std::uint64_t) { return stat_path(hot_small); }}},
        n, n / 20 + 3);
    auto tb = get_targets(big), ts = get_targets(small);
    r.gets = measure_interleaved(
        {{"get (big)", [&](std::uint64_t k) { return lib_get(tb[k % tb.size()]); }},
         {"get (small)", [&](std::uint64_t k) { return lib_get(ts[k % ts.size()]); }}},
        n, n / 20 + 3);
    r.first_dir = std::min(big.per_dir, big.count);
    std::string d0 = big.m.ours(dir_name(0));
    r.listing = measure(
        "readdir", [&](std::uint64_t) { return list_dir(d0, r.first_dir); }, cfg.quick ? 2 : 5, 1);
}

// The big mount's worker (the supervisor's descendant), or -1.
pid_t worker_of(const Tree& t) {
    pid_t sup = t.m.daemon_pid();
    for (pid_t p : test::process_tree(sup)) {
        if (p != sup) return p;
    }
    return -1;
}

// Kills the big mount's worker at full size and waits for the next one to serve a get: a restore
// of every name from the state log (docs/operations.md, "The state log").
void restart_phase(const Tree& big, Results& r) {
    std::fprintf(stderr, "bpffs-bench: scale: kill -9 of the worker at %s names\n",
                 fmt_count(big.count).c_str());
    pid_t old = worker_of(big);
    if (old <= 0) failed("find the worker", ESRCH);
    r.worker_live = rss_bytes(old);
    std::int64_t t0 = now_ns();
    if (kill(old, SIGKILL) != 0) failed("kill the worker", errno);
    pid_t now = -1;
    bool back = test::wait_for(
        [&] {
            now = worker_of(big);
            return now > 0 && now != old && lib_get(big.path(big.count - 1)) == 0;
        },
        120000);
    if (!back) failed("a new worker serving", ETIMEDOUT);
    r.restart_secs = static_cast<double>(now_ns() - t0) / 1e9;
    r.worker_restored_peak = peak_rss_bytes(now);
}

// Unlinks every name of the big tree, timed, and reads the daemon's memory after.
void unlink_phase(const Config& cfg, const Tree& big, Results& r) {
    std::fprintf(stderr, "bpffs-bench: scale: unlinking %s names\n", fmt_count(big.count).c_str());
    std::int64_t u0 = now_ns();
    for (std::uint64_t d = 0; d < big.dirs(); ++d) {
        UniqueFd dir(open(big.m.ours(dir_name(d)).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!dir) failed("open " + dir_name(d), errno);
        for (std::uint64_t i = d * big.per_dir; i < std::min(big.count, (d + 1) * big.per_dir);
             ++i) {
            std::int64_t a = now_ns();
            if (unlinkat(dir.get(), obj_name(i).c_str(), 0) != 0) {
                failed("unlink " + obj_name(i), errno);
            }
            r.unlink_lat.add(now_ns() - a);
        }
    }
    r.unlink_secs = static_cast<double>(now_ns() - u0) / 1e9;
    // The kernel forgets the unlinked inodes asynchronously; give the daemon a moment to see
    // the FORGETs before reading its memory.
    test::wait_for([] { return false; }, cfg.quick ? 100 : 2000);
    r.rss_after = daemon_memory(big.m.daemon_pid()).total();
}

// The pin rows: the last pins against the first ones, and the rate.
void pin_rows(Table& t, const Tree& big, const Results& r) {
    Samples first, last;
    const auto& raw = r.pin_lat.raw();
    std::size_t tail = std::min<std::size_t>(raw.size() / 10 + 1, 10000);
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (i < kSmall) first.add(raw[i]);
        if (i + tail >= raw.size()) last.add(raw[i]);
    }
    t.latency("pin, last " + fmt_count(last.size()) + " of " + fmt_count(big.count), last,
              "first " + fmt_count(first.size()) + " pins", first, Target{});
    double rate = r.pin_secs > 0 ? static_cast<double>(big.count) / r.pin_secs : 0;
    t.add({"pin rate, " + fmt_count(big.count) + " pins, one process", fmt_rate(rate),
           fmt_duration(r.pin_lat.p99()), "all pins: median " + fmt_duration(r.pin_lat.median()),
           "", "", "", ""});
}

// The memory rows: per pinned name against the 256 B target, and the totals.
void memory_rows(Table& t, const Tree& big, const Results& r) {
    double per_name = (static_cast<double>(r.rss_full) - static_cast<double>(r.rss_empty)) /
                      static_cast<double>(big.count);
    Target target = Target::at_most(1.0);
    double ratio = per_name / 256.0;
    auto ok = target.met(ratio);
    t.add({"daemon RSS per pinned name", fmt_bytes(per_name), "", "256 B", "256 B",
           fmt_ratio(ratio), target.text(), ok && *ok ? "yes" : "**no**"});
    t.add({"daemon RSS empty / full / after unlink", fmt_bytes(static_cast<double>(r.rss_empty)),
           "",
           "full " + fmt_bytes(static_cast<double>(r.rss_full)) + ", after " +
               fmt_bytes(static_cast<double>(r.rss_after)),
           "", "", "", ""});
    t.add({"daemon memory when full", fmt_bytes(static_cast<double>(r.rss_full)), "",
           r.mem_full.describe(), "", "", "", ""});
    Target restore = Target::at_most(1.5);
    double peak = static_cast<double>(r.worker_restored_peak) /
                  std::max(1.0, static_cast<double>(r.worker_live));
    auto met = restore.met(peak);
    t.add({"restart after kill -9: new worker's peak RSS",
           fmt_bytes(static_cast<double>(r.worker_restored_peak)),
           "serving again after " + fmt_duration(r.restart_secs * 1e9), "live worker's RSS",
           fmt_bytes(static_cast<double>(r.worker_live)), fmt_ratio(peak), restore.text(),
           met && *met ? "yes" : "**no**"});
}

void report(const Tree& big, const Tree& small, const Results& r) {
    Table t("bpffs-bench --scale: " + fmt_count(big.count) + " names of " + numbered("", kMaps) +
            " maps in " + fmt_count(big.dirs()) + " directories of up to " +
            fmt_count(big.per_dir) + "; ours: the mount with " + fmt_count(big.count) +
            " names, baseline: a mount with " + fmt_count(small.count) + ", probed in alternation");
    std::string base = "mount with " + fmt_count(small.count) + " names";
    t.latency("stat, uncached (FUSE LOOKUP)", r.uncached[0], base, r.uncached[1],
              Target::at_most(1.3));
    t.latency("stat, cached", r.cached[0], base, r.cached[1], Target::at_most(1.3));
    t.latency("get, libbpffs one-shot", r.gets[0], base, r.gets[1], Target::at_most(1.3));
    pin_rows(t, big, r);
    memory_rows(t, big, r);
    t.add({"readdir " + fmt_count(r.first_dir) + " entries (at " + fmt_count(big.count) + ")",
           fmt_duration(r.listing.median()), fmt_duration(r.listing.p99()), "", "", "", "", ""});
    t.add({"unlink, all " + fmt_count(big.count) + " names", fmt_duration(r.unlink_lat.median()),
           fmt_duration(r.unlink_lat.p99()),
           "total " + fmt_duration(r.unlink_secs * 1e9) + ", " +
               fmt_rate(r.unlink_secs > 0 ? static_cast<double>(big.count) / r.unlink_secs : 0),
           "", "", "", ""});
    t.print_report();
}

}  // namespace

int run_scale(const Config& cfg) {
    std::vector<UniqueFd> maps;
    for (int k = 0; k < kMaps; ++k) {
        maps.push_back(create_map(numbered("scale", static_cast<std::uint64_t>(k)).c_str()));
    }
    Mounts big_m(cfg, false, false);
    Mounts small_m(cfg, false, false);
    const std::uint64_t per_dir = std::max<std::uint64_t>(1, cfg.dir_entries);
    Tree big{big_m, std::max<std::uint64_t>(cfg.objects, 1), per_dir};
    Tree small{small_m, std::min<std::uint64_t>(kSmall, big.count), per_dir};
    Results r;
    pin_phase(big, small, maps, r);
    probe_phase(cfg, big, small, maps, r);
    restart_phase(big, r);
    unlink_phase(cfg, big, r);
    report(big, small, r);
    return 0;
}

}  // namespace bpffs::bench
