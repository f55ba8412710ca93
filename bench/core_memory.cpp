// SPDX-License-Identifier: GPL-2.0-or-later
// core_memory: what the core alone (fsops::Filesystem: no mount, no broker, no change sink) costs
// per pinned object, and whether its lookups and listings stay flat from 100 to 1,000,000
// objects. Pins `--dirs` x `--per-dir` objects (default 10 x 100,000, names like "obj000123")
// and prints the growth of the process RSS (/proc/self/statm) and of the malloc heap per object,
// then the cost of lookup, getattr, readdir and unlink at that size against the same calls on a
// core holding 100 objects. The machine is shared: timings are printed as ratios of medians
// (the two cores measured interleaved; `--ns` adds the medians), bytes are exact.
#include "fsops/filesystem.hpp"
#include "fsops/state.hpp"

#include <malloc.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace fsops = bpffs::fsops;

namespace {

// Resident set size in bytes, from /proc/self/statm (pages).
std::uint64_t rss_bytes() {
    std::ifstream in("/proc/self/statm");
    std::uint64_t size = 0, resident = 0;
    in >> size >> resident;
    return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

// Bytes malloc has handed out and not had back (small chunks and mmapped ones).
std::uint64_t heap_bytes() {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

std::string obj_name(std::uint64_t i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "obj%06llu", static_cast<unsigned long long>(i));
    return buf;
}

using Clock = std::chrono::steady_clock;

// One populated core: `dirs` directories under the root with `per_dir` objects each.
struct Tree {
    std::unique_ptr<fsops::Filesystem> fs = std::make_unique<fsops::Filesystem>();
    std::vector<fsops::Ino> dirs;
    std::vector<fsops::Ino> objects;     // inos, in pin order
    std::vector<std::uint64_t> cookies;  // of the first directory's entries, in listing order
    std::uint64_t per_dir = 0;

    Tree(std::uint64_t ndirs, std::uint64_t n) : per_dir(n) {
        auto root = fsops::Caller::root();
        objects.reserve(ndirs * n);
        for (std::uint64_t d = 0; d < ndirs; ++d) {
            auto a = fs->mkdir(root, fsops::kRootIno, "dir" + std::to_string(d));
            if (!a) fail("mkdir");
            dirs.push_back(a->ino);
            for (std::uint64_t i = 0; i < n; ++i) {
                auto p =
                    fs->pin(root, a->ino, obj_name(i), fsops::ObjType::map, objects.size() + 1);
                if (!p) fail("pin");
                objects.push_back(p->ino);
            }
        }
        auto listed = fs->readdir(dirs[0], 0, false, [&](const fsops::DirEntry& e) {
            if (e.name != "." && e.name != "..") cookies.push_back(e.next_off);
            return true;
        });
        if (!listed) fail("readdir");
    }
    [[noreturn]] static void fail(const char* what) {
        std::fprintf(stderr, "core_memory: error: %s failed\n", what);
        std::exit(1);
    }
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Runs `op(tree, rng)` `batch` times per round on both trees, interleaved, and returns the
// median nanoseconds per call of each.
template <class Op>
std::pair<double, double> compare(Tree& big, Tree& small, int rounds, int batch, Op op) {
    std::vector<double> b, s;
    std::mt19937_64 rng(42);
    for (int r = 0; r < rounds; ++r) {
        for (Tree* t : {&big, &small}) {
            auto t0 = Clock::now();
            for (int i = 0; i < batch; ++i) op(*t, rng);
            double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
            (t == &big ? b : s).push_back(ns / batch);
        }
    }
    return {median(b), median(s)};
}

bool g_show_ns = false;  // --ns: the medians too

void row(const char* what, std::pair<double, double> ns) {
    std::printf("%-44s %9.2fx", what, ns.first / ns.second);
    if (g_show_ns) std::printf("   (%.0f ns against %.0f ns)", ns.first, ns.second);
    std::printf("\n");
}

std::uint64_t flag_value(int argc, char** argv, const char* flag, std::uint64_t dflt) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], flag) == 0) return std::strtoull(argv[i + 1], nullptr, 10);
    return dflt;
}

// What a compaction of the state log does with this core, without the memfd: stream every node
// through the codec (the log adds a length byte or two per record).
void stream_rows(const Tree& big) {
    std::string buf;
    std::uint64_t bytes = 0, records = 0;
    auto s0 = Clock::now();
    big.fs->stream_state([&](const fsops::Change& c) {
        buf.clear();
        fsops::encode_to(c, buf);
        bytes += buf.size();
        ++records;
    });
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - s0).count();
    std::printf("%-44s %9.1f ms\n", "stream_state + encode of every node", ms);
    std::printf("%-44s %9.1f B\n", "encoded state per node",
                static_cast<double>(bytes) / static_cast<double>(records));
}

// Single calls at random places: lookups, getattr, a page of readdir.
void call_rows(Tree& big, Tree& small) {
    const int rounds = 9, batch = 20000;
    row("lookup of an existing name", compare(big, small, rounds, batch, [](Tree& t, auto& rng) {
            auto i = rng() % t.objects.size();
            auto r = t.fs->lookup(t.dirs[i / t.per_dir], obj_name(i % t.per_dir));
            if (!r) Tree::fail("lookup");
        }));
    row("lookup of a missing name", compare(big, small, rounds, batch, [](Tree& t, auto& rng) {
            auto i = rng() % t.objects.size();
            // Sorts right after an existing name, so no structure finds it on a shortcut.
            auto r = t.fs->lookup(t.dirs[i / t.per_dir], obj_name(i % t.per_dir) + "x");
            if (r) Tree::fail("lookup of a missing name");
        }));
    row("getattr", compare(big, small, rounds, batch, [](Tree& t, auto& rng) {
            if (!t.fs->getattr(t.objects[rng() % t.objects.size()])) Tree::fail("getattr");
        }));
    row("readdir: 32 entries from a random offset",
        compare(big, small, rounds, batch / 10, [](Tree& t, auto& rng) {
            std::uint64_t off = t.cookies[rng() % (t.cookies.size() - 32)];
            int n = 0;
            auto r = t.fs->readdir(t.dirs[0], off, false,
                                   [&](const fsops::DirEntry&) { return ++n < 32; });
            if (!r || n != 32) Tree::fail("readdir");
        }));
}

// A whole directory, per entry: 100,000 entries against 100.
void whole_dir_row(Tree& big, Tree& small) {
    std::vector<double> b, s;
    for (int r = 0; r < 5; ++r) {
        for (Tree* t : {&big, &small}) {
            std::uint64_t n = 0;
            auto start = Clock::now();
            auto r = t->fs->readdir(t->dirs[0], 0, false, [&](const fsops::DirEntry&) {
                ++n;
                return true;
            });
            if (!r) Tree::fail("readdir");
            double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count();
            (t == &big ? b : s).push_back(ns / n);
        }
    }
    row("readdir of a whole directory, per entry", {median(b), median(s)});
}

// Unlinks everything, in a random order; nanoseconds per call. The lookups above are forgotten
// first, as the kernel would, so that no removed node stays behind.
double unlink_all(Tree& t) {
    for (fsops::Ino ino : t.objects) t.fs->forget(ino, t.fs->nlookup(ino));
    std::vector<std::uint64_t> order(t.objects.size());
    for (std::uint64_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), std::mt19937_64(7));
    auto start = Clock::now();
    for (auto i : order) {
        if (!t.fs->unlink(t.dirs[i / t.per_dir], obj_name(i % t.per_dir))) Tree::fail("unlink");
    }
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / order.size();
}

}  // namespace

int main(int argc, char** argv) {
    std::uint64_t ndirs = flag_value(argc, argv, "--dirs", 10);
    std::uint64_t per_dir = flag_value(argc, argv, "--per-dir", 100000);
    std::uint64_t total = ndirs * per_dir;
    for (int i = 1; i < argc; ++i) g_show_ns = g_show_ns || std::strcmp(argv[i], "--ns") == 0;
    if (ndirs == 0 || per_dir < 100) {  // the small core holds 100
        std::fprintf(stderr, "usage: core_memory [--dirs N] [--per-dir N, at least 100] [--ns]\n");
        return 2;
    }

    std::uint64_t rss0 = rss_bytes(), heap0 = heap_bytes();
    auto t0 = Clock::now();
    Tree big(ndirs, per_dir);
    double pin_s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::uint64_t rss1 = rss_bytes(), heap1 = heap_bytes();
    // Tree's own vectors (inos and cookies) are not the core's: take them out of the figure.
    std::uint64_t own = big.objects.capacity() * sizeof(fsops::Ino) +
                        big.cookies.capacity() * sizeof(std::uint64_t);

    std::printf("# core_memory: %llu dirs x %llu objects = %llu pinned objects in one core\n",
                static_cast<unsigned long long>(ndirs), static_cast<unsigned long long>(per_dir),
                static_cast<unsigned long long>(total));
    std::printf("%-44s %9.1f\n", "pins/s (one thread, no sink)", total / pin_s);
    std::printf("%-44s %9.1f B\n", "RSS per object",
                (static_cast<double>(rss1) - rss0 - own) / total);
    std::printf("%-44s %9.1f B\n", "malloc heap per object",
                (static_cast<double>(heap1) - heap0 - own) / total);
    std::printf("%-44s %9llu\n", "nodes in the core",
                static_cast<unsigned long long>(big.fs->node_count()));
    stream_rows(big);

    Tree small(1, 100);
    std::printf("# timings: %llu objects against 100 (median ns/call ratio; 1.00x is flat)\n",
                static_cast<unsigned long long>(total));
    call_rows(big, small);
    whole_dir_row(big, small);
    double b = unlink_all(big), s = unlink_all(small);
    row("unlink, random order (one pass)", {b, s});
    // What stays: the node slab (its slots are reused, not returned) and what malloc keeps.
    std::uint64_t rss2 = rss_bytes(), heap2 = heap_bytes();
    std::printf("%-44s %9.1f B\n", "after unlinking all: RSS per object",
                (static_cast<double>(rss2) - rss0 - own) / total);
    std::printf("%-44s %9.1f B\n", "after unlinking all: heap per object",
                (static_cast<double>(heap2) - heap0 - own) / total);
    return 0;
}
