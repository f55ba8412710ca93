// SPDX-License-Identifier: GPL-2.0-or-later
// Recovery from a damaged state log (daemon/recovery.hpp), without a daemon: a log written by a
// core as a worker writes it, damaged at every batch boundary and at hundreds of random bytes,
// then recovered with the objects a supervisor would hold. Each time: every name of the batches
// before the damage is back with its object, every other held object is under /.lost+found,
// none is released, and new nodes take inos the lost changes never gave. The daemon-level case
// (real kernel objects, a killed worker) is in persist_test.cpp.
#include "daemon/recovery.hpp"
#include "daemon/state_log.hpp"
#include "fsops/filesystem.hpp"
#include "fsops/names.hpp"
#include "tests/fsops_helpers.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace bpffs;
using namespace bpffs::fsops;
using bpffs::daemon::RecoveryInput;
using bpffs::daemon::RecoveryReport;
using bpffs::daemon::StateLog;
using bpffs::test::admin;

namespace {

// An object's place in a tree: (parent ino, name) -> handle.
using Names = std::map<std::pair<Ino, std::string>, ObjHandle>;

Names objects_of(const CoreState& s) {
    Names out;
    for (const NodeState& n : s.nodes) {
        if (n.handle && !n.removed) out[{n.parent, n.name}] = *n.handle;
    }
    return out;
}

// The log of a worker's life: two mkdirs, then pins, unlinks and more pins, one call (one batch)
// each. Kept: where each batch starts and the state before it.
struct History {
    std::unique_ptr<StateLog> log;
    Filesystem fs{MountOptions{0, 0, 0755}};
    std::vector<std::size_t> starts;  // of every batch, and the end of the last
    std::vector<CoreState> before;    // the state of the batches before each, and of all
    std::set<ObjHandle> held;         // what a supervisor holds at the end

    History() {
        auto l = StateLog::create();
        REQUIRE(l);
        log = std::move(*l);
        REQUIRE(fs.make_socket_node());  // the first worker binds its socket
        REQUIRE(log->reset_to(fs, false, [](int) {}) == 0);
        fs.set_change_sink([this](const std::vector<Change>& c) { log->append(c); });
        starts.push_back(4096);  // the first worker's: the new core's state
        before.push_back(CoreState{});
        starts.push_back(log->used());
        before.push_back(fs.snapshot());
        auto step = [&](auto&& call) {
            REQUIRE(call());
            starts.push_back(log->used());
            before.push_back(fs.snapshot());
        };
        Ino dir[2] = {0, 0};
        for (int i = 0; i < 2; ++i) {
            auto d = fs.mkdir(Caller::root(), kRootIno, i == 0 ? "d" : "e");
            REQUIRE(d);
            dir[i] = d->ino;
            starts.push_back(log->used());
            before.push_back(fs.snapshot());
        }
        for (ObjHandle h = 1; h <= 12; ++h) {
            step([&] {
                return fs.pin(admin(), dir[h % 2], "o" + std::to_string(h), ObjType::map, h);
            });
            held.insert(h);
        }
        for (ObjHandle h : {3, 4}) {  // released with their names
            step([&] { return fs.unlink(dir[h % 2], "o" + std::to_string(h)); });
            held.erase(h);
        }
        step([&] { return fs.pin(admin(), dir[0], "late", ObjType::prog, 20); });
        held.insert(20);
        REQUIRE(starts.size() == before.size());
    }

    // The log's bytes with `damage` applied, as a new worker would open it.
    // Cut to `size` bytes if given.
    std::unique_ptr<StateLog> damaged(const std::function<void(std::uint8_t*)>& damage,
                                      std::size_t cut = 0) const {
        UniqueFd copy(memfd_create("damaged", MFD_CLOEXEC));
        std::size_t size = log->capacity();
        std::vector<std::uint8_t> bytes(size);
        REQUIRE(pread(log->fd(), bytes.data(), size, 0) == static_cast<ssize_t>(size));
        damage(bytes.data());
        if (cut != 0) size = cut;
        REQUIRE(ftruncate(copy.get(), static_cast<off_t>(size)) == 0);
        REQUIRE(pwrite(copy.get(), bytes.data(), size, 0) == static_cast<ssize_t>(size));
        auto opened = StateLog::open(std::move(copy));
        REQUIRE(opened);
        return std::move(*opened);
    }

    RecoveryInput input() const {
        RecoveryInput in{"mode=0755", false, false, true, {}};
        for (ObjHandle h : held)
            in.held.push_back(HeldObject{h, h == 20 ? ObjType::prog : ObjType::map,
                                         static_cast<std::uint32_t>(100 + h)});
        return in;
    }
};

// Recovers from `log` and checks it against the state the batches before the damage gave.
// Returns what the report says, for the caller's own checks.
RecoveryReport check_recovered(const History& h, const StateLog& log, const CoreState& want) {
    RecoveryReport report;
    auto fs = daemon::recover(log, h.input(), report);
    REQUIRE(fs);
    const CoreState got = (*fs)->snapshot();
    Names have = objects_of(got);
    // Every object the supervisor holds has a name: none is released.
    for (ObjHandle held : h.held) CHECK(report.refs.count(held) == 1);
    // The names before the damage are back, those of objects still held.
    for (const auto& [where, handle] : objects_of(want)) {
        if (h.held.count(handle) == 0) continue;
        CHECK(have.count(where) == 1);
        if (have.count(where) == 1) CHECK(have.at(where) == handle);
        have.erase(where);
    }
    // The rest are the held objects that no name held, under /.lost+found as <kind>-<id>.
    auto lf = (*fs)->lookup(kRootIno, kLostFoundName);
    std::size_t kept = 0;
    for (const auto& [where, handle] : have) {
        REQUIRE(lf);
        CHECK(where.first == lf->ino);
        std::string kind = handle == 20 ? "prog-" : "map-";
        CHECK(where.second == kind + std::to_string(100 + handle));
        ++kept;
    }
    CHECK(report.kept.size() == kept);
    // Nodes recovery made take no ino the lost changes may have given.
    if (lf) CHECK(lf->ino >= h.before.back().meta.next_ino);
    CHECK((*fs)->lost_count() == kept);
    // The socket is where the kernel bound it.
    CHECK((*fs)->socket_ino() == kSocketIno);
    // A new node never takes an ino the lost changes may have given.
    if (report.lost_anything()) {
        auto fresh = (*fs)->mkdir(Caller::root(), kRootIno, "fresh");
        REQUIRE(fresh);
        CHECK(fresh->ino >= h.before.back().meta.next_ino);
    }
    return report;
}

}  // namespace

TEST_CASE("recovery: damage at every batch boundary keeps the batches before it and every object",
          "[persist][state_log][recovery]") {
    History h;
    for (std::size_t b = 0; b + 1 < h.starts.size(); ++b) {
        const std::size_t at = h.starts[b];
        INFO("batch " << b << " at byte " << at);
        SECTION("truncated at batch " + std::to_string(b)) {
            auto log = h.damaged([&](std::uint8_t* p) { std::memset(p + at, 0, 4); });
            auto r = check_recovered(h, *log, h.before[b]);
            CHECK(r.damaged_at == at);  // the batch's CRC says it was committed
        }
        SECTION("the file cut short at batch " + std::to_string(b)) {
            auto log = h.damaged([](std::uint8_t*) {}, at);
            auto r = check_recovered(h, *log, h.before[b]);
            CHECK(r.damaged_at == at);
        }
        SECTION("a damaged length at batch " + std::to_string(b)) {
            auto log = h.damaged([&](std::uint8_t* p) { p[at + 1] ^= 0x5a; });
            auto r = check_recovered(h, *log, h.before[b]);
            CHECK(r.damaged_at == at);
        }
        SECTION("a damaged first record at batch " + std::to_string(b)) {
            auto log = h.damaged([&](std::uint8_t* p) { p[at + 9] ^= 0x01; });
            auto r = check_recovered(h, *log, h.before[b]);
            CHECK(r.damaged_at == at);
            if (b == 0) {  // the whole log: an empty tree, honest about it
                CHECK(r.kept.size() == h.held.size());
            }
        }
    }
}

TEST_CASE("recovery: a damaged byte anywhere keeps the batches before its batch",
          "[persist][state_log][recovery]") {
    History h;
    std::mt19937 rng(20261205);
    std::uniform_int_distribution<std::size_t> any(h.starts.front(), h.starts.back() - 1);
    std::uniform_int_distribution<int> bits(1, 255);
    int cases = 0, in_padding = 0;
    for (int i = 0; i < 300; ++i) {
        const std::size_t at = any(rng);
        const auto x = static_cast<std::uint8_t>(bits(rng));
        INFO("byte " << at << " xor " << int(x));
        auto it = std::upper_bound(h.starts.begin(), h.starts.end(), at);
        const auto b = static_cast<std::size_t>(it - h.starts.begin()) - 1;
        auto log = h.damaged([&](std::uint8_t* p) { p[at] ^= x; });
        // A batch's padding is no part of it: damage there changes nothing.
        std::uint32_t total = 0;
        std::size_t pos = h.starts[b];
        REQUIRE(pread(h.log->fd(), &total, 4, static_cast<off_t>(pos)) == 4);
        if (at >= pos + 8 + total) {
            ++in_padding;
            auto r = check_recovered(h, *log, h.before.back());
            CHECK_FALSE(r.lost_anything());
            continue;
        }
        auto r = check_recovered(h, *log, h.before[b]);
        CHECK(r.damaged_at == pos);
        ++cases;
    }
    CHECK(cases > 250);
    CHECK(cases + in_padding == 300);
}

TEST_CASE("recovery: an undamaged log gives the tree back and keeps nothing aside",
          "[persist][state_log][recovery]") {
    History h;
    auto log = h.damaged([](std::uint8_t*) {});
    auto r = check_recovered(h, *log, h.before.back());
    CHECK_FALSE(r.lost_anything());
    CHECK(r.names_dropped == 0);
}

TEST_CASE("recovery: a pin the worker had not logged when it died is released, not kept",
          "[persist][state_log][recovery]") {
    History h;
    // The supervisor got object 30 (the broker holds it before the core names it); the worker
    // died writing that pin's batch: its records are there, its CRC and length still 0.
    auto log = h.damaged(
        [&](std::uint8_t* p) { std::memcpy(p + h.starts.back() + 8, "\x05\x01\x02\x03\x04", 5); });
    RecoveryInput in = h.input();
    in.held.push_back(HeldObject{30, ObjType::map, 130});
    RecoveryReport r;
    auto fs = daemon::recover(*log, in, r);
    REQUIRE(fs);
    CHECK_FALSE(r.lost_anything());
    CHECK(r.refs.count(30) == 0);  // the registry releases it
    CHECK(r.kept.empty());
    CHECK(objects_of((*fs)->snapshot()) == objects_of(h.before.back()));
}
