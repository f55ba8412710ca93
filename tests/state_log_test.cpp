// SPDX-License-Identifier: GPL-2.0-or-later
// Tests of the state log (daemon/state_log.hpp) on its own, without a daemon: batches appended
// from a core's change sink read back as the core's state, also through a second open() of the
// memfd (what a new worker does); compaction streams the core into a new memfd that replaces the
// old one under the core's lock; a half-written batch is not seen; a damaged batch ends the log
// there (what came before reads back); a header that is not a state log's is refused (EINVAL), a
// log of another format version with a message that says so. No root needed.
#include "daemon/state_log.hpp"
#include "fsops/filesystem.hpp"
#include "fsops/state.hpp"
#include "tests/fsops_helpers.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace bpffs;
using namespace bpffs::fsops;
using bpffs::daemon::StateLog;
using bpffs::test::admin;

namespace {

std::unique_ptr<StateLog> new_log() {
    auto log = StateLog::create();
    REQUIRE(log);
    return std::move(*log);
}

UniqueFd dup_of(int fd) { return UniqueFd(fcntl(fd, F_DUPFD_CLOEXEC, 3)); }

// A core whose changes go to `log`, seeded with its state, as a worker runs it.
struct Logged {
    std::unique_ptr<StateLog> log = new_log();
    Filesystem fs{MountOptions{0, 0, 0755}};
    std::vector<int> published;

    Logged() {
        REQUIRE(log->reset_to(fs, false, [this](int fd) { published.push_back(fd); }) == 0);
        fs.set_change_sink([this](const std::vector<Change>& c) { log->append(c); });
    }
    void pin_many(Ino dir, int from, int to) {
        for (int i = from; i < to; ++i) {
            REQUIRE(fs.pin(admin(), dir, "o" + std::to_string(i), ObjType::map,
                           static_cast<ObjHandle>(i % 5)));
        }
    }
};

std::size_t file_size(int fd) {
    struct stat st {};
    REQUIRE(fstat(fd, &st) == 0);
    return static_cast<std::size_t>(st.st_size);
}

// Reads or writes bytes of a memfd (a second mapping would do; pread/pwrite are shorter).
std::string bytes_at(int fd, std::size_t off, std::size_t n) {
    std::string s(n, '\0');
    REQUIRE(pread(fd, s.data(), n, static_cast<off_t>(off)) == static_cast<ssize_t>(n));
    return s;
}
void write_at(int fd, std::size_t off, const std::string& s) {
    REQUIRE(pwrite(fd, s.data(), s.size(), static_cast<off_t>(off)) ==
            static_cast<ssize_t>(s.size()));
}

}  // namespace

TEST_CASE("state log: appended changes read back as the core's state, also after open()",
          "[persist][state_log]") {
    Logged l;
    auto d = l.fs.mkdir(Caller::root(), kRootIno, "d");
    REQUIRE(d);
    l.pin_many(d->ino, 0, 300);
    REQUIRE(l.fs.lookup(d->ino, "o5"));
    REQUIRE(l.fs.get(Caller::root(), l.fs.lookup(d->ino, "o6")->ino));
    REQUIRE(l.fs.unlink(d->ino, "o5"));
    auto got = l.log->read();
    REQUIRE(got);
    CHECK(*got == l.fs.snapshot());

    auto again = StateLog::open(dup_of(l.log->fd()));
    REQUIRE(again);
    CHECK((*again)->used() == l.log->used());
    auto got2 = (*again)->read();
    REQUIRE(got2);
    CHECK(*got2 == l.fs.snapshot());
}

TEST_CASE("state log: a pin costs under 100 bytes, a lookup under 20", "[persist][state_log]") {
    Logged l;
    auto d = l.fs.mkdir(Caller::root(), kRootIno, "d");
    REQUIRE(d);
    l.pin_many(d->ino, 0, 1000);  // warm: names and inos of the sizes below
    std::size_t before = l.log->used();
    l.pin_many(d->ino, 1000, 2000);
    std::size_t per_pin = (l.log->used() - before) / 1000;
    before = l.log->used();
    for (int i = 0; i < 1000; ++i) REQUIRE(l.fs.lookup(d->ino, "o1500"));
    std::size_t per_lookup = (l.log->used() - before) / 1000;
    INFO("per pin " << per_pin << " B, per lookup " << per_lookup << " B");
    CHECK(per_pin < 100);
    CHECK(per_lookup < 20);
}

TEST_CASE("state log: compaction streams the core into a new memfd that replaces the log",
          "[persist][state_log][compact]") {
    Logged l;
    auto d = l.fs.mkdir(Caller::root(), kRootIno, "d");
    REQUIRE(d);
    l.pin_many(d->ino, 0, 2000);
    for (int i = 0; i < 2000; ++i) REQUIRE(l.fs.lookup(d->ino, "o" + std::to_string(i % 7)));
    std::size_t before = l.log->used();
    int old_fd = l.log->fd();
    UniqueFd old_copy = dup_of(old_fd);  // as the supervisor holds it
    l.published.clear();
    int seen_by_publish = -1;
    REQUIRE(l.log->compact(l.fs, [&](int fd) {
        l.published.push_back(fd);
        seen_by_publish = fd;
    }) == 0);
    REQUIRE(l.published.size() == 1);
    CHECK(l.log->fd() == seen_by_publish);  // the log now writes there
    CHECK(l.log->used() < before / 2);
    auto got = l.log->read();
    REQUIRE(got);
    CHECK(*got == l.fs.snapshot());

    // Changes after the compaction land in the new log; the old one stays as it was.
    auto old_state = StateLog::open(std::move(old_copy));
    REQUIRE(old_state);
    std::size_t old_used = (*old_state)->used();
    REQUIRE(l.fs.unlink(d->ino, "o3"));
    l.pin_many(d->ino, 5000, 5010);
    CHECK((*old_state)->used() == old_used);
    auto reopened = StateLog::open(dup_of(l.log->fd()));
    REQUIRE(reopened);
    auto after = (*reopened)->read();
    REQUIRE(after);
    CHECK(*after == l.fs.snapshot());
    auto fs2 = Filesystem::restore(*after);
    REQUIRE(fs2);
    CHECK((*fs2)->snapshot() == l.fs.snapshot());
}

TEST_CASE("state log: wants compaction past its floor and 1.5 times its compacted size",
          "[persist][state_log][compact]") {
    Logged l;
    auto d = l.fs.mkdir(Caller::root(), kRootIno, "d");
    REQUIRE(d);
    l.pin_many(d->ino, 0, 1000);
    REQUIRE(l.log->compact(l.fs, [](int) {}) == 0);
    const std::size_t compacted = l.log->used();
    l.log->set_compaction_floor(compacted * 10);
    auto ino = l.fs.lookup(d->ino, "o1")->ino;
    for (std::uint32_t mode = 0600; l.log->used() * 2 <= compacted * 3; mode ^= 040) {
        SetAttr chmod;  // each is logged (a get, under relatime, mostly is not)
        chmod.mode = mode;
        REQUIRE(l.fs.setattr(ino, chmod));
    }
    CHECK_FALSE(l.log->wants_compaction());  // below the floor
    l.log->set_compaction_floor(0);
    CHECK(l.log->wants_compaction());
    REQUIRE(l.log->compact(l.fs, [](int) {}) == 0);
    CHECK(l.log->used() < compacted + 16);  // the chmods changed one node, nothing else
    CHECK_FALSE(l.log->wants_compaction());
}

TEST_CASE("state log: compaction keeps the FUSE_INIT request, and a reset for a new mount drops it",
          "[persist][state_log][compact]") {
    Logged l;
    std::vector<std::uint8_t> init{1, 2, 3, 4, 5};
    l.log->set_init(init);
    REQUIRE(l.log->compact(l.fs, [](int) {}) == 0);
    CHECK(l.log->init() == init);
    REQUIRE(l.log->reset_to(l.fs, false, [](int) {}) == 0);
    CHECK(l.log->init().empty());
}

TEST_CASE("state log: compaction of a state larger than the first mapping grows the new memfd",
          "[persist][state_log][compact]") {
    Logged l;
    auto d = l.fs.mkdir(Caller::root(), kRootIno, "d");
    REQUIRE(d);
    // Long names: ~300 bytes per node, 6000 nodes: past the 1 MiB a log starts with.
    std::string pad(250, 'x');
    for (int i = 0; i < 6000; ++i) {
        REQUIRE(l.fs.pin(admin(), d->ino, pad + std::to_string(i), ObjType::prog, 1));
    }
    REQUIRE(l.log->compact(l.fs, [](int) {}) == 0);
    CHECK(file_size(l.log->fd()) > (1u << 20));
    auto got = l.log->read();
    REQUIRE(got);
    CHECK(*got == l.fs.snapshot());
}

TEST_CASE("state log: a batch whose length word was never written is not seen",
          "[persist][state_log]") {
    Logged l;
    REQUIRE(l.fs.mkdir(Caller::root(), kRootIno, "a"));
    const auto want = l.fs.snapshot();
    std::size_t end = l.log->used();
    // A crash in the middle of an append: records written, the length word still 0.
    write_at(l.log->fd(), end + 4, std::string("\x05\x02\x07", 3));
    auto again = StateLog::open(dup_of(l.log->fd()));
    REQUIRE(again);
    CHECK((*again)->used() == end);
    auto got = (*again)->read();
    REQUIRE(got);
    CHECK(*got == want);
}

TEST_CASE(
    "state log: a corrupt batch ends the log there, what came before reads back, and a "
    "bad header is EINVAL",
    "[persist][state_log]") {
    // Reads the log after `corrupt` damaged its last batch: the state it gives must be the one
    // before that batch, and the damage reported at that batch.
    auto corrupt_then_read = [](auto&& corrupt) {
        Logged l;
        REQUIRE(l.fs.mkdir(Caller::root(), kRootIno, "a"));
        REQUIRE(l.fs.lookup(kRootIno, "a"));
        const auto before = l.fs.snapshot();
        std::size_t last = l.log->used();
        REQUIRE(l.fs.lookup(kRootIno, "a"));  // the last batch: one lookups record
        const std::size_t end = l.log->used();
        corrupt(l.log->fd(), last);
        auto log = StateLog::open(dup_of(l.log->fd()));
        REQUIRE(log);
        std::size_t damaged_at = 0;
        auto got = (*log)->read(&damaged_at);
        REQUIRE(got);
        CHECK(*got == before);
        CHECK(end > last);
        return damaged_at == last;
    };
    // The last batch is | total u32 | crc32 u32 | len | kind 1 | ino | nlookup | pad |.
    SECTION("a record that does not decode") {
        CHECK(corrupt_then_read([](int fd, std::size_t at) { write_at(fd, at + 9, "\x09"); }));
    }
    SECTION("a record length of 0") {
        CHECK(corrupt_then_read(
            [](int fd, std::size_t at) { write_at(fd, at + 8, std::string("\0", 1)); }));
    }
    SECTION("a record length past the batch") {
        CHECK(corrupt_then_read([](int fd, std::size_t at) { write_at(fd, at + 8, "\x7f"); }));
    }
    SECTION("a record length that is not a minimal varint") {
        CHECK(corrupt_then_read(
            [](int fd, std::size_t at) { write_at(fd, at + 8, std::string("\x83\x00", 2)); }));
    }
    SECTION("a batch longer than its records") {
        CHECK(corrupt_then_read([](int fd, std::size_t at) {
            std::string total = bytes_at(fd, at, 4);
            total[0] = static_cast<char>(total[0] + 1);
            write_at(fd, at, total);
        }));
    }

    SECTION("a header that is not a state log's") {
        auto log = new_log();
        write_at(log->fd(), 0, "NOTALOG!");
        std::string why;
        auto r = StateLog::open(dup_of(log->fd()), &why);
        REQUIRE_FALSE(r);
        CHECK(r.error().value == EINVAL);
        CHECK(why == "not a state log");
    }
    SECTION("a log of format version 1 is refused with a message that says so") {
        auto log = new_log();
        std::uint32_t v1 = 1;
        write_at(log->fd(), 8, std::string(reinterpret_cast<const char*>(&v1), 4));
        std::string why;
        auto r = StateLog::open(dup_of(log->fd()), &why);
        REQUIRE_FALSE(r);
        CHECK(r.error().value == EINVAL);
        CHECK(why == "a state log of format version 1; this binary reads versions 2 and 3");
    }
    SECTION("a file too small for the header") {
        UniqueFd fd(memfd_create("not-a-log", MFD_CLOEXEC));
        REQUIRE(ftruncate(fd.get(), 100) == 0);
        auto r = StateLog::open(std::move(fd));
        REQUIRE_FALSE(r);
        CHECK(r.error().value == EINVAL);
    }
}

TEST_CASE(
    "state log: a log of version 2 (no CRC), as an older worker left it, reads and is rewritten",
    "[persist][state_log]") {
    // An older daemon's log: | total u32 | records | padding |, one batch per change.
    Filesystem fs(MountOptions{0, 0, 0755});
    auto d = fs.mkdir(Caller::root(), kRootIno, "d");
    REQUIRE(d);
    REQUIRE(fs.pin(admin(), d->ino, "m", ObjType::map, 4));
    std::string batches;
    for (const Change& c : to_changes(fs.snapshot())) {
        std::string rec = encode(c);
        REQUIRE(rec.size() < 0x80);  // a one-byte length
        auto total = static_cast<std::uint32_t>(1 + rec.size());
        batches.append(reinterpret_cast<const char*>(&total), 4);
        batches += static_cast<char>(rec.size());
        batches += rec;
        batches.append((4 - total % 4) % 4, '\0');
    }
    auto log = new_log();
    const std::uint32_t v2 = 2;
    write_at(log->fd(), 8, std::string(reinterpret_cast<const char*>(&v2), 4));
    write_at(log->fd(), 4096, batches);
    auto old = StateLog::open(dup_of(log->fd()));
    REQUIRE(old);
    std::size_t damaged_at = 1;
    auto got = (*old)->read(&damaged_at);
    REQUIRE(got);
    CHECK(*got == fs.snapshot());
    CHECK(damaged_at == 0);
    // A worker's start rewrites it in this binary's version, which reads back.
    REQUIRE((*old)->reset_to(fs, true, [](int) {}) == 0);
    std::uint32_t version = 0;
    REQUIRE(pread((*old)->fd(), &version, 4, 8) == 4);
    CHECK(version == 3);
    auto again = StateLog::open(dup_of((*old)->fd()));
    REQUIRE(again);
    auto back = (*again)->read();
    REQUIRE(back);
    CHECK(*back == fs.snapshot());
}
