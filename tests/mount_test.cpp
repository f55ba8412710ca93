// SPDX-License-Identifier: GPL-2.0-or-later
// Mount tests: the real bpffs-fuse daemon on a temp dir, driven with plain syscalls as root and
// as unprivileged users. Checks errno values, modes, owners and xattrs against the spec's
// sections 2 (mount), 3 (filesystem operations) and 4 (xattrs), as far as a process can reach
// them through the filesystem alone (no objects: those need the broker). Needs root and
// /dev/fuse.
//
// Some answers come from the kernel, not the daemon (EEXIST for "." and "..", EISDIR for
// unlink and truncate of a directory, EXDEV across mounts, EBUSY for rmdir of the mount point,
// EPERM for a hard link of a directory, the permission checks of default_permissions). They are
// tested all the same: they are what a user of the mount sees, and a daemon that broke the
// conditions they rest on (modes, owners, types) would change them.
//
// Errno values are compared by name (ename()) so that a failure reads "ENOENT" == "EPERM".
// Unprivileged callers run in forked children (run_as) that return an errno, 0 for success.
#include "tests/bpf_test_util.hpp"
#include "tests/mount_fixture.hpp"
#include "tests/result_helpers.hpp"
#include "tests/syscall_helpers.hpp"

#include "common/unique_fd.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using bpffs::UniqueFd;
using bpffs::test::ename;
using bpffs::test::errno_of;
using bpffs::test::is_bpffs_mounted;
using bpffs::test::Mount;
using bpffs::test::mount_table;
using bpffs::test::must_mkdir;
using bpffs::test::must_stat;
using bpffs::test::run_as;
using bpffs::test::run_cmd;
using bpffs::test::TempDir;
using bpffs::test::wait_for;

constexpr uid_t kUser = 1001;
constexpr gid_t kUserGid = 1001;
constexpr gid_t kOtherGid = 50;

// The errno of open(2) (0 if it succeeded; the fd is closed then).
int open_errno(const std::string& path, int flags, mode_t mode = 0) {
    UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, mode));
    return fd ? 0 : errno;
}

int stat_errno(const std::string& path) {
    struct stat st {};
    return errno_of(::stat(path.c_str(), &st));
}

void must_rmdir(const std::string& path) {
    int e = errno_of(::rmdir(path.c_str()));
    INFO("rmdir " << path << ": " << ename(e));
    REQUIRE(e == 0);
}

struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

// Every name readdir(3) returns for `dir`, "." and ".." included, in listing order.
std::vector<std::string> list_names(const std::string& dir) {
    DirPtr d(opendir(dir.c_str()));
    int e = d ? 0 : errno;
    INFO("opendir " << dir << ": " << ename(e));
    REQUIRE(d);
    std::vector<std::string> out;
    errno = 0;
    while (dirent* de = readdir(d.get())) out.emplace_back(de->d_name);
    e = errno;
    INFO("readdir " << dir << ": " << ename(e));
    REQUIRE(e == 0);
    return out;
}

std::multiset<std::string> as_multiset(const std::vector<std::string>& v) {
    return {v.begin(), v.end()};
}

// Sets the umask for a scope.
class UmaskGuard {
public:
    explicit UmaskGuard(mode_t m) : old_(::umask(m)) {}
    ~UmaskGuard() { ::umask(old_); }
    UmaskGuard(const UmaskGuard&) = delete;
    UmaskGuard& operator=(const UmaskGuard&) = delete;

private:
    mode_t old_;
};

// The mount options and super block options of the mount at `path` (from mountinfo), joined
// with commas and framed by commas (",rw,nosuid,...,"), or "" if it is not mounted.
std::string mountinfo_options(const std::string& path) {
    for (const auto& e : mount_table()) {
        if (e.path == path) return "," + e.options + "," + e.super_options + ",";
    }
    return "";
}

// Writes "2" to /proc/sys/vm/drop_caches: the kernel evicts unused dentries and inodes, which
// sends FORGETs to the daemon.
void drop_dentries_and_inodes() {
    sync();
    std::ofstream out("/proc/sys/vm/drop_caches");
    out << "2\n";
    out.flush();
    REQUIRE(out.good());
}

std::size_t count_occurrences(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1))
        ++n;
    return n;
}

// One getdents64(2) call: the names it returned (empty at the end of the directory).
struct LinuxDirent64 {
    std::uint64_t d_ino;
    std::int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[1];
};

std::vector<std::string> getdents_names(int fd, std::size_t bufsize) {
    std::vector<char> buf(bufsize);
    long n = syscall(SYS_getdents64, fd, buf.data(), buf.size());
    int e = n < 0 ? errno : 0;
    INFO("getdents64: " << ename(e));
    REQUIRE(n >= 0);
    std::vector<std::string> out;
    for (long pos = 0; pos < n;) {
        const auto* de = reinterpret_cast<const LinuxDirent64*>(buf.data() + pos);
        out.emplace_back(de->d_name);
        REQUIRE(de->d_reclen > 0);
        pos += de->d_reclen;
    }
    return out;
}

std::string name_of_len(std::size_t len) { return std::string(len, 'n'); }

bool timespec_in(const timespec& t, const timespec& lo, const timespec& hi) {
    auto ns = [](const timespec& x) {
        return static_cast<long long>(x.tv_sec) * 1'000'000'000LL + x.tv_nsec;
    };
    return ns(t) >= ns(lo) && ns(t) <= ns(hi);
}

timespec realtime_now() {
    timespec t{};
    clock_gettime(CLOCK_REALTIME, &t);
    return t;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Mount options (spec section 2)

TEST_CASE("mount: root of -o uid=1000,gid=1000,mode=0750 is drwxr-x--- 1000 1000", "[mount]") {
    Mount m("uid=1000,gid=1000,mode=0750");
    struct stat st {};
    REQUIRE(stat(m.path().c_str(), &st) == 0);
    CHECK(st.st_mode == (S_IFDIR | 0750));
    CHECK(st.st_uid == 1000);
    CHECK(st.st_gid == 1000);
    CHECK(st.st_ino == 1);
    CHECK(st.st_nlink == 2);
}

TEST_CASE("mount: without options the root is S_IFDIR 0700, uid 0, gid 0, nlink 2, ino 1",
          "[mount][options]") {
    Mount m;
    auto st = must_stat(m.path());
    CHECK(st.st_mode == (S_IFDIR | 0700));
    CHECK((st.st_mode & S_ISVTX) == 0);
    CHECK(st.st_uid == 0);
    CHECK(st.st_gid == 0);
    CHECK(st.st_nlink == 2);
    CHECK(st.st_ino == 1);
}

TEST_CASE("mount: uid and gid take C base-0 integers (0x3e9 is 1001, 010 is 8)",
          "[mount][options]") {
    Mount m("uid=0x3e9,gid=010");
    auto st = must_stat(m.path());
    CHECK(st.st_uid == 1001);
    CHECK(st.st_gid == 8);
    CHECK(st.st_mode == (S_IFDIR | 0700));
}

TEST_CASE("mount: mode=1777 gives the root the sticky bit", "[mount][options]") {
    Mount m("mode=1777");
    auto st = must_stat(m.path());
    CHECK(st.st_mode == (S_IFDIR | 01777));
}

TEST_CASE("mount: a bad option value or an unknown option is refused with one line naming it",
          "[mount][options]") {
    const std::string opt =
        GENERATE(as<std::string>{}, "uid=-1", "uid=4294967295", "uid=abc", "uid=12x",
                 "uid=", "mode=8", "mode=9", "mode=abc", "mode=", "foo", "foo=1");
    INFO("-o " << opt);
    TempDir dir;
    auto r = run_cmd({BPFFS_FUSE_BIN, "-f", dir.path(), "-o", opt});
    INFO("output: " << r.out);
    CHECK(r.exit_code > 0);  // -1 would mean it was killed (it hung, or mounted and waited)
    CHECK(!is_bpffs_mounted(dir.path()));
    // One line: no newline but the last.
    REQUIRE(!r.out.empty());
    CHECK(r.out.find('\n') == r.out.size() - 1);
    // It names the option: its key and its value ("uid" and "-1" for uid=-1; the whole text
    // for an unknown option).
    auto eq = opt.find('=');
    if (eq == std::string::npos || opt.substr(0, 3) == "foo") {
        CHECK(r.out.find(opt) != std::string::npos);
    } else {
        CHECK(r.out.find(opt.substr(0, eq)) != std::string::npos);
        CHECK(r.out.find(opt.substr(eq + 1)) != std::string::npos);
    }
    if (is_bpffs_mounted(dir.path())) umount2(dir.path().c_str(), MNT_DETACH);
}

TEST_CASE("mount: standard options nosuid,nodev,noatime pass through to the mount",
          "[mount][options]") {
    Mount m("nosuid,nodev,noatime");
    auto opts = mountinfo_options(m.path());
    INFO("mountinfo options: " << opts);
    CHECK(opts.find(",nosuid,") != std::string::npos);
    CHECK(opts.find(",nodev,") != std::string::npos);
    CHECK(opts.find(",noatime,") != std::string::npos);
    CHECK(must_stat(m.path()).st_mode == (S_IFDIR | 0700));
}

TEST_CASE("mount: empty elements of the option list are skipped (,,uid=5,, mounts with uid 5)",
          "[mount][options]") {
    Mount m(",,uid=5,,");
    CHECK(must_stat(m.path()).st_uid == 5);
}

TEST_CASE("mount: on a ro mount mkdir is EROFS", "[mount][options]") {
    Mount m("ro");
    // The daemon may mount read-write first and remount read-only once it is ready (its broker
    // binds a socket in the mount): wait for the read-only flag, then the mount must refuse.
    INFO("mountinfo options: " << mountinfo_options(m.path()));
    REQUIRE(
        wait_for([&] { return mountinfo_options(m.path()).find(",ro,") != std::string::npos; }));
    CHECK(ename(errno_of(mkdir(m.p("d").c_str(), 0700))) == ename(EROFS));
    CHECK(ename(stat_errno(m.p("d"))) == ename(ENOENT));
}

TEST_CASE("mount: --help exits 0 with a usage text that mentions -o", "[mount][cli]") {
    auto r = run_cmd({BPFFS_FUSE_BIN, "--help"});
    INFO("output: " << r.out);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Usage") != std::string::npos);
    CHECK(r.out.find("-o") != std::string::npos);
}

TEST_CASE("mount: --version exits 0 and prints the version", "[mount][cli]") {
    auto r = run_cmd({BPFFS_FUSE_BIN, "--version"});
    INFO("output: " << r.out);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("bpffs-fuse") != std::string::npos);
}

TEST_CASE("mount: usage errors exit 2 and say what is wrong", "[mount][cli]") {
    auto help = run_cmd({BPFFS_FUSE_BIN, "--help"});
    CHECK(help.out.find("MOUNTPOINT") != std::string::npos);
    CHECK(help.out.find("required") != std::string::npos);
    TempDir dir;
    auto level = run_cmd({BPFFS_FUSE_BIN, "-f", dir.path(), "--log-level", "loud"});
    INFO("output: " << level.out);
    CHECK(level.exit_code == 2);
    CHECK(level.out.find("unknown log level 'loud'") != std::string::npos);
    auto none = run_cmd({BPFFS_FUSE_BIN, "-f"});
    CHECK(none.exit_code == 2);
    CHECK(none.out.find("MOUNTPOINT is required") != std::string::npos);
    CHECK(!is_bpffs_mounted(dir.path()));
}

TEST_CASE("mount: a missing mount point fails with a message naming it", "[mount][cli]") {
    TempDir dir;
    std::string missing = dir.path() + "/missing";
    auto r = run_cmd({BPFFS_FUSE_BIN, "-f", missing});
    INFO("output: " << r.out);
    CHECK(r.exit_code > 0);
    CHECK(r.out.find(missing) != std::string::npos);
    CHECK(!is_bpffs_mounted(missing));
    CHECK(stat_errno(missing) == ENOENT);  // and it was not created
}

// ---------------------------------------------------------------------------------------------
// mkdir (spec section 3)

TEST_CASE("mkdir: the new dir copies the parent's full mode, ignoring mode and umask",
          "[mount][mkdir]") {
    const mode_t parent_mode = GENERATE(mode_t{02755}, mode_t{01777}, mode_t{0750});
    INFO("parent mode " << std::oct << parent_mode);
    Mount m;
    REQUIRE(chmod(m.path().c_str(), parent_mode) == 0);
    REQUIRE((must_stat(m.path()).st_mode & 07777) == parent_mode);
    UmaskGuard um(022);
    must_mkdir(m.p("d"), 0700);
    CHECK(must_stat(m.p("d")).st_mode == (S_IFDIR | parent_mode));
    must_mkdir(m.p("d/e"), 0);  // and one level down
    CHECK(must_stat(m.p("d/e")).st_mode == (S_IFDIR | parent_mode));
}

TEST_CASE("mkdir: the owner is the caller's uid and gid without a setgid parent",
          "[mount][mkdir][owner]") {
    Mount m("gid=50,mode=0777");
    REQUIRE(must_stat(m.path()).st_gid == kOtherGid);
    int e = run_as(kUser, kUserGid, [&] { return errno_of(mkdir(m.p("d").c_str(), 0700)); });
    REQUIRE(ename(e) == "ok");
    auto st = must_stat(m.p("d"));
    CHECK(st.st_uid == kUser);
    CHECK(st.st_gid == kUserGid);
    CHECK(st.st_mode == (S_IFDIR | 0777));
}

TEST_CASE("mkdir: under a setgid parent the new dir takes the parent's gid",
          "[mount][mkdir][owner]") {
    Mount m("gid=50,mode=02777");
    REQUIRE(must_stat(m.path()).st_mode == (S_IFDIR | 02777));
    int e = run_as(kUser, kUserGid, [&] { return errno_of(mkdir(m.p("d").c_str(), 0700)); });
    REQUIRE(ename(e) == "ok");
    auto st = must_stat(m.p("d"));
    CHECK(st.st_uid == kUser);
    CHECK(st.st_gid == kOtherGid);
    CHECK(st.st_mode == (S_IFDIR | 02777));
}

TEST_CASE("mkdir: the new dir has nlink 2 and the parent's nlink goes up by one",
          "[mount][mkdir][nlink]") {
    Mount m;
    CHECK(must_stat(m.path()).st_nlink == 2);
    must_mkdir(m.p("a"), 0700);
    CHECK(must_stat(m.p("a")).st_nlink == 2);
    CHECK(must_stat(m.path()).st_nlink == 3);
    must_mkdir(m.p("b"), 0700);
    CHECK(must_stat(m.path()).st_nlink == 4);
    must_mkdir(m.p("a/c"), 0700);
    CHECK(must_stat(m.p("a")).st_nlink == 3);
    CHECK(must_stat(m.path()).st_nlink == 4);
}

TEST_CASE("mkdir: a name containing a dot is EPERM and nothing is created",
          "[mount][mkdir][names]") {
    const std::string name = GENERATE(as<std::string>{}, "a.b", ".x", "x.", "..x", "a..b");
    INFO("name " << name);
    Mount m;
    CHECK(ename(errno_of(mkdir(m.p(name).c_str(), 0700))) == ename(EPERM));
    CHECK(ename(stat_errno(m.p(name))) == ename(ENOENT));
    CHECK(must_stat(m.path()).st_nlink == 2);
}

TEST_CASE("mkdir: . and .. are EEXIST", "[mount][mkdir][names]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    CHECK(ename(errno_of(mkdir(m.p(".").c_str(), 0700))) == ename(EEXIST));
    CHECK(ename(errno_of(mkdir(m.p("..").c_str(), 0700))) == ename(EEXIST));
    CHECK(ename(errno_of(mkdir(m.p("d/.").c_str(), 0700))) == ename(EEXIST));
    CHECK(ename(errno_of(mkdir(m.p("d/..").c_str(), 0700))) == ename(EEXIST));
}

TEST_CASE("mkdir: an existing name is EEXIST", "[mount][mkdir][names]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    auto before = must_stat(m.p("d"));
    CHECK(ename(errno_of(mkdir(m.p("d").c_str(), 0700))) == ename(EEXIST));
    CHECK(must_stat(m.p("d")).st_ino == before.st_ino);
    CHECK(must_stat(m.path()).st_nlink == 3);
}

TEST_CASE("mkdir: a 255-byte name works, a 256-byte name is ENAMETOOLONG",
          "[mount][mkdir][names]") {
    Mount m;
    std::string ok = name_of_len(255);
    std::string too_long = std::string(256, 'l');
    must_mkdir(m.p(ok), 0700);
    CHECK(S_ISDIR(must_stat(m.p(ok)).st_mode));
    auto names = list_names(m.path());
    CHECK(std::find(names.begin(), names.end(), ok) != names.end());
    CHECK(ename(errno_of(mkdir(m.p(too_long).c_str(), 0700))) == ename(ENAMETOOLONG));
    CHECK(ename(stat_errno(m.p(too_long))) == ename(ENAMETOOLONG));
    CHECK(must_stat(m.path()).st_nlink == 3);
}

TEST_CASE("mkdir: an unprivileged caller in root's 0700 dir gets EACCES", "[mount][mkdir][perm]") {
    Mount m;
    int e = run_as(kUser, kUserGid, [&] { return errno_of(mkdir(m.p("d").c_str(), 0700)); });
    CHECK(ename(e) == ename(EACCES));
    CHECK(ename(stat_errno(m.p("d"))) == ename(ENOENT));
}

TEST_CASE("mkdir: an unprivileged caller without write permission on the parent gets EACCES",
          "[mount][mkdir][perm]") {
    Mount m("mode=0755");
    int e = run_as(kUser, kUserGid, [&] { return errno_of(mkdir(m.p("d").c_str(), 0700)); });
    CHECK(ename(e) == ename(EACCES));
    CHECK(ename(stat_errno(m.p("d"))) == ename(ENOENT));
}

// ---------------------------------------------------------------------------------------------
// lookup

TEST_CASE("lookup: stat of a missing name is ENOENT, dotted or not", "[mount][lookup]") {
    const std::string name = GENERATE(as<std::string>{}, "missing", "a.b", ".x", "x.");
    INFO("name " << name);
    Mount m;
    must_mkdir(m.p("d"), 0700);
    CHECK(ename(stat_errno(m.p(name))) == ename(ENOENT));
    CHECK(ename(stat_errno(m.p("d/" + name))) == ename(ENOENT));
    CHECK(ename(stat_errno(m.p(name + "/x"))) == ename(ENOENT));
}

// ---------------------------------------------------------------------------------------------
// rmdir, unlink

TEST_CASE("rmdir: a non-empty directory is ENOTEMPTY", "[mount][rmdir]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    must_mkdir(m.p("d/e"), 0700);
    CHECK(ename(errno_of(rmdir(m.p("d").c_str()))) == ename(ENOTEMPTY));
    CHECK(S_ISDIR(must_stat(m.p("d/e")).st_mode));
    CHECK(must_stat(m.path()).st_nlink == 3);
}

TEST_CASE("rmdir: an empty directory goes and the parent's nlink drops by one",
          "[mount][rmdir][nlink]") {
    Mount m;
    must_mkdir(m.p("a"), 0700);
    must_mkdir(m.p("b"), 0700);
    REQUIRE(must_stat(m.path()).st_nlink == 4);
    must_rmdir(m.p("a"));
    CHECK(ename(stat_errno(m.p("a"))) == ename(ENOENT));
    CHECK(must_stat(m.path()).st_nlink == 3);
    CHECK(as_multiset(list_names(m.path())) == std::multiset<std::string>{".", "..", "b"});
    // The name can be made again.
    must_mkdir(m.p("a"), 0700);
    CHECK(must_stat(m.path()).st_nlink == 4);
}

TEST_CASE("rmdir: the mount root is EBUSY", "[mount][rmdir]") {
    Mount m;
    CHECK(ename(errno_of(rmdir(m.path().c_str()))) == ename(EBUSY));
    CHECK(is_bpffs_mounted(m.path()));
    CHECK(must_stat(m.path()).st_ino == 1);
}

TEST_CASE("unlink: a directory is EISDIR", "[mount][unlink]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    CHECK(ename(errno_of(unlink(m.p("d").c_str()))) == ename(EISDIR));
    CHECK(S_ISDIR(must_stat(m.p("d")).st_mode));
    CHECK(ename(errno_of(unlink(m.p("missing").c_str()))) == ename(ENOENT));
}

// ---------------------------------------------------------------------------------------------
// rename, link, symlink

TEST_CASE("rename: inside the mount is EPERM", "[mount][rename]") {
    Mount m;
    must_mkdir(m.p("a"), 0700);
    must_mkdir(m.p("b"), 0700);
    must_mkdir(m.p("c"), 0700);
    CHECK(ename(errno_of(rename(m.p("a").c_str(), m.p("x").c_str()))) == ename(EPERM));
    CHECK(ename(errno_of(rename(m.p("a").c_str(), m.p("b/a").c_str()))) == ename(EPERM));
    CHECK(ename(errno_of(rename(m.p("a").c_str(), m.p("c").c_str()))) == ename(EPERM));
    CHECK(S_ISDIR(must_stat(m.p("a")).st_mode));
    CHECK(S_ISDIR(must_stat(m.p("c")).st_mode));
    CHECK(ename(stat_errno(m.p("x"))) == ename(ENOENT));
    CHECK(ename(stat_errno(m.p("b/a"))) == ename(ENOENT));
}

TEST_CASE("rename: from the mount to /tmp is EXDEV", "[mount][rename]") {
    Mount m;
    TempDir outside;
    must_mkdir(m.p("a"), 0700);
    std::string target = outside.path() + "/a";
    CHECK(ename(errno_of(rename(m.p("a").c_str(), target.c_str()))) == ename(EXDEV));
    CHECK(S_ISDIR(must_stat(m.p("a")).st_mode));
    CHECK(ename(stat_errno(target)) == ename(ENOENT));
}

TEST_CASE("link: inside the mount is EPERM", "[mount][link]") {
    // Only directories can exist without the broker, and the kernel refuses a hard link of a
    // directory itself; the answer is still the spec's.
    Mount m;
    must_mkdir(m.p("a"), 0700);
    CHECK(ename(errno_of(link(m.p("a").c_str(), m.p("b").c_str()))) == ename(EPERM));
    CHECK(ename(stat_errno(m.p("b"))) == ename(ENOENT));
    CHECK(must_stat(m.p("a")).st_nlink == 2);
}

TEST_CASE("symlink: inside the mount is EPERM", "[mount][symlink]") {
    Mount m;
    must_mkdir(m.p("a"), 0700);
    CHECK(ename(errno_of(symlink("a", m.p("s").c_str()))) == ename(EPERM));
    CHECK(ename(errno_of(symlink("/tmp", m.p("a/s").c_str()))) == ename(EPERM));
    struct stat st {};
    CHECK(ename(errno_of(lstat(m.p("s").c_str(), &st))) == ename(ENOENT));
}

// ---------------------------------------------------------------------------------------------
// setattr

TEST_CASE("chmod: root can chmod a dir and stat shows the new mode", "[mount][setattr]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    REQUIRE(ename(errno_of(chmod(m.p("d").c_str(), 03751))) == "ok");
    CHECK(must_stat(m.p("d")).st_mode == (S_IFDIR | 03751));
    REQUIRE(ename(errno_of(chmod(m.p("d").c_str(), 0))) == "ok");
    CHECK(must_stat(m.p("d")).st_mode == S_IFDIR);
}

TEST_CASE("chown: root can chown a dir and stat shows the new owner", "[mount][setattr]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    REQUIRE(ename(errno_of(chown(m.p("d").c_str(), 1234, 5678))) == "ok");
    auto st = must_stat(m.p("d"));
    CHECK(st.st_uid == 1234);
    CHECK(st.st_gid == 5678);
    REQUIRE(ename(errno_of(chown(m.p("d").c_str(), static_cast<uid_t>(-1), 42))) == "ok");
    st = must_stat(m.p("d"));
    CHECK(st.st_uid == 1234);
    CHECK(st.st_gid == 42);
}

TEST_CASE("utimensat: explicit times are stored and shown by stat", "[mount][setattr]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    timespec times[2] = {{1000, 500}, {2000, 600}};
    REQUIRE(ename(errno_of(utimensat(AT_FDCWD, m.p("d").c_str(), times, 0))) == "ok");
    auto st = must_stat(m.p("d"));
    CHECK(st.st_atim.tv_sec == 1000);
    CHECK(st.st_atim.tv_nsec == 500);
    CHECK(st.st_mtim.tv_sec == 2000);
    CHECK(st.st_mtim.tv_nsec == 600);
    // UTIME_OMIT leaves one alone.
    timespec only_atime[2] = {{3000, 7}, {0, UTIME_OMIT}};
    REQUIRE(ename(errno_of(utimensat(AT_FDCWD, m.p("d").c_str(), only_atime, 0))) == "ok");
    st = must_stat(m.p("d"));
    CHECK(st.st_atim.tv_sec == 3000);
    CHECK(st.st_atim.tv_nsec == 7);
    CHECK(st.st_mtim.tv_sec == 2000);
    CHECK(st.st_mtim.tv_nsec == 600);
}

TEST_CASE("utimensat: UTIME_NOW sets the current time", "[mount][setattr]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    timespec old[2] = {{1000, 0}, {1000, 0}};
    REQUIRE(ename(errno_of(utimensat(AT_FDCWD, m.p("d").c_str(), old, 0))) == "ok");
    timespec before = realtime_now();
    before.tv_sec -= 2;  // the daemon's clock and ours may round differently
    timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    REQUIRE(ename(errno_of(utimensat(AT_FDCWD, m.p("d").c_str(), now, 0))) == "ok");
    timespec after = realtime_now();
    after.tv_sec += 2;
    auto st = must_stat(m.p("d"));
    CHECK(timespec_in(st.st_atim, before, after));
    CHECK(timespec_in(st.st_mtim, before, after));
    // utimes(path, NULL) is the same request.
    REQUIRE(ename(errno_of(utimensat(AT_FDCWD, m.p("d").c_str(), old, 0))) == "ok");
    REQUIRE(ename(errno_of(utimensat(AT_FDCWD, m.p("d").c_str(), nullptr, 0))) == "ok");
    st = must_stat(m.p("d"));
    CHECK(timespec_in(st.st_mtim, before, realtime_now()));
}

TEST_CASE("truncate: a directory is EISDIR", "[mount][setattr]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    CHECK(ename(errno_of(truncate(m.p("d").c_str(), 0))) == ename(EISDIR));
    CHECK(S_ISDIR(must_stat(m.p("d")).st_mode));
}

TEST_CASE("chmod: an unprivileged non-owner gets EPERM", "[mount][setattr][perm]") {
    Mount m("mode=0755");
    must_mkdir(m.p("d"), 0700);  // root's, 0755
    int e = run_as(kUser, kUserGid, [&] { return errno_of(chmod(m.p("d").c_str(), 0777)); });
    CHECK(ename(e) == ename(EPERM));
    CHECK(must_stat(m.p("d")).st_mode == (S_IFDIR | 0755));
}

TEST_CASE("chown: an unprivileged non-owner gets EPERM", "[mount][setattr][perm]") {
    Mount m("mode=0755");
    must_mkdir(m.p("d"), 0700);
    int e =
        run_as(kUser, kUserGid, [&] { return errno_of(chown(m.p("d").c_str(), kUser, kUserGid)); });
    CHECK(ename(e) == ename(EPERM));
    auto st = must_stat(m.p("d"));
    CHECK(st.st_uid == 0);
    CHECK(st.st_gid == 0);
}

TEST_CASE("chmod: the owner may chmod their own dir, but not give it away with chown",
          "[mount][setattr][perm]") {
    Mount m("mode=0777");
    int e = run_as(kUser, kUserGid, [&] {
        if (mkdir(m.p("d").c_str(), 0700) != 0) return errno;
        if (chmod(m.p("d").c_str(), 0750) != 0) return errno;
        if (chown(m.p("d").c_str(), kUser, kUserGid) != 0) return 100 + errno;  // a no-op: ok
        int rc = chown(m.p("d").c_str(), 0, static_cast<gid_t>(-1));
        return rc == 0 ? 200 : errno;  // giving it away needs CAP_CHOWN
    });
    CHECK(ename(e) == ename(EPERM));
    auto st = must_stat(m.p("d"));
    CHECK(st.st_mode == (S_IFDIR | 0750));
    CHECK(st.st_uid == kUser);
}

// ---------------------------------------------------------------------------------------------
// create, mknod

TEST_CASE("open: O_CREAT of a new name is EACCES", "[mount][create]") {
    Mount m;
    CHECK(ename(open_errno(m.p("f"), O_CREAT | O_WRONLY, 0600)) == ename(EACCES));
    CHECK(ename(open_errno(m.p("g"), O_CREAT | O_EXCL | O_RDWR, 0600)) == ename(EACCES));
    CHECK(ename(open_errno(m.p("h"), O_CREAT | O_WRONLY | O_TRUNC, 0600)) ==
          ename(EACCES));  // creat
    CHECK(ename(stat_errno(m.p("f"))) == ename(ENOENT));
    CHECK(ename(stat_errno(m.p("g"))) == ename(ENOENT));
    CHECK(as_multiset(list_names(m.path())) == std::multiset<std::string>{".", ".."});
}

TEST_CASE("open: O_CREAT|O_EXCL on an existing name is EEXIST", "[mount][create]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    CHECK(ename(open_errno(m.p("d"), O_CREAT | O_EXCL | O_WRONLY, 0600)) == ename(EEXIST));
    CHECK(S_ISDIR(must_stat(m.p("d")).st_mode));
}

TEST_CASE("mknod: a regular file (S_IFREG or type 0) is EACCES", "[mount][mknod]") {
    Mount m;
    CHECK(ename(errno_of(mknod(m.p("f").c_str(), S_IFREG | 0600, 0))) == ename(EACCES));
    CHECK(ename(errno_of(mknod(m.p("g").c_str(), 0600, 0))) == ename(EACCES));
    CHECK(ename(stat_errno(m.p("f"))) == ename(ENOENT));
    CHECK(ename(stat_errno(m.p("g"))) == ename(ENOENT));
}

TEST_CASE("mknod: FIFO, socket, char and block devices are EPERM", "[mount][mknod]") {
    Mount m;
    CHECK(ename(errno_of(mknod(m.p("p").c_str(), S_IFIFO | 0600, 0))) == ename(EPERM));
    CHECK(ename(errno_of(mknod(m.p("s").c_str(), S_IFSOCK | 0600, 0))) == ename(EPERM));
    CHECK(ename(errno_of(mknod(m.p("c").c_str(), S_IFCHR | 0600, makedev(1, 3)))) == ename(EPERM));
    CHECK(ename(errno_of(mknod(m.p("b").c_str(), S_IFBLK | 0600, makedev(7, 0)))) == ename(EPERM));
    CHECK(ename(errno_of(mkfifo(m.p("f").c_str(), 0600))) == ename(EPERM));
    CHECK(as_multiset(list_names(m.path())) == std::multiset<std::string>{".", ".."});
}

// ---------------------------------------------------------------------------------------------
// readdir

TEST_CASE("readdir: lists exactly ., .. and the subdirectories", "[mount][readdir]") {
    Mount m;
    std::multiset<std::string> expected{".", ".."};
    for (int i = 0; i < 50; ++i) {
        std::string n = "d" + std::to_string(i);
        must_mkdir(m.p(n), 0700);
        expected.insert(n);
    }
    must_mkdir(m.p("d7/inner"), 0700);
    CHECK(as_multiset(list_names(m.path())) == expected);
    CHECK(as_multiset(list_names(m.p("d7"))) == std::multiset<std::string>{".", "..", "inner"});
    CHECK(as_multiset(list_names(m.p("d8"))) == std::multiset<std::string>{".", ".."});
}

TEST_CASE(
    "readdir: while the directory changes no name is listed twice and none that stayed "
    "is missed",
    "[mount][readdir]") {
    Mount m;
    std::set<std::string> stay, removable;
    // Interleaved, so that removals happen all through the listing.
    for (int i = 0; i < 150; ++i) {
        stay.insert("k" + std::to_string(i));
        must_mkdir(m.p("k" + std::to_string(i)), 0700);
        removable.insert("r" + std::to_string(i));
        must_mkdir(m.p("r" + std::to_string(i)), 0700);
    }

    UniqueFd fd(open(m.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(fd);
    std::set<std::string> ever_existed(stay);
    ever_existed.insert(removable.begin(), removable.end());
    ever_existed.insert({".", ".."});
    std::map<std::string, int> seen;
    int added = 0, calls = 0;
    while (true) {
        auto chunk = getdents_names(fd.get(), 512);
        if (chunk.empty()) break;
        REQUIRE(++calls < 1000);
        for (const auto& n : chunk) ++seen[n];
        // Between two calls: new names (a bounded number, or the listing would never catch
        // up), and removal of names not listed yet and of names listed already (a listing that
        // resumed by index instead of by a stable cookie would skip names after the latter).
        for (int j = 0; j < 3 && added < 90; ++j) {
            std::string n = "n" + std::to_string(added++);
            must_mkdir(m.p(n), 0700);
            ever_existed.insert(n);
        }
        int removed_unlisted = 0, removed_listed = 0;
        for (auto it = removable.begin(); it != removable.end();) {
            int& removed = seen.count(*it) == 0 ? removed_unlisted : removed_listed;
            if (removed < 2) {
                must_rmdir(m.p(*it));
                it = removable.erase(it);
                ++removed;
            } else {
                ++it;
            }
        }
    }
    CHECK(calls > 5);  // the buffer was small enough to need many calls
    for (const auto& [n, count] : seen) {
        INFO("name " << n);
        CHECK(count == 1);
        CHECK(ever_existed.count(n) == 1);
    }
    for (const auto& n : stay) {
        INFO("name " << n);
        CHECK(seen.count(n) == 1);
    }
    CHECK(seen.count(".") == 1);
    CHECK(seen.count("..") == 1);
}

TEST_CASE("readdir: a listing of 20000 entries is complete", "[mount][readdir][slow]") {
    Mount m;
    constexpr int kCount = 20000;
    for (int i = 0; i < kCount; ++i) must_mkdir(m.p("e" + std::to_string(i)), 0700);
    CHECK(must_stat(m.path()).st_nlink == kCount + 2);
    auto names = list_names(m.path());
    std::set<std::string> distinct(names.begin(), names.end());
    CHECK(names.size() == kCount + 2);
    CHECK(distinct.size() == kCount + 2);
    CHECK(distinct.count("e0") == 1);
    CHECK(distinct.count("e" + std::to_string(kCount - 1)) == 1);
}

TEST_CASE("readdir: seekdir to a telldir position lists the same next entry, also after changes",
          "[mount][readdir]") {
    Mount m;
    for (int i = 0; i < 30; ++i) must_mkdir(m.p("d" + std::to_string(i)), 0700);
    DirPtr d(opendir(m.path().c_str()));
    REQUIRE(d);
    std::string last;
    for (int i = 0; i < 10; ++i) {
        dirent* de = readdir(d.get());
        REQUIRE(de != nullptr);
        last = de->d_name;
    }
    long pos = telldir(d.get());
    REQUIRE(pos >= 0);
    dirent* de = readdir(d.get());
    REQUIRE(de != nullptr);
    const std::string next = de->d_name;
    for (int i = 0; i < 5; ++i) REQUIRE(readdir(d.get()) != nullptr);

    seekdir(d.get(), pos);
    de = readdir(d.get());
    REQUIRE(de != nullptr);
    CHECK(std::string(de->d_name) == next);

    // The directory changes: the entry the position points after goes, a new one comes.
    REQUIRE(last != ".");
    REQUIRE(last != "..");
    must_rmdir(m.p(last));
    must_mkdir(m.p("fresh"), 0700);
    seekdir(d.get(), pos);
    de = readdir(d.get());
    REQUIRE(de != nullptr);
    CHECK(std::string(de->d_name) == next);
}

// ---------------------------------------------------------------------------------------------
// statfs

TEST_CASE("statfs: FUSE's magic, block size 4096, names up to 255, no blocks", "[mount][statfs]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    struct statfs sf {};
    REQUIRE(ename(errno_of(statfs(m.p("d").c_str(), &sf))) == "ok");
    CHECK(static_cast<unsigned long>(sf.f_type) == 0x65735546UL);
    CHECK(sf.f_bsize == 4096);
    CHECK(sf.f_namelen == 255);
    CHECK(sf.f_blocks == 0);
    CHECK(sf.f_bfree == 0);
    CHECK(sf.f_bavail == 0);
}

// ---------------------------------------------------------------------------------------------
// xattrs (spec section 4)

TEST_CASE("xattr: getxattr of bpf.type on a directory is EOPNOTSUPP", "[mount][xattr]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    char buf[64];
    for (const std::string& p : {m.path(), m.p("d")}) {
        INFO("path " << p);
        ssize_t n = getxattr(p.c_str(), "bpf.type", buf, sizeof buf);
        int e = n < 0 ? errno : 0;
        CHECK(ename(e) == ename(EOPNOTSUPP));
        n = getxattr(p.c_str(), "bpf.type", nullptr, 0);
        e = n < 0 ? errno : 0;
        CHECK(ename(e) == ename(EOPNOTSUPP));
    }
}

TEST_CASE("xattr: listxattr of a directory is empty", "[mount][xattr]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    char buf[64];
    ssize_t n = listxattr(m.p("d").c_str(), buf, sizeof buf);
    int e = n < 0 ? errno : 0;
    CHECK(ename(e) == "ok");
    CHECK(n == 0);
    n = listxattr(m.p("d").c_str(), nullptr, 0);
    e = n < 0 ? errno : 0;
    CHECK(ename(e) == "ok");
    CHECK(n == 0);
}

TEST_CASE("log: request lines name paths, not only inode numbers", "[mount][log]") {
    Mount m("", {"--log-level", "debug"});
    must_mkdir(m.p("d"), 0755);
    must_mkdir(m.p("d/e"), 0755);
    CHECK(ename(stat_errno(m.p("d/e/missing"))) == ename(ENOENT));
    const std::string want_mkdir = "op=mkdir path=\"/d/e\" parent=";
    const std::string want_lookup = "op=lookup path=\"/d/e/missing\" parent=";
    REQUIRE(wait_for([&] { return m.log().find(want_lookup) != std::string::npos; }));
    INFO(m.log());
    CHECK(m.log().find(want_mkdir) != std::string::npos);
    CHECK(m.log().find("op=getattr path=\"/d\" ino=") != std::string::npos);
}

TEST_CASE("xattr: setxattr and removexattr are EOPNOTSUPP", "[mount][xattr]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    for (const char* name : {"bpf.type", "user.test"}) {
        INFO("name " << name);
        CHECK(ename(errno_of(setxattr(m.p("d").c_str(), name, "map", 4, 0))) == ename(EOPNOTSUPP));
        CHECK(ename(errno_of(setxattr(m.p("d").c_str(), name, "map", 4, XATTR_CREATE))) ==
              ename(EOPNOTSUPP));
        CHECK(ename(errno_of(removexattr(m.p("d").c_str(), name))) == ename(EOPNOTSUPP));
    }
}

TEST_CASE("xattr: after set/remove/list, getxattr and listxattr still reach the daemon",
          "[mount][xattr]") {
    // An ENOSYS reply switches an xattr operation off for the whole connection (the kernel then
    // answers EOPNOTSUPP itself): listxattr would fail, and getxattr would stop reaching the
    // daemon, which its debug log shows.
    Mount m("", {"--log-level", "debug"});
    must_mkdir(m.p("d"), 0700);
    const std::string d = m.p("d");
    const std::string marker = "op=getxattr";
    char buf[64];
    ssize_t n = getxattr(d.c_str(), "bpf.type", buf, sizeof buf);
    int e = n < 0 ? errno : 0;
    REQUIRE(ename(e) == ename(EOPNOTSUPP));
    REQUIRE(wait_for([&] { return count_occurrences(m.log(), marker) >= 1; }));
    std::size_t before = count_occurrences(m.log(), marker);

    CHECK(ename(errno_of(setxattr(d.c_str(), "bpf.type", "x", 1, 0))) == ename(EOPNOTSUPP));
    CHECK(ename(errno_of(removexattr(d.c_str(), "bpf.type"))) == ename(EOPNOTSUPP));
    n = listxattr(d.c_str(), buf, sizeof buf);
    e = n < 0 ? errno : 0;
    CHECK(ename(e) == "ok");
    CHECK(ename(errno_of(setxattr(d.c_str(), "user.x", "x", 1, 0))) == ename(EOPNOTSUPP));
    CHECK(ename(errno_of(removexattr(d.c_str(), "user.x"))) == ename(EOPNOTSUPP));

    n = getxattr(d.c_str(), "bpf.type", buf, sizeof buf);
    e = n < 0 ? errno : 0;
    CHECK(ename(e) == ename(EOPNOTSUPP));
    CHECK(wait_for([&] { return count_occurrences(m.log(), marker) == before + 1; }));
    n = listxattr(d.c_str(), buf, sizeof buf);
    e = n < 0 ? errno : 0;
    CHECK(ename(e) == "ok");
    CHECK(n == 0);
}

// ---------------------------------------------------------------------------------------------
// forget, unlink of an open directory

TEST_CASE("forget: an open directory survives its rmdir, fstat works until close",
          "[mount][forget]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    auto before = must_stat(m.p("d"));
    UniqueFd fd(open(m.p("d").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(fd);
    must_rmdir(m.p("d"));
    CHECK(ename(stat_errno(m.p("d"))) == ename(ENOENT));
    struct stat st {};
    REQUIRE(ename(errno_of(fstat(fd.get(), &st))) == "ok");
    CHECK(S_ISDIR(st.st_mode));
    CHECK(st.st_ino == before.st_ino);
    CHECK(st.st_nlink <= 2);  // 0 once the kernel has seen the rmdir
    fd.reset();
    CHECK(must_stat(m.path()).st_nlink == 2);
    // The name is free again, with a new inode number.
    must_mkdir(m.p("d"), 0700);
    CHECK(must_stat(m.p("d")).st_ino != before.st_ino);
}

TEST_CASE("forget: after the kernel drops its dentries and inodes the mount still works",
          "[mount][forget]") {
    Mount m;
    must_mkdir(m.p("a"), 0700);
    must_mkdir(m.p("a/b"), 0700);
    must_mkdir(m.p("gone"), 0700);
    auto a = must_stat(m.p("a"));
    auto b = must_stat(m.p("a/b"));
    {
        UniqueFd fd(open(m.p("gone").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        REQUIRE(fd);
        must_rmdir(m.p("gone"));
        struct stat st {};
        CHECK(ename(errno_of(fstat(fd.get(), &st))) == "ok");
    }
    list_names(m.path());  // readdirplus entries count as lookups too
    drop_dentries_and_inodes();
    // Nodes the kernel forgot but that still have names are found again, unchanged.
    auto a2 = must_stat(m.p("a"));
    auto b2 = must_stat(m.p("a/b"));
    CHECK(a2.st_ino == a.st_ino);
    CHECK(b2.st_ino == b.st_ino);
    CHECK(a2.st_nlink == 3);
    CHECK(ename(stat_errno(m.p("gone"))) == ename(ENOENT));
    CHECK(as_multiset(list_names(m.path())) == std::multiset<std::string>{".", "..", "a"});
    must_mkdir(m.p("c"), 0700);
    must_rmdir(m.p("a/b"));
    CHECK(must_stat(m.p("a")).st_nlink == 2);
    drop_dentries_and_inodes();
    CHECK(as_multiset(list_names(m.path())) == std::multiset<std::string>{".", "..", "a", "c"});
    CHECK(must_stat(m.path()).st_nlink == 4);
}

// ---------------------------------------------------------------------------------------------
// concurrency

TEST_CASE("concurrency: 4 threads of mkdir/stat/readdir/rmdir cycles in one dir all succeed",
          "[mount][concurrency]") {
    Mount m;
    must_mkdir(m.p("shared"), 0700);
    constexpr int kThreads = 4, kCycles = 500;
    std::atomic<int> failures{0};
    std::vector<std::string> first_failure(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            auto fail = [&](const std::string& what, int e) {
                ++failures;
                if (first_failure[t].empty()) first_failure[t] = what + ": " + ename(e);
            };
            for (int i = 0; i < kCycles; ++i) {
                std::string p = m.p("shared/t" + std::to_string(t) + "_" + std::to_string(i % 7));
                if (mkdir(p.c_str(), 0700) != 0) {
                    fail("mkdir " + p, errno);
                    continue;
                }
                struct stat st {};
                if (stat(p.c_str(), &st) != 0)
                    fail("stat " + p, errno);
                else if (!S_ISDIR(st.st_mode) || st.st_nlink != 2)
                    fail("stat shape " + p, 0);
                DIR* d = opendir(p.c_str());
                if (d == nullptr) {
                    fail("opendir " + p, errno);
                } else {
                    int n = 0;
                    errno = 0;
                    while (readdir(d) != nullptr) ++n;
                    int e = errno;
                    closedir(d);
                    if (e != 0 || n != 2) fail("readdir " + p + " n=" + std::to_string(n), e);
                }
                if (rmdir(p.c_str()) != 0) fail("rmdir " + p, errno);
            }
        });
    }
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) {
        INFO("thread " << t << ": " << first_failure[t]);
        CHECK(first_failure[t].empty());
    }
    CHECK(failures.load() == 0);
    CHECK(must_stat(m.p("shared")).st_nlink == 2);
    CHECK(as_multiset(list_names(m.p("shared"))) == std::multiset<std::string>{".", ".."});
}

// ---------------------------------------------------------------------------------------------
// lifecycle

TEST_CASE("lifecycle: SIGTERM makes the daemon exit 0 and unmount", "[mount][lifecycle]") {
    Mount m;
    must_mkdir(m.p("d"), 0700);
    REQUIRE(is_bpffs_mounted(m.path()));
    int status = m.stop();
    INFO("daemon log: " << m.log());
    REQUIRE(status != -1);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(!is_bpffs_mounted(m.path()));
}

TEST_CASE("lifecycle: after the Mount is destroyed nothing is mounted", "[mount][lifecycle]") {
    std::string path;
    {
        Mount m;
        path = m.path();
        must_mkdir(m.p("d"), 0700);
        REQUIRE(is_bpffs_mounted(path));
    }
    CHECK(!is_bpffs_mounted(path));
    CHECK(ename(stat_errno(path)) == ename(ENOENT));  // and the temp dir is gone
}

TEST_CASE(
    "lifecycle: SIGTERM during start-up, before the broker listens, still exits 0 and unmounts",
    "[mount][lifecycle]") {
    // The broker binds its socket with a FUSE request; a stop that comes first must not leave
    // that request (and the daemon) waiting on a loop that has ended.
    for (int round = 0; round < 10; ++round) {
        char tmpl[] = "/tmp/bpffs-early-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        std::string dir = tmpl;
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            int devnull = open("/dev/null", O_RDWR);
            dup2(devnull, 1);
            dup2(devnull, 2);
            execl(BPFFS_FUSE_BIN, BPFFS_FUSE_BIN, "-f", dir.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        bool mounted = bpffs::test::wait_for([&] { return bpffs::test::is_bpffs_mounted(dir); });
        kill(pid, SIGTERM);
        int status = -1;
        bool exited = bpffs::test::wait_for([&] { return waitpid(pid, &status, WNOHANG) == pid; });
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
        if (bpffs::test::is_bpffs_mounted(dir)) umount2(dir.c_str(), MNT_DETACH);
        rmdir(dir.c_str());
        CHECK(mounted);
        REQUIRE(exited);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
}

TEST_CASE("lifecycle: a -o ro mount is read-only from the moment it is visible", "[mount][ro]") {
    // The daemon mounts read-write and turns the superblock read-only once its socket exists;
    // in between the daemon itself answers EROFS.
    char tmpl[] = "/tmp/bpffs-ro-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl;
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(BPFFS_FUSE_BIN, BPFFS_FUSE_BIN, "-f", dir.c_str(), "-o", "ro",
              static_cast<char*>(nullptr));
        _exit(127);
    }
    bool mounted = bpffs::test::wait_for([&] { return bpffs::test::is_bpffs_mounted(dir); });
    int e = mkdir((dir + "/x").c_str(), 0755) == 0 ? 0 : errno;
    kill(pid, SIGTERM);
    int status = -1;
    if (!bpffs::test::wait_for([&] { return waitpid(pid, &status, WNOHANG) == pid; })) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    if (bpffs::test::is_bpffs_mounted(dir)) umount2(dir.c_str(), MNT_DETACH);
    rmdir(dir.c_str());
    CHECK(mounted);
    CHECK(e == EROFS);
}
