// SPDX-License-Identifier: GPL-2.0-or-later
// compat=linux beside the kernel's own bpffs (spec section 7): each test runs the same steps on a
// `mount -t bpf` and on a `bpffs-fuse -o compat=linux` mount made with the same options, and
// compares every outcome (errno, type and mode, owner, nlink, listing), as root and as other
// users with their own umasks. Outcomes are strings, so a difference reads as two lines.
// Needs root (mounting, setresuid).
#include "tests/bpf_test_util.hpp"
#include "tests/compat_helpers.hpp"
#include "tests/kernel_helpers.hpp"
#include "tests/mount_fixture.hpp"
#include "tests/result_helpers.hpp"

#include "common/bpf_fd.hpp"

#include <bpf/bpf.h>
#include <bpffs/bpffs.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

using namespace bpffs::test;

namespace {

constexpr uid_t kAlice = 1000, kBob = 1001;
constexpr gid_t kStaff = 50;

// mkdir(path, mode) as uid:gid (groups: `groups`) with `umask`, in a child.
std::string mkdir_as(const std::string& path, mode_t mode, uid_t uid, gid_t gid, mode_t mask,
                     std::vector<gid_t> groups = {}) {
    int e = run_as(
        uid, gid,
        [&] {
            umask(mask);
            return mkdir(path.c_str(), mode) == 0 ? 0 : errno;
        },
        groups);
    return outcome(e, path);
}

// A plain call as root, its errno.
std::string call(const std::function<int()>& fn, const std::string& path) {
    return outcome(fn() == 0 ? 0 : errno, path);
}

// Pins `fd` at `path` as uid:gid (no capabilities) with `mask` as its umask, in a child.
std::string pin_as(const Side& s, int fd, const std::string& path, uid_t uid, gid_t gid,
                   mode_t mask) {
    int e = run_as(uid, gid, [&] {
        umask(mask);
        return s.kernel ? -bpf_obj_pin(fd, path.c_str()) : pin(fd, path);
    });
    return outcome(e, path);
}

// The tree under `dir`, without the root's maps.debug and progs.debug: a kernel built with
// CONFIG_BPF_PRELOAD puts those iterator pins into every new bpffs once its preload has run (seen
// on this 6.18 machine from one day to the next), which is the kernel's content, not a rule of
// the filesystem.
std::string listing(const std::string& dir) {
    std::string out;
    for (const auto& name : tree(dir)) {
        if (name == "maps.debug" || name == "progs.debug") continue;
        out += name + " ";
    }
    return out;
}

}  // namespace

TEST_CASE("linux: the root and its options as a kernel bpffs makes them", "[linux][kernel]") {
    for (std::string opts : {"", "mode=0750", "mode=0700,uid=1000,gid=50", "mode=02755,foo=bar"}) {
        compare(opts, [](const Side& s) { return std::vector<std::string>{stat_of(s.root)}; });
    }
}

TEST_CASE("linux: mkdir modes and owners follow the request, the umask and setgid parents",
          "[linux][kernel]") {
    compare("", [](const Side& s) {
        std::vector<std::string> out;
        out.push_back(mkdir_as(s.p("r022"), 0777, 0, 0, 022));
        out.push_back(mkdir_as(s.p("r000"), 01777, 0, 0, 0));
        out.push_back(mkdir_as(s.p("r4755"), 04755, 0, 0, 0));  // setuid dropped
        out.push_back(mkdir_as(s.p("alice"), 0777, kAlice, kAlice, 077));
        out.push_back(mkdir_as(s.p("bob"), 0750, kBob, kBob, 0));
        // A setgid directory of the staff group: new dirs inside take its gid and the bit.
        out.push_back(call([&] { return chown(s.p("r022").c_str(), 0, kStaff); }, s.p("r022")));
        out.push_back(call([&] { return chmod(s.p("r022").c_str(), 02777); }, s.p("r022")));
        out.push_back(mkdir_as(s.p("r022/sub"), 0700, kAlice, kAlice, 022));
        // Write permission on the parent, and the sticky root: bob cannot remove alice's dir.
        out.push_back(mkdir_as(s.p("alice/x"), 0777, kBob, kBob, 0));
        out.push_back(outcome(
            run_as(kBob, kBob, [&] { return rmdir(s.p("alice").c_str()) == 0 ? 0 : errno; }),
            s.p("alice")));
        out.push_back(listing(s.root));
        return out;
    });
}

TEST_CASE("linux: dotted names are EPERM wherever they are looked up", "[linux][kernel]") {
    compare("", [](const Side& s) {
        std::vector<std::string> out;
        out.push_back(mkdir_as(s.p("d"), 0755, 0, 0, 022));
        out.push_back(stat_of(s.p("a.b")));
        out.push_back(stat_of(s.p("d/.hidden")));
        out.push_back(stat_of(s.p(".x/y")));
        out.push_back(mkdir_as(s.p("d/x.y"), 0755, 0, 0, 022));
        out.push_back(mkdir_as(s.p("d/x.y"), 0755, kAlice, kAlice, 022));
        out.push_back(stat_of(s.p("missing")));
        out.push_back(stat_of(s.p("d/.")));
        out.push_back(listing(s.root));
        return out;
    });
}

TEST_CASE("linux: no terminal rule, objects and directories side by side", "[linux][kernel]") {
    auto map = must_map();
    auto prog = must_prog();
    compare("", [&](const Side& s) {
        std::vector<std::string> out;
        out.push_back(mkdir_as(s.p("tc"), 0755, 0, 0, 022));
        out.push_back(pin_at(s, prog.get(), s.p("tc/prog")));
        out.push_back(mkdir_as(s.p("tc/globals"), 0755, 0, 0, 022));  // beside an object
        out.push_back(pin_at(s, map.get(), s.p("tc/globals/m")));
        out.push_back(pin_at(s, map.get(), s.p("m")));  // the root holds directories
        out.push_back(stat_of(s.p("tc")));
        out.push_back(call([&] { return rmdir(s.p("tc").c_str()); }, s.p("tc")));
        out.push_back(call([&] { return unlink(s.p("tc/prog").c_str()); }, s.p("tc/prog")));
        out.push_back(
            call([&] { return unlink(s.p("tc/globals/m").c_str()); }, s.p("tc/globals/m")));
        out.push_back(call([&] { return rmdir(s.p("tc/globals").c_str()); }, s.p("tc/globals")));
        out.push_back(stat_of(s.p("tc")));
        out.push_back(listing(s.root));
        return out;
    });
}

TEST_CASE("linux: a pin wakes a watcher of its directory, as any create", "[linux][kernel]") {
    auto map = must_map();
    compare("", [&](const Side& s) {
        std::vector<std::string> out;
        out.push_back(mkdir_as(s.p("d"), 0755, 0, 0, 022));
        CreateWatch watch(s.p("d"));
        out.push_back(watch.ok() ? "watching" : "no watch");
        out.push_back(pin_at(s, map.get(), s.p("d/m")));
        out.push_back("created: " + watch.next());
        out.push_back(mkdir_as(s.p("d/sub"), 0755, 0, 0, 022));
        out.push_back("created: " + watch.next());
        return out;
    });
}

TEST_CASE("linux: a pin needs no capability but W+X on the parent, and takes the umask",
          "[linux][kernel]") {
    auto map = must_map();
    auto pipes = make_pipes(1);
    const int closed_fd = closed_fd_number();
    TempDir elsewhere;  // not a bpf filesystem on either side
    compare("", [&](const Side& s) {
        std::vector<std::string> out;
        out.push_back(mkdir_as(s.p("open"), 01777, 0, 0, 0));
        out.push_back(mkdir_as(s.p("closed"), 0755, 0, 0, 0));
        out.push_back(pin_as(s, map.get(), s.p("open/a"), kAlice, kAlice, 077));
        out.push_back(pin_as(s, map.get(), s.p("open/b"), kAlice, kAlice, 0277));
        out.push_back(pin_as(s, map.get(), s.p("open/c"), kBob, kBob, 0));
        out.push_back(pin_as(s, map.get(), s.p("closed/x"), kAlice, kAlice, 022));  // no W
        out.push_back(pin_as(s, map.get(), s.p("open/a"), kBob, kBob, 022));        // EEXIST
        out.push_back(pin_as(s, map.get(), s.p("open/a.b"), kAlice, kAlice, 022));  // dotted
        out.push_back(pin_as(s, closed_fd, s.p("open/d"), kAlice, kAlice, 022));
        out.push_back(pin_as(s, pipes.raw()[0], s.p("open/d"), kAlice, kAlice, 022));
        out.push_back(pin_as(s, map.get(), elsewhere.p("x"), kAlice, kAlice, 022));
        out.push_back(pin_at(s, map.get(), s.p("closed/y")));  // root may, as anywhere
        out.push_back(listing(s.root));
        return out;
    });
}

namespace {

// A pin given a mode and owner (bpffs_opts.pin_set) as uid:gid with `groups` (uid 0: root with
// its capabilities, in this process), beside what it stands for on the kernel's bpffs: a pin,
// a chmod and a chown by the same caller, undone by root when the chmod or chown fails, since
// ours makes nothing then. The outcome: the errno, then what the path is.
struct Give {
    std::optional<mode_t> mode;
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
};
std::string pin_given(const Side& s, int fd, const std::string& path, uid_t uid, gid_t gid,
                      std::vector<gid_t> groups, const Give& g, mode_t mask = 022) {
    // The kernel's: the pin's errno, or 0x80 | the chmod's or chown's after a pin.
    auto as_kernel = [&] {
        if (bpf_obj_pin(fd, path.c_str()) != 0) return errno;
        if (g.mode && chmod(path.c_str(), *g.mode) != 0) return 0x80 | errno;
        if ((g.uid || g.gid) && chown(path.c_str(), g.uid.value_or(static_cast<uid_t>(-1)),
                                      g.gid.value_or(static_cast<gid_t>(-1))) != 0)
            return 0x80 | errno;
        return 0;
    };
    auto as_ours = [&] {
        bpffs_opts o{};
        o.sz = sizeof o;
        o.pin_set = (g.mode ? BPFFS_PIN_MODE : 0) | (g.uid ? BPFFS_PIN_UID : 0) |
                    (g.gid ? BPFFS_PIN_GID : 0);
        o.mode = g.mode.value_or(0);
        o.uid = g.uid.value_or(0);
        o.gid = g.gid.value_or(0);
        return bpffs_obj_pin_opts(fd, path.c_str(), &o) == 0 ? 0 : errno;
    };
    auto call = [&] {
        umask(mask);
        return s.kernel ? as_kernel() : as_ours();
    };
    int e = uid == 0 ? call() : run_as(uid, gid, call, groups);
    umask(022);
    if (e > 0 && (e & 0x80) != 0) {  // a kernel pin whose chmod or chown failed
        unlink(path.c_str());
        e &= ~0x80;
    }
    return outcome(e, path);
}

}  // namespace

TEST_CASE("linux: a pin given a mode and owner is a pin, a chmod and a chown at once",
          "[linux][kernel]") {
    auto map = must_map();
    compare("", [&](const Side& s) {
        std::vector<std::string> out;
        out.push_back(mkdir_as(s.p("open"), 01777, 0, 0, 0));
        out.push_back(mkdir_as(s.p("staff"), 02777, 0, kStaff, 0));  // setgid: its group
        auto as_alice = [&](const std::string& rel, const Give& g, mode_t mask = 022) {
            return pin_given(s, map.get(), s.p(rel), kAlice, kAlice, {kStaff}, g, mask);
        };
        // Root gives anything (CAP_CHOWN).
        out.push_back(pin_given(s, map.get(), s.p("open/r"), 0, 0, {}, {0640, kAlice, kStaff}));
        out.push_back(pin_given(s, map.get(), s.p("open/r2"), 0, 0, {}, {{}, kBob, {}}));
        // Its owner chmods anything, past the umask; gives a group it is in, or the one it has.
        out.push_back(as_alice("open/a", {0666, {}, {}}, 077));
        out.push_back(as_alice("open/b", {0, {}, {}}));
        out.push_back(as_alice("open/c", {0604, kAlice, kStaff}));
        out.push_back(as_alice("staff/d", {{}, {}, kStaff}));
        // Another owner, or a group it is not in: EPERM, and no name.
        out.push_back(as_alice("open/e", {0644, kBob, {}}));
        out.push_back(as_alice("open/f", {{}, {}, kBob}));
        out.push_back(as_alice("open/g", {{}, kAlice, kBob}));
        // The pin's own refusals come first.
        out.push_back(as_alice("open/a", {{}, kBob, {}}));    // EEXIST
        out.push_back(as_alice("open/h.i", {{}, kBob, {}}));  // the dotted name's EPERM
        out.push_back(listing(s.p("open")));
        return out;
    });
}

TEST_CASE("linux: open of an object is EIO, its xattrs EOPNOTSUPP, after the permission",
          "[linux][kernel]") {
    auto map = must_map();
    compare("", [&](const Side& s) {
        std::vector<std::string> out;
        out.push_back(pin_at(s, map.get(), s.p("m")));
        auto open_as = [&](uid_t uid, int flags) {
            int e = run_as(uid, uid, [&] {
                bpffs::UniqueFd fd(open(s.p("m").c_str(), flags | O_CLOEXEC));
                return fd ? 0 : errno;
            });
            return outcome(e, s.p("m"));
        };
        out.push_back(open_as(0, O_RDONLY));
        out.push_back(open_as(0, O_RDWR));
        out.push_back(open_as(kAlice, O_RDONLY));  // 0600 root's: EACCES first
        for (const char* name : {"user.x", "trusted.x", "security.x", "foo"}) {
            char buf[64];
            int e = getxattr(s.p("m").c_str(), name, buf, sizeof buf) >= 0 ? 0 : errno;
            out.push_back(std::string(name) + ": " + ename(e));
        }
        return out;
    });
    // bpf.type is this product's, in both modes (the kernel has none: EOPNOTSUPP).
    Mount ours("compat=linux");
    must_pin(map.get(), ours.p("m"));
    char buf[8] = {};
    CHECK(ename(errno_of(getxattr(ours.p("m").c_str(), "user.x", buf, sizeof buf) >= 0 ? 0 : -1)) ==
          ename(EOPNOTSUPP));  // and the kernel keeps asking afterwards
    CHECK(getxattr(ours.p("m").c_str(), "bpf.type", buf, sizeof buf) == 4);
    CHECK(std::string(buf) == "map");
}

namespace {

// The kernel id of the object pinned at `path`, fetched the way each side hands out pins; 0 if
// the get fails.
std::uint32_t id_at(const Side& s, const std::string& path) {
    bpffs::UniqueFd fd(s.kernel ? bpf_obj_get(path.c_str()) : bpffs_obj_get(path.c_str()));
    return fd ? bpffs::bpf_object_id(fd.get()) : 0;
}

}  // namespace

TEST_CASE("linux: a pinned link keeps its attachment, unlinking the last name detaches it",
          "[linux][kernel]") {
    TempCgroup cg;
    KernelBpffs kernel;
    Mount ours("compat=linux");
    const Side sides[] = {{kernel.path(), true}, {ours.path(), false}};
    bpffs::UniqueFd link = must_cgroup_link(cg);
    const std::uint32_t id = bpffs::bpf_object_id(link.get());
    REQUIRE(id != 0);
    std::vector<std::string> out[2];
    for (int i = 0; i < 2; ++i) {
        const Side& s = sides[i];
        out[i].push_back(pin_at(s, link.get(), s.p("l")));
        out[i].push_back(pin_at(s, link.get(), s.p("l")));  // EEXIST
        out[i].push_back(std::to_string(id_at(s, s.p("l"))));
    }
    CHECK(out[1] == out[0]);
    CHECK(out[1][2] == std::to_string(id));
    char type[16] = {};
    CHECK(getxattr(ours.p("l").c_str(), "bpf.type", type, sizeof type) == 5);
    CHECK(std::string(type, 5) == std::string("link\0", 5));
    bpffs::UniqueFd got(bpffs_obj_get(ours.p("l").c_str()));
    REQUIRE(got);
    CHECK(*bpffs::bpf_kind(got.get()) == bpffs::BpfKind::link);  // "bpf-link", opened by id
    got.reset();
    // The pins hold the attachment once the test's own fd is gone.
    link.reset();
    CHECK(link_id_alive(id));
    CHECK(call([&] { return unlink(kernel.p("l").c_str()); }, kernel.p("l")) == "OK -> ENOENT");
    CHECK(link_id_alive(id));  // our pin still holds it
    CHECK(call([&] { return unlink(ours.p("l").c_str()); }, ours.p("l")) == "OK -> ENOENT");
    CHECK(wait_for([&] { return !link_id_alive(id); }));
}

namespace {

// renameat2(from, to, flags) as uid (no capabilities), its outcome and what both paths are then.
std::string rename_as(const std::string& from, const std::string& to, unsigned flags,
                      uid_t uid = 0) {
    auto call = [&] { return renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags); };
    int e = uid == 0 ? (call() == 0 ? 0 : errno)
                     : run_as(uid, uid, [&] { return call() == 0 ? 0 : errno; });
    return (e == 0 ? std::string("OK") : ename(e)) + ": " + stat_of(from) + " | " + stat_of(to);
}

// Whether the map `id` is still alive, after the kernel's deferred free has had its time.
std::string map_fate(std::uint32_t id) {
    return wait_for([&] { return !map_id_alive(id); }, 3000) ? "freed" : "alive";
}

}  // namespace

TEST_CASE("linux: rename moves, replaces, exchanges and refuses as the kernel's does",
          "[linux][kernel][rename]") {
    auto map = must_map();
    auto prog = must_prog();
    compare("", [&](const Side& s) {
        std::vector<std::string> out;
        out.push_back(mkdir_as(s.p("a"), 0755, 0, 0, 022));
        out.push_back(mkdir_as(s.p("b"), 0755, 0, 0, 022));
        out.push_back(mkdir_as(s.p("a/sub"), 0755, 0, 0, 022));
        out.push_back(pin_at(s, map.get(), s.p("a/m")));
        out.push_back(pin_at(s, prog.get(), s.p("a/p")));
        out.push_back(rename_as(s.p("a/m"), s.p("b/m"), 0));  // to another directory
        out.push_back(std::to_string(id_at(s, s.p("b/m")) == bpffs::bpf_object_id(map.get())));
        out.push_back(rename_as(s.p("b/m"), s.p("a/p"), 0));  // over an object
        out.push_back(std::to_string(id_at(s, s.p("a/p")) == bpffs::bpf_object_id(map.get())));
        out.push_back(rename_as(s.p("a/p"), s.p("a/q"), RENAME_NOREPLACE));
        out.push_back(pin_at(s, prog.get(), s.p("b/p")));
        out.push_back(rename_as(s.p("a/q"), s.p("b/p"), RENAME_NOREPLACE));    // EEXIST
        out.push_back(rename_as(s.p("a/q"), s.p("b/none"), RENAME_EXCHANGE));  // ENOENT
        out.push_back(rename_as(s.p("a/q"), s.p("b"), RENAME_EXCHANGE));  // an object for a dir
        out.push_back(stat_of(s.p("a")));
        out.push_back(stat_of(s.p("a/q/p")));                   // b's program came along
        out.push_back(rename_as(s.p("a"), s.p("a/sub/x"), 0));  // into itself: EINVAL
        out.push_back(rename_as(s.p("a/sub"), s.p("a/q"), 0));  // over non-empty: ENOTEMPTY
        out.push_back(rename_as(s.p("a/sub"), s.p("b"), 0));    // dir over file: ENOTDIR
        out.push_back(rename_as(s.p("b"), s.p("a/sub"), 0));    // file over dir: EISDIR
        out.push_back(rename_as(s.p("b"), s.p("b"), 0));        // onto itself
        out.push_back(rename_as(s.p("b"), s.p("a/.m"), 0));     // dotted: EPERM
        out.push_back(rename_as(s.p("b"), s.p("c"), 4));        // RENAME_WHITEOUT: EINVAL
        out.push_back(mkdir_as(s.p("empty"), 0700, 0, 0, 022));
        out.push_back(rename_as(s.p("a/sub"), s.p("empty"), 0));  // over an empty directory
        out.push_back(stat_of(s.p("a")));
        out.push_back(listing(s.root));
        return out;
    });
}

TEST_CASE("linux: rename by another user obeys the sticky bit and write permission",
          "[linux][kernel][rename]") {
    auto map = must_map();
    compare("", [&](const Side& s) {
        std::vector<std::string> out;
        out.push_back(mkdir_as(s.p("shared"), 01777, 0, 0, 0));
        out.push_back(mkdir_as(s.p("mine"), 0755, kAlice, kAlice, 022));
        out.push_back(pin_as(s, map.get(), s.p("shared/alice"), kAlice, kAlice, 022));
        out.push_back(pin_as(s, map.get(), s.p("shared/bob"), kBob, kBob, 022));
        out.push_back(rename_as(s.p("shared/alice"), s.p("shared/x"), 0, kBob));    // sticky
        out.push_back(rename_as(s.p("shared/bob"), s.p("shared/alice"), 0, kBob));  // sticky
        out.push_back(rename_as(s.p("shared/alice"), s.p("mine/a"), 0, kAlice));
        out.push_back(rename_as(s.p("shared/bob"), s.p("mine/b"), 0, kBob));  // no W on mine
        out.push_back(rename_as(s.p("mine"), s.p("shared/mine"), 0, kAlice));
        out.push_back(listing(s.root));
        return out;
    });
}

TEST_CASE("linux: hard links share one node, and the object goes with its last name",
          "[linux][kernel][link]") {
    KernelBpffs kernel;
    Mount ours("compat=linux");
    const Side sides[] = {{kernel.path(), true}, {ours.path(), false}};
    std::vector<std::string> out[2];
    for (int i = 0; i < 2; ++i) {
        const Side& s = sides[i];
        auto& o = out[i];
        auto map = must_map();
        const std::uint32_t id = bpffs::bpf_object_id(map.get());
        auto ln = [&](const std::string& from, const std::string& to) {
            int e = link(s.p(from).c_str(), s.p(to).c_str()) == 0 ? 0 : errno;
            return outcome(e, s.p(to));
        };
        o.push_back(mkdir_as(s.p("d"), 0755, 0, 0, 022));
        o.push_back(pin_at(s, map.get(), s.p("m")));
        map.reset();
        o.push_back(ln("m", "l1"));
        o.push_back(ln("m", "d/l2"));
        o.push_back(ln("m", "d/l2"));  // EEXIST
        o.push_back(ln("d", "d2"));    // a directory: EPERM
        o.push_back(ln("m", ".m"));    // dotted: EPERM
        o.push_back(stat_of(s.p("m")));
        o.push_back(std::to_string(id_at(s, s.p("d/l2")) == id));
        struct stat a {
        }, b{};
        o.push_back(lstat(s.p("m").c_str(), &a) == 0 && lstat(s.p("l1").c_str(), &b) == 0 &&
                            a.st_ino == b.st_ino
                        ? "one inode"
                        : "two inodes");
        o.push_back(call([&] { return chmod(s.p("l1").c_str(), 0640); }, s.p("m")));
        o.push_back(call([&] { return unlink(s.p("m").c_str()); }, s.p("l1")));
        o.push_back(call([&] { return unlink(s.p("l1").c_str()); }, s.p("d/l2")));
        o.push_back(map_fate(id));
        o.push_back(pin_at(s, must_map().get(), s.p("x")));
        o.push_back(rename_as(s.p("d/l2"), s.p("x"), 0));  // over the other map's only name
        o.push_back(map_fate(id));
        o.push_back(call([&] { return unlink(s.p("x").c_str()); }, s.p("x")));
        o.push_back(map_fate(id));  // the last name went
        o.push_back(listing(s.root));
    }
    CHECK(out[1] == out[0]);
}

TEST_CASE("linux: symlinks point anywhere, belong to their maker, and a get follows them",
          "[linux][kernel][symlink]") {
    auto map = must_map();
    compare("", [&](const Side& s) {
        std::vector<std::string> out;
        auto ln_s = [&](const std::string& target, const std::string& at, uid_t uid) {
            int e = run_as(uid, uid,
                           [&] { return symlink(target.c_str(), at.c_str()) == 0 ? 0 : errno; });
            return outcome(e, at);
        };
        out.push_back(mkdir_as(s.p("tc"), 0755, 0, 0, 022));
        out.push_back(mkdir_as(s.p("tc/globals"), 0755, 0, 0, 022));
        out.push_back(pin_at(s, map.get(), s.p("tc/globals/m")));
        out.push_back(ln_s("tc", s.p("xdp"), 0));  // iproute2's way to share tc/globals
        out.push_back(
            std::to_string(id_at(s, s.p("xdp/globals/m")) == bpffs::bpf_object_id(map.get())));
        out.push_back(ln_s("globals/m", s.p("tc/m"), 0));
        out.push_back(std::to_string(id_at(s, s.p("tc/m")) == bpffs::bpf_object_id(map.get())));
        out.push_back(pin_at(s, map.get(), s.p("tc/m")));  // an existing name: EEXIST
        out.push_back(ln_s("/nowhere/at/all", s.p("dangling"), 0));
        out.push_back(std::to_string(id_at(s, s.p("dangling"))));  // 0: ENOENT
        out.push_back(ln_s("m", s.p("tc/.s"), 0));                 // dotted: EPERM
        out.push_back(mkdir_as(s.p("shared"), 03777, 0, kStaff, 0));
        out.push_back(call([&] { return chmod(s.p("shared").c_str(), 03777); }, s.p("shared")));
        out.push_back(ln_s("../tc", s.p("shared/alice"), kAlice));  // owner alice, gid staff
        out.push_back(std::to_string(id_at(s, s.p("shared/alice/globals/m")) ==
                                     bpffs::bpf_object_id(map.get())));
        out.push_back(ln_s("x", s.p("tc/globals/m"), 0));  // EEXIST
        out.push_back(rename_as(s.p("tc/m"), s.p("shared/m"), 0));
        out.push_back(call([&] { return unlink(s.p("xdp").c_str()); }, s.p("xdp")));
        out.push_back(stat_of(s.p("tc/globals/m")));
        out.push_back(listing(s.root));
        return out;
    });
}

TEST_CASE("linux: rename, link and symlink wake a watcher of the directory", "[linux][kernel]") {
    auto map = must_map();
    compare("", [&](const Side& s) {
        std::vector<std::string> out;
        out.push_back(mkdir_as(s.p("d"), 0755, 0, 0, 022));
        out.push_back(pin_at(s, map.get(), s.p("m")));
        CreateWatch watch(s.p("d"));
        out.push_back(watch.ok() ? "watching" : "no watch");
        out.push_back(call([&] { return link(s.p("m").c_str(), s.p("d/l").c_str()); }, s.p("d/l")));
        out.push_back("created: " + watch.next());
        out.push_back(call([&] { return symlink("../m", s.p("d/s").c_str()); }, s.p("d/s")));
        out.push_back("created: " + watch.next());
        return out;
    });
}
