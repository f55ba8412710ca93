// SPDX-License-Identifier: GPL-2.0-or-later
// Tests of the core's persisted state (fsops/state.hpp): the byte codec of a Change, the change
// sink, snapshot() and restore(), and fresh_mount_view().
//
// The main test is a model test: seeded random operation sequences run on a Filesystem whose
// change sink feeds a StateBuilder (every change through encode and decode, as the log will
// carry it); after every call the builder's state must equal the core's snapshot. At the end the
// builder's state is restored into a second core, and both cores then run the same random
// operations in lockstep and must give the same results and snapshots. A fake clock that moves
// one second per call makes every timestamp deterministic.

#include "fsops/filesystem.hpp"
#include "fsops/state.hpp"
#include "tests/fsops_helpers.hpp"
#include "tests/result_helpers.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace bpffs::fsops;
using namespace bpffs::test;  // err_of, FakeClock, user, admin

namespace {

std::string str(const Timespec& t) { return std::to_string(t.sec) + "." + std::to_string(t.nsec); }

std::string str(const Attr& a) {
    std::ostringstream o;
    o << "{ino " << a.ino << " mode " << std::oct << a.mode << std::dec << " nlink " << a.nlink
      << " uid " << a.uid << " gid " << a.gid << " size " << a.size << " a " << str(a.atime)
      << " m " << str(a.mtime) << " c " << str(a.ctime) << "}";
    return o.str();
}

std::string str(const NodeState& n) {
    std::ostringstream o;
    o << "node " << n.ino << " parent " << n.parent << " cookie " << n.cookie << " name '" << n.name
      << "' " << str(n.attr) << " nlookup " << n.nlookup << " removed " << n.removed << " dir "
      << n.is_dir << " next_cookie " << n.next_cookie << " type " << int(n.type) << " handle "
      << (n.handle ? std::to_string(*n.handle) : "-");
    return o.str();
}

std::string str(const CoreMeta& m) {
    std::ostringstream o;
    o << "meta uid " << m.opts.uid << " gid " << m.opts.gid << " mode " << std::oct << m.opts.mode
      << std::dec << " next_ino " << m.next_ino << " socket " << m.socket_ino << " ro "
      << m.read_only;
    return o.str();
}

// The first difference between two states, for failure messages.
std::string first_difference(const CoreState& got, const CoreState& want) {
    if (!(got.meta == want.meta)) return "got " + str(got.meta) + ", want " + str(want.meta);
    std::size_t n = std::min(got.nodes.size(), want.nodes.size());
    for (std::size_t i = 0; i < n; ++i) {
        if (!(got.nodes[i] == want.nodes[i]))
            return "got " + str(got.nodes[i]) + ", want " + str(want.nodes[i]);
    }
    if (got.nodes.size() != want.nodes.size())
        return "got " + std::to_string(got.nodes.size()) + " nodes, want " +
               std::to_string(want.nodes.size());
    return "equal";
}

// Equality of the fields a change of its kind carries.
bool same_change(const Change& a, const Change& b) {
    if (a.kind != b.kind) return false;
    switch (a.kind) {
        case Change::Kind::put:
            return a.node == b.node;
        case Change::Kind::lookups:
            return a.ino == b.ino && a.nlookup == b.nlookup;
        case Change::Kind::erase:
            return a.ino == b.ino;
        case Change::Kind::meta:
            return a.meta == b.meta;
        case Change::Kind::times:
            return a.ino == b.ino && a.times == b.times;
    }
    return false;
}

Change put_of(NodeState n) {
    Change c;
    c.kind = Change::Kind::put;
    c.node = std::move(n);
    return c;
}

NodeState object_node(Ino ino, std::string name) {
    NodeState n;
    n.ino = ino;
    n.parent = 7;
    n.cookie = 12;
    n.name = std::move(name);
    n.attr.ino = ino;
    n.attr.mode = kIfReg | 0600;
    n.attr.nlink = 1;
    n.attr.uid = 1000;
    n.attr.gid = 4294967294u;
    n.attr.size = 0;
    n.attr.atime = {-5, 999999999};
    n.attr.mtime = {1700000000, 1};
    n.attr.ctime = {INT64_MAX, INT64_MIN};
    n.nlookup = 3;
    n.type = ObjType::prog;
    n.handle = 0xfedcba9876543210ull;
    return n;
}

// One valid record of every kind and shape the codec must carry.
std::vector<Change> sample_changes() {
    std::vector<Change> out;
    out.push_back(put_of(object_node(42, "m")));
    out.push_back(put_of(object_node(43, std::string(kNameMax, 'n'))));
    NodeState zero_handle = object_node(44, "z");
    zero_handle.handle = 0;  // a handle of 0 is a handle
    zero_handle.type = ObjType::map;
    out.push_back(put_of(zero_handle));
    NodeState removed = object_node(45, "gone");
    removed.removed = true;
    removed.handle.reset();
    removed.attr.nlink = 0;
    out.push_back(put_of(removed));
    NodeState linked = object_node(46, "first");  // compat=linux: hard links and a symlink
    linked.more_names = {{7, 13, "second"}, {9, 3, std::string(kNameMax, 's')}};
    linked.attr.nlink = 3;
    out.push_back(put_of(linked));
    NodeState sym = object_node(47, "s");
    sym.attr.mode = kIfLnk | 0777;
    sym.handle.reset();
    sym.target = std::string(kTargetMax, '/');
    out.push_back(put_of(sym));
    NodeState dir;
    dir.ino = 9;
    dir.parent = 1;
    dir.cookie = 3;
    dir.name = "d";
    dir.attr.ino = 9;
    dir.attr.mode = kIfDir | 02755;
    dir.attr.nlink = 5;
    dir.is_dir = true;
    dir.next_cookie = UINT64_MAX;
    dir.nlookup = UINT64_MAX;
    out.push_back(put_of(dir));
    NodeState root;
    root.ino = kRootIno;
    root.attr.ino = kRootIno;
    root.attr.mode = kIfDir | 0700;
    root.attr.nlink = 2;
    root.is_dir = true;
    root.next_cookie = 3;
    root.nlookup = 1;
    out.push_back(put_of(root));
    Change lookups;
    lookups.kind = Change::Kind::lookups;
    lookups.ino = 77;
    lookups.nlookup = 0x0102030405060708ull;
    out.push_back(lookups);
    Change erase;
    erase.kind = Change::Kind::erase;
    erase.ino = UINT64_MAX;
    out.push_back(erase);
    Change meta;
    meta.kind = Change::Kind::meta;
    meta.meta.opts = MountOptions{1001, 1002, 01777};
    meta.meta.next_ino = 123456789;
    meta.meta.socket_ino = 17;
    meta.meta.read_only = true;
    out.push_back(meta);
    meta.meta = CoreMeta{};
    out.push_back(meta);
    Change times;
    times.kind = Change::Kind::times;
    times.ino = 9;
    times.times = NodeTimes{{1700000000, 5}, {1700000000, 5}, {1700000000, 5}, 3, 104};
    out.push_back(times);
    times.ino = UINT64_MAX;  // every field at its extremes
    times.times =
        NodeTimes{{INT64_MIN, INT64_MAX}, {INT64_MAX, INT64_MIN}, {-1, 0}, UINT32_MAX, UINT64_MAX};
    out.push_back(times);
    return out;
}

// A realistic pinned object, as the core makes it at a million names.
NodeState pinned_node() {
    NodeState n;
    n.ino = 1000012;
    n.parent = 11;
    n.cookie = 100003;
    n.name = "o999999";
    n.attr.ino = n.ino;
    n.attr.mode = kIfReg | 0600;
    n.attr.nlink = 1;
    n.attr.atime = n.attr.mtime = n.attr.ctime = {1764000000, 123456789};
    n.type = ObjType::map;
    n.handle = 7;
    return n;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// The codec

TEST_CASE("state codec: every kind of change round-trips", "[fsops][state][codec]") {
    for (const Change& c : sample_changes()) {
        std::string bytes = encode(c);
        auto back = decode(bytes);
        INFO("kind " << int(c.kind) << " size " << bytes.size());
        REQUIRE(back.has_value());
        CHECK(same_change(*back, c));
        CHECK(encode(*back) == bytes);
    }
}

TEST_CASE("state codec: a name of 1 and of 255 bytes round-trips, 256 is EINVAL",
          "[fsops][state][codec]") {
    for (std::size_t len : {std::size_t{1}, kNameMax}) {
        auto back = decode(encode(put_of(object_node(5, std::string(len, 'q')))));
        REQUIRE(back.has_value());
        CHECK(back->node.name == std::string(len, 'q'));
    }
    auto r = decode(encode(put_of(object_node(5, std::string(kNameMax + 1, 'q')))));
    CHECK(err_of(r) == EINVAL);
}

TEST_CASE("state codec: every truncation of a valid record, and a byte more, is EINVAL",
          "[fsops][state][codec]") {
    for (const Change& c : sample_changes()) {
        std::string bytes = encode(c);
        for (std::size_t len = 0; len < bytes.size(); ++len) {
            // A copy of exactly len bytes, so that ASan sees any read beyond it.
            std::string cut = bytes.substr(0, len);
            INFO("kind " << int(c.kind) << " cut at " << len);
            CHECK(err_of(decode(cut)) == EINVAL);
        }
        CHECK(err_of(decode(bytes + '\0')) == EINVAL);
    }
}

TEST_CASE("state codec: a wrong kind, flag, bool or stray handle is EINVAL",
          "[fsops][state][codec]") {
    std::string put = encode(put_of(object_node(42, "m")));
    // The end of a put record: flags, next_cookie (0: one byte), the handle (a 64-bit value: 10
    // bytes).
    const std::size_t flags_at = put.size() - 12;
    REQUIRE(static_cast<unsigned char>(put[flags_at]) == (4 | 8));  // handle, prog

    auto with = [](std::string s, std::size_t at, char v) {
        s[at] = v;
        return s;
    };
    CHECK(err_of(decode(with(put, 0, 5))) == EINVAL);                   // kind
    CHECK(err_of(decode(with(put, 0, '\xff'))) == EINVAL);              // kind
    CHECK(err_of(decode(with(put, flags_at, '\x80' | 12))) == EINVAL);  // unknown flag
    // A target or further names the flags promise but the record lacks.
    CHECK(err_of(decode(with(put, flags_at, 32 | 12))) == EINVAL);
    CHECK(err_of(decode(with(put, flags_at, 64 | 12))) == EINVAL);
    CHECK(err_of(decode(with(put, flags_at, 32 | 12) + '\0')) == EINVAL);  // an empty target
    CHECK(err_of(decode(with(put, flags_at, 64 | 12) + '\0')) == EINVAL);  // no further name
    auto sym = decode(with(put, flags_at, 32 | 12) + "\x01t");
    REQUIRE(sym.has_value());
    CHECK(sym->node.target == "t");
    CHECK(err_of(decode(with(put, flags_at, 16 | 12))) == EINVAL);  // both prog and link
    auto link = decode(with(put, flags_at, 16 | 4));                // a link (compat=linux)
    REQUIRE(link.has_value());
    CHECK(link->node.type == ObjType::link);
    CHECK(encode(*link) == with(put, flags_at, 16 | 4));
    // No handle flag but handle bytes: the record would not re-encode the same.
    CHECK(err_of(decode(with(put, flags_at, 8))) == EINVAL);
    auto nh = decode(put.substr(0, put.size() - 10).replace(flags_at, 1, 1, '\x08'));
    REQUIRE(nh.has_value());
    CHECK_FALSE(nh->node.handle.has_value());
    CHECK(nh->node.type == ObjType::prog);

    Change meta;
    meta.kind = Change::Kind::meta;
    meta.meta.opts = MountOptions{0, 0, 0};
    std::string m = encode(meta);
    REQUIRE(m == std::string("\x03\0\0\0\0\0\0", 7));
    CHECK(decode(m).has_value());
    CHECK(err_of(decode(with(m, m.size() - 1, 4))) == EINVAL);  // flags: only read-only, linux
    auto linux = decode(with(m, m.size() - 1, 3));
    REQUIRE(linux.has_value());
    CHECK(linux->meta.read_only);
    CHECK(linux->meta.opts.compat == Compat::linux);
    CHECK(encode(*linux) == with(m, m.size() - 1, 3));
    CHECK(err_of(decode("")) == EINVAL);
}

TEST_CASE("state codec: varints that are not minimal or overflow their field are EINVAL",
          "[fsops][state][codec]") {
    const std::string tail("\0\0\0\0\0", 5);  // gid, mode, next_ino, socket_ino, read_only
    auto meta_with_uid = [&](std::string uid) { return "\x03" + uid + tail; };
    CHECK(decode(meta_with_uid(std::string("\0", 1))).has_value());
    CHECK(err_of(decode(meta_with_uid(std::string("\x80\x00", 2)))) == EINVAL);  // zero padded
    CHECK(err_of(decode(meta_with_uid(std::string("\x81\x00", 2)))) == EINVAL);
    CHECK(decode(meta_with_uid("\xff\xff\xff\xff\x0f"))->meta.opts.uid == UINT32_MAX);
    CHECK(err_of(decode(meta_with_uid("\x80\x80\x80\x80\x10"))) == EINVAL);  // 2^32: u32 field
    CHECK(err_of(decode(meta_with_uid("\x80"))) == EINVAL);  // runs into the next field's end
    // A 64-bit field: ten bytes at most, the last holding one bit.
    auto lookups = [](std::string v) { return "\x01\x05" + v; };  // ino 5, nlookup v
    std::string max64 = std::string(9, '\xff') + '\x01';
    CHECK(decode(lookups(max64))->nlookup == UINT64_MAX);
    CHECK(err_of(decode(lookups(std::string(9, '\xff') + '\x02'))) == EINVAL);
    CHECK(err_of(decode(lookups(std::string(10, '\xff') + '\x01'))) == EINVAL);
    CHECK(err_of(decode(lookups(std::string(9, '\x80') + '\x00'))) == EINVAL);
}

TEST_CASE("state codec: a pinned object's node, its parent's times and a lookup are small",
          "[fsops][state][codec]") {
    // What a pin at a million names appends (with the meta), and what every LOOKUP appends.
    std::string node = encode(put_of(pinned_node()));
    Change times;
    times.kind = Change::Kind::times;
    times.ino = 11;
    times.times = NodeTimes{{1764000000, 5}, {1764000000, 5}, {1764000000, 5}, 2, 100004};
    Change lookups;
    lookups.kind = Change::Kind::lookups;
    lookups.ino = 1000012;
    lookups.nlookup = 1;
    Change meta;
    meta.kind = Change::Kind::meta;
    meta.meta = CoreMeta{MountOptions{0, 0, 0755}, 1000013, 12, false};
    INFO("node " << node.size() << ", times " << encode(times).size() << ", lookups "
                 << encode(lookups).size() << ", meta " << encode(meta).size());
    CHECK(node.size() <= 44);  // 41: the name is 7 of them
    CHECK(encode(times).size() <= 20);
    CHECK(encode(lookups).size() <= 5);
    CHECK(encode(meta).size() <= 12);
    CHECK(same_change(*decode(node), put_of(pinned_node())));
}

TEST_CASE("state codec: garbage never crashes, and what decodes re-encodes to the same bytes",
          "[fsops][state][codec]") {
    std::mt19937_64 rng(20240601);
    auto byte = [&] { return static_cast<char>(rng() & 0xff); };
    int decoded = 0;
    auto check = [&](const std::string& bytes) {
        auto r = decode(bytes);
        if (r.has_value()) {
            ++decoded;
            CHECK(encode(*r) == bytes);
        } else {
            CHECK(r.error().value == EINVAL);
        }
    };
    // Random bytes of every small length, with a valid kind half the time.
    for (int i = 0; i < 20000; ++i) {
        std::string s(rng() % 80, '\0');
        for (char& ch : s) ch = byte();
        if (!s.empty() && (i & 1)) s[0] = static_cast<char>(rng() % 5);  // a valid kind
        check(s);
    }
    // Valid records with a few bytes changed.
    auto samples = sample_changes();
    for (int i = 0; i < 20000; ++i) {
        std::string s = encode(samples[rng() % samples.size()]);
        for (int k = 1 + rng() % 3; k > 0; --k) s[rng() % s.size()] = byte();
        check(s);
    }
    CHECK(decoded > 0);  // the mutations do hit valid records too
}

// ------------------------------------------------------------------------------------------
// StateBuilder

TEST_CASE("state builder: put, lookups, erase and meta replay into a sorted state",
          "[fsops][state]") {
    StateBuilder b;
    b.apply(put_of(object_node(9, "b")));
    b.apply(put_of(object_node(4, "a")));
    Change l;
    l.kind = Change::Kind::lookups;
    l.ino = 9;
    l.nlookup = 11;
    b.apply(l);
    l.ino = 1234;  // unknown: ignored
    b.apply(l);
    Change m;
    m.kind = Change::Kind::meta;
    m.meta.next_ino = 10;
    b.apply(m);
    CoreState s = b.state();
    REQUIRE(s.nodes.size() == 2);
    CHECK(s.nodes[0].ino == 4);
    CHECK(s.nodes[1].ino == 9);
    CHECK(s.nodes[1].nlookup == 11);
    CHECK(s.meta.next_ino == 10);
    Change e;
    e.kind = Change::Kind::erase;
    e.ino = 4;
    b.apply(e);
    CHECK(b.state().nodes.size() == 1);

    StateBuilder again;
    again.apply(to_changes(b.state()));
    CHECK(again.state() == b.state());
    CHECK(StateBuilder(b.state()).state() == b.state());
}

TEST_CASE("state builder: times sets a node's times, nlink and next cookie, nothing else",
          "[fsops][state]") {
    StateBuilder b;
    NodeState n = object_node(9, "b");
    b.apply(put_of(n));
    Change t;
    t.kind = Change::Kind::times;
    t.ino = 9;
    t.times = NodeTimes{{1, 2}, {3, 4}, {5, 6}, 0, 77};
    b.apply(t);
    n.attr.atime = {1, 2};
    n.attr.mtime = {3, 4};
    n.attr.ctime = {5, 6};
    n.attr.nlink = 0;
    n.next_cookie = 77;
    REQUIRE(b.state().nodes.size() == 1);
    CHECK(b.state().nodes[0] == n);
    t.ino = 10;  // unknown: ignored, as lookups
    b.apply(t);
    CHECK(b.state().nodes.size() == 1);
}

// ------------------------------------------------------------------------------------------
// stream_state

namespace {

// A core with directories, objects, a removed node still referenced, the socket node and a
// node with wide attributes: every shape state_of() has.
void populate(Filesystem& fs, FakeClock& clk) {
    auto d = fs.mkdir(Caller::root(), kRootIno, "d");
    REQUIRE(d);
    for (int i = 0; i < 50; ++i) {
        clk.advance(1);
        REQUIRE(fs.pin(admin(), d->ino, "o" + std::to_string(i),
                       i % 3 ? ObjType::map : ObjType::prog, static_cast<ObjHandle>(i)));
    }
    auto gone = fs.lookup(d->ino, "o7");
    REQUIRE(gone);
    REQUIRE(fs.unlink(d->ino, "o7"));  // removed, still looked up
    REQUIRE(fs.make_socket_node());
    SetAttr wide;
    wide.size = 5;
    REQUIRE(fs.setattr(gone->ino + 1, wide));
    REQUIRE(fs.get(Caller::root(), gone->ino + 2));
}

}  // namespace

TEST_CASE("stream_state: streams the snapshot's meta and nodes, then runs done once",
          "[fsops][state][stream]") {
    FakeClock clk;
    Filesystem fs({1000, 1000, 0750}, clk.clock());
    populate(fs, clk);
    StateBuilder b;
    int records = 0, dones = 0;
    bool meta_first = false;
    fs.stream_state(
        [&](const Change& c) {
            if (records++ == 0) meta_first = c.kind == Change::Kind::meta;
            CHECK(dones == 0);
            auto d = decode(encode(c));  // through the codec, as a compaction writes them
            REQUIRE(d);
            b.apply(*d);
        },
        [&] { ++dones; });
    CHECK(meta_first);
    CHECK(dones == 1);
    CHECK(records == static_cast<int>(fs.node_count()) + 1);
    CHECK(b.state() == fs.snapshot());
    StateBuilder again;
    again.apply(to_changes(fs.snapshot()));
    CHECK(again.state() == b.state());
}

TEST_CASE(
    "stream_state: a log compacted mid-way by streaming, then the changes after, rebuilds "
    "the core",
    "[fsops][state][stream]") {
    FakeClock clk;
    Filesystem fs({}, clk.clock());
    std::vector<std::string> log;  // encoded records, as the state log holds them
    fs.set_change_sink([&](const std::vector<Change>& cs) {
        for (const Change& c : cs) log.push_back(encode(c));
    });
    populate(fs, clk);
    // Compaction as the worker does it: the stream goes into a new log, which replaces the old
    // one in `done`, under the core's lock.
    std::vector<std::string> fresh;
    fs.stream_state([&](const Change& c) { fresh.push_back(encode(c)); }, [&] { log.swap(fresh); });
    CHECK(log.size() == fs.node_count() + 1);
    auto d2 = fs.mkdir(Caller::root(), kRootIno, "later");
    REQUIRE(d2);
    REQUIRE(fs.pin(admin(), d2->ino, "x", ObjType::map, 99));
    REQUIRE(fs.unlink(fs.lookup(kRootIno, "d")->ino, "o3"));
    fs.forget(fs.lookup(kRootIno, "d")->ino, 1);
    StateBuilder b;
    for (const std::string& r : log) {
        auto c = decode(r);
        REQUIRE(c);
        b.apply(*c);
    }
    CHECK(b.state() == fs.snapshot());
    auto restored = Filesystem::restore(b.state(), clk.clock());
    REQUIRE(restored);
    CHECK((*restored)->snapshot() == fs.snapshot());
}

// ------------------------------------------------------------------------------------------
// The change sink

namespace {

// A core whose changes go through the codec into a StateBuilder, batch by batch.
struct Logged {
    FakeClock clk;
    Filesystem fs;
    StateBuilder builder;
    std::vector<std::vector<Change>> batches;

    explicit Logged(MountOptions o = {}) : fs(o, clk.clock()), builder(fs.snapshot()) {
        fs.set_change_sink([this](const std::vector<Change>& cs) {
            batches.push_back(cs);
            for (const Change& c : cs) {
                auto d = decode(encode(c));
                if (d.has_value()) builder.apply(*d);
            }
        });
    }
    bool in_sync() const { return builder.state() == fs.snapshot(); }
};

}  // namespace

TEST_CASE("change sink: mkdir reports the new dir, its parent and the meta in one call",
          "[fsops][state][sink]") {
    Logged l;
    auto a = l.fs.mkdir(Caller::root(), kRootIno, "a");
    REQUIRE(a.has_value());
    REQUIRE(l.batches.size() == 1);
    const auto& b = l.batches[0];
    REQUIRE(b.size() == 3);
    CHECK(b[0].kind == Change::Kind::put);
    CHECK(b[0].node.ino == a->ino);
    CHECK(b[0].node.nlookup == 1);
    CHECK(b[0].node.attr.nlink == 2);
    CHECK(b[1].kind == Change::Kind::times);  // the parent: nlink and next cookie, not all of it
    CHECK(b[1].ino == kRootIno);
    CHECK(b[1].times.nlink == 3);
    CHECK(b[1].times.next_cookie == 4);
    CHECK(b[2].kind == Change::Kind::meta);
    CHECK(b[2].meta.next_ino == a->ino + 1);
    CHECK(l.in_sync());
}

TEST_CASE("change sink: failed calls and reads report nothing", "[fsops][state][sink]") {
    Logged l;
    REQUIRE(l.fs.mkdir(Caller::root(), kRootIno, "a").has_value());
    l.batches.clear();
    CHECK(err_of(l.fs.mkdir(Caller::root(), kRootIno, "a")) == EEXIST);
    CHECK(err_of(l.fs.lookup(kRootIno, "nope")) == ENOENT);
    CHECK(err_of(l.fs.rmdir(kRootIno, "nope")) == ENOENT);
    CHECK(err_of(l.fs.pin(user(5, 5), kRootIno, "m", ObjType::map, 1)) == EPERM);
    CHECK(err_of(l.fs.setattr(999, SetAttr{})) == ENOENT);
    CHECK(err_of(l.fs.get(Caller::root(), kRootIno)) == EACCES);
    l.fs.forget(999, 1);
    l.fs.forget(kRootIno, 0);
    l.fs.set_read_only(false);  // already
    CHECK(l.fs.getattr(kRootIno).has_value());
    CHECK(l.fs.readdir(kRootIno, 0, false, [](const DirEntry&) { return true; }).has_value());
    CHECK(l.fs.opendir(kRootIno).has_value());
    (void)l.fs.snapshot();
    CHECK(l.batches.empty());
}

TEST_CASE("change sink: readdirplus reports one lookups change per entry it counted",
          "[fsops][state][sink]") {
    Logged l;
    for (const char* n : {"a", "b", "c"}) REQUIRE(l.fs.mkdir(Caller::root(), kRootIno, n));
    l.batches.clear();
    int seen = 0;
    REQUIRE(l.fs.readdir(kRootIno, 0, true, [&](const DirEntry&) { return ++seen <= 4; }));
    REQUIRE(l.batches.size() == 1);
    const auto& b = l.batches[0];
    REQUIRE(b.size() == 2);  // ".", ".." and a, b accepted; c refused
    for (const Change& c : b) {
        CHECK(c.kind == Change::Kind::lookups);
        CHECK(c.nlookup == 2);
    }
    CHECK(l.in_sync());
}

TEST_CASE("change sink: forget of a removed node's last lookup reports an erase",
          "[fsops][state][sink]") {
    Logged l;
    auto a = l.fs.mkdir(Caller::root(), kRootIno, "a");
    REQUIRE(a);
    REQUIRE(l.fs.rmdir(kRootIno, "a"));
    CHECK(l.fs.exists(a->ino));
    l.batches.clear();
    l.fs.forget(a->ino, 1);
    REQUIRE(l.batches.size() == 1);
    REQUIRE(l.batches[0].size() == 1);
    CHECK(l.batches[0][0].kind == Change::Kind::erase);
    CHECK(l.batches[0][0].ino == a->ino);
    CHECK(l.in_sync());
}

TEST_CASE("change sink: a sink set later starts from a snapshot, and an empty sink stops reports",
          "[fsops][state][sink]") {
    FakeClock clk;
    Filesystem fs({}, clk.clock());
    REQUIRE(fs.mkdir(Caller::root(), kRootIno, "early"));
    StateBuilder b;
    b.apply(to_changes(fs.snapshot()));
    int calls = 0;
    fs.set_change_sink([&](const std::vector<Change>& cs) {
        ++calls;
        b.apply(cs);
    });
    REQUIRE(fs.mkdir(Caller::root(), kRootIno, "late"));
    CHECK(b.state() == fs.snapshot());
    fs.set_change_sink(nullptr);
    REQUIRE(fs.mkdir(Caller::root(), kRootIno, "unseen"));
    CHECK(calls == 1);
}

// ------------------------------------------------------------------------------------------
// The model test: random calls, a log that follows, restore, lockstep

namespace {

// One random call, drawn before it is run so that two cores can run the same one.
struct Op {
    enum Kind {
        mkdir,
        pin,
        rmdir,
        unlink,
        lookup,
        forget,
        readdir,
        setattr,
        get,
        getattr,
        make_socket,
        set_read_only,
        apply_options,
        release_all,
        rename,  // compat=linux's name operations (the seed: EPERM)
        link,
        symlink,
        readlink
    } kind = mkdir;
    Ino ino = 0;  // the parent, or the node
    std::string name;
    Ino ino2 = 0;         // rename: the new parent; link: the node; readlink: the node
    std::string name2;    // rename: the new name; symlink: the target
    unsigned flags = 0;   // rename
    std::uint64_t n = 0;  // forget count, readdir offset, handle
    int limit = 0;        // readdir: entries accepted (-1: all)
    bool flag = false;    // readdir plus, pin type, set_read_only, get as root
    SetAttr sa;
    MountOptions opts;
};

// The first kGoodNames are names mkdir and pin accept.
constexpr unsigned kGoodNames = 7;
const std::vector<std::string>& name_pool() {
    static const std::vector<std::string> names = {"a",
                                                   "b",
                                                   "c",
                                                   "d",
                                                   "e",
                                                   "f",
                                                   std::string(kNameMax, 'x'),
                                                   std::string(kSocketName),
                                                   ".",
                                                   "..",
                                                   "dot.ted",
                                                   std::string(kNameMax + 1, 'y')};
    return names;
}

class Gen {
public:
    explicit Gen(std::uint64_t seed) : rng_(seed) {}

    unsigned pick(unsigned n) { return static_cast<unsigned>(rng_() % n); }

    // `inos`: every ino seen (stale ones too); `now`: the core's state, for live directories.
    Op draw(const std::vector<Ino>& inos, const CoreState& now) {
        Op op;
        std::vector<Ino> dirs;
        for (const NodeState& n : now.nodes) {
            if (n.is_dir && !n.removed) dirs.push_back(n.ino);
        }
        op.ino = pick(4) != 0 ? dirs[pick(dirs.size())] : inos[pick(inos.size())];
        const auto& names = name_pool();
        op.name = pick(5) != 0 ? names[pick(kGoodNames)] : names[pick(names.size())];
        const unsigned r = pick(100);
        if (r < 16)
            op.kind = Op::mkdir;
        else if (r < 30)
            op.kind = Op::pin;
        else if (r < 37)
            op.kind = Op::rmdir;
        else if (r < 44)
            op.kind = Op::unlink;
        else if (r < 58)
            op.kind = Op::lookup;
        else if (r < 68)
            op.kind = Op::forget;
        else if (r < 78)
            op.kind = Op::readdir;
        else if (r < 85)
            op.kind = Op::setattr;
        else if (r < 90)
            op.kind = Op::get;
        else if (r < 93)
            op.kind = Op::getattr;
        else if (r < 95)
            op.kind = Op::make_socket;
        else if (r < 97)
            op.kind = Op::set_read_only;
        else if (r < 99)
            op.kind = Op::apply_options;
        else
            op.kind = Op::release_all;
        if (pick(4) == 0) draw_name_op(op, dirs, inos);
        switch (op.kind) {
            case Op::pin:
                op.flag = pick(2) == 0;
                op.n = next_handle_++;
                break;
            case Op::forget:
                op.n = pick(4);
                break;
            case Op::readdir:
                op.flag = pick(3) != 0;
                op.n = pick(3) == 0 ? pick(12) : 0;
                op.limit = pick(3) == 0 ? static_cast<int>(pick(5)) : -1;
                break;
            case Op::setattr:
                if (pick(2)) op.sa.mode = pick(010000);
                if (pick(4) == 0) op.sa.uid = pick(3) * 1000;
                if (pick(4) == 0) op.sa.gid = pick(3) * 1000;
                if (pick(5) == 0) op.sa.size = pick(100);
                if (pick(4) == 0) op.sa.atime = TimeSet{pick(2) == 0, Timespec{pick(50), 7}};
                if (pick(4) == 0) op.sa.mtime = TimeSet{pick(2) == 0, Timespec{pick(50), 9}};
                if (pick(8) == 0) op.sa.ctime = Timespec{pick(50), 3};
                break;
            case Op::get:
                op.flag = pick(4) != 0;
                break;
            case Op::set_read_only:
                op.flag = pick(3) == 0;  // mostly read-write
                break;
            case Op::apply_options:  // the rule set stays (a remount cannot change it)
                op.opts = MountOptions{pick(3) * 1000, pick(3) * 1000, pick(010000),
                                       now.meta.opts.compat};
                break;
            default:
                break;
        }
        return op;
    }

private:
    // rename (all its flags, now and then none known), link, symlink, readlink; the second ino
    // mostly a live directory (rename) or any node seen (link, readlink).
    void draw_name_op(Op& op, const std::vector<Ino>& dirs, const std::vector<Ino>& inos) {
        static constexpr Op::Kind kKinds[] = {Op::rename, Op::rename,  Op::rename,
                                              Op::link,   Op::symlink, Op::readlink};
        op.kind = kKinds[pick(6)];
        const auto& names = name_pool();
        op.name2 = pick(5) != 0 ? names[pick(kGoodNames)] : names[pick(names.size())];
        bool to_dir = op.kind == Op::rename ? pick(4) != 0 : pick(8) == 0;
        op.ino2 = to_dir ? dirs[pick(dirs.size())] : inos[pick(inos.size())];
        static constexpr unsigned kFlags[] = {0, 0, 0, kRenameNoreplace, kRenameExchange, 3, 4};
        op.flags = kFlags[pick(7)];
        if (op.kind == Op::symlink && pick(8) == 0) op.name2 = "";  // ENOENT
        op.flag = pick(2) == 0;                                     // symlink: as root
    }

    std::mt19937_64 rng_;
    ObjHandle next_handle_ = 100;
};

std::string describe(const Op& op) {
    std::ostringstream o;
    o << "op " << int(op.kind) << " ino " << op.ino << " name '" << op.name.substr(0, 12) << "' n "
      << op.n << " limit " << op.limit << " flag " << op.flag;
    o << " ino2 " << op.ino2 << " name2 '" << op.name2.substr(0, 12) << "' flags " << op.flags;
    return o.str();
}

// What a call answered: its errno (0 for calls without one) and its results as text.
struct Outcome {
    int err = 0;
    std::string text;
    friend bool operator==(const Outcome&, const Outcome&) = default;
};

std::ostream& operator<<(std::ostream& o, const Outcome& r) {
    return o << "errno " << r.err << " " << r.text;
}

// Runs `op` on `fs` and adds the inos it learnt to `inos`.
Outcome run(Filesystem& fs, const Op& op, std::vector<Ino>& inos) {
    std::ostringstream o;
    int err = 0;
    auto attr = [&](const bpffs::Result<Attr>& r) {
        if (!r) {
            err = r.error().value;
            return;
        }
        o << str(*r);
        if (std::find(inos.begin(), inos.end(), r->ino) == inos.end()) inos.push_back(r->ino);
    };
    switch (op.kind) {
        case Op::mkdir:
            attr(fs.mkdir(Caller::root(), op.ino, op.name));
            break;
        case Op::pin:
            attr(fs.pin(admin(), op.ino, op.name, op.flag ? ObjType::prog : ObjType::map, op.n));
            break;
        case Op::rmdir:
            err = err_of(fs.rmdir(op.ino, op.name));
            break;
        case Op::unlink: {
            auto r = fs.unlink(op.ino, op.name);
            err = err_of(r);
            if (r && r->released) o << "released " << *r->released;
            break;
        }
        case Op::lookup:
            attr(fs.lookup(op.ino, op.name));
            break;
        case Op::forget:
            fs.forget(op.ino, op.n);
            break;
        case Op::readdir: {
            int taken = 0;
            auto r = fs.readdir(op.ino, op.n, op.flag, [&](const DirEntry& e) {
                if (op.limit >= 0 && taken >= op.limit) return false;
                ++taken;
                o << " [" << e.name.substr(0, 12) << " " << e.next_off << " " << str(e.attr) << "]";
                return true;
            });
            err = err_of(r);
            break;
        }
        case Op::setattr:
            attr(fs.setattr(op.ino, op.sa));
            break;
        case Op::get: {
            auto r = fs.get(op.flag ? Caller::root() : user(1000, 1000), op.ino);
            err = err_of(r);
            if (r) o << "handle " << r->handle << " type " << int(r->type);
            break;
        }
        case Op::getattr:
            attr(fs.getattr(op.ino));
            break;
        case Op::make_socket:
            attr(fs.make_socket_node());
            break;
        case Op::set_read_only:
            fs.set_read_only(op.flag);
            break;
        case Op::apply_options:
            o << str(fs.apply_options(op.opts));
            break;
        case Op::release_all: {
            auto hs = fs.release_all();  // in the table's order, which restore does not keep
            std::sort(hs.begin(), hs.end());
            for (ObjHandle h : hs) o << h << " ";
            break;
        }
        case Op::rename: {
            auto r = fs.rename(op.ino, op.name, op.ino2, op.name2, op.flags);
            err = err_of(r);
            if (r && r->released) o << "released " << *r->released;
            break;
        }
        case Op::link:
            attr(fs.link(op.ino2, op.ino, op.name));
            break;
        case Op::symlink:
            attr(
                fs.symlink(op.flag ? Caller::root() : user(1000, 1000), op.ino, op.name, op.name2));
            break;
        case Op::readlink: {
            auto r = fs.readlink(op.ino2);
            err = err_of(r);
            if (r) o << *r;
            break;
        }
    }
    return Outcome{err, o.str()};
}

bool changes_nothing(const Op& op) {
    return op.kind == Op::getattr || (op.kind == Op::readdir && !op.flag);
}

}  // namespace

TEST_CASE("state: the change log rebuilds the core after every call, and restore continues alike",
          "[fsops][state][model]") {
    constexpr int kSeeds = 100;
    constexpr int kSteps = 500;
    constexpr int kLockstep = 300;
    // What the sequences reached, so that a generator that stopped reaching things fails.
    std::map<int, int> succeeded;  // Op::Kind -> calls that did not fail
    std::size_t max_nodes = 0, removed_seen = 0, sockets_restored = 0, batch_max = 0;
    std::size_t hard_links_seen = 0;
    for (int seed = 1; seed <= kSeeds; ++seed) {
        INFO("seed " << seed);
        Gen gen(seed);
        MountOptions mo{gen.pick(2) * 1000, gen.pick(2) * 1000, 0700 | gen.pick(010000),
                        seed % 2 == 0 ? Compat::linux : Compat::seed};
        FakeClock clk;
        Filesystem fs(mo, clk.clock());
        StateBuilder builder(fs.snapshot());
        std::size_t batches = 0;
        bool empty_batch = false;
        fs.set_change_sink([&](const std::vector<Change>& cs) {
            ++batches;
            empty_batch = empty_batch || cs.empty();
            batch_max = std::max(batch_max, cs.size());
            for (const Change& c : cs) {
                auto d = decode(encode(c));
                if (d)
                    builder.apply(*d);
                else
                    empty_batch = true;  // cannot happen: flagged as a failure below
            }
        });
        std::vector<Ino> inos{0, kRootIno, 999999};

        for (int step = 0; step < kSteps; ++step) {
            clk.advance(1);
            Op op = gen.draw(inos, fs.snapshot());
            std::size_t before = batches;
            Outcome outcome = run(fs, op, inos);
            CoreState want = fs.snapshot();
            CoreState got = builder.state();
            if (!(got == want)) {
                FAIL("step " << step << " " << describe(op) << " -> " << outcome << ": "
                             << first_difference(got, want));
            }
            if ((changes_nothing(op) || outcome.err != 0) && batches != before)
                FAIL("step " << step << " " << describe(op) << " -> " << outcome
                             << ": reported a change");
            if (batches > before + 1) FAIL("step " << step << ": more than one sink call");
            if (outcome.err == 0) ++succeeded[op.kind];
            max_nodes = std::max(max_nodes, want.nodes.size());
            for (const NodeState& n : want.nodes) {
                removed_seen += n.removed;
                hard_links_seen += n.more_names.size();
            }
        }
        REQUIRE_FALSE(empty_batch);

        // Restore the logged state; it must be the same core.
        CoreState logged = builder.state();
        auto restored = Filesystem::restore(logged, clk.clock());
        INFO(first_difference(logged, fs.snapshot()));
        REQUIRE(restored.has_value());
        Filesystem& copy = **restored;
        REQUIRE(copy.snapshot() == fs.snapshot());
        CHECK(copy.counts().dirs == fs.counts().dirs);
        CHECK(copy.counts().maps == fs.counts().maps);
        CHECK(copy.counts().progs == fs.counts().progs);
        CHECK(copy.node_count() == fs.node_count());
        CHECK(copy.socket_ino() == fs.socket_ino());
        sockets_restored += fs.socket_ino() != 0;
        CHECK(copy.options() == fs.options());

        // Every live directory lists the same entries at the same offsets; every name looks up
        // to the same node.
        for (const NodeState& n : logged.nodes) {
            if (!n.is_dir || n.removed) continue;
            std::vector<Ino> scratch;
            Op ls;
            ls.kind = Op::readdir;
            ls.ino = n.ino;
            ls.limit = -1;
            CHECK(run(copy, ls, scratch) == run(fs, ls, scratch));
            for (const NodeState& c : logged.nodes) {
                if (c.removed) continue;
                std::vector<NameState> names = c.more_names;
                names.push_back(NameState{c.parent, c.cookie, c.name});
                for (const NameState& name : names) {
                    if (name.parent != n.ino) continue;
                    Op lk;
                    lk.kind = Op::lookup;
                    lk.ino = n.ino;
                    lk.name = name.name;
                    CHECK(run(copy, lk, scratch) == run(fs, lk, scratch));
                }
            }
        }

        // A new node gets an ino above every old one.
        Ino old_max = logged.nodes.back().ino;
        copy.set_read_only(false);
        fs.set_read_only(false);
        auto fresh = copy.mkdir(Caller::root(), kRootIno, "fresh");
        auto fresh0 = fs.mkdir(Caller::root(), kRootIno, "fresh");
        if (!fresh) {
            fresh = copy.pin(admin(), kRootIno, "fresh", ObjType::map, 1);
            fresh0 = fs.pin(admin(), kRootIno, "fresh", ObjType::map, 1);
        }
        REQUIRE(fresh.has_value());
        REQUIRE(fresh0.has_value());
        CHECK(fresh->ino > old_max);
        CHECK(fresh->ino >= logged.meta.next_ino);
        CHECK(fresh->ino == fresh0->ino);
        REQUIRE(copy.snapshot() == fs.snapshot());

        // Then both run the same calls and must answer alike.
        for (int step = 0; step < kLockstep; ++step) {
            clk.advance(1);
            Op op = gen.draw(inos, fs.snapshot());
            std::vector<Ino> scratch = inos;
            Outcome a = run(copy, op, scratch);
            Outcome b = run(fs, op, inos);
            if (a != b)
                FAIL("lockstep " << step << " " << describe(op) << ": " << a << " vs " << b);
            if (!(copy.snapshot() == fs.snapshot()))
                FAIL("lockstep " << step << " " << describe(op) << ": "
                                 << first_difference(copy.snapshot(), fs.snapshot()));
        }
        REQUIRE(builder.state() == fs.snapshot());  // the log kept up through all of it
    }
    for (int k = Op::mkdir; k <= Op::readlink; ++k) {
        INFO("op kind " << k);
        CHECK(succeeded[k] > 0);
    }
    CHECK(hard_links_seen > 0);
    CHECK(max_nodes >= 15);
    CHECK(removed_seen > 0);
    CHECK(sockets_restored > 0);
    CHECK(batch_max >= 4);
}

// ------------------------------------------------------------------------------------------
// restore() validation

namespace {

NodeState& node(CoreState& s, Ino ino) {
    for (auto& n : s.nodes) {
        if (n.ino == ino) return n;
    }
    FAIL("no node " << ino);
    return s.nodes.front();
}

}  // namespace

TEST_CASE("restore: a new core and a populated one restore to the same snapshot",
          "[fsops][state][restore]") {
    FakeClock clk;
    Filesystem fs(MountOptions{1000, 100, 01750}, clk.clock());
    auto empty = Filesystem::restore(fs.snapshot(), clk.clock());
    REQUIRE(empty.has_value());
    CHECK((*empty)->snapshot() == fs.snapshot());

    auto a = fs.mkdir(Caller::root(), kRootIno, "a");
    REQUIRE(a);
    REQUIRE(fs.pin(admin(), a->ino, "m", ObjType::map, 7));
    REQUIRE(fs.make_socket_node());
    fs.set_read_only(true);
    auto r = Filesystem::restore(fs.snapshot(), clk.clock());
    REQUIRE(r.has_value());
    CHECK((*r)->snapshot() == fs.snapshot());
    CHECK(err_of((*r)->mkdir(Caller::root(), kRootIno, "b")) == EROFS);
    auto s = (*r)->lookup(a->ino, kSocketName);
    REQUIRE(s.has_value());
    CHECK(s->ino == fs.socket_ino());
}

TEST_CASE("restore: inconsistent states are EINVAL", "[fsops][state][restore]") {
    // root(1) -> a(3) -> m(5, map); root -> c(4); next_ino 6 (2 is the socket node's).
    FakeClock clk;
    Filesystem fs({}, clk.clock());
    REQUIRE(fs.mkdir(Caller::root(), kRootIno, "a"));
    REQUIRE(fs.mkdir(Caller::root(), kRootIno, "c"));
    REQUIRE(fs.pin(admin(), 3, "m", ObjType::map, 9));
    const CoreState good = fs.snapshot();
    REQUIRE(good.meta.next_ino == 6);
    REQUIRE(Filesystem::restore(good).has_value());

    auto bad = [&](auto&& spoil) {
        CoreState s = good;
        spoil(s);
        return err_of(Filesystem::restore(s));
    };
    SECTION("missing parent") {
        CHECK(bad([](CoreState& s) {
                  s.meta.next_ino = 100;
                  node(s, 5).parent = 50;
              }) == EINVAL);
    }
    SECTION("parent not a directory") {
        CHECK(bad([](CoreState& s) {
                  node(s, 4).parent = 5;
                  node(s, kRootIno).attr.nlink = 3;
              }) == EINVAL);
    }
    SECTION("duplicate name in a directory") {
        CHECK(bad([](CoreState& s) { node(s, 4).name = "a"; }) == EINVAL);
    }
    SECTION("duplicate cookie in a directory") {
        CHECK(bad([](CoreState& s) { node(s, 4).cookie = node(s, 3).cookie; }) == EINVAL);
    }
    SECTION("cookie at or above the directory's next_cookie") {
        CHECK(bad([](CoreState& s) { node(s, 5).cookie = node(s, 3).next_cookie; }) == EINVAL);
    }
    SECTION("cookie of '.' or '..'") {
        CHECK(bad([](CoreState& s) { node(s, 5).cookie = 2; }) == EINVAL);
    }
    SECTION("ino at or above next_ino") {
        CHECK(bad([](CoreState& s) { s.meta.next_ino = 5; }) == EINVAL);
    }
    SECTION("the same ino twice") {
        CHECK(bad([](CoreState& s) { s.nodes.push_back(s.nodes.back()); }) == EINVAL);
    }
    SECTION("no root") {
        CHECK(bad([](CoreState& s) { s.nodes.erase(s.nodes.begin()); }) == EINVAL);
    }
    SECTION("root not a directory") {
        CHECK(bad([](CoreState& s) {
                  node(s, kRootIno).is_dir = false;
                  node(s, kRootIno).attr.mode = kIfReg | 0600;
              }) == EINVAL);
    }
    SECTION("is_dir and the type bits disagree") {
        CHECK(bad([](CoreState& s) { node(s, 4).is_dir = false; }) == EINVAL);
    }
    SECTION("attr.ino differs") {
        CHECK(bad([](CoreState& s) { node(s, 4).attr.ino = 3; }) == EINVAL);
    }
    SECTION("invalid names") {
        for (std::string name :
             {std::string(), std::string("x/y"), std::string("x.y"), std::string("."),
              std::string(kNameMax + 1, 'n'), std::string("a\0b", 3)}) {
            INFO("name '" << name << "'");
            CHECK(bad([&](CoreState& s) { node(s, 4).name = name; }) == EINVAL);
        }
    }
    SECTION("wrong nlink of a directory") {
        CHECK(bad([](CoreState& s) { node(s, kRootIno).attr.nlink = 2; }) == EINVAL);
    }
    SECTION("a handle on a directory") {
        CHECK(bad([](CoreState& s) { node(s, 4).handle = 5; }) == EINVAL);
    }
    SECTION("a terminal directory with a subdirectory") {
        CHECK(bad([](CoreState& s) {
                  node(s, 4).parent = 3;
                  node(s, 4).cookie = node(s, 3).next_cookie++;
                  node(s, 3).attr.nlink = 3;
                  node(s, kRootIno).attr.nlink = 3;
              }) == EINVAL);
    }
    SECTION("a removed node nobody references") {
        CHECK(bad([](CoreState& s) {
                  NodeState& m = node(s, 5);
                  m.removed = true;
                  m.handle.reset();
                  m.attr.nlink = 0;
                  m.nlookup = 0;
              }) == EINVAL);
    }
    SECTION("a removed node still holding its object") {
        CHECK(bad([](CoreState& s) {
                  NodeState& m = node(s, 5);
                  m.removed = true;
                  m.attr.nlink = 0;
                  m.nlookup = 1;
              }) == EINVAL);
    }
    SECTION("a live node under a removed directory") {
        CHECK(bad([](CoreState& s) {
                  node(s, 4).removed = true;
                  node(s, 4).attr.nlink = 0;
                  node(s, 4).nlookup = 1;
                  node(s, kRootIno).attr.nlink = 3;
                  node(s, 5).parent = 4;
                  node(s, 5).cookie = 3;
                  node(s, 4).next_cookie = 4;
                  node(s, 3).attr.nlink = 2;
              }) == EINVAL);
    }
    SECTION("socket_ino naming a directory, or a socket node without socket_ino") {
        CHECK(bad([](CoreState& s) { s.meta.socket_ino = 4; }) == EINVAL);
        CHECK(bad([](CoreState& s) { s.meta.socket_ino = 5; }) == EINVAL);
    }
    SECTION("socket_ino naming no node") {
        CHECK(bad([](CoreState& s) {
                  s.meta.socket_ino = 6;
                  s.meta.next_ino = 7;
              }) == EINVAL);
    }
}

TEST_CASE("restore: directories that hang off each other but not off the root are EINVAL",
          "[fsops][state][restore]") {
    FakeClock clk;
    Filesystem fs({}, clk.clock());
    REQUIRE(fs.mkdir(Caller::root(), kRootIno, "a"));  // 3
    REQUIRE(fs.mkdir(Caller::root(), kRootIno, "c"));  // 4
    CoreState s = fs.snapshot();
    // a in c and c in a, each with a cookie its new parent could have handed out.
    node(s, kRootIno).attr.nlink = 2;
    node(s, 3).parent = 4;
    node(s, 4).parent = 3;
    node(s, 3).attr.nlink = node(s, 4).attr.nlink = 3;
    node(s, 3).next_cookie = node(s, 4).next_cookie = 10;
    CHECK(err_of(Filesystem::restore(s)) == EINVAL);
}

// ------------------------------------------------------------------------------------------
// fresh_mount_view

TEST_CASE("fresh_mount_view: removed nodes and the socket node go, lookups reset, restore works",
          "[fsops][state][restore]") {
    FakeClock clk;
    Filesystem fs(MountOptions{0, 0, 0755}, clk.clock());
    auto a = fs.mkdir(Caller::root(), kRootIno, "a");
    auto g = fs.mkdir(Caller::root(), kRootIno, "ghost");
    REQUIRE(a);
    REQUIRE(g);
    auto m = fs.pin(admin(), a->ino, "m", ObjType::prog, 77);
    REQUIRE(m);
    REQUIRE(fs.lookup(a->ino, "m"));
    REQUIRE(fs.rmdir(kRootIno, "ghost"));  // still referenced: removed, in the table
    auto sock = fs.make_socket_node();
    REQUIRE(sock);
    CoreState old = fs.snapshot();

    CoreState v = fresh_mount_view(old);
    CHECK(v.meta.socket_ino == 0);
    CHECK(v.meta.next_ino == old.meta.next_ino);
    REQUIRE(v.nodes.size() == 3);  // root, a, m
    for (const NodeState& n : v.nodes) {
        CHECK_FALSE(n.removed);
        CHECK(n.ino != sock->ino);
        CHECK(n.nlookup == (n.ino == kRootIno ? 1u : 0u));
    }
    CHECK(node(v, m->ino).handle == std::optional<ObjHandle>(77));

    auto r = Filesystem::restore(v, clk.clock());
    REQUIRE(r.has_value());
    Filesystem& nfs = **r;
    CHECK(nfs.snapshot() == v);
    CHECK(nfs.socket_ino() == 0);
    CHECK(err_of(nfs.lookup(kRootIno, kSocketName)) == ENOENT);
    CHECK_FALSE(nfs.exists(g->ino));
    auto la = nfs.lookup(kRootIno, "a");
    REQUIRE(la);
    CHECK(la->ino == a->ino);
    auto lm = nfs.lookup(a->ino, "m");
    REQUIRE(lm);
    CHECK(lm->ino == m->ino);
    CHECK(nfs.counts().progs == 1);
    CHECK(nfs.counts().dirs == 2);
    auto got = nfs.get(Caller::root(), m->ino);
    REQUIRE(got);
    CHECK(got->handle == 77);
    // A new mount's kernel knows no ino yet: the socket takes its own again.
    auto s2 = nfs.make_socket_node();
    REQUIRE(s2);
    CHECK(s2->ino == kSocketIno);
}

TEST_CASE("restore: hard links and symlinks come back under compat=linux only, and consistent",
          "[fsops][state][restore][linux]") {
    FakeClock clk;
    Filesystem fs(MountOptions{0, 0, 01777, Compat::linux}, clk.clock());
    auto d = fs.mkdir(Caller::root(), kRootIno, "d");
    REQUIRE(d.has_value());
    auto m = fs.pin(Caller::root(), kRootIno, "m", ObjType::map, 5);
    REQUIRE(m.has_value());
    REQUIRE(fs.link(m->ino, d->ino, "l").has_value());
    auto s = fs.symlink(Caller::root(), d->ino, "s", "../m");
    REQUIRE(s.has_value());
    const CoreState good = fs.snapshot();
    auto back = Filesystem::restore(good, clk.clock());
    REQUIRE(back.has_value());
    CHECK((*back)->snapshot() == good);
    CHECK((*back)->getattr(m->ino)->nlink == 2);
    CHECK(*(*back)->readlink(s->ino) == "../m");

    auto refused = [&](const std::function<void(CoreState&)>& edit) {
        CoreState bad = good;
        edit(bad);
        return err_of(Filesystem::restore(bad, clk.clock()));
    };
    // The seed has neither.
    CHECK(refused([](CoreState& x) { x.meta.opts.compat = Compat::seed; }) == EINVAL);
    CHECK(refused([&](CoreState& x) { node(x, m->ino).attr.nlink = 1; }) == EINVAL);
    CHECK(refused([&](CoreState& x) { node(x, m->ino).more_names.clear(); }) == EINVAL);
    CHECK(refused([&](CoreState& x) {  // the same name twice
              node(x, m->ino).more_names.push_back(node(x, m->ino).more_names.front());
              node(x, m->ino).attr.nlink = 3;
          }) == EINVAL);
    CHECK(refused([&](CoreState& x) {  // a name in a directory that does not exist
              node(x, m->ino).more_names.front().parent = 99;
          }) == EINVAL);
    CHECK(refused([&](CoreState& x) {  // a directory with two names
              node(x, d->ino).more_names.push_back({kRootIno, 50, "d2"});
          }) == EINVAL);
    CHECK(refused([&](CoreState& x) { node(x, s->ino).target.clear(); }) == EINVAL);
    CHECK(refused([&](CoreState& x) { node(x, m->ino).target = "x"; }) == EINVAL);
    CHECK(refused([&](CoreState& x) { node(x, s->ino).handle = 9; }) == EINVAL);
}

TEST_CASE("compat=linux: names of one node survive compactions of their directory",
          "[fsops][linux][link]") {
    FakeClock clk;
    Filesystem fs(MountOptions{0, 0, 01777, Compat::linux}, clk.clock());
    auto m = fs.pin(Caller::root(), kRootIno, "m", ObjType::map, 5);
    REQUIRE(m.has_value());
    // Names of the node between many others that then go: the directory compacts, moving every
    // entry, and each name must still find the node and restore must agree.
    for (int i = 0; i < 200; ++i) {
        REQUIRE(fs.mkdir(Caller::root(), kRootIno, "x" + std::to_string(i)).has_value());
        if (i % 20 == 0) REQUIRE(fs.link(m->ino, kRootIno, "l" + std::to_string(i)).has_value());
    }
    for (int i = 0; i < 200; ++i) REQUIRE(fs.rmdir(kRootIno, "x" + std::to_string(i)).has_value());
    REQUIRE(fs.rename(kRootIno, "m", kRootIno, "m2").has_value());
    for (int i = 0; i < 200; i += 20) {
        auto l = fs.lookup(kRootIno, "l" + std::to_string(i));
        REQUIRE(l.has_value());
        CHECK(l->ino == m->ino);
        CHECK(l->nlink == 11);
    }
    auto back = Filesystem::restore(fs.snapshot(), clk.clock());
    REQUIRE(back.has_value());
    CHECK((*back)->snapshot() == fs.snapshot());
    for (int i = 0; i < 200; i += 20) {
        auto u = fs.unlink(kRootIno, "l" + std::to_string(i));
        REQUIRE(u.has_value());
        CHECK_FALSE(u->released.has_value());  // the node has other names
    }
    auto last = fs.unlink(kRootIno, "m2");
    REQUIRE(last.has_value());
    CHECK(last->released == std::optional<ObjHandle>(5));  // with its last name only
    CHECK(fs.counts().maps == 0);
}

// ------------------------------------------------------------------------------------------
// keep_lost: the objects recovery finds no name for (daemon/recovery.hpp)

TEST_CASE("keep_lost: objects go to root's .lost+found, which no rule set hides or counts",
          "[fsops][state][restore]") {
    for (Compat compat : {Compat::seed, Compat::linux}) {
        INFO((compat == Compat::linux ? "compat=linux" : "compat=seed"));
        MountOptions o{0, 0, 0755};
        o.compat = compat;
        Filesystem fs(o);
        REQUIRE(fs.pin(admin(), kRootIno, "m", ObjType::map, 1));  // the root holds an object
        auto names =
            fs.keep_lost({HeldObject{7, ObjType::map, 40}, HeldObject{8, ObjType::prog, 40},
                          HeldObject{9, ObjType::map, 40}});
        CHECK(names == std::vector<std::string>{"map-40", "prog-40", "map-40-2"});
        CHECK(fs.lost_count() == 3);
        // Found in both rule sets (compat=linux refuses other dotted names), in the root only.
        auto lf = fs.lookup(kRootIno, kLostFoundName);
        REQUIRE(lf);
        CHECK(lf->mode == (kIfDir | 0700));
        CHECK(lf->uid == 0);
        CHECK(err_of(fs.lookup(kRootIno, ".other")) == (compat == Compat::linux ? EPERM : ENOENT));
        auto kept = fs.lookup(lf->ino, "prog-40");
        REQUIRE(kept);
        CHECK(kept->mode == (kIfReg | 0600));
        auto got = fs.get(Caller::root(), kept->ino);
        REQUIRE(got);
        CHECK(got->handle == 8);
        // The seed's terminal rule does not count it: the root still takes pins, and not mkdirs.
        CHECK(fs.pin(admin(), kRootIno, "m2", ObjType::map, 2));
        CHECK(err_of(fs.mkdir(Caller::root(), kRootIno, "d")) ==
              (compat == Compat::seed ? EPERM : 0));
        // Kept again: the directory is reused. It restores, and root empties and removes it.
        CHECK(fs.keep_lost({HeldObject{10, ObjType::link, 3}}) ==
              std::vector<std::string>{"link-3"});
        auto back = Filesystem::restore(fs.snapshot());
        REQUIRE(back);
        CHECK((*back)->lost_count() == 4);
        for (const char* n : {"map-40", "prog-40", "map-40-2", "link-3"})
            CHECK((*back)->unlink(lf->ino, n));
        CHECK((*back)->rmdir(kRootIno, kLostFoundName));
        CHECK((*back)->lost_count() == 0);
    }
}

TEST_CASE("restore: a dotted name is .lost+found only as a directory in the root",
          "[fsops][state][restore]") {
    MountOptions o{0, 0, 0755};
    o.compat = Compat::linux;  // objects beside directories in the root
    Filesystem fs(o);
    auto d = fs.mkdir(Caller::root(), kRootIno, "d");
    REQUIRE(d);
    REQUIRE(fs.pin(admin(), d->ino, "m", ObjType::map, 1));
    REQUIRE(fs.pin(admin(), kRootIno, "r", ObjType::map, 3));
    fs.keep_lost({HeldObject{2, ObjType::map, 5}});
    const CoreState good = fs.snapshot();
    REQUIRE(Filesystem::restore(good));
    auto spoilt = [&](auto&& spoil) {
        CoreState s = good;
        spoil(s);
        return err_of(Filesystem::restore(s));
    };
    auto named = [](CoreState& s, std::string_view name) -> NodeState& {
        return *std::find_if(s.nodes.begin(), s.nodes.end(),
                             [&](const NodeState& n) { return n.name == name; });
    };
    auto away = [&](CoreState& s) { named(s, kLostFoundName).name = "lf"; };
    CHECK(spoilt(away) == 0);  // the spoils below fail for their own reason
    CHECK(spoilt([&](CoreState& s) {
              away(s);
              named(s, "r").name = std::string(kLostFoundName);  // no directory
          }) == EINVAL);
    CHECK(spoilt([&](CoreState& s) {
              away(s);
              named(s, "m").name = std::string(kLostFoundName);  // not in the root
          }) == EINVAL);
    CHECK(spoilt([&](CoreState& s) { named(s, "map-5").name = ".x"; }) == EINVAL);
}
