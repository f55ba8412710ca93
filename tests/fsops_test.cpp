// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of the pure core (fsops::Filesystem) against the spec, bpffs-semantics.md: sections 1
// (departures 1, 4, 6), 3 (filesystem operations), 4 (xattrs), 5 (pin) and 6 (get), plus the
// inode table (never-reused numbers, lookup counts, forget), readdir's stable offsets and the
// broker's socket node as filesystem.hpp describes it.
//
// The core does not check what the kernel's VFS checks for it (W+X on the parent for mkdir,
// rmdir, unlink; owner rules for setattr): those calls are made here by any caller. A fake clock
// that the tests advance makes every timestamp deterministic. Mode and type constants are
// numeric (no <sys/stat.h>), as the core itself is free of system headers. A directory with a
// subdirectory refuses pins (EBUSY), so objects go into their own directory, not the root.

#include "fsops/filesystem.hpp"
#include "tests/fsops_helpers.hpp"
#include "tests/result_helpers.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace bpffs::fsops;
using bpffs::kBpfFPathFd;
using bpffs::kBpfFRdonly;
using bpffs::kBpfFWronly;
using namespace bpffs::test;  // err_of, FakeClock, user, admin

namespace {

constexpr std::uint32_t kIfFifo = 0010000;
constexpr std::uint32_t kIfChr = 0020000;
constexpr std::uint32_t kIfBlk = 0060000;
constexpr std::uint32_t kIsVtx = 01000;

// A filesystem with a fake clock.
struct Fx {
    FakeClock clk;
    Filesystem fs;
    explicit Fx(MountOptions o = {}) : fs(o, clk.clock()) {}
};

Attr mkdir_ok(Filesystem& fs, Ino parent, std::string_view name, const Caller& c = Caller::root()) {
    auto r = fs.mkdir(c, parent, name);
    INFO("mkdir " << name << " errno " << err_of(r));
    REQUIRE(r.has_value());
    return *r;
}

Attr pin_ok(Filesystem& fs, Ino parent, std::string_view name, ObjHandle h,
            ObjType type = ObjType::map, const Caller& c = admin()) {
    auto r = fs.pin(c, parent, name, type, h);
    INFO("pin " << name << " errno " << err_of(r));
    REQUIRE(r.has_value());
    return *r;
}

Attr getattr_ok(const Filesystem& fs, Ino ino) {
    auto r = fs.getattr(ino);
    INFO("getattr " << ino << " errno " << err_of(r));
    REQUIRE(r.has_value());
    return *r;
}

Attr chmod_ok(Filesystem& fs, Ino ino, std::uint32_t mode) {
    SetAttr s;
    s.mode = mode;
    auto r = fs.setattr(ino, s);
    REQUIRE(r.has_value());
    return *r;
}

// Names of one full readdir listing, "." and ".." included, in order.
std::vector<std::string> list_names(Filesystem& fs, Ino dir, bool plus = false) {
    std::vector<std::string> names;
    auto r = fs.readdir(dir, 0, plus, [&](const DirEntry& e) {
        names.emplace_back(e.name);
        return true;
    });
    REQUIRE(r.has_value());
    return names;
}

std::string xattr_value(const Filesystem::XattrReply& r) { return r.value; }

}  // namespace

// ------------------------------------------------------------------------------------------
// Mount: the root (spec section 2)

TEST_CASE("root: defaults are S_IFDIR 0700, uid 0, gid 0, nlink 2, ino 1", "[fsops][options]") {
    Fx f;
    auto a = getattr_ok(f.fs, kRootIno);
    CHECK(a.ino == 1);
    CHECK(kRootIno == 1);
    CHECK(a.mode == (kIfDir | 0700));
    CHECK((a.mode & kIsVtx) == 0);
    CHECK(a.uid == 0);
    CHECK(a.gid == 0);
    CHECK(a.nlink == 2);
    CHECK(a.is_dir());
    CHECK(a.atime == f.clk.get());
    CHECK(a.mtime == f.clk.get());
    CHECK(a.ctime == f.clk.get());
    CHECK(f.fs.options() == MountOptions{});
}

TEST_CASE("root: mount options set the root's uid, gid and mode", "[fsops][options]") {
    SECTION("sticky world-writable") {
        Fx f(MountOptions{1000, 1001, 01777});
        auto a = getattr_ok(f.fs, kRootIno);
        CHECK(a.mode == (kIfDir | 01777));
        CHECK(a.uid == 1000);
        CHECK(a.gid == 1001);
        CHECK(a.nlink == 2);
        CHECK(f.fs.options() == MountOptions{1000, 1001, 01777});
    }
    SECTION("setgid group directory") {
        Fx f(MountOptions{0, 50, 02750});
        auto a = getattr_ok(f.fs, kRootIno);
        CHECK(a.mode == (kIfDir | 02750));
        CHECK(a.uid == 0);
        CHECK(a.gid == 50);
    }
}

TEST_CASE("options: the stored options are kept, not a later chmod/chown of the root",
          "[fsops][options]") {
    Fx f(MountOptions{5, 6, 0750});
    SetAttr s;
    s.mode = 0711;
    s.uid = 9;
    s.gid = 9;
    REQUIRE(f.fs.setattr(kRootIno, s).has_value());
    CHECK(getattr_ok(f.fs, kRootIno).mode == (kIfDir | 0711));
    CHECK(f.fs.options() == MountOptions{5, 6, 0750});
}

TEST_CASE("apply_options: remount changes the root's mode, uid and gid", "[fsops][options]") {
    Fx f;
    auto sub = mkdir_ok(f.fs, kRootIno, "sub");
    f.clk.advance(10);
    auto a = f.fs.apply_options(MountOptions{1000, 2000, 02755});
    CHECK(a.ino == kRootIno);
    CHECK(a.mode == (kIfDir | 02755));
    CHECK(a.uid == 1000);
    CHECK(a.gid == 2000);
    auto g = getattr_ok(f.fs, kRootIno);
    CHECK(g.mode == (kIfDir | 02755));
    CHECK(g.uid == 1000);
    CHECK(g.gid == 2000);
    CHECK(g.nlink == 3);  // the subdirectory is still there
    CHECK(f.fs.options() == MountOptions{1000, 2000, 02755});
    // Only the root changes: an existing subdirectory keeps what it copied at mkdir.
    CHECK(getattr_ok(f.fs, sub.ino).mode == (kIfDir | 0700));
    // Later mkdirs copy the new root mode and, with setgid, its gid.
    auto d2 = mkdir_ok(f.fs, kRootIno, "d2", user(7, 8));
    CHECK(d2.mode == (kIfDir | 02755));
    CHECK(d2.gid == 2000);
}

// ------------------------------------------------------------------------------------------
// mkdir (spec section 3)

TEST_CASE("mkdir: the new directory copies the parent's full mode incl. setgid and sticky",
          "[fsops][mkdir]") {
    Fx f(MountOptions{0, 50, 03755});
    auto c = user(1000, 2000);
    auto a = mkdir_ok(f.fs, kRootIno, "a", c);
    CHECK(a.mode == (kIfDir | 03755));
    CHECK(a.uid == 1000);
    CHECK(a.gid == 50);  // parent is setgid
    CHECK(a.nlink == 2);
    CHECK(a.size == 0);
    // The copy goes on down the tree, and follows a chmod of the parent.
    auto b = mkdir_ok(f.fs, a.ino, "b", user(3, 4));
    CHECK(b.mode == (kIfDir | 03755));
    CHECK(b.uid == 3);
    CHECK(b.gid == 50);
    chmod_ok(f.fs, a.ino, 0701);
    auto c2 = mkdir_ok(f.fs, a.ino, "c", user(3, 4));
    CHECK(c2.mode == (kIfDir | 0701));
    CHECK(c2.gid == 4);  // no longer setgid: caller's gid
}

TEST_CASE("mkdir: owner is the caller, and gid is the caller's unless the parent is setgid",
          "[fsops][mkdir]") {
    SECTION("parent without setgid") {
        Fx f(MountOptions{0, 50, 0777});
        auto a = mkdir_ok(f.fs, kRootIno, "a", user(1000, 2000, {50}));
        CHECK(a.uid == 1000);
        CHECK(a.gid == 2000);
        CHECK(a.mode == (kIfDir | 0777));
    }
    SECTION("parent with setgid") {
        Fx f(MountOptions{0, 50, 02777});
        auto a = mkdir_ok(f.fs, kRootIno, "a", user(1000, 2000));
        CHECK(a.uid == 1000);
        CHECK(a.gid == 50);
        CHECK(a.mode == (kIfDir | 02777));
    }
}

TEST_CASE("mkdir: nlink 2, parent nlink +1 per subdirectory", "[fsops][mkdir]") {
    Fx f;
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 2);
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    CHECK(a.nlink == 2);
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 3);
    mkdir_ok(f.fs, kRootIno, "b");
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 4);
    mkdir_ok(f.fs, a.ino, "c");
    CHECK(getattr_ok(f.fs, a.ino).nlink == 3);
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 4);
}

TEST_CASE("mkdir: the new directory's times are the clock's now", "[fsops][mkdir]") {
    Fx f;
    f.clk.advance(42, 7);
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    CHECK(a.atime == f.clk.get());
    CHECK(a.mtime == f.clk.get());
    CHECK(a.ctime == f.clk.get());
}

TEST_CASE("mkdir: existing name is EEXIST", "[fsops][mkdir]") {
    Fx f;
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    CHECK(err_of(f.fs.mkdir(Caller::root(), kRootIno, "a")) == EEXIST);
    pin_ok(f.fs, a.ino, "m", 1);
    CHECK(err_of(f.fs.mkdir(Caller::root(), a.ino, "m")) == EEXIST);
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 3);
}

TEST_CASE("mkdir: '.' and '..' are EEXIST", "[fsops][mkdir][names]") {
    Fx f;
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    for (Ino dir : {kRootIno, a.ino}) {
        CHECK(err_of(f.fs.mkdir(Caller::root(), dir, ".")) == EEXIST);
        CHECK(err_of(f.fs.mkdir(Caller::root(), dir, "..")) == EEXIST);
    }
}

TEST_CASE("mkdir: name with a dot is EPERM", "[fsops][mkdir][names]") {
    Fx f;
    for (const char* name : {"a.b", ".hidden", "x.", "...", ".a.", "bpf.type"}) {
        INFO(name);
        CHECK(err_of(f.fs.mkdir(Caller::root(), kRootIno, name)) == EPERM);
        CHECK(err_of(f.fs.lookup(kRootIno, name)) == ENOENT);  // nothing created
    }
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 2);
    CHECK(list_names(f.fs, kRootIno).size() == 2);
}

TEST_CASE("mkdir: 255-byte name is accepted, 256 bytes is ENAMETOOLONG", "[fsops][mkdir][names]") {
    Fx f;
    const std::string n255(255, 'x');
    const std::string n256(256, 'y');
    auto a = mkdir_ok(f.fs, kRootIno, n255);
    auto l = f.fs.lookup(kRootIno, n255);
    REQUIRE(l.has_value());
    CHECK(l->ino == a.ino);
    CHECK(err_of(f.fs.mkdir(Caller::root(), kRootIno, n256)) == ENAMETOOLONG);
    CHECK(err_of(f.fs.mkdir(Caller::root(), kRootIno, std::string(300, 'z'))) == ENAMETOOLONG);
    // Length is checked before the dot rule (the VFS rejects the name first).
    CHECK(err_of(f.fs.mkdir(Caller::root(), kRootIno, std::string(255, 'a') + ".")) ==
          ENAMETOOLONG);
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 3);
}

// ------------------------------------------------------------------------------------------
// lookup

TEST_CASE("lookup: 256-byte name is ENAMETOOLONG, a missing 255-byte name ENOENT",
          "[fsops][lookup][names]") {
    Fx f;
    CHECK(err_of(f.fs.lookup(kRootIno, std::string(256, 'a'))) == ENAMETOOLONG);
    CHECK(err_of(f.fs.lookup(kRootIno, std::string(255, 'a'))) == ENOENT);
}

TEST_CASE("lookup: a missing name, dotted or not, is ENOENT", "[fsops][lookup][names]") {
    Fx f;
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    for (Ino dir : {kRootIno, a.ino}) {
        for (const char* name : {"missing", "a.b", ".hidden", "x.", "bpf.type"}) {
            INFO(name);
            CHECK(err_of(f.fs.lookup(dir, name)) == ENOENT);
        }
    }
}

TEST_CASE("lookup: finds the node with the attributes it was created with", "[fsops][lookup]") {
    Fx f;
    auto a = mkdir_ok(f.fs, kRootIno, "a", user(10, 20));
    auto m = pin_ok(f.fs, a.ino, "m", 77, ObjType::prog, admin(30, 40));
    auto la = f.fs.lookup(kRootIno, "a");
    REQUIRE(la.has_value());
    CHECK(la->ino == a.ino);
    CHECK(la->mode == a.mode);
    CHECK(la->uid == 10);
    CHECK(la->gid == 20);
    auto lm = f.fs.lookup(a.ino, "m");
    REQUIRE(lm.has_value());
    CHECK(lm->ino == m.ino);
    CHECK(lm->mode == (kIfReg | 0600));
    CHECK(lm->uid == 30);
    CHECK(lm->gid == 40);
}

TEST_CASE("lookup and mkdir in a non-directory are ENOTDIR", "[fsops][lookup]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1);
    CHECK(err_of(f.fs.lookup(m.ino, "x")) == ENOTDIR);
    CHECK(err_of(f.fs.mkdir(Caller::root(), m.ino, "x")) == ENOTDIR);
}

TEST_CASE("mkdir and lookup in a removed directory are ENOENT", "[fsops][mkdir]") {
    Fx f;
    auto a = mkdir_ok(f.fs, kRootIno, "a");  // counts one lookup: the node outlives rmdir
    REQUIRE(f.fs.rmdir(kRootIno, "a").has_value());
    REQUIRE(f.fs.exists(a.ino));
    CHECK(err_of(f.fs.mkdir(Caller::root(), a.ino, "x")) == ENOENT);
    CHECK(err_of(f.fs.lookup(a.ino, "x")) == ENOENT);
}

// ------------------------------------------------------------------------------------------
// Terminal directories (spec 1.1 and section 3)

TEST_CASE("terminal: mkdir in a directory holding an object is EPERM", "[fsops][terminal]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    pin_ok(f.fs, d.ino, "m", 1);
    CHECK(err_of(f.fs.mkdir(Caller::root(), d.ino, "sub")) == EPERM);
    CHECK(err_of(f.fs.lookup(d.ino, "sub")) == ENOENT);
    CHECK(getattr_ok(f.fs, d.ino).nlink == 2);
}

TEST_CASE("terminal: the root can be terminal too", "[fsops][terminal]") {
    Fx f;
    pin_ok(f.fs, kRootIno, "r", 2);
    CHECK(err_of(f.fs.mkdir(Caller::root(), kRootIno, "x")) == EPERM);
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 2);
}

TEST_CASE("terminal: mkdir of an existing name in a terminal directory is EEXIST, not EPERM",
          "[fsops][terminal]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    pin_ok(f.fs, d.ino, "m", 1);
    CHECK(err_of(f.fs.mkdir(Caller::root(), d.ino, "m")) == EEXIST);
    CHECK(err_of(f.fs.mkdir(Caller::root(), d.ino, ".")) == EEXIST);
    CHECK(err_of(f.fs.mkdir(Caller::root(), d.ino, "..")) == EEXIST);
}

TEST_CASE("terminal: a directory holds many objects (departure 1)", "[fsops][terminal][pin]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    pin_ok(f.fs, d.ino, "m1", 1);
    pin_ok(f.fs, d.ino, "m2", 2);
    pin_ok(f.fs, d.ino, "p1", 3, ObjType::prog);
    auto names = list_names(f.fs, d.ino);
    std::set<std::string> got(names.begin(), names.end());
    CHECK(got == std::set<std::string>{".", "..", "m1", "m2", "p1"});
    auto c = f.fs.counts();
    CHECK(c.maps == 2);
    CHECK(c.progs == 1);
}

TEST_CASE("terminal: a directory stops being terminal when its last object is unlinked",
          "[fsops][terminal]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    pin_ok(f.fs, d.ino, "m1", 1);
    pin_ok(f.fs, d.ino, "m2", 2);
    REQUIRE(f.fs.unlink(d.ino, "m1").has_value());
    CHECK(err_of(f.fs.mkdir(Caller::root(), d.ino, "sub")) == EPERM);  // m2 is still there
    REQUIRE(f.fs.unlink(d.ino, "m2").has_value());
    auto sub = f.fs.mkdir(Caller::root(), d.ino, "sub");
    REQUIRE(sub.has_value());
    CHECK(getattr_ok(f.fs, d.ino).nlink == 3);
    // Now it has a subdirectory, so pinning into it is EBUSY.
    CHECK(err_of(f.fs.pin(admin(), d.ino, "m3", ObjType::map, 3)) == EBUSY);
}

TEST_CASE("rmdir: a terminal directory is ENOTEMPTY", "[fsops][terminal][rmdir]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    pin_ok(f.fs, d.ino, "m", 1);
    CHECK(err_of(f.fs.rmdir(kRootIno, "d")) == ENOTEMPTY);
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 3);
    CHECK(f.fs.lookup(kRootIno, "d").has_value());
}

// ------------------------------------------------------------------------------------------
// rmdir, unlink

TEST_CASE("rmdir: a directory with subdirectories is ENOTEMPTY", "[fsops][rmdir]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    mkdir_ok(f.fs, d.ino, "sub");
    CHECK(err_of(f.fs.rmdir(kRootIno, "d")) == ENOTEMPTY);
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 3);
}

TEST_CASE("rmdir: an empty directory goes and the parent's nlink drops by one", "[fsops][rmdir]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    mkdir_ok(f.fs, d.ino, "sub");
    CHECK(getattr_ok(f.fs, d.ino).nlink == 3);
    REQUIRE(f.fs.rmdir(d.ino, "sub").has_value());
    CHECK(getattr_ok(f.fs, d.ino).nlink == 2);
    CHECK(err_of(f.fs.lookup(d.ino, "sub")) == ENOENT);
    REQUIRE(f.fs.rmdir(kRootIno, "d").has_value());
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 2);
    CHECK(err_of(f.fs.lookup(kRootIno, "d")) == ENOENT);
    CHECK(list_names(f.fs, kRootIno).size() == 2);
    // The name can be used again.
    mkdir_ok(f.fs, kRootIno, "d");
}

TEST_CASE("rmdir: an object is ENOTDIR", "[fsops][rmdir]") {
    Fx f;
    pin_ok(f.fs, kRootIno, "m", 1);
    CHECK(err_of(f.fs.rmdir(kRootIno, "m")) == ENOTDIR);
    CHECK(f.fs.lookup(kRootIno, "m").has_value());
}

TEST_CASE("rmdir and unlink of a missing name are ENOENT", "[fsops][rmdir][unlink]") {
    Fx f;
    CHECK(err_of(f.fs.rmdir(kRootIno, "nope")) == ENOENT);
    CHECK(err_of(f.fs.unlink(kRootIno, "nope")) == ENOENT);
    CHECK(err_of(f.fs.rmdir(kRootIno, "a.b")) == ENOENT);
    CHECK(err_of(f.fs.unlink(kRootIno, "a.b")) == ENOENT);
}

TEST_CASE("unlink: an object goes and its handle is returned for release", "[fsops][unlink]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    pin_ok(f.fs, d.ino, "m", 4242);
    pin_ok(f.fs, d.ino, "p", 4343, ObjType::prog);
    auto u = f.fs.unlink(d.ino, "m");
    REQUIRE(u.has_value());
    REQUIRE(u->released.has_value());
    CHECK(*u->released == 4242);
    CHECK(err_of(f.fs.lookup(d.ino, "m")) == ENOENT);
    CHECK(f.fs.counts().maps == 0);
    CHECK(f.fs.counts().progs == 1);
    auto u2 = f.fs.unlink(d.ino, "p");
    REQUIRE(u2.has_value());
    REQUIRE(u2->released.has_value());
    CHECK(*u2->released == 4343);
    CHECK(f.fs.counts().progs == 0);
    CHECK(err_of(f.fs.unlink(d.ino, "p")) == ENOENT);
    // The last object is gone: the directory takes subdirectories again.
    CHECK(f.fs.mkdir(Caller::root(), d.ino, "sub").has_value());
}

TEST_CASE("unlink: a directory is EISDIR", "[fsops][unlink]") {
    Fx f;
    mkdir_ok(f.fs, kRootIno, "d");
    CHECK(err_of(f.fs.unlink(kRootIno, "d")) == EISDIR);
    CHECK(f.fs.lookup(kRootIno, "d").has_value());
}

// ------------------------------------------------------------------------------------------
// Operations the seed does not have

TEST_CASE("rename, link and symlink are EPERM", "[fsops]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    auto e = mkdir_ok(f.fs, kRootIno, "e");
    auto m = pin_ok(f.fs, e.ino, "m", 1);
    CHECK(err_of(f.fs.rename(kRootIno, "d", kRootIno, "d2")) == EPERM);
    CHECK(err_of(f.fs.rename(e.ino, "m", e.ino, "m2")) == EPERM);
    CHECK(err_of(f.fs.rename(e.ino, "m", kRootIno, "m")) == EPERM);
    CHECK(err_of(f.fs.link(m.ino, e.ino, "m2")) == EPERM);
    CHECK(err_of(f.fs.link(m.ino, kRootIno, "m")) == EPERM);
    CHECK(err_of(f.fs.symlink(Caller::root(), kRootIno, "s", "d")) == EPERM);
    CHECK(err_of(f.fs.symlink(Caller::root(), d.ino, "s", "/tmp")) == EPERM);
    // Nothing moved or appeared.
    CHECK(f.fs.lookup(kRootIno, "d").has_value());
    CHECK(f.fs.lookup(e.ino, "m").has_value());
    CHECK(err_of(f.fs.lookup(kRootIno, "d2")) == ENOENT);
    CHECK(err_of(f.fs.lookup(e.ino, "m2")) == ENOENT);
    CHECK(err_of(f.fs.lookup(kRootIno, "m")) == ENOENT);
    CHECK(err_of(f.fs.lookup(kRootIno, "s")) == ENOENT);
}

TEST_CASE("mknod: a regular file (S_IFREG or 0) is EACCES", "[fsops][mknod]") {
    Fx f;
    CHECK(err_of(f.fs.mknod(kRootIno, "f", kIfReg | 0644)) == EACCES);
    CHECK(err_of(f.fs.mknod(kRootIno, "f", 0100000)) == EACCES);
    CHECK(err_of(f.fs.mknod(kRootIno, "f", 0)) == EACCES);
    CHECK(err_of(f.fs.mknod(kRootIno, "f", 0644)) == EACCES);  // type 0 with permission bits
    CHECK(err_of(f.fs.lookup(kRootIno, "f")) == ENOENT);
}

TEST_CASE("mknod: FIFO, char, block and socket nodes are EPERM", "[fsops][mknod]") {
    Fx f;
    CHECK(err_of(f.fs.mknod(kRootIno, "n", 0010000 | 0644)) == EPERM);
    CHECK(err_of(f.fs.mknod(kRootIno, "n", 0020000 | 0644)) == EPERM);
    CHECK(err_of(f.fs.mknod(kRootIno, "n", 0060000 | 0644)) == EPERM);
    CHECK(err_of(f.fs.mknod(kRootIno, "n", 0140000 | 0644)) == EPERM);
    CHECK(err_of(f.fs.mknod(kRootIno, "n", kIfFifo)) == EPERM);
    CHECK(err_of(f.fs.mknod(kRootIno, "n", kIfChr)) == EPERM);
    CHECK(err_of(f.fs.mknod(kRootIno, "n", kIfBlk)) == EPERM);
    CHECK(err_of(f.fs.mknod(kRootIno, "n", kIfSock)) == EPERM);
    CHECK(err_of(f.fs.lookup(kRootIno, "n")) == ENOENT);
}

TEST_CASE("mknod: an existing name is EEXIST, whatever the type", "[fsops][mknod]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    auto t = mkdir_ok(f.fs, kRootIno, "t");
    pin_ok(f.fs, t.ino, "m", 1);
    for (std::uint32_t mode : {kIfReg | 0644u, 0u, kIfFifo | 0644u, kIfChr, kIfBlk, kIfSock}) {
        INFO("mode " << mode);
        CHECK(err_of(f.fs.mknod(kRootIno, "d", mode)) == EEXIST);
        CHECK(err_of(f.fs.mknod(t.ino, "m", mode)) == EEXIST);
    }
    CHECK(getattr_ok(f.fs, d.ino).is_dir());
}

TEST_CASE("create: a new name is EACCES, an existing name EEXIST", "[fsops][create]") {
    Fx f;
    mkdir_ok(f.fs, kRootIno, "d");
    auto t = mkdir_ok(f.fs, kRootIno, "t");
    pin_ok(f.fs, t.ino, "m", 1);
    CHECK(err_of(f.fs.create(kRootIno, "new")) == EACCES);
    CHECK(err_of(f.fs.create(t.ino, "new")) == EACCES);
    CHECK(err_of(f.fs.create(kRootIno, "d")) == EEXIST);
    CHECK(err_of(f.fs.create(t.ino, "m")) == EEXIST);
    CHECK(err_of(f.fs.lookup(kRootIno, "new")) == ENOENT);
    CHECK(err_of(f.fs.lookup(t.ino, "new")) == ENOENT);
}

// ------------------------------------------------------------------------------------------
// open, opendir

TEST_CASE("open: an object is ENXIO for its owner, whatever the access mode", "[fsops][open]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1000, 1000));
    auto owner = user(1000, 1000);
    CHECK(err_of(f.fs.open(owner, m.ino, kMayRead)) == ENXIO);
    CHECK(err_of(f.fs.open(owner, m.ino, kMayWrite)) == ENXIO);
    CHECK(err_of(f.fs.open(owner, m.ino, kMayRead | kMayWrite)) == ENXIO);
    CHECK(err_of(f.fs.open(owner, m.ino, 0)) == ENXIO);
}

TEST_CASE("open: a non-owner without capabilities gets EACCES before ENXIO", "[fsops][open]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1000, 1000));
    auto other = user(2000, 2000);
    CHECK(err_of(f.fs.open(other, m.ino, kMayRead)) == EACCES);
    CHECK(err_of(f.fs.open(other, m.ino, kMayWrite)) == EACCES);
    CHECK(err_of(f.fs.open(other, m.ino, kMayRead | kMayWrite)) == EACCES);
    SECTION("the owner is refused too once the mode denies the access") {
        chmod_ok(f.fs, m.ino, 0400);
        CHECK(err_of(f.fs.open(user(1000, 1000), m.ino, kMayWrite)) == EACCES);
        CHECK(err_of(f.fs.open(user(1000, 1000), m.ino, kMayRead)) == ENXIO);
    }
    SECTION("other bits that allow the access give ENXIO") {
        chmod_ok(f.fs, m.ino, 0604);
        CHECK(err_of(f.fs.open(other, m.ino, kMayRead)) == ENXIO);
        CHECK(err_of(f.fs.open(other, m.ino, kMayWrite)) == EACCES);
    }
}

TEST_CASE("open: a non-owner with CAP_DAC_OVERRIDE gets ENXIO", "[fsops][open]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1000, 1000));
    Caps caps;
    caps.dac_override = true;
    auto c = user(2000, 2000, {}, caps);
    CHECK(err_of(f.fs.open(c, m.ino, kMayRead)) == ENXIO);
    CHECK(err_of(f.fs.open(c, m.ino, kMayRead | kMayWrite)) == ENXIO);
    CHECK(err_of(f.fs.open(Caller::root(), m.ino, kMayRead | kMayWrite)) == ENXIO);
}

TEST_CASE("open: compat=linux opens a map for its text view with its handle, after EACCES",
          "[fsops][open][linux]") {
    Fx f(MountOptions{0, 0, 01777, Compat::linux});
    auto m = pin_ok(f.fs, kRootIno, "m", 42, ObjType::map, admin(1000, 1000));
    auto p = pin_ok(f.fs, kRootIno, "p", 43, ObjType::prog, admin(1000, 1000));
    auto l = pin_ok(f.fs, kRootIno, "l", 44, ObjType::link, admin(1000, 1000));
    auto owner = user(1000, 1000);
    for (int may : {kMayRead, kMayWrite, kMayRead | kMayWrite}) {
        auto r = f.fs.open(owner, m.ino, may);
        REQUIRE(r.has_value());
        CHECK(*r == std::optional<ObjHandle>(42));  // the broker says whether it has BTF
        CHECK(err_of(f.fs.open(owner, p.ino, may)) == EIO);
        CHECK(err_of(f.fs.open(owner, l.ino, may)) == EIO);
    }
    CHECK(err_of(f.fs.open(user(2000, 2000), m.ino, kMayRead)) == EACCES);
    CHECK(f.fs.policy().open_object_error() == EIO);  // a map without BTF
    auto root = f.fs.open(owner, kRootIno, kMayRead);
    REQUIRE(root.has_value());
    CHECK(!root->has_value());  // a directory: no view
    Fx seed;                    // the seed has no text view
    auto sm = pin_ok(seed.fs, kRootIno, "m", 42, ObjType::map, admin(1000, 1000));
    CHECK(err_of(seed.fs.open(owner, sm.ino, kMayRead)) == ENXIO);
}

TEST_CASE("opendir: a directory opens, an object is ENOTDIR", "[fsops][open]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    auto m = pin_ok(f.fs, d.ino, "m", 1);
    CHECK(f.fs.opendir(kRootIno).has_value());
    CHECK(f.fs.opendir(d.ino).has_value());
    CHECK(err_of(f.fs.opendir(m.ino)) == ENOTDIR);
}

// ------------------------------------------------------------------------------------------
// setattr

TEST_CASE("setattr: chmod changes the permission bits and keeps the type bits",
          "[fsops][setattr]") {
    Fx f;
    auto t = mkdir_ok(f.fs, kRootIno, "t");
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    auto m = pin_ok(f.fs, t.ino, "m", 1);
    CHECK(chmod_ok(f.fs, m.ino, 0644).mode == (kIfReg | 0644));
    CHECK(getattr_ok(f.fs, m.ino).mode == (kIfReg | 0644));
    CHECK(chmod_ok(f.fs, d.ino, 01777).mode == (kIfDir | 01777));
    CHECK(chmod_ok(f.fs, d.ino, 02750).mode == (kIfDir | 02750));
    CHECK(getattr_ok(f.fs, d.ino).mode == (kIfDir | 02750));
    CHECK(chmod_ok(f.fs, kRootIno, 0755).mode == (kIfDir | 0755));
    SECTION("type bits in the request do not change the type") {
        CHECK(chmod_ok(f.fs, m.ino, kIfDir | 0640).mode == (kIfReg | 0640));
        CHECK(chmod_ok(f.fs, d.ino, kIfReg | 0711).mode == (kIfDir | 0711));
    }
}

TEST_CASE("setattr: chown changes uid and gid, each on its own", "[fsops][setattr]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1, 2));
    SetAttr s;
    s.uid = 1000;
    auto a = f.fs.setattr(m.ino, s);
    REQUIRE(a.has_value());
    CHECK(a->uid == 1000);
    CHECK(a->gid == 2);
    SetAttr g;
    g.gid = 3000;
    a = f.fs.setattr(m.ino, g);
    REQUIRE(a.has_value());
    CHECK(a->uid == 1000);
    CHECK(a->gid == 3000);
    CHECK(a->mode == (kIfReg | 0600));
    auto b = getattr_ok(f.fs, m.ino);
    CHECK(b.uid == 1000);
    CHECK(b.gid == 3000);
}

TEST_CASE("setattr: size is set (truncate)", "[fsops][setattr]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1);
    SetAttr s;
    s.size = 0;
    auto a = f.fs.setattr(m.ino, s);
    REQUIRE(a.has_value());
    CHECK(a->size == 0);
    s.size = 4096;
    a = f.fs.setattr(m.ino, s);
    REQUIRE(a.has_value());
    CHECK(a->size == 4096);
    CHECK(getattr_ok(f.fs, m.ino).size == 4096);
    CHECK(a->mode == (kIfReg | 0600));
}

TEST_CASE("setattr: atime and mtime set to now or to explicit times", "[fsops][setattr]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1);
    const Timespec t0 = f.clk.get();
    f.clk.advance(100, 5);
    SECTION("explicit") {
        SetAttr s;
        s.atime = TimeSet{false, Timespec{5, 6}};
        s.mtime = TimeSet{false, Timespec{7, 8}};
        auto a = f.fs.setattr(m.ino, s);
        REQUIRE(a.has_value());
        CHECK(a->atime == Timespec{5, 6});
        CHECK(a->mtime == Timespec{7, 8});
        auto g = getattr_ok(f.fs, m.ino);
        CHECK(g.atime == Timespec{5, 6});
        CHECK(g.mtime == Timespec{7, 8});
    }
    SECTION("now") {
        SetAttr s;
        s.atime = TimeSet{true, Timespec{5, 6}};
        s.mtime = TimeSet{true, Timespec{7, 8}};
        auto a = f.fs.setattr(m.ino, s);
        REQUIRE(a.has_value());
        CHECK(a->atime == f.clk.get());
        CHECK(a->mtime == f.clk.get());
    }
    SECTION("only atime: mtime stays") {
        SetAttr s;
        s.atime = TimeSet{true, {}};
        auto a = f.fs.setattr(m.ino, s);
        REQUIRE(a.has_value());
        CHECK(a->atime == f.clk.get());
        CHECK(a->mtime == t0);
    }
    SECTION("only mtime: atime stays") {
        SetAttr s;
        s.mtime = TimeSet{false, Timespec{9, 9}};
        auto a = f.fs.setattr(m.ino, s);
        REQUIRE(a.has_value());
        CHECK(a->atime == t0);
        CHECK(a->mtime == Timespec{9, 9});
    }
}

TEST_CASE("setattr: ctime moves to now with every change, or to an explicit time",
          "[fsops][setattr]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    const Timespec t0 = f.clk.get();
    CHECK(d.ctime == t0);
    f.clk.advance(10);
    CHECK(chmod_ok(f.fs, d.ino, 0755).ctime == f.clk.get());
    f.clk.advance(10);
    SetAttr own;
    own.uid = 5;
    auto a = f.fs.setattr(d.ino, own);
    REQUIRE(a.has_value());
    CHECK(a->ctime == f.clk.get());
    f.clk.advance(10);
    SetAttr ut;
    ut.mtime = TimeSet{false, Timespec{1, 1}};
    a = f.fs.setattr(d.ino, ut);
    REQUIRE(a.has_value());
    CHECK(a->ctime == f.clk.get());
    SetAttr ct;
    ct.ctime = Timespec{3, 4};
    a = f.fs.setattr(d.ino, ct);
    REQUIRE(a.has_value());
    CHECK(a->ctime == Timespec{3, 4});
    CHECK(getattr_ok(f.fs, d.ino).ctime == Timespec{3, 4});
}

TEST_CASE("statfs: block size 4096, name length 255", "[fsops]") {
    Fx f;
    auto s = f.fs.statfs();
    CHECK(s.bsize == 4096);
    CHECK(s.namelen == 255);
}

// ------------------------------------------------------------------------------------------
// Extended attributes (spec section 4)

TEST_CASE("getxattr: bpf.type of a map is map plus its NUL (4 bytes)", "[fsops][xattr]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map);
    auto r = f.fs.getxattr(Caller::root(), m.ino, "bpf.type", 4);
    REQUIRE(r.has_value());
    CHECK(xattr_value(*r) == std::string("map\0", 4));
    auto big = f.fs.getxattr(Caller::root(), m.ino, "bpf.type", 4096);
    REQUIRE(big.has_value());
    CHECK(big->value == std::string("map\0", 4));
}

TEST_CASE("getxattr: bpf.type of a program is prog plus its NUL (5 bytes)", "[fsops][xattr]") {
    Fx f;
    auto p = pin_ok(f.fs, kRootIno, "p", 1, ObjType::prog);
    auto r = f.fs.getxattr(Caller::root(), p.ino, "bpf.type", 5);
    REQUIRE(r.has_value());
    CHECK(r->value == std::string("prog\0", 5));
    auto big = f.fs.getxattr(Caller::root(), p.ino, "bpf.type", 64);
    REQUIRE(big.has_value());
    CHECK(big->value == std::string("prog\0", 5));
}

TEST_CASE(
    "compat=linux: a link pins, counts and says bpf.type link plus its NUL, and the seed: EINVAL",
    "[fsops][xattr][linux]") {
    Fx f(MountOptions{0, 0, 01777, Compat::linux});
    auto l = pin_ok(f.fs, kRootIno, "l", 1, ObjType::link);
    auto r = f.fs.getxattr(Caller::root(), l.ino, "bpf.type", 64);
    REQUIRE(r.has_value());
    CHECK(r->value == std::string("link\0", 5));
    CHECK(f.fs.counts().links == 1);
    CHECK(f.fs.get(Caller::root(), l.ino)->type == ObjType::link);
    REQUIRE(f.fs.unlink(kRootIno, "l").has_value());
    CHECK(f.fs.counts().links == 0);
    Fx seed;
    CHECK(err_of(seed.fs.pin(Caller::root(), kRootIno, "l", ObjType::link, 1)) == EINVAL);
    CHECK(err_of(seed.fs.pin(Caller::root(), 999, "l", ObjType::link, 1)) == EINVAL);  // first
    CHECK(seed.fs.counts().links == 0);
}

TEST_CASE("getxattr: size 0 asks for the length, 4 for a map and 5 for a program",
          "[fsops][xattr]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map);
    auto p = pin_ok(f.fs, kRootIno, "p", 2, ObjType::prog);
    auto rm = f.fs.getxattr(Caller::root(), m.ino, "bpf.type", 0);
    REQUIRE(rm.has_value());
    CHECK(rm->length == 4);
    CHECK(rm->value.empty());
    auto rp = f.fs.getxattr(Caller::root(), p.ino, "bpf.type", 0);
    REQUIRE(rp.has_value());
    CHECK(rp->length == 5);
    CHECK(rp->value.empty());
}

TEST_CASE("getxattr: a buffer too small is ERANGE", "[fsops][xattr]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map);
    auto p = pin_ok(f.fs, kRootIno, "p", 2, ObjType::prog);
    for (std::size_t n : {1, 2, 3})
        CHECK(err_of(f.fs.getxattr(Caller::root(), m.ino, "bpf.type", n)) == ERANGE);
    for (std::size_t n : {1, 3, 4})
        CHECK(err_of(f.fs.getxattr(Caller::root(), p.ino, "bpf.type", n)) == ERANGE);
}

TEST_CASE("getxattr: names match by the 8-byte prefix bpf.type, as the seed's strncmp",
          "[fsops][xattr]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map);
    auto p = pin_ok(f.fs, kRootIno, "p", 2, ObjType::prog);
    for (const char* name : {"bpf.typeXYZ", "bpf.type.x", "bpf.types"}) {
        INFO(name);
        auto rm = f.fs.getxattr(Caller::root(), m.ino, name, 16);
        REQUIRE(rm.has_value());
        CHECK(rm->value == std::string("map\0", 4));
        auto rp = f.fs.getxattr(Caller::root(), p.ino, name, 0);
        REQUIRE(rp.has_value());
        CHECK(rp->length == 5);
    }
}

TEST_CASE("getxattr: other names on an object are ENODATA", "[fsops][xattr]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map);
    for (const char* name : {"bpf.typ", "bpf.Type", "user.foo", "security.selinux", "bpf",
                             "xbpf.type", "BPF.TYPE", ""}) {
        INFO(name);
        CHECK(err_of(f.fs.getxattr(Caller::root(), m.ino, name, 64)) == ENODATA);
        CHECK(err_of(f.fs.getxattr(Caller::root(), m.ino, name, 0)) == ENODATA);
    }
}

TEST_CASE("getxattr: on a directory is EOPNOTSUPP", "[fsops][xattr]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    for (Ino ino : {kRootIno, d.ino}) {
        CHECK(err_of(f.fs.getxattr(Caller::root(), ino, "bpf.type", 64)) == EOPNOTSUPP);
        CHECK(err_of(f.fs.getxattr(Caller::root(), ino, "bpf.type", 0)) == EOPNOTSUPP);
        CHECK(err_of(f.fs.getxattr(Caller::root(), ino, "user.foo", 64)) == EOPNOTSUPP);
    }
}

TEST_CASE("getxattr: an object the caller cannot read is EACCES", "[fsops][xattr]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1000, 1000));
    auto owner = user(1000, 1000);
    auto other = user(2000, 2000);
    SECTION("a 0600 object read by a non-owner without capabilities") {
        CHECK(err_of(f.fs.getxattr(other, m.ino, "bpf.type", 64)) == EACCES);
        CHECK(err_of(f.fs.getxattr(other, m.ino, "bpf.type", 0)) == EACCES);
        CHECK(f.fs.getxattr(owner, m.ino, "bpf.type", 64).has_value());
    }
    SECTION("a 0200 object non-owner and owner alike") {
        chmod_ok(f.fs, m.ino, 0200);
        CHECK(err_of(f.fs.getxattr(other, m.ino, "bpf.type", 64)) == EACCES);
        CHECK(err_of(f.fs.getxattr(owner, m.ino, "bpf.type", 64)) == EACCES);
        CHECK(err_of(f.fs.getxattr(owner, m.ino, "bpf.type", 0)) == EACCES);
    }
    SECTION("group read grants a group member") {
        chmod_ok(f.fs, m.ino, 0640);
        CHECK(f.fs.getxattr(user(2000, 2000, {1000}), m.ino, "bpf.type", 64).has_value());
        CHECK(err_of(f.fs.getxattr(other, m.ino, "bpf.type", 64)) == EACCES);
    }
    SECTION("CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE read anything") {
        chmod_ok(f.fs, m.ino, 0000);
        Caps rs;
        rs.dac_read_search = true;
        Caps ov;
        ov.dac_override = true;
        CHECK(f.fs.getxattr(user(2000, 2000, {}, rs), m.ino, "bpf.type", 64).has_value());
        CHECK(f.fs.getxattr(user(2000, 2000, {}, ov), m.ino, "bpf.type", 64).has_value());
    }
}

TEST_CASE("getxattr: an unreadable directory is EACCES before EOPNOTSUPP", "[fsops][xattr]") {
    Fx f;  // root 0700 owned by uid 0
    CHECK(err_of(f.fs.getxattr(user(2000, 2000), kRootIno, "bpf.type", 64)) == EACCES);
}

TEST_CASE("listxattr: an object lists bpf.type plus its NUL (9 bytes)", "[fsops][xattr]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map);
    auto p = pin_ok(f.fs, kRootIno, "p", 2, ObjType::prog);
    for (Ino ino : {m.ino, p.ino}) {
        auto r = f.fs.listxattr(ino, 9);
        REQUIRE(r.has_value());
        CHECK(r->value == std::string("bpf.type\0", 9));
        auto big = f.fs.listxattr(ino, 1024);
        REQUIRE(big.has_value());
        CHECK(big->value == std::string("bpf.type\0", 9));
        auto q = f.fs.listxattr(ino, 0);
        REQUIRE(q.has_value());
        CHECK(q->length == 9);
        CHECK(q->value.empty());
        CHECK(err_of(f.fs.listxattr(ino, 8)) == ERANGE);
        CHECK(err_of(f.fs.listxattr(ino, 1)) == ERANGE);
    }
}

TEST_CASE("listxattr: a directory lists nothing", "[fsops][xattr]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    for (Ino ino : {kRootIno, d.ino}) {
        auto q = f.fs.listxattr(ino, 0);
        REQUIRE(q.has_value());
        CHECK(q->length == 0);
        CHECK(q->value.empty());
        auto r = f.fs.listxattr(ino, 100);
        REQUIRE(r.has_value());
        CHECK(r->value.empty());
    }
}

TEST_CASE("setxattr and removexattr are EOPNOTSUPP on directories and objects", "[fsops][xattr]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    auto m = pin_ok(f.fs, d.ino, "m", 1);
    for (Ino ino : {kRootIno, d.ino, m.ino}) {
        for (const char* name : {"bpf.type", "user.foo", "security.x"}) {
            INFO(ino << " " << name);
            CHECK(err_of(f.fs.setxattr(ino, name)) == EOPNOTSUPP);
            CHECK(err_of(f.fs.removexattr(ino, name)) == EOPNOTSUPP);
        }
    }
    // bpf.type is unchanged.
    auto r = f.fs.getxattr(Caller::root(), m.ino, "bpf.type", 16);
    REQUIRE(r.has_value());
    CHECK(r->value == std::string("map\0", 4));
}

// ------------------------------------------------------------------------------------------
// pin (spec section 5)

TEST_CASE("pin: without CAP_SYS_ADMIN is EPERM, checked before every other rule", "[fsops][pin]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    mkdir_ok(f.fs, d.ino, "sub");  // d: EBUSY for a pin
    auto t = mkdir_ok(f.fs, kRootIno, "t");
    auto m = pin_ok(f.fs, t.ino, "m", 1);  // t holds an object
    auto gone = mkdir_ok(f.fs, kRootIno, "gone");
    REQUIRE(f.fs.rmdir(kRootIno, "gone").has_value());  // removed, still referenced
    const auto before = f.fs.counts();
    const auto nodes = f.fs.node_count();

    Caps all_but_admin;
    all_but_admin.dac_override = true;
    all_but_admin.dac_read_search = true;
    for (const Caller& c : {user(0, 0), user(1000, 1000), user(0, 0, {}, all_but_admin)}) {
        CHECK(err_of(f.fs.pin(c, t.ino, "new", ObjType::map, 9)) == EPERM);
        CHECK(err_of(f.fs.pin(c, t.ino, "a.b", ObjType::map, 9)) == EPERM);
        CHECK(err_of(f.fs.pin(c, t.ino, "m", ObjType::map, 9)) == EPERM);
        CHECK(err_of(f.fs.pin(c, kRootIno, "d", ObjType::prog, 9)) == EPERM);
        CHECK(err_of(f.fs.pin(c, d.ino, "x", ObjType::map, 9)) == EPERM);
        CHECK(err_of(f.fs.pin(c, gone.ino, "x", ObjType::map, 9)) == EPERM);
        CHECK(err_of(f.fs.pin(c, m.ino, "x", ObjType::map, 9)) == EPERM);
        CHECK(err_of(f.fs.pin(c, t.ino, std::string(256, 'n'), ObjType::map, 9)) == EPERM);
        CHECK(err_of(f.fs.pin(c, t.ino, ".", ObjType::map, 9)) == EPERM);
    }
    CHECK(f.fs.counts().maps == before.maps);
    CHECK(f.fs.counts().progs == before.progs);
    CHECK(f.fs.node_count() == nodes);
    CHECK(err_of(f.fs.lookup(t.ino, "new")) == ENOENT);
}

TEST_CASE("pin: an existing name (directory or object) is EEXIST", "[fsops][pin]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    auto t = mkdir_ok(f.fs, kRootIno, "t");
    auto m = pin_ok(f.fs, t.ino, "m", 1);
    CHECK(err_of(f.fs.pin(admin(), t.ino, "m", ObjType::prog, 2)) == EEXIST);
    // root has subdirectories, so this also shows EEXIST comes before EBUSY.
    CHECK(err_of(f.fs.pin(admin(), kRootIno, "d", ObjType::map, 2)) == EEXIST);
    CHECK(getattr_ok(f.fs, d.ino).is_dir());
    auto g = f.fs.get(Caller::root(), m.ino);
    REQUIRE(g.has_value());
    CHECK(g->handle == 1);  // the old object is untouched
    CHECK(g->type == ObjType::map);
    CHECK(f.fs.counts().maps == 1);
    CHECK(f.fs.counts().progs == 0);
}

TEST_CASE("pin: '.' and '..' are EEXIST", "[fsops][pin][names]") {
    Fx f;
    auto t = mkdir_ok(f.fs, kRootIno, "t");
    CHECK(err_of(f.fs.pin(admin(), t.ino, ".", ObjType::map, 1)) == EEXIST);
    CHECK(err_of(f.fs.pin(admin(), t.ino, "..", ObjType::map, 1)) == EEXIST);
    CHECK(f.fs.counts().maps == 0);
}

TEST_CASE("pin: name with a dot is EPERM", "[fsops][pin][names]") {
    Fx f;
    auto t = mkdir_ok(f.fs, kRootIno, "t");
    for (const char* name : {"a.b", ".hidden", "x.", "bpf.type"}) {
        INFO(name);
        CHECK(err_of(f.fs.pin(admin(), t.ino, name, ObjType::map, 1)) == EPERM);
        CHECK(err_of(f.fs.lookup(t.ino, name)) == ENOENT);
    }
    // The dot rule comes before EBUSY (the root has a subdirectory).
    CHECK(err_of(f.fs.pin(admin(), kRootIno, "a.b", ObjType::map, 1)) == EPERM);
    CHECK(f.fs.counts().maps == 0);
    // t did not become terminal.
    CHECK(f.fs.mkdir(Caller::root(), t.ino, "sub").has_value());
}

TEST_CASE("pin: into a directory with subdirectories is EBUSY", "[fsops][pin][terminal]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    mkdir_ok(f.fs, d.ino, "sub");
    CHECK(err_of(f.fs.pin(admin(), d.ino, "m", ObjType::map, 1)) == EBUSY);
    CHECK(err_of(f.fs.pin(admin(), kRootIno, "m", ObjType::map, 1)) == EBUSY);
    CHECK(f.fs.counts().maps == 0);
    CHECK(err_of(f.fs.lookup(d.ino, "m")) == ENOENT);
    REQUIRE(f.fs.rmdir(d.ino, "sub").has_value());
    CHECK(f.fs.pin(admin(), d.ino, "m", ObjType::map, 1).has_value());
}

TEST_CASE("pin: the node is S_IFREG 0600, nlink 1, size 0, owned by the caller", "[fsops][pin]") {
    Fx f(MountOptions{0, 0, 0777});
    f.clk.advance(3, 3);
    auto c = admin(1000, 2000);
    auto a = f.fs.pin(c, kRootIno, "m", ObjType::map, 5);
    REQUIRE(a.has_value());
    CHECK(a->mode == (kIfReg | 0600));
    CHECK(a->nlink == 1);
    CHECK(a->size == 0);
    CHECK(a->uid == 1000);
    CHECK(a->gid == 2000);
    CHECK(a->ino != kRootIno);
    CHECK_FALSE(a->is_dir());
    CHECK(a->atime == f.clk.get());
    CHECK(a->mtime == f.clk.get());
    CHECK(a->ctime == f.clk.get());
    auto g = getattr_ok(f.fs, a->ino);
    CHECK(g.mode == (kIfReg | 0600));
    CHECK(g.nlink == 1);
    CHECK(g.uid == 1000);
    CHECK(g.gid == 2000);
    // A program is the same kind of node.
    auto p = f.fs.pin(c, kRootIno, "p", ObjType::prog, 6);
    REQUIRE(p.has_value());
    CHECK(p->mode == (kIfReg | 0600));
    CHECK(p->ino != a->ino);
    // Objects are not subdirectories: the parent's nlink does not move.
    CHECK(getattr_ok(f.fs, kRootIno).nlink == 2);
    CHECK(f.fs.counts().maps == 1);
    CHECK(f.fs.counts().progs == 1);
}

TEST_CASE("pin: gid follows the parent's setgid bit", "[fsops][pin]") {
    SECTION("setgid parent") {
        Fx f(MountOptions{0, 50, 02770});
        auto a = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1000, 2000));
        CHECK(a.gid == 50);
        CHECK(a.uid == 1000);
        CHECK(a.mode == (kIfReg | 0600));  // setgid is not copied to objects
    }
    SECTION("parent without setgid") {
        Fx f(MountOptions{0, 50, 0770});
        auto a = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1000, 2000));
        CHECK(a.gid == 2000);
    }
}

// The rule set's half is compared with the kernel's pin + chmod + chown in
// tests/compat_linux_test.cpp ("a pin given a mode and owner..."); these are the seed's and the
// core's own: the order after the other checks, and nothing made when refused.
TEST_CASE("pin: a mode and owner are given at once, with chown's rules (compat=seed)",
          "[fsops][pin]") {
    Fx f(MountOptions{0, 50, 02755});  // a setgid root: objects get group 50
    auto admin_chown = admin(1000, 2000);
    admin_chown.caps.chown = true;
    auto a = f.fs.pin(admin_chown, kRootIno, "a", ObjType::map, 1, false, false, 022,
                      PinAttrs{0640, 7, 8});
    REQUIRE(a.has_value());
    CHECK(a->mode == (kIfReg | 0640));
    CHECK(a->uid == 7);
    CHECK(a->gid == 8);
    // Without CAP_CHOWN: its own uid, a group it is in (its gid too) or the one it gets.
    auto c = user(1000, 2000, {60}, admin(1000, 2000).caps);
    CHECK(err_of(f.fs.pin(c, kRootIno, "b", ObjType::map, 2, false, false, 022,
                          PinAttrs{0, 1000, 60})) == 0);
    CHECK(getattr_ok(f.fs, f.fs.lookup(kRootIno, "b")->ino).mode == (kIfReg | 0000));
    CHECK(err_of(f.fs.pin(c, kRootIno, "c", ObjType::map, 3, false, false, 022,
                          PinAttrs{{}, {}, 50})) == 0);
    CHECK(err_of(f.fs.pin(c, kRootIno, "d", ObjType::map, 4, false, false, 022,
                          PinAttrs{{}, 1001, {}})) == EPERM);
    CHECK(err_of(f.fs.pin(c, kRootIno, "d", ObjType::map, 4, false, false, 022,
                          PinAttrs{{}, {}, 70})) == EPERM);  // a group it is not in
    CHECK(err_of(f.fs.lookup(kRootIno, "d")) == ENOENT);
    // The pin's own rules come first: EEXIST, the reserved name.
    CHECK(err_of(f.fs.pin(c, kRootIno, "a", ObjType::map, 4, false, false, 022,
                          PinAttrs{{}, 1001, {}})) == EEXIST);
    CHECK(err_of(f.fs.pin(c, kRootIno, "d.x", ObjType::map, 4, false, false, 022,
                          PinAttrs{{}, 1001, {}})) == EPERM);
    CHECK(err_of(f.fs.pin(c, kRootIno, "d", ObjType::map, 4, false, false, 022,
                          PinAttrs{01000, {}, {}})) == EINVAL);
}

TEST_CASE("pin: CAP_SYS_ADMIN suffices, write permission on the parent is not needed",
          "[fsops][pin]") {
    Fx f;  // root 0700 owned by uid 0
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    chmod_ok(f.fs, d.ino, 0500);  // not even the owner may write
    auto c = admin(1000, 1000);
    auto a = f.fs.pin(c, d.ino, "m", ObjType::map, 7);
    REQUIRE(a.has_value());
    CHECK(a->uid == 1000);
    CHECK(f.fs.pin(c, d.ino, "n", ObjType::prog, 8).has_value());
}

TEST_CASE("pin: into a removed directory is ENOENT", "[fsops][pin]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    REQUIRE(f.fs.rmdir(kRootIno, "d").has_value());
    REQUIRE(f.fs.exists(d.ino));
    CHECK(err_of(f.fs.pin(admin(), d.ino, "m", ObjType::map, 1)) == ENOENT);
    CHECK(f.fs.counts().maps == 0);
}

TEST_CASE("pin: into an object is ENOTDIR", "[fsops][pin]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1);
    CHECK(err_of(f.fs.pin(admin(), m.ino, "x", ObjType::map, 2)) == ENOTDIR);
    CHECK(f.fs.counts().maps == 1);
}

TEST_CASE("pin: 255-byte name is accepted, 256 bytes is ENAMETOOLONG", "[fsops][pin][names]") {
    Fx f;
    auto t = mkdir_ok(f.fs, kRootIno, "t");
    CHECK(f.fs.pin(admin(), t.ino, std::string(255, 'a'), ObjType::map, 1).has_value());
    CHECK(err_of(f.fs.pin(admin(), t.ino, std::string(256, 'b'), ObjType::map, 2)) == ENAMETOOLONG);
    CHECK(f.fs.counts().maps == 1);
}

TEST_CASE("pin: counts no lookup, and the node is found by lookup", "[fsops][pin][inode]") {
    Fx f;
    auto a = pin_ok(f.fs, kRootIno, "m", 1);
    CHECK(f.fs.nlookup(a.ino) == 0);
    auto l = f.fs.lookup(kRootIno, "m");
    REQUIRE(l.has_value());
    CHECK(l->ino == a.ino);
    CHECK(l->mode == (kIfReg | 0600));
    CHECK(f.fs.nlookup(a.ino) == 1);
}

TEST_CASE("pin: a read-only mount is EROFS, after EPERM and EEXIST, before the dot rule",
          "[fsops][pin]") {
    Fx f;
    auto t = mkdir_ok(f.fs, kRootIno, "t");
    pin_ok(f.fs, t.ino, "m", 1);
    auto gone = mkdir_ok(f.fs, kRootIno, "gone");
    REQUIRE(f.fs.rmdir(kRootIno, "gone").has_value());
    const auto nodes = f.fs.node_count();
    CHECK(err_of(f.fs.pin(user(0, 0), t.ino, "n", ObjType::map, 2, true)) == EPERM);
    CHECK(err_of(f.fs.pin(admin(), gone.ino, "n", ObjType::map, 2, true)) == ENOENT);
    CHECK(err_of(f.fs.pin(admin(), t.ino, "m", ObjType::map, 2, true)) == EEXIST);
    CHECK(err_of(f.fs.pin(admin(), t.ino, "n", ObjType::map, 2, true)) == EROFS);
    CHECK(err_of(f.fs.pin(admin(), t.ino, "a.b", ObjType::map, 2, true)) == EROFS);
    CHECK(err_of(f.fs.pin(admin(), kRootIno, "n", ObjType::map, 2, true)) == EROFS);  // not EBUSY
    CHECK(f.fs.node_count() == nodes);
    CHECK(f.fs.counts().maps == 1);
}

TEST_CASE("socket node: found in every directory, never listed, never removed", "[fsops][socket]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    CHECK(f.fs.socket_ino() == 0);
    CHECK(err_of(f.fs.lookup(kRootIno, kSocketName)) == ENOENT);
    auto s = f.fs.make_socket_node();
    REQUIRE(s.has_value());
    CHECK(f.fs.socket_ino() == s->ino);
    CHECK(s->mode == (kIfSock | 0666));
    CHECK(s->uid == 0);
    CHECK(s->nlink == 1);
    CHECK(f.fs.nlookup(s->ino) == 1);
    for (Ino dir : {kRootIno, d.ino}) {
        auto l = f.fs.lookup(dir, kSocketName);
        REQUIRE(l.has_value());
        CHECK(l->ino == s->ino);
        for (const auto& name : list_names(f.fs, dir)) CHECK(name != kSocketName);
        CHECK(err_of(f.fs.unlink(dir, kSocketName)) == EPERM);
        CHECK(err_of(f.fs.rmdir(dir, kSocketName)) == ENOTDIR);
        CHECK(err_of(f.fs.mkdir(Caller::root(), dir, kSocketName)) == EEXIST);
        CHECK(err_of(f.fs.pin(admin(), dir, kSocketName, ObjType::map, 1)) == EEXIST);
    }
    CHECK(f.fs.nlookup(s->ino) == 3);
    auto again = f.fs.make_socket_node();
    REQUIRE(again.has_value());
    CHECK(again->ino == s->ino);
    CHECK(f.fs.nlookup(s->ino) == 4);
    CHECK(err_of(f.fs.get(Caller::root(), s->ino)) == EACCES);  // not an object (spec 6.3)
    CHECK(f.fs.counts().maps == 0);
    CHECK(f.fs.counts().dirs == 2);
    CHECK(f.fs.exists(s->ino));
}

// ------------------------------------------------------------------------------------------
// get (spec section 6)

TEST_CASE("get: returns the pinned handle and its type", "[fsops][get]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 111, ObjType::map);
    auto p = pin_ok(f.fs, kRootIno, "p", 222, ObjType::prog);
    auto gm = f.fs.get(Caller::root(), m.ino);
    REQUIRE(gm.has_value());
    CHECK(gm->handle == 111);
    CHECK(gm->type == ObjType::map);
    auto gp = f.fs.get(Caller::root(), p.ino);
    REQUIRE(gp.has_value());
    CHECK(gp->handle == 222);
    CHECK(gp->type == ObjType::prog);
    // Again: the same object, not a copy.
    auto gm2 = f.fs.get(Caller::root(), m.ino);
    REQUIRE(gm2.has_value());
    CHECK(gm2->handle == 111);
}

TEST_CASE("get: only write permission counts: 0200 is gettable, 0400 is not", "[fsops][get]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1000, 1000));
    auto owner = user(1000, 1000);
    CHECK(f.fs.get(owner, m.ino).has_value());  // 0600
    chmod_ok(f.fs, m.ino, 0200);
    CHECK(f.fs.get(owner, m.ino).has_value());
    chmod_ok(f.fs, m.ino, 0400);
    CHECK(err_of(f.fs.get(owner, m.ino)) == EACCES);
    chmod_ok(f.fs, m.ino, 0500);
    CHECK(err_of(f.fs.get(owner, m.ino)) == EACCES);
    chmod_ok(f.fs, m.ino, 0000);
    CHECK(err_of(f.fs.get(owner, m.ino)) == EACCES);
}

TEST_CASE("get: group and other bits are honoured", "[fsops][get]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1000, 500));
    auto stranger = user(2000, 2000);
    auto member_primary = user(2000, 500);
    auto member_supp = user(2000, 2000, {7, 500});
    CHECK(err_of(f.fs.get(stranger, m.ino)) == EACCES);  // 0600
    CHECK(err_of(f.fs.get(member_supp, m.ino)) == EACCES);
    SECTION("group write") {
        chmod_ok(f.fs, m.ino, 0620);
        CHECK(f.fs.get(member_primary, m.ino).has_value());
        CHECK(f.fs.get(member_supp, m.ino).has_value());
        CHECK(err_of(f.fs.get(stranger, m.ino)) == EACCES);
        CHECK(err_of(f.fs.get(user(2000, 2000, {7, 8}), m.ino)) == EACCES);
    }
    SECTION("group read only") {
        chmod_ok(f.fs, m.ino, 0642);
        CHECK(err_of(f.fs.get(member_supp, m.ino)) == EACCES);  // group class, no write
        CHECK(f.fs.get(stranger, m.ino).has_value());           // other class has write
    }
    SECTION("other write") {
        chmod_ok(f.fs, m.ino, 0602);
        CHECK(f.fs.get(stranger, m.ino).has_value());
        CHECK(err_of(f.fs.get(member_supp, m.ino)) == EACCES);
    }
    SECTION("the owner class decides for the owner, even when group or other would allow") {
        chmod_ok(f.fs, m.ino, 0422);
        CHECK(err_of(f.fs.get(user(1000, 500), m.ino)) == EACCES);
        CHECK(err_of(f.fs.get(user(1000, 2000, {500}), m.ino)) == EACCES);
    }
}

TEST_CASE("get: CAP_DAC_OVERRIDE grants, CAP_DAC_READ_SEARCH does not", "[fsops][get]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1000, 1000));
    chmod_ok(f.fs, m.ino, 0400);
    Caps ov;
    ov.dac_override = true;
    Caps rs;
    rs.dac_read_search = true;
    CHECK(f.fs.get(user(2000, 2000, {}, ov), m.ino).has_value());
    CHECK(f.fs.get(user(1000, 1000, {}, ov), m.ino).has_value());
    CHECK(err_of(f.fs.get(user(2000, 2000, {}, rs), m.ino)) == EACCES);
    Caps sa;
    sa.sys_admin = true;
    CHECK(err_of(f.fs.get(user(2000, 2000, {}, sa), m.ino)) == EACCES);
    CHECK(f.fs.get(Caller::root(), m.ino).has_value());
}

TEST_CASE("get: a directory is EACCES, even for root", "[fsops][get]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d", user(1000, 1000));
    CHECK(err_of(f.fs.get(Caller::root(), kRootIno)) == EACCES);
    CHECK(err_of(f.fs.get(Caller::root(), d.ino)) == EACCES);
    CHECK(err_of(f.fs.get(user(1000, 1000), d.ino)) == EACCES);  // owner of a 0700 dir
}

TEST_CASE("get: an unlinked object is ENOENT (no use after unlink, departure 4)", "[fsops][get]") {
    Fx f;
    SECTION("the kernel still holds a lookup on it") {
        auto m = pin_ok(f.fs, kRootIno, "m", 1);
        REQUIRE(f.fs.lookup(kRootIno, "m").has_value());
        REQUIRE(f.fs.unlink(kRootIno, "m").has_value());
        REQUIRE(f.fs.exists(m.ino));
        CHECK(err_of(f.fs.get(Caller::root(), m.ino)) == ENOENT);
    }
    SECTION("nobody looked it up") {
        auto m = pin_ok(f.fs, kRootIno, "m", 1);
        REQUIRE(f.fs.unlink(kRootIno, "m").has_value());
        CHECK(err_of(f.fs.get(Caller::root(), m.ino)) == ENOENT);
    }
    SECTION("a new object under the same name is a different node") {
        auto m = pin_ok(f.fs, kRootIno, "m", 1);
        REQUIRE(f.fs.lookup(kRootIno, "m").has_value());
        REQUIRE(f.fs.unlink(kRootIno, "m").has_value());
        auto m2 = pin_ok(f.fs, kRootIno, "m", 2);
        CHECK(err_of(f.fs.get(Caller::root(), m.ino)) == ENOENT);
        auto g = f.fs.get(Caller::root(), m2.ino);
        REQUIRE(g.has_value());
        CHECK(g->handle == 2);
    }
}

TEST_CASE("get: updates atime to now and leaves mtime", "[fsops][get]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1);
    const Timespec t0 = f.clk.get();
    f.clk.advance(60, 1);
    REQUIRE(f.fs.get(Caller::root(), m.ino).has_value());
    auto a = getattr_ok(f.fs, m.ino);
    CHECK(a.atime == f.clk.get());
    CHECK(a.mtime == t0);
    SECTION("a refused get does not touch atime") {
        chmod_ok(f.fs, m.ino, 0400);
        const Timespec t1 = f.clk.get();
        f.clk.advance(60);
        REQUIRE_FALSE(f.fs.get(user(5, 5), m.ino).has_value());
        CHECK(getattr_ok(f.fs, m.ino).atime == t1);
    }
}

TEST_CASE("get: atime moves as on a relatime mount: not after mtime or ctime, or a day old",
          "[fsops][get]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1);
    f.clk.advance(60);
    REQUIRE(f.fs.get(Caller::root(), m.ino).has_value());  // atime was mtime: it moves
    const Timespec first = f.clk.get();
    CHECK(getattr_ok(f.fs, m.ino).atime == first);
    f.clk.advance(3600);
    REQUIRE(f.fs.get(Caller::root(), m.ino).has_value());  // after mtime and ctime: it stays
    CHECK(getattr_ok(f.fs, m.ino).atime == first);
    SECTION("a day later it moves") {
        f.clk.advance(24 * 3600);
        REQUIRE(f.fs.get(Caller::root(), m.ino).has_value());
        CHECK(getattr_ok(f.fs, m.ino).atime == f.clk.get());
    }
    SECTION("after a chmod (ctime now) it moves") {
        chmod_ok(f.fs, m.ino, 0600);
        f.clk.advance(1);
        REQUIRE(f.fs.get(Caller::root(), m.ino).has_value());
        CHECK(getattr_ok(f.fs, m.ino).atime == f.clk.get());
    }
}

// ------------------------------------------------------------------------------------------
// permission()

TEST_CASE("permission: generic_permission's owner, group, other classes and capabilities",
          "[fsops][permission]") {
    Fx f(MountOptions{1000, 500, 0750});
    CHECK(f.fs.permission(user(1000, 1), kRootIno, kMayRead | kMayWrite | kMayExec).has_value());
    CHECK(f.fs.permission(user(2, 500), kRootIno, kMayRead | kMayExec).has_value());
    CHECK(err_of(f.fs.permission(user(2, 500), kRootIno, kMayWrite)) == EACCES);
    CHECK(f.fs.permission(user(2, 3, {500}), kRootIno, kMayExec).has_value());
    CHECK(err_of(f.fs.permission(user(2, 3), kRootIno, kMayExec)) == EACCES);
    Caps rs;
    rs.dac_read_search = true;
    CHECK(f.fs.permission(user(2, 3, {}, rs), kRootIno, kMayRead | kMayExec).has_value());
    CHECK(err_of(f.fs.permission(user(2, 3, {}, rs), kRootIno, kMayWrite)) == EACCES);
    Caps ov;
    ov.dac_override = true;
    CHECK(f.fs.permission(user(2, 3, {}, ov), kRootIno, kMayWrite | kMayExec).has_value());
}

// ------------------------------------------------------------------------------------------
// The inode table

TEST_CASE("inode: numbers are never reused", "[fsops][inode]") {
    Fx f;
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    CHECK(a.ino > kRootIno);
    REQUIRE(f.fs.rmdir(kRootIno, "a").has_value());
    f.fs.forget(a.ino, 1);
    REQUIRE_FALSE(f.fs.exists(a.ino));
    auto b = mkdir_ok(f.fs, kRootIno, "a");
    CHECK(b.ino != a.ino);
    CHECK(b.ino > a.ino);
    auto m = pin_ok(f.fs, b.ino, "m", 1);
    CHECK(m.ino > b.ino);
    REQUIRE(f.fs.unlink(b.ino, "m").has_value());
    REQUIRE_FALSE(f.fs.exists(m.ino));  // nobody looked it up
    auto m2 = pin_ok(f.fs, b.ino, "m", 2);
    CHECK(m2.ino > m.ino);
    std::set<Ino> seen{kRootIno, a.ino, b.ino, m.ino, m2.ino};
    CHECK(seen.size() == 5);
}

TEST_CASE("inode: lookup and mkdir each count one lookup", "[fsops][inode]") {
    Fx f;
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    CHECK(f.fs.nlookup(a.ino) == 1);
    REQUIRE(f.fs.lookup(kRootIno, "a").has_value());
    CHECK(f.fs.nlookup(a.ino) == 2);
    REQUIRE(f.fs.lookup(kRootIno, "a").has_value());
    CHECK(f.fs.nlookup(a.ino) == 3);
    // Failed operations count nothing.
    CHECK(err_of(f.fs.mkdir(Caller::root(), kRootIno, "a")) == EEXIST);
    CHECK(f.fs.nlookup(a.ino) == 3);
    f.fs.forget(a.ino, 2);
    CHECK(f.fs.nlookup(a.ino) == 1);
    // getattr counts nothing.
    getattr_ok(f.fs, a.ino);
    CHECK(f.fs.nlookup(a.ino) == 1);
}

TEST_CASE("forget: a removed node stays until its lookups are forgotten", "[fsops][inode]") {
    Fx f;
    SECTION("directory") {
        auto a = mkdir_ok(f.fs, kRootIno, "a");           // nlookup 1
        REQUIRE(f.fs.lookup(kRootIno, "a").has_value());  // 2
        const auto nodes = f.fs.node_count();
        REQUIRE(f.fs.rmdir(kRootIno, "a").has_value());
        CHECK(f.fs.exists(a.ino));
        CHECK(f.fs.node_count() == nodes);
        auto g = f.fs.getattr(a.ino);
        REQUIRE(g.has_value());
        CHECK(g->ino == a.ino);
        CHECK(g->is_dir());
        f.fs.forget(a.ino, 1);
        CHECK(f.fs.exists(a.ino));
        CHECK(f.fs.getattr(a.ino).has_value());
        f.fs.forget(a.ino, 1);
        CHECK_FALSE(f.fs.exists(a.ino));
        CHECK_FALSE(f.fs.getattr(a.ino).has_value());
        CHECK(f.fs.node_count() == nodes - 1);
    }
    SECTION("object") {
        auto m = pin_ok(f.fs, kRootIno, "m", 1);
        REQUIRE(f.fs.lookup(kRootIno, "m").has_value());
        auto u = f.fs.unlink(kRootIno, "m");
        REQUIRE(u.has_value());
        CHECK(u->released == std::optional<ObjHandle>(1));  // released at unlink, not forget
        CHECK(f.fs.exists(m.ino));
        auto g = f.fs.getattr(m.ino);
        REQUIRE(g.has_value());
        CHECK(g->mode == (kIfReg | 0600));
        f.fs.forget(m.ino, 1);
        CHECK_FALSE(f.fs.exists(m.ino));
    }
    SECTION("forgetting more than were counted frees it too") {
        auto a = mkdir_ok(f.fs, kRootIno, "a");
        REQUIRE(f.fs.rmdir(kRootIno, "a").has_value());
        f.fs.forget(a.ino, 10);
        CHECK_FALSE(f.fs.exists(a.ino));
    }
}

TEST_CASE("forget: a live node with no lookups left stays", "[fsops][inode]") {
    Fx f;
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    f.fs.forget(a.ino, 1);
    CHECK(f.fs.nlookup(a.ino) == 0);
    CHECK(f.fs.exists(a.ino));
    CHECK(getattr_ok(f.fs, a.ino).ino == a.ino);
    auto l = f.fs.lookup(kRootIno, "a");
    REQUIRE(l.has_value());
    CHECK(l->ino == a.ino);  // same inode number after the kernel forgot it
    f.fs.forget(kRootIno, 1);
    CHECK(f.fs.exists(kRootIno));
}

TEST_CASE("forget: unknown inode numbers are ignored", "[fsops][inode]") {
    Fx f;
    const auto nodes = f.fs.node_count();
    f.fs.forget(987654321, 1);
    f.fs.forget(0, 1);
    CHECK(f.fs.node_count() == nodes);
    CHECK_FALSE(f.fs.exists(987654321));
    CHECK(f.fs.exists(kRootIno));
}

TEST_CASE("inode: an unlinked or removed node nobody looked up is freed at once",
          "[fsops][inode]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1);
    const auto nodes = f.fs.node_count();
    REQUIRE(f.fs.unlink(kRootIno, "m").has_value());
    CHECK_FALSE(f.fs.exists(m.ino));
    CHECK(f.fs.node_count() == nodes - 1);
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    f.fs.forget(a.ino, 1);
    REQUIRE(f.fs.rmdir(kRootIno, "a").has_value());
    CHECK_FALSE(f.fs.exists(a.ino));
}

// ------------------------------------------------------------------------------------------
// readdir

TEST_CASE("readdir: '.' and '..' come first", "[fsops][readdir]") {
    Fx f;
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    mkdir_ok(f.fs, a.ino, "x");
    mkdir_ok(f.fs, a.ino, "y");
    std::vector<std::pair<std::string, Ino>> got;
    auto r = f.fs.readdir(a.ino, 0, false, [&](const DirEntry& e) {
        got.emplace_back(std::string(e.name), e.attr.ino);
        return true;
    });
    REQUIRE(r.has_value());
    REQUIRE(got.size() == 4);
    CHECK(got[0].first == ".");
    CHECK(got[0].second == a.ino);
    CHECK(got[1].first == "..");
    CHECK(got[1].second == kRootIno);
    auto root = list_names(f.fs, kRootIno);
    REQUIRE(root.size() == 3);
    CHECK(root[0] == ".");
    CHECK(root[1] == "..");
    CHECK(root[2] == "a");
}

TEST_CASE("readdir: lists every entry once with its inode and type", "[fsops][readdir]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    auto e = mkdir_ok(f.fs, kRootIno, "e");
    auto m = pin_ok(f.fs, e.ino, "m", 1);
    auto p = pin_ok(f.fs, e.ino, "p", 2, ObjType::prog);
    std::map<std::string, Attr> root_entries, e_entries;
    REQUIRE(f.fs.readdir(kRootIno, 0, false,
                         [&](const DirEntry& x) {
                             CHECK(root_entries.emplace(std::string(x.name), x.attr).second);
                             return true;
                         })
                .has_value());
    REQUIRE(f.fs.readdir(e.ino, 0, false,
                         [&](const DirEntry& x) {
                             CHECK(e_entries.emplace(std::string(x.name), x.attr).second);
                             return true;
                         })
                .has_value());
    REQUIRE(root_entries.size() == 4);
    CHECK(root_entries.at("d").ino == d.ino);
    CHECK((root_entries.at("d").mode & kIfMt) == kIfDir);
    CHECK(root_entries.at("e").ino == e.ino);
    REQUIRE(e_entries.size() == 4);
    CHECK(e_entries.at("m").ino == m.ino);
    CHECK((e_entries.at("m").mode & kIfMt) == kIfReg);
    CHECK(e_entries.at("p").ino == p.ino);
    CHECK((e_entries.at("p").mode & kIfMt) == kIfReg);
    CHECK(e_entries.at("..").ino == kRootIno);
}

TEST_CASE("readdir: resuming at next_off continues after the last accepted entry",
          "[fsops][readdir]") {
    Fx f;
    for (int i = 0; i < 10; ++i) mkdir_ok(f.fs, kRootIno, "d" + std::to_string(i));
    const auto full = list_names(f.fs, kRootIno);
    REQUIRE(full.size() == 12);
    for (std::size_t per_call : {1, 2, 3, 5, 11, 12, 100}) {
        INFO("per call " << per_call);
        std::vector<std::string> paged;
        std::uint64_t off = 0;
        for (int guard = 0; guard < 100; ++guard) {
            std::size_t accepted = 0;
            std::uint64_t next = off;
            REQUIRE(f.fs.readdir(kRootIno, off, false,
                                 [&](const DirEntry& e) {
                                     if (accepted == per_call) return false;
                                     ++accepted;
                                     paged.emplace_back(e.name);
                                     next = e.next_off;
                                     return true;
                                 })
                        .has_value());
            if (accepted == 0) break;
            off = next;
        }
        CHECK(paged == full);
    }
}

namespace {

// Lists `dir` taking `per_call` entries per readdir call; between calls runs `between` with the
// names listed so far. Returns every name listed, in order ("." and ".." included).
std::vector<std::string> paged_listing(Filesystem& fs, Ino dir, std::size_t per_call, bool plus,
                                       const std::function<void(int)>& between) {
    std::vector<std::string> listed;
    std::uint64_t off = 0;
    for (int call = 0;; ++call) {
        if (call == 5000) FAIL("the listing does not end");
        std::size_t accepted = 0;
        std::uint64_t next = off;
        auto r = fs.readdir(dir, off, plus, [&](const DirEntry& e) {
            if (accepted == per_call) return false;
            ++accepted;
            listed.emplace_back(e.name);
            next = e.next_off;
            return true;
        });
        REQUIRE(r.has_value());
        if (accepted == 0) break;
        off = next;
        if (between) between(call);
    }
    return listed;
}

}  // namespace

TEST_CASE("readdir: offsets stay valid while the directory changes", "[fsops][readdir]") {
    const bool with_objects = GENERATE(false, true);
    const std::size_t per_call = GENERATE(1, 3, 7);
    INFO("objects " << with_objects << " per call " << per_call);
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    std::vector<std::string> present;  // creation order
    ObjHandle next_handle = 1;
    auto add = [&](const std::string& name) {
        if (with_objects)
            pin_ok(f.fs, d.ino, name, next_handle++);
        else
            mkdir_ok(f.fs, d.ino, name);
        present.push_back(name);
    };
    auto remove = [&](const std::string& name) {
        if (with_objects)
            REQUIRE(f.fs.unlink(d.ino, name).has_value());
        else
            REQUIRE(f.fs.rmdir(d.ino, name).has_value());
        present.erase(std::find(present.begin(), present.end(), name));
    };
    for (int i = 0; i < 40; ++i) add("n" + std::to_string(i));
    std::set<std::string> throughout(present.begin(), present.end());
    std::set<std::string> removed, added;
    int fresh = 0;

    auto listed = paged_listing(f.fs, d.ino, per_call, false, [&](int call) {
        if (call >= 12) return;  // then let the listing finish
        // Remove the oldest and the newest present entries, then add two new ones.
        if (present.size() > 2) {
            for (const std::string& victim : {present.front(), present.back()}) {
                remove(victim);
                throughout.erase(victim);
                removed.insert(victim);
                added.erase(victim);
            }
        }
        for (int k = 0; k < 2; ++k) {
            std::string name = "new" + std::to_string(fresh++);
            add(name);
            added.insert(name);
        }
    });
    REQUIRE(listed.size() >= 2);
    CHECK(listed[0] == ".");
    CHECK(listed[1] == "..");
    std::map<std::string, int> times;
    for (const auto& n : listed) ++times[n];
    for (const auto& [name, count] : times) {
        INFO(name);
        CHECK(count == 1);
    }
    for (const auto& name : throughout) {
        INFO("existed throughout: " << name);
        CHECK(times.count(name) == 1);
    }
    // New entries get larger offsets than every existing one, so those that are still there
    // were listed too.
    for (const auto& name : added) {
        INFO("added during the listing: " << name);
        CHECK(times.count(name) == 1);
    }
    CHECK(fresh > 0);
}

TEST_CASE("readdir: an entry removed before it was reached is not listed", "[fsops][readdir]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    for (int i = 0; i < 6; ++i) pin_ok(f.fs, d.ino, "o" + std::to_string(i), i + 1);
    // Learn the order, then remove what comes last after the first page.
    const auto order = list_names(f.fs, d.ino);
    REQUIRE(order.size() == 8);
    const std::string last = order.back();
    bool removed = false;
    auto listed = paged_listing(f.fs, d.ino, 3, false, [&](int) {
        if (!removed) {
            REQUIRE(f.fs.unlink(d.ino, last).has_value());
            removed = true;
        }
    });
    CHECK(std::count(listed.begin(), listed.end(), last) == 0);
    CHECK(listed.size() == 7);
}

TEST_CASE("readdirplus: counts one lookup per accepted entry only", "[fsops][readdir][inode]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    const auto d_lookups = f.fs.nlookup(d.ino);
    std::map<std::string, Ino> inos;
    for (int i = 0; i < 5; ++i) {
        std::string name = "o" + std::to_string(i);
        inos[name] = pin_ok(f.fs, d.ino, name, i + 1).ino;  // pin counts no lookup
    }
    std::vector<std::string> accepted;
    std::size_t offered = 0;
    REQUIRE(f.fs.readdir(d.ino, 0, true,
                         [&](const DirEntry& e) {
                             ++offered;
                             if (accepted.size() == 4) return false;  // ".", "..", two objects
                             accepted.emplace_back(e.name);
                             return true;
                         })
                .has_value());
    REQUIRE(accepted.size() == 4);
    CHECK(offered == 5);  // one refusal ends the call
    for (const auto& [name, ino] : inos) {
        const bool was_accepted =
            std::find(accepted.begin(), accepted.end(), name) != accepted.end();
        INFO(name);
        CHECK(f.fs.nlookup(ino) == (was_accepted ? 1u : 0u));
    }
    // "." and ".." count nothing.
    CHECK(f.fs.nlookup(d.ino) == d_lookups);
    // The rest of the listing counts the rest.
    paged_listing(f.fs, d.ino, 1000, true, nullptr);
    for (const auto& [name, ino] : inos) {
        const bool was_accepted =
            std::find(accepted.begin(), accepted.end(), name) != accepted.end();
        INFO(name);
        CHECK(f.fs.nlookup(ino) == (was_accepted ? 2u : 1u));
    }
    CHECK(f.fs.nlookup(d.ino) == d_lookups);
}

TEST_CASE("readdir: without plus counts no lookups", "[fsops][readdir][inode]") {
    Fx f;
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    auto m = pin_ok(f.fs, a.ino, "m", 1);
    list_names(f.fs, kRootIno);
    list_names(f.fs, a.ino);
    CHECK(f.fs.nlookup(a.ino) == 1);
    CHECK(f.fs.nlookup(m.ino) == 0);
}

TEST_CASE("readdir: 100,000 entries are all listed", "[fsops][readdir]") {
    Fx f;
    auto d = mkdir_ok(f.fs, kRootIno, "big");
    constexpr int kN = 100000;
    for (int i = 0; i < kN; ++i) {
        auto r = f.fs.pin(admin(), d.ino, "o" + std::to_string(i), ObjType::map,
                          static_cast<ObjHandle>(i + 1));
        if (!r.has_value()) FAIL("pin " << i << " errno " << r.error().value);
    }
    CHECK(f.fs.counts().maps == static_cast<std::uint64_t>(kN));
    SECTION("in one call") {
        std::size_t n = 0;
        std::set<std::string> names;
        REQUIRE(f.fs.readdir(d.ino, 0, false,
                             [&](const DirEntry& e) {
                                 ++n;
                                 names.emplace(e.name);
                                 return true;
                             })
                    .has_value());
        CHECK(n == kN + 2);
        CHECK(names.size() == kN + 2);
        CHECK(names.count("o0") == 1);
        CHECK(names.count("o99999") == 1);
    }
    SECTION("in pages of 128, as a kernel buffer would take them") {
        auto listed = paged_listing(f.fs, d.ino, 128, false, nullptr);
        CHECK(listed.size() == kN + 2);
        std::set<std::string> names(listed.begin(), listed.end());
        CHECK(names.size() == kN + 2);
    }
}

TEST_CASE("readdir: of an object is ENOTDIR, of a removed directory ENOENT", "[fsops][readdir]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1);
    auto sink = [](const DirEntry&) { return true; };
    CHECK(err_of(f.fs.readdir(m.ino, 0, false, sink)) == ENOTDIR);
    CHECK(err_of(f.fs.readdir(m.ino, 0, true, sink)) == ENOTDIR);
    REQUIRE(f.fs.unlink(kRootIno, "m").has_value());
    auto d = mkdir_ok(f.fs, kRootIno, "d");
    REQUIRE(f.fs.rmdir(kRootIno, "d").has_value());
    REQUIRE(f.fs.exists(d.ino));
    CHECK(err_of(f.fs.readdir(d.ino, 0, false, sink)) == ENOENT);
}

// ------------------------------------------------------------------------------------------
// counts, release_all (departure 2 at the core level)

TEST_CASE("counts: directories including the root, maps and programs", "[fsops]") {
    Fx f;
    auto c0 = f.fs.counts();
    CHECK(c0.dirs == 1);
    CHECK(c0.maps == 0);
    CHECK(c0.progs == 0);
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    auto b = mkdir_ok(f.fs, kRootIno, "b");
    mkdir_ok(f.fs, b.ino, "c");
    pin_ok(f.fs, a.ino, "m1", 1);
    pin_ok(f.fs, a.ino, "m2", 2);
    pin_ok(f.fs, a.ino, "p1", 3, ObjType::prog);
    auto c1 = f.fs.counts();
    CHECK(c1.dirs == 4);
    CHECK(c1.maps == 2);
    CHECK(c1.progs == 1);
    REQUIRE(f.fs.unlink(a.ino, "m1").has_value());
    REQUIRE(f.fs.unlink(a.ino, "p1").has_value());
    auto c2 = f.fs.counts();
    CHECK(c2.maps == 1);
    CHECK(c2.progs == 0);
    auto c = f.fs.lookup(b.ino, "c");
    REQUIRE(c.has_value());
    f.fs.forget(c->ino, f.fs.nlookup(c->ino));
    REQUIRE(f.fs.rmdir(b.ino, "c").has_value());
    CHECK(f.fs.counts().dirs == 3);
}

TEST_CASE("release_all: returns every handle and leaves no objects", "[fsops]") {
    Fx f;
    auto a = mkdir_ok(f.fs, kRootIno, "a");
    auto b = mkdir_ok(f.fs, kRootIno, "b");
    std::multiset<ObjHandle> pinned;
    for (ObjHandle h = 10; h < 15; ++h) {
        pin_ok(f.fs, a.ino, "m" + std::to_string(h), h);
        pinned.insert(h);
    }
    pin_ok(f.fs, b.ino, "p", 99, ObjType::prog);
    pinned.insert(99);
    auto gone = pin_ok(f.fs, b.ino, "q", 100, ObjType::prog);
    REQUIRE(f.fs.unlink(b.ino, "q").has_value());  // already released: not returned again
    (void)gone;
    auto handles = f.fs.release_all();
    std::multiset<ObjHandle> got(handles.begin(), handles.end());
    CHECK(got == pinned);
    auto c = f.fs.counts();
    CHECK(c.maps == 0);
    CHECK(c.progs == 0);
    // Nothing hands out a released handle any more.
    for (const auto& [dir, name] :
         std::vector<std::pair<Ino, std::string>>{{a.ino, "m10"}, {a.ino, "m14"}, {b.ino, "p"}}) {
        INFO(name);
        auto l = f.fs.lookup(dir, name);
        if (l.has_value()) CHECK_FALSE(f.fs.get(Caller::root(), l->ino).has_value());
    }
    CHECK(f.fs.release_all().empty());
}

// ------------------------------------------------------------------------------------------
// compat=linux: the policy's answers (spec section 7; the mount-level comparison with a kernel
// bpffs is tests/compat_linux_test.cpp)

TEST_CASE("compat=linux: no terminal rule, in either direction", "[fsops][linux]") {
    Fx f(MountOptions{0, 0, 01777, Compat::linux});
    Ino d = mkdir_ok(f.fs, kRootIno, "d").ino;
    pin_ok(f.fs, d, "obj", 1);
    Ino sub = mkdir_ok(f.fs, d, "sub").ino;  // a directory beside an object
    CHECK(sub != 0);
    pin_ok(f.fs, d, "obj2", 2);  // an object beside a directory
    CHECK(f.fs.counts().dirs == 3);
    // The seed keeps both halves.
    Fx seed;
    Ino s = mkdir_ok(seed.fs, kRootIno, "d").ino;
    pin_ok(seed.fs, s, "obj", 1);
    CHECK(err_of(seed.fs.mkdir(Caller::root(), s, "sub")) == EPERM);
}

TEST_CASE("compat=linux: a lookup of any dotted name is EPERM, the broker's socket aside",
          "[fsops][linux]") {
    Fx f(MountOptions{0, 0, 01777, Compat::linux});
    Ino d = mkdir_ok(f.fs, kRootIno, "d").ino;
    CHECK(err_of(f.fs.lookup(d, "a.b")) == EPERM);
    CHECK(err_of(f.fs.lookup(kRootIno, ".hidden")) == EPERM);
    CHECK(err_of(f.fs.lookup(d, "missing")) == ENOENT);
    // Length comes first, as the VFS checks it before the filesystem's lookup.
    CHECK(err_of(f.fs.lookup(d, std::string(256, '.'))) == ENAMETOOLONG);
    REQUIRE(f.fs.make_socket_node().has_value());
    CHECK(f.fs.lookup(d, kSocketName).has_value());
    Fx seed;
    CHECK(err_of(seed.fs.lookup(kRootIno, "a.b")) == ENOENT);
}

TEST_CASE("compat=linux: mkdir takes the requested mode and a setgid parent's gid and bit",
          "[fsops][linux]") {
    Fx f(MountOptions{0, 0, 01777, Compat::linux});
    auto a = f.fs.mkdir(user(1000, 1000), kRootIno, "a", 0755);
    REQUIRE(a.has_value());
    CHECK(a->mode == (kIfDir | 0755));  // not the root's 01777
    CHECK(a->uid == 1000);
    CHECK(a->gid == 1000);
    auto sticky = f.fs.mkdir(user(1000, 1000), kRootIno, "s", 01700);
    REQUIRE(sticky.has_value());
    CHECK(sticky->mode == (kIfDir | 01700));
    chmod_ok(f.fs, a->ino, 02770);
    auto b = f.fs.mkdir(user(2000, 2000), a->ino, "b", 04700);  // setuid is not kept
    REQUIRE(b.has_value());
    CHECK(b->mode == (kIfDir | 02700));
    CHECK(b->gid == 1000);
}

TEST_CASE("compat=linux: the options shown are the root's owner and mode", "[fsops][linux]") {
    Fx f(MountOptions{1000, 1000, 01750, Compat::linux});
    chmod_ok(f.fs, kRootIno, 0755);
    CHECK(f.fs.options() == MountOptions{1000, 1000, 0755, Compat::linux});
}

TEST_CASE("compat=linux: a state with mixed directories restores, and keeps its rule set",
          "[fsops][linux]") {
    Fx f(MountOptions{0, 0, 01777, Compat::linux});
    Ino d = mkdir_ok(f.fs, kRootIno, "d").ino;
    pin_ok(f.fs, d, "obj", 1);
    mkdir_ok(f.fs, d, "sub");
    CoreState s = f.fs.snapshot();
    auto back = Filesystem::restore(s, f.clk.clock());
    REQUIRE(back.has_value());
    CHECK((*back)->options().compat == Compat::linux);
    CHECK(err_of((*back)->lookup(d, "x.y")) == EPERM);
    // The same tree claimed by a seed mount breaks the terminal rule: refused.
    s.meta.opts.compat = Compat::seed;
    CHECK(err_of(Filesystem::restore(s, f.clk.clock())) == EINVAL);
}

TEST_CASE("compat=linux: get flags ask ACC_MODE and give the fd's mode", "[fsops][linux][get]") {
    Fx f(MountOptions{0, 0, 01777, Compat::linux});
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1000, 1000));
    auto owner = user(1000, 1000);
    const std::uint32_t rd = kBpfFRdonly, wr = kBpfFWronly;
    auto mode_of = [&](std::uint32_t flags) {
        auto g = f.fs.get(owner, m.ino, flags);
        REQUIRE(g.has_value());
        return g->mode;
    };
    CHECK(mode_of(0) == FdMode::read_write);  // 0600: read and write
    CHECK(mode_of(rd) == FdMode::read_only);
    CHECK(mode_of(wr) == FdMode::write_only);
    CHECK(mode_of(rd | kBpfFPathFd) == FdMode::read_only);
    chmod_ok(f.fs, m.ino, 0400);
    CHECK(err_of(f.fs.get(owner, m.ino)) == EACCES);
    CHECK(mode_of(rd) == FdMode::read_only);
    CHECK(err_of(f.fs.get(owner, m.ino, wr)) == EACCES);
    chmod_ok(f.fs, m.ino, 0200);
    CHECK(err_of(f.fs.get(owner, m.ino)) == EACCES);
    CHECK(err_of(f.fs.get(owner, m.ino, rd)) == EACCES);
    CHECK(mode_of(wr) == FdMode::write_only);
    // Flags are judged first: before a missing node.
    for (std::uint32_t bad : {rd | wr, 1u, 0x8000u}) {
        CHECK(err_of(f.fs.get(owner, m.ino, bad)) == EINVAL);
        CHECK(err_of(f.fs.get(owner, 9999, bad)) == EINVAL);
        CHECK(err_of(f.fs.get_access(bad)) == EINVAL);
    }
    CHECK(f.fs.get_access(rd)->may == kMayRead);
    CHECK(f.fs.get_access(0)->may == (kMayRead | kMayWrite));
    CHECK(f.fs.may_pin(owner, kBpfFPathFd).has_value());
    CHECK(f.fs.may_pin(admin(0, 0), kBpfFPathFd).has_value());
    CHECK(err_of(f.fs.may_pin(admin(0, 0), rd)) == EINVAL);
}

TEST_CASE("get: under compat=seed any flag is EINVAL, and none asks write permission only",
          "[fsops][get]") {
    Fx f;
    auto m = pin_ok(f.fs, kRootIno, "m", 1, ObjType::map, admin(1000, 1000));
    auto owner = user(1000, 1000);
    for (std::uint32_t flags : {kBpfFRdonly, kBpfFWronly, kBpfFPathFd, 1u}) {
        CHECK(err_of(f.fs.get(owner, m.ino, flags)) == EINVAL);
        CHECK(err_of(f.fs.get_access(flags)) == EINVAL);
        CHECK(err_of(f.fs.may_pin(admin(0, 0), flags)) == EINVAL);
    }
    CHECK(f.fs.get_access(0)->may == kMayWrite);
    CHECK(f.fs.get(owner, m.ino)->mode == FdMode::read_write);
}

TEST_CASE(
    "limits: the tree's nodes are bounded in all and per owner, and root and the mount's owner "
    "have no share",
    "[fsops][limits]") {
    Fx f(MountOptions{500, 500, 01777, Compat::linux});  // the mount belongs to uid 500
    f.fs.set_node_limits(NodeLimits{12, 3});
    const Caller alice = user(1000, 1000), bob = user(1001, 1001), owner = user(500, 500);
    // Alice: three nodes, whatever kind, then ENOSPC, after the name's own checks.
    auto d = f.fs.mkdir(alice, kRootIno, "a");
    REQUIRE(d.has_value());
    REQUIRE(f.fs.pin(alice, d->ino, "m", ObjType::map, 1).has_value());
    REQUIRE(f.fs.symlink(alice, d->ino, "s", "m").has_value());
    CHECK(err_of(f.fs.mkdir(alice, d->ino, "x")) == ENOSPC);
    CHECK(err_of(f.fs.pin(alice, d->ino, "y", ObjType::map, 2)) == ENOSPC);
    CHECK(err_of(f.fs.symlink(alice, d->ino, "z", "m")) == ENOSPC);
    CHECK(err_of(f.fs.mkdir(alice, d->ino, "m")) == EEXIST);  // the name first
    // A hard link is no new node; Bob has his own share.
    REQUIRE(f.fs.link(f.fs.lookup(d->ino, "m")->ino, d->ino, "m2").has_value());
    REQUIRE(f.fs.mkdir(bob, kRootIno, "b").has_value());
    // A node given away leaves its owner's share; one removed leaves it once forgotten.
    SetAttr chown;
    chown.uid = 1001;
    REQUIRE(f.fs.setattr(f.fs.lookup(d->ino, "s")->ino, chown).has_value());
    auto x = f.fs.mkdir(alice, d->ino, "x");
    REQUIRE(x.has_value());
    REQUIRE(f.fs.rmdir(d->ino, "x").has_value());
    CHECK(err_of(f.fs.mkdir(alice, d->ino, "x2")) == ENOSPC);  // the kernel still holds x
    f.fs.forget(x->ino, 1);
    REQUIRE(f.fs.mkdir(alice, d->ino, "x2").has_value());
    // Root and the owner only meet the bound in all: 12 nodes (the root's and d's among them).
    const std::size_t before = f.fs.node_count();
    for (std::size_t i = before; i < 12; ++i)
        REQUIRE(f.fs.mkdir(i % 2 ? Caller::root() : owner, kRootIno, "r" + std::to_string(i))
                    .has_value());
    CHECK(err_of(f.fs.mkdir(Caller::root(), kRootIno, "full")) == ENOSPC);
    CHECK(err_of(f.fs.mkdir(owner, kRootIno, "full")) == ENOSPC);
    // A restored core counts the same (its limits come from the options, set again).
    auto back = Filesystem::restore(f.fs.snapshot(), f.clk.clock());
    REQUIRE(back.has_value());
    auto full = (*back)->mkdir(owner, kRootIno, "full");  // no bound until set
    REQUIRE(full.has_value());
    REQUIRE((*back)->rmdir(kRootIno, "full").has_value());
    (*back)->forget(full->ino, 1);
    (*back)->set_node_limits(NodeLimits{13, 3});
    CHECK(err_of((*back)->mkdir(alice, d->ino, "x3")) == ENOSPC);
    CHECK((*back)->mkdir(bob, kRootIno, "b2").has_value());
}

TEST_CASE("path_of: a node's path from the root, for the logs", "[fsops][log]") {
    Filesystem fs(MountOptions{0, 0, 0755});
    auto d = fs.mkdir(Caller::root(), kRootIno, "d");
    REQUIRE(d);
    auto e = fs.mkdir(Caller::root(), d->ino, "e");
    REQUIRE(e);
    auto m = fs.pin(admin(), e->ino, "m", ObjType::map, 1);
    REQUIRE(m);
    CHECK(fs.path_of(kRootIno) == "/");
    CHECK(fs.path_of(d->ino) == "/d");
    CHECK(fs.path_of(m->ino) == "/d/e/m");
    REQUIRE(fs.lookup(e->ino, "m"));  // the kernel holds it: removed, still in the table
    REQUIRE(fs.unlink(e->ino, "m"));
    CHECK(fs.path_of(m->ino) == "(removed) /d/e/m");
    auto sock = fs.make_socket_node();
    REQUIRE(sock);
    CHECK(fs.path_of(sock->ino) == "(socket)");
    CHECK(fs.path_of(999) == "ino 999");
}
