// SPDX-License-Identifier: GPL-2.0-or-later
// Kernel tests of the broker and the client library: real maps and programs, pinned and
// fetched through a running bpffs-fuse (spec sections 1, 3, 4, 5 and 6; docs/protocol.md).
// Needs root (mounting, CAP_BPF, CAP_SYS_ADMIN, setresuid) and /dev/fuse.
//
// Errno values are compared by name (ename()), so a failure reads "ENOENT" == "EPERM". Work that
// must happen in another process (another pinner, an unprivileged user, a root without the DAC
// capabilities, many concurrent clients) runs in forked children that return 0 or an errno;
// numbers from 200 up are the child's own failure codes. Children never use Catch2's macros.
//
// "Nothing changed" after a failed pin means: the tree of the mount (readdir, recursively) is
// the same, and the object is untouched: same kernel id, still usable.
//
// Mounts are KMounts: the fixture's Mount, plus a wait until the broker accepts connections.
// Fd leaks in the daemon are counted in /proc/<pid>/fd once the broker has closed every client
// connection (it does so asynchronously); the expected errnos were checked against a real
// kernel bpffs on 6.18 where the seed and today's kernel agree (trailing '/', ENAMETOOLONG,
// read-only remounts).
#include "tests/bpf_test_util.hpp"
#include "tests/kernel_helpers.hpp"
#include "tests/mount_fixture.hpp"
#include "tests/result_helpers.hpp"
#include "tests/syscall_helpers.hpp"
#include "tests/wire_helpers.hpp"

#include "common/protocol.hpp"
#include "common/scm.hpp"
#include "common/unique_fd.hpp"

#include <bpf/bpf.h>
#include <bpffs/bpffs.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <bpffs/bpffs.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace bpffs;
using namespace bpffs::test;
namespace proto = bpffs::protocol;

namespace {

constexpr uid_t kUser = 1000;
constexpr gid_t kUserGid = 1000;
constexpr uid_t kOther = 1001;

struct Got {
    int error = 0;
    UniqueFd fd;
};

Got get(const std::string& path) {
    errno = 0;
    int fd = bpffs_obj_get(path.c_str());
    if (fd >= 0) return {0, UniqueFd(fd)};
    int e = errno;
    return {fd == -e ? e : 250, {}};
}

int get_errno(const std::string& path) { return get(path).error; }

bool exists(const std::string& path) {
    struct stat st {};
    return lstat(path.c_str(), &st) == 0;
}

// A map that is still the same object and still works.
void check_map_untouched(int fd, std::uint32_t id) {
    CHECK(kernel_id(fd) == id);
    CHECK(map_id_alive(id));
    static std::uint64_t counter = 1;
    ++counter;
    CHECK(ename(map_update(fd, 3, counter)) == ename(0));
    std::uint64_t v = 0;
    CHECK(ename(map_lookup(fd, 3, &v)) == ename(0));
    CHECK(v == counter);
}

// pin must fail with `expected`, leaving the mount's tree and the map as they were.
void check_pin_fails(const Mount& m, int fd, const std::string& path, int expected) {
    INFO("pin " << path);
    auto before = tree(m.path());
    std::uint32_t id = kernel_id(fd);
    CHECK(ename(pin(fd, path)) == ename(expected));
    CHECK(tree(m.path()) == before);
    if (id != 0 && fd_kind(fd) == "map") check_map_untouched(fd, id);
}

// A pipe to pass small values from children to the parent.
struct Pipe {
    UniqueFd rd, wr;
    Pipe() {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category());
        rd.reset(p[0]);
        wr.reset(p[1]);
    }
    void put(std::uint32_t v) const { (void)!write(wr.get(), &v, sizeof v); }
    // Call after the writers are gone and wr is closed: 0 when nothing (more) was written.
    std::uint32_t take() const {
        std::uint32_t v = 0;
        return read(rd.get(), &v, sizeof v) == sizeof v ? v : 0;
    }
};

// --- raw protocol traffic ---------------------------------------------------------------

// A Mount whose broker accepts connections. The fixture is ready when the socket node exists,
// but the broker binds before it listens: a connect in between is refused (ECONNREFUSED, which
// the library reports as "not a bpffs-fuse directory", EACCES).
class KMount : public Mount {
public:
    explicit KMount(const std::string& opts = "") : Mount(opts) {
        if (!wait_for([&] { return raw_connect(p(".bpffs.sock")).valid(); })) {
            throw std::runtime_error("the broker does not accept connections: " + log());
        }
    }
};

UniqueFd must_connect(const Mount& m) {
    UniqueFd s = raw_connect(m.p(".bpffs.sock"));
    INFO("connect " << m.p(".bpffs.sock") << ": " << ename(errno));
    REQUIRE(s);
    return s;
}

std::vector<std::uint8_t> request(proto::Op op, const std::string& name = "") {
    return proto::encode(proto::Request{op, name});
}

// What came back for one message: a reply (decoded), the peer closing, or nothing in time.
struct Answer {
    enum Kind { reply, closed, timeout, bad } kind = bad;
    proto::Reply rep;
    std::vector<UniqueFd> fds;
    int send_error = 0;
};

std::string describe(const Answer& a) {
    switch (a.kind) {
        case Answer::reply:
            return "reply " + ename(a.rep.error);
        case Answer::closed:
            return "closed";
        case Answer::timeout:
            return "timeout";
        case Answer::bad:
            return "undecodable reply (send: " + ename(a.send_error) + ")";
    }
    return "?";
}

Answer receive(int s) {
    Answer a;
    std::array<std::uint8_t, proto::kMaxMessage> buf;
    Received r = recv_with_fds(s, buf, 4);
    if (r.error == EAGAIN) {
        a.kind = Answer::timeout;
    } else if ((r.error == 0 && r.size == 0) || r.error == ECONNRESET) {
        a.kind = Answer::closed;
    } else if (r.error == 0 && !r.truncated && !r.ctruncated) {
        auto rep = proto::decode_reply(std::span(buf.data(), r.size));
        if (rep) {
            a.kind = Answer::reply;
            a.rep = std::move(*rep);
            a.fds = std::move(r.fds);
        }
    }
    return a;
}

// One message and its answer (not named exchange: a call with a std::vector argument would
// also find std::exchange by argument-dependent lookup).
Answer round_trip(int s, const std::vector<std::uint8_t>& msg, const std::vector<int>& fds = {}) {
    int e = send_with_fds(s, msg, fds);
    if (e == EPIPE || e == ECONNRESET) {
        Answer a;
        a.kind = Answer::closed;
        return a;
    }
    if (e != 0) {
        Answer a;
        a.send_error = e;
        return a;
    }
    return receive(s);
}

// The daemon's fd count once every client connection it had is closed (the broker closes them
// asynchronously); this process's kept connections are closed first.
int settled_fd_count(pid_t daemon) {
    bpffs_close_kept_connections();
    INFO("daemon's open connections: " << count_connections(daemon));
    REQUIRE(wait_for([&] { return count_connections(daemon) == 0; }));
    return count_fds(daemon);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// 1. End to end

TEST_CASE("pin and get: a map pinned by one process is fetched by another, same id and contents",
          "[broker][kernel][map]") {
    KMount m;
    must_mkdir(m.p("dir"));
    const std::string path = m.p("dir/m");
    Pipe ids;
    int a = run_child([&] {
        UniqueFd map = create_hash_map("bpffs_e2e");
        if (!map) return 200;
        if (int e = map_update(map.get(), 7, 0x1234567890ull); e != 0) return e;
        if (int e = pin(map.get(), path); e != 0) return e;
        ids.put(kernel_id(map.get()));
        return 0;  // exits: the broker's reference keeps the map alive
    });
    REQUIRE(ename(a) == ename(0));
    int b = run_child([&] {
        Got g = get(path);
        if (g.error != 0) return g.error;
        if (fd_kind(g.fd.get()) != "map") return 201;
        std::uint64_t v = 0;
        if (int e = map_lookup(g.fd.get(), 7, &v); e != 0) return e;
        if (v != 0x1234567890ull) return 202;
        ids.put(kernel_id(g.fd.get()));
        return 0;
    });
    REQUIRE(ename(b) == ename(0));
    ids.wr.reset();
    std::uint32_t id_a = ids.take(), id_b = ids.take();
    CHECK(id_a != 0);
    CHECK(id_a == id_b);
    CHECK(map_id_alive(id_a));
}

TEST_CASE("pin and get: a program pinned by one process is fetched by another, same id, usable",
          "[broker][kernel][prog]") {
    KMount m;
    must_mkdir(m.p("dir"));
    const std::string path = m.p("dir/p");
    Pipe ids;
    int a = run_child([&] {
        UniqueFd prog = load_trivial_prog("bpffs_e2e");
        if (!prog) return 200;
        if (int e = pin(prog.get(), path); e != 0) return e;
        ids.put(kernel_id(prog.get()));
        return 0;
    });
    REQUIRE(ename(a) == ename(0));
    int b = run_child([&] {
        Got g = get(path);
        if (g.error != 0) return g.error;
        if (fd_kind(g.fd.get()) != "prog") return 201;
        // The fd is a working program: attach it to a socket.
        UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        int pfd = g.fd.get();
        if (setsockopt(s.get(), SOL_SOCKET, SO_ATTACH_BPF, &pfd, sizeof pfd) != 0) return errno;
        ids.put(kernel_id(g.fd.get()));
        return 0;
    });
    REQUIRE(ename(b) == ename(0));
    ids.wr.reset();
    std::uint32_t id_a = ids.take(), id_b = ids.take();
    CHECK(id_a != 0);
    CHECK(id_a == id_b);
    CHECK(prog_id_alive(id_a));
}

TEST_CASE("C API: the test program compiled as C pins and gets a map", "[broker][kernel][capi]") {
    KMount m;
    must_mkdir(m.p("c"));
    auto r = run_cmd({BPFFS_C_API_TEST_BIN, m.p("c")});
    INFO(r.out);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("c_api_test: ok") != std::string::npos);
}

TEST_CASE("C++ wrapper: obj_get returns an owning ObjectFd and throws system_error with the errno",
          "[broker][kernel][cxx]") {
    KMount m;
    auto map = must_map();
    bpffs::obj_pin(map.get(), m.p("m"));
    {
        bpffs::ObjectFd fd = bpffs::obj_get(m.p("m"));
        REQUIRE(fd);
        CHECK(kernel_id(fd.get()) == kernel_id(map.get()));
        int raw = fd.get();
        bpffs::ObjectFd moved(std::move(fd));
        CHECK_FALSE(fd);
        CHECK(moved.get() == raw);
        moved.reset();
        CHECK(fcntl(raw, F_GETFD) == -1);  // the wrapper closed it
    }
    try {
        (void)bpffs::obj_get(m.p("missing"));
        FAIL("obj_get of a missing name did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::no_such_file_or_directory);
        CHECK(e.code().value() == ENOENT);
    }
    try {
        bpffs::obj_pin(map.get(), m.p("m"));
        FAIL("obj_pin over an existing name did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::file_exists);
    }
}

TEST_CASE("C API: errors are returned as -errno with errno set, a NULL path is EFAULT",
          "[broker][kernel][capi]") {
    KMount m;
    auto map = must_map();
    errno = 0;
    CHECK(bpffs_obj_get(m.p("nope").c_str()) == -ENOENT);
    CHECK(errno == ENOENT);
    errno = 0;
    CHECK(bpffs_obj_pin(map.get(), m.p("nope/m").c_str()) == -ENOENT);
    CHECK(errno == ENOENT);
    errno = 0;
    CHECK(bpffs_obj_get(nullptr) == -EFAULT);
    CHECK(errno == EFAULT);
    errno = 0;
    CHECK(bpffs_obj_pin(map.get(), nullptr) == -EFAULT);
    CHECK(errno == EFAULT);
    CHECK(ename(get_errno("")) == ename(ENOENT));
    CHECK(ename(pin(map.get(), "")) == ename(ENOENT));
}

// ---------------------------------------------------------------------------------------------
// 2. The node a pin creates

TEST_CASE("pin: the node is S_IFREG 0600, owned by the pinner, nlink 1, size 0, with bpf.type",
          "[broker][kernel][attr]") {
    KMount m("mode=0755");
    auto map = must_map();
    auto prog = must_prog();
    must_pin(map.get(), m.p("m"));
    must_pin(prog.get(), m.p("p"));

    for (auto [name, type] :
         {std::pair{"m", std::string("map")}, std::pair{"p", std::string("prog")}}) {
        const std::string path = m.p(name);
        INFO("node " << path);
        struct stat st = must_stat(path);
        CHECK(st.st_mode == (S_IFREG | 0600));
        CHECK(st.st_uid == 0);
        CHECK(st.st_gid == 0);
        CHECK(st.st_nlink == 1);
        CHECK(st.st_size == 0);

        char buf[64] = {};
        ssize_t n = getxattr(path.c_str(), "bpf.type", buf, sizeof buf);
        CHECK(n == static_cast<ssize_t>(type.size() + 1));
        CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) ==
              std::string(type.c_str(), type.size() + 1));
        CHECK(getxattr(path.c_str(), "bpf.type", nullptr, 0) ==
              static_cast<ssize_t>(type.size() + 1));
        n = listxattr(path.c_str(), buf, sizeof buf);
        CHECK(n == 9);
        CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) ==
              std::string("bpf.type\0", 9));

        auto r = run_cmd({"/usr/bin/getfattr", "-n", "bpf.type", path});
        INFO("getfattr: " << r.out);
        CHECK(r.exit_code == 0);
        CHECK(r.out.find("bpf.type=\"" + type + "\"") != std::string::npos);

        for (int flags : {O_RDONLY, O_WRONLY, O_RDWR}) {
            UniqueFd fd(open(path.c_str(), flags | O_CLOEXEC));
            CHECK(ename(fd ? 0 : errno) == ename(ENXIO));
        }
        // A non-owner: the permission check comes first.
        int e = run_as(kUser, kUserGid, [&] {
            UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
            return fd ? 0 : errno;
        });
        CHECK(ename(e) == ename(EACCES));
        e = run_as(kUser, kUserGid, [&] {
            char b[16];
            return getxattr(path.c_str(), "bpf.type", b, sizeof b) >= 0 ? 0 : errno;
        });
        CHECK(ename(e) == ename(EACCES));
    }
    // The node is listed and the pinner's fds are untouched.
    auto t = tree(m.path());
    CHECK(t == std::set<std::string>{"m", "p"});
    check_map_untouched(map.get(), kernel_id(map.get()));
}

TEST_CASE("pin: a watcher of the directory sees it created, and the kernel knows the name at once",
          "[broker][kernel][pin]") {
    Mount m;
    must_mkdir(m.p("d"));
    struct stat st {};
    REQUIRE(ename(errno_of(stat(m.p("d/m").c_str(), &st))) == ename(ENOENT));  // cached negative
    CreateWatch watch(m.p("d"));
    REQUIRE(watch.ok());
    auto map = must_map();
    must_pin(map.get(), m.p("d/m"));
    CHECK(watch.next() == "m");
    CHECK(ename(errno_of(stat(m.p("d/m").c_str(), &st))) == ename(0));
    CHECK(watch.next(100) == "");  // one create, one event
}

TEST_CASE("pin: the node's gid follows the parent's setgid bit", "[broker][kernel][attr]") {
    KMount m("mode=0755");
    must_mkdir(m.p("sg"));
    REQUIRE(chown(m.p("sg").c_str(), 0, 4321) == 0);
    REQUIRE(chmod(m.p("sg").c_str(), 02755) == 0);
    must_mkdir(m.p("plain"));
    REQUIRE(chown(m.p("plain").c_str(), 0, 4321) == 0);
    auto map = must_map();
    must_pin(map.get(), m.p("sg/m"));
    must_pin(map.get(), m.p("plain/m"));
    CHECK(must_stat(m.p("sg/m")).st_gid == 4321);
    CHECK(must_stat(m.p("plain/m")).st_gid == 0);  // the caller's gid
}

// ---------------------------------------------------------------------------------------------
// 3. Pin errors, in the spec's order (section 5)

TEST_CASE("pin: an unprivileged caller gets EPERM before any other check",
          "[broker][kernel][pin]") {
    KMount m("mode=0755");
    must_mkdir(m.p("d"));
    auto map = must_map();
    must_pin(map.get(), m.p("d/existing"));
    auto pipes = make_pipes(1);
    const int closed_fd = closed_fd_number();
    const std::uint32_t id = kernel_id(map.get());
    auto before = tree(m.path());

    struct Case {
        const char* what;
        int fd;
        std::string path;
    };
    std::vector<Case> cases = {
        {"a new name", map.get(), m.p("d/new")},
        {"an existing name", map.get(), m.p("d/existing")},
        {"a dotted name", map.get(), m.p("d/a.b")},
        {"a missing parent", map.get(), m.p("nope/x")},
        {"a closed fd", closed_fd, m.p("d/new")},
        {"a pipe", pipes.raw()[0], m.p("d/new")},
        {"outside the mount", map.get(), "/tmp/bpffs-unpriv-pin"},
    };
    for (const auto& c : cases) {
        INFO(c.what << ": " << c.path);
        int e = run_as(kUser, kUserGid, [&] { return pin(c.fd, c.path); });
        CHECK(ename(e) == ename(EPERM));
    }
    CHECK(tree(m.path()) == before);
    CHECK_FALSE(exists("/tmp/bpffs-unpriv-pin"));
    check_map_untouched(map.get(), id);

    // The broker decides with the peer's credentials: bypassing the library does not help.
    auto dir = o_path(m.p("d"));
    int e = run_as(kUser, kUserGid, [&] {
        UniqueFd s = raw_connect(m.p("d/.bpffs.sock"));
        if (!s) return 200;
        Answer a = round_trip(s.get(), request(proto::Op::pin, "raw"), {map.get(), dir.get()});
        return a.kind == Answer::reply ? a.rep.error : 201;
    });
    CHECK(ename(e) == ename(EPERM));
    CHECK(tree(m.path()) == before);
    check_map_untouched(map.get(), id);
}

TEST_CASE("pin: a closed fd is EBADF and a non-BPF fd EINVAL, before path errors",
          "[broker][kernel][pin]") {
    KMount m;
    must_mkdir(m.p("d"));
    auto map = must_map();
    auto pipes = make_pipes(1);
    const int closed_fd = closed_fd_number();
    UniqueFd file(open("/proc/self/status", O_RDONLY | O_CLOEXEC));
    REQUIRE(file);

    check_pin_fails(m, closed_fd, m.p("d/m"), EBADF);
    check_pin_fails(m, -1, m.p("d/m"), EBADF);
    check_pin_fails(m, closed_fd, m.p("nope/m"), EBADF);
    check_pin_fails(m, pipes.raw()[0], m.p("d/m"), EINVAL);
    check_pin_fails(m, pipes.raw()[1], m.p("nope/m"), EINVAL);
    check_pin_fails(m, file.get(), m.p("d/m"), EINVAL);
    check_map_untouched(map.get(), kernel_id(map.get()));
}

TEST_CASE("pin: a link fd on a default (seed) mount is EINVAL, before path errors",
          "[broker][kernel][pin]") {
    KMount m;
    must_mkdir(m.p("d"));
    TempCgroup cg;
    UniqueFd link = must_cgroup_link(cg);
    // The 2015 kernel had no links: a link's fd is any other file to it.
    check_pin_fails(m, link.get(), m.p("d/l"), EINVAL);
    check_pin_fails(m, link.get(), m.p("nope/l"), EINVAL);
    CHECK(m.log().find("pinned link") == std::string::npos);
}

TEST_CASE("pin: on a compat=linux mount bpffsctl gets a link's fields and status counts it",
          "[broker][kernel][pin]") {
    KMount m("compat=linux");
    TempCgroup cg;
    UniqueFd link = must_cgroup_link(cg);
    must_pin(link.get(), m.p("l"));
    bpf_link_info info{};
    std::uint32_t len = sizeof info;
    REQUIRE(bpf_obj_get_info_by_fd(link.get(), &info, &len) == 0);
    auto get = run_cmd({BPFFSCTL_BIN, "get", m.p("l")});
    INFO(get.out);
    CHECK(get.exit_code == 0);
    CHECK(get.out == "type: link\nid: " + std::to_string(info.id) +
                         "\nlink_type: cgroup\nprog_id: " + std::to_string(info.prog_id) + "\n");
    auto st = run_cmd({BPFFSCTL_BIN, "status", m.path()});
    CHECK(st.out.find("\nlinks: 1\n") != std::string::npos);
    CHECK(st.out.find("\nmaps: 0\n") != std::string::npos);
}

TEST_CASE("pin: path errors: ENOENT, ENOTDIR, EEXIST, trailing '/', ENAMETOOLONG",
          "[broker][kernel][pin]") {
    KMount m;
    must_mkdir(m.p("d"));
    must_mkdir(m.p("e"));
    auto map = must_map();
    auto other = must_map("bpffs_other");
    must_pin(other.get(), m.p("d/obj"));

    check_pin_fails(m, map.get(), m.p("nope/m"), ENOENT);
    check_pin_fails(m, map.get(), m.p("nope/deeper/m"), ENOENT);
    check_pin_fails(m, map.get(), m.p("d/obj/x"), ENOTDIR);  // through an object node
    check_pin_fails(m, map.get(), m.p("d/obj/x/y"), ENOTDIR);
    check_pin_fails(m, map.get(), m.p("d/obj"), EEXIST);        // an object
    check_pin_fails(m, map.get(), m.p("e"), EEXIST);            // a directory
    check_pin_fails(m, map.get(), m.p(".bpffs.sock"), EEXIST);  // the socket, dotted or not
    // A path ending in '/': ENOENT for a new name, but EEXIST (checked first) for an existing one,
    // as in the kernel's filename_create().
    check_pin_fails(m, map.get(), m.p("e/new/"), ENOENT);
    check_pin_fails(m, map.get(), m.p("new/"), ENOENT);
    check_pin_fails(m, map.get(), m.p("e/"), EEXIST);
    check_pin_fails(m, map.get(), m.p("e//"), EEXIST);
    check_pin_fails(m, map.get(), m.p("d/obj/"), EEXIST);
    check_pin_fails(m, map.get(), m.p("e/" + std::string(256, 'n')), ENAMETOOLONG);
    // The same object under the name it already has is EEXIST too.
    check_pin_fails(m, other.get(), m.p("d/obj"), EEXIST);
    // A 255-byte name is fine.
    must_pin(map.get(), m.p("e/" + std::string(255, 'n')));
}

TEST_CASE("pin: no search permission on a component is EACCES (CAP_SYS_ADMIN without DAC caps)",
          "[broker][kernel][pin]") {
    KMount m;
    must_mkdir(m.p("nox"));
    must_mkdir(m.p("nox/sub"));
    must_mkdir(m.p("ok"));
    REQUIRE(chmod(m.p("nox").c_str(), 0600) == 0);  // owner root: rw-, no search
    auto map = must_map();
    const std::uint32_t id = kernel_id(map.get());
    auto before = tree(m.path());
    for (const auto& path : {m.p("nox/sub/m"), m.p("nox/m")}) {
        INFO("pin " << path);
        int e = run_child([&] {
            if (int d = drop_dac_caps(); d != 0) return 200;
            return pin(map.get(), path);
        });
        CHECK(ename(e) == ename(EACCES));
    }
    // The same process may pin where it can search: the capability drop alone is not the cause.
    int e = run_child([&] {
        if (int d = drop_dac_caps(); d != 0) return 200;
        return pin(map.get(), m.p("ok/m"));
    });
    CHECK(ename(e) == ename(0));
    auto after = before;
    after.insert("ok/m");
    CHECK(tree(m.path()) == after);
    check_map_untouched(map.get(), id);
}

TEST_CASE("pin: a parent outside any bpffs-fuse mount is EACCES, an existing name there EEXIST",
          "[broker][kernel][pin]") {
    KMount m;
    TempDir t;
    auto map = must_map();
    const std::uint32_t id = kernel_id(map.get());
    CHECK(ename(pin(map.get(), t.p("m"))) == ename(EACCES));
    CHECK_FALSE(exists(t.p("m")));
    REQUIRE(mkdir(t.p("sub").c_str(), 0755) == 0);
    CHECK(ename(pin(map.get(), t.p("sub"))) == ename(EEXIST));
    CHECK(ename(pin(map.get(), "/tmp")) == ename(EEXIST));
    // A directory below the mount point's parent, not in the mount.
    std::string outside = m.path() + "/../m";
    CHECK(ename(pin(map.get(), outside)) == ename(EACCES));
    CHECK_FALSE(exists(outside));
    CHECK(tree(m.path()).empty());
    check_map_untouched(map.get(), id);
}

TEST_CASE("pin: a name with a dot is EPERM, after EEXIST and before EBUSY",
          "[broker][kernel][pin]") {
    KMount m;
    must_mkdir(m.p("d"));
    must_mkdir(m.p("busy"));
    must_mkdir(m.p("busy/sub"));
    auto map = must_map();
    check_pin_fails(m, map.get(), m.p("d/a.b"), EPERM);
    check_pin_fails(m, map.get(), m.p("d/.hidden"), EPERM);
    check_pin_fails(m, map.get(), m.p("d/trailing."), EPERM);
    check_pin_fails(m, map.get(), m.p("busy/a.b"), EPERM);  // 5 before 6
    check_pin_fails(m, map.get(), m.p("d/."), EEXIST);
    check_pin_fails(m, map.get(), m.p("d/.."), EEXIST);
}

TEST_CASE("pin: into a directory that has subdirectories is EBUSY", "[broker][kernel][pin]") {
    KMount m;
    must_mkdir(m.p("p"));
    must_mkdir(m.p("p/sub"));
    auto map = must_map();
    check_pin_fails(m, map.get(), m.p("p/m"), EBUSY);
    check_pin_fails(m, map.get(), m.p("m"), EBUSY);       // the root has "p"
    check_pin_fails(m, map.get(), m.p("p/sub"), EEXIST);  // 3 before 6
    // Once the subdirectory is gone, the pin works.
    REQUIRE(rmdir(m.p("p/sub").c_str()) == 0);
    must_pin(map.get(), m.p("p/m"));
}

TEST_CASE("pin: write permission on the parent is not needed", "[broker][kernel][pin]") {
    KMount m;
    must_mkdir(m.p("rx"));
    REQUIRE(chmod(m.p("rx").c_str(), 0500) == 0);
    REQUIRE(must_stat(m.p("rx")).st_mode == (S_IFDIR | 0500));
    auto map = must_map();
    must_pin(map.get(), m.p("rx/by_root"));
    // Also for a caller that obeys file modes (CAP_SYS_ADMIN only).
    int e = run_child([&] {
        if (drop_dac_caps() != 0) return 200;
        if (faccessat(AT_FDCWD, m.p("rx").c_str(), W_OK, AT_EACCESS) == 0)
            return 201;  // the caps really are gone
        return pin(map.get(), m.p("rx/by_admin"));
    });
    CHECK(ename(e) == ename(0));
    CHECK(tree(m.path()) == std::set<std::string>{"rx/", "rx/by_root", "rx/by_admin"});
    CHECK(must_stat(m.p("rx/by_admin")).st_mode == (S_IFREG | 0600));
}

TEST_CASE("pin: on a read-only mount is EROFS (EEXIST and ENOENT first)",
          "[broker][kernel][pin][ro]") {
    KMount m("ro");
    auto map = must_map();
    check_pin_fails(m, map.get(), m.p("m"), EROFS);
    check_pin_fails(m, map.get(), m.p("a.b"), EROFS);  // 3 before 5
    check_pin_fails(m, map.get(), m.p(".bpffs.sock"), EEXIST);
    check_pin_fails(m, map.get(), m.p("nope/m"), ENOENT);
}

// ---------------------------------------------------------------------------------------------
// 4. The terminal rule through the broker (departure 1)

TEST_CASE("terminal dirs: a dir holding objects refuses mkdir (EPERM) until its last object goes",
          "[broker][kernel][terminal]") {
    KMount m;
    must_mkdir(m.p("D"));
    auto map = must_map();
    auto prog = must_prog();
    must_pin(map.get(), m.p("D/m"));
    must_pin(prog.get(), m.p("D/p"));  // many objects in one directory
    CHECK(ename(errno_of(mkdir(m.p("D/sub").c_str(), 0700))) == ename(EPERM));
    CHECK(ename(errno_of(mkdir(m.p("D/m").c_str(), 0700))) == ename(EEXIST));
    CHECK(ename(errno_of(rmdir(m.p("D").c_str()))) == ename(ENOTEMPTY));
    REQUIRE(unlink(m.p("D/m").c_str()) == 0);
    CHECK(ename(errno_of(mkdir(m.p("D/sub").c_str(), 0700))) == ename(EPERM));  // p is still there
    REQUIRE(unlink(m.p("D/p").c_str()) == 0);
    CHECK(ename(errno_of(mkdir(m.p("D/sub").c_str(), 0700))) == ename(0));
    // And now D has a subdirectory: a pin is EBUSY.
    CHECK(ename(pin(map.get(), m.p("D/m"))) == ename(EBUSY));
    REQUIRE(rmdir(m.p("D/sub").c_str()) == 0);
    must_pin(map.get(), m.p("D/m"));
    CHECK(ename(errno_of(rmdir(m.p("D").c_str()))) == ename(ENOTEMPTY));
    CHECK(ename(errno_of(rmdir(m.p("D/m").c_str()))) == ename(ENOTDIR));
    CHECK(ename(errno_of(unlink(m.p("D").c_str()))) == ename(EISDIR));
    REQUIRE(unlink(m.p("D/m").c_str()) == 0);
    CHECK(ename(errno_of(rmdir(m.p("D").c_str()))) == ename(0));
}

// ---------------------------------------------------------------------------------------------
// 5. get (section 6)

TEST_CASE("get: ENOENT, ENOTDIR, ENAMETOOLONG from the walk, a directory or socket is EACCES",
          "[broker][kernel][get]") {
    KMount m;
    must_mkdir(m.p("d"));
    auto map = must_map();
    must_pin(map.get(), m.p("d/m"));
    CHECK(ename(get_errno(m.p("missing"))) == ename(ENOENT));
    CHECK(ename(get_errno(m.p("nope/m"))) == ename(ENOENT));
    CHECK(ename(get_errno(m.p("d/m/x"))) == ename(ENOTDIR));
    CHECK(ename(get_errno(m.p("d/" + std::string(256, 'n')))) == ename(ENAMETOOLONG));
    CHECK(ename(get_errno(m.p("d"))) == ename(EACCES));
    CHECK(ename(get_errno(m.p("d/"))) == ename(EACCES));
    CHECK(ename(get_errno(m.path())) == ename(EACCES));
    CHECK(ename(get_errno(m.p("d/.bpffs.sock"))) == ename(EACCES));
    // A file elsewhere is not an object of any bpffs-fuse mount.
    CHECK(ename(get_errno("/proc/self/status")) == ename(EACCES));
    // None of this disturbed the object.
    Got g = get(m.p("d/m"));
    REQUIRE(ename(g.error) == ename(0));
    CHECK(kernel_id(g.fd.get()) == kernel_id(map.get()));
}

TEST_CASE("get: without search permission on a component is EACCES", "[broker][kernel][get]") {
    KMount m("mode=0755");
    must_mkdir(m.p("locked"));
    must_mkdir(m.p("locked/sub"));
    auto map = must_map();
    must_pin(map.get(), m.p("locked/sub/m"));
    REQUIRE(chmod(m.p("locked/sub/m").c_str(), 0666) == 0);
    REQUIRE(chmod(m.p("locked").c_str(), 0700) == 0);
    int e = run_as(kUser, kUserGid, [&] { return get_errno(m.p("locked/sub/m")); });
    CHECK(ename(e) == ename(EACCES));
    // With search permission back, the same user gets it.
    REQUIRE(chmod(m.p("locked").c_str(), 0711) == 0);
    e = run_as(kUser, kUserGid, [&] { return get_errno(m.p("locked/sub/m")); });
    CHECK(ename(e) == ename(0));
}

TEST_CASE("get: an unprivileged caller needs write permission on the node",
          "[broker][kernel][get]") {
    KMount m("mode=0755");
    auto map = must_map();
    must_pin(map.get(), m.p("m"));
    const std::string path = m.p("m");
    auto user_get = [&](std::vector<gid_t> groups = {}) {
        return run_as(
            kUser, kUserGid, [&] { return get_errno(path); }, groups);
    };
    CHECK(ename(user_get()) == ename(EACCES));  // 0600 root
    REQUIRE(chmod(path.c_str(), 0644) == 0);
    CHECK(ename(user_get()) == ename(EACCES));  // readable is not enough
    REQUIRE(chmod(path.c_str(), 0602) == 0);
    CHECK(ename(user_get()) == ename(0));  // other may write
    REQUIRE(chown(path.c_str(), 0, 4321) == 0);
    REQUIRE(chmod(path.c_str(), 0620) == 0);
    CHECK(ename(user_get()) == ename(EACCES));   // not in the group
    CHECK(ename(user_get({4321})) == ename(0));  // a supplementary group
    REQUIRE(chmod(path.c_str(), 0600) == 0);
    REQUIRE(chown(path.c_str(), kUser, 0) == 0);
    CHECK(ename(user_get()) == ename(0));  // the owner
    CHECK(ename(run_as(kOther, kOther, [&] { return get_errno(path); })) == ename(EACCES));

    // The broker checks with the peer's credentials: bypassing the library does not help.
    REQUIRE(chown(path.c_str(), 0, 0) == 0);
    int e = run_as(kUser, kUserGid, [&] {
        UniqueFd node(open(path.c_str(), O_PATH | O_CLOEXEC));
        if (!node) return 200;
        UniqueFd s = raw_connect(m.p(".bpffs.sock"));
        if (!s) return 201;
        Answer a = round_trip(s.get(), request(proto::Op::get), {node.get()});
        if (a.kind != Answer::reply) return 202;
        if (!a.fds.empty()) return 203;
        return a.rep.error;
    });
    CHECK(ename(e) == ename(EACCES));
}

TEST_CASE("get: a 0200 object is gettable by its owner, a 0400 one is not",
          "[broker][kernel][get]") {
    KMount m("mode=0755");
    auto map = must_map();
    must_pin(map.get(), m.p("w"));
    must_pin(map.get(), m.p("r"));
    REQUIRE(chown(m.p("w").c_str(), kUser, kUserGid) == 0);
    REQUIRE(chown(m.p("r").c_str(), kUser, kUserGid) == 0);
    REQUIRE(chmod(m.p("w").c_str(), 0200) == 0);
    REQUIRE(chmod(m.p("r").c_str(), 0400) == 0);
    CHECK(ename(run_as(kUser, kUserGid, [&] { return get_errno(m.p("w")); })) == ename(0));
    CHECK(ename(run_as(kUser, kUserGid, [&] { return get_errno(m.p("r")); })) == ename(EACCES));
    // Root (CAP_DAC_OVERRIDE) gets both.
    CHECK(ename(get_errno(m.p("r"))) == ename(0));
    CHECK(ename(get_errno(m.p("w"))) == ename(0));
}

TEST_CASE("get: the fd is O_RDWR and close-on-exec, and an unprivileged user can use a map fd",
          "[broker][kernel][get]") {
    KMount m("mode=0755");
    auto map = must_map();
    auto prog = must_prog();
    must_pin(map.get(), m.p("m"));
    must_pin(prog.get(), m.p("p"));
    for (const auto& name : {"m", "p"}) {
        Got g = get(m.p(name));
        REQUIRE(ename(g.error) == ename(0));
        CHECK((fcntl(g.fd.get(), F_GETFL) & O_ACCMODE) == O_RDWR);
        CHECK((fcntl(g.fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
        // A new open file each time, not the caller's own fd.
        CHECK(g.fd.get() != map.get());
        CHECK(g.fd.get() != prog.get());
    }
    REQUIRE(chown(m.p("m").c_str(), kUser, kUserGid) == 0);
    REQUIRE(map_update(map.get(), 1, 100) == 0);
    int e = run_as(kUser, kUserGid, [&] {
        Got g = get(m.p("m"));
        if (g.error != 0) return g.error;
        if ((fcntl(g.fd.get(), F_GETFL) & O_ACCMODE) != O_RDWR) return 200;
        if ((fcntl(g.fd.get(), F_GETFD) & FD_CLOEXEC) == 0) return 201;
        std::uint64_t v = 0;
        if (int r = map_lookup(g.fd.get(), 1, &v); r != 0) return r;
        if (v != 100) return 202;
        if (int r = map_update(g.fd.get(), 2, 200); r != 0) return r;
        return 0;
    });
    CHECK(ename(e) == ename(0));
    std::uint64_t v = 0;
    CHECK(ename(map_lookup(map.get(), 2, &v)) == ename(0));
    CHECK(v == 200);
}

TEST_CASE("get: symlinks are followed (ELOOP for a loop), and pin follows them in the parent",
          "[broker][kernel][get][symlink]") {
    KMount m;
    must_mkdir(m.p("d"));
    auto map = must_map();
    must_pin(map.get(), m.p("d/m"));
    TempDir t;
    REQUIRE(symlink(m.p("d/m").c_str(), t.p("node").c_str()) == 0);
    REQUIRE(symlink(m.p("d").c_str(), t.p("dir").c_str()) == 0);
    REQUIRE(symlink("node", t.p("rel").c_str()) == 0);
    REQUIRE(symlink(t.p("l2").c_str(), t.p("l1").c_str()) == 0);
    REQUIRE(symlink(t.p("l1").c_str(), t.p("l2").c_str()) == 0);
    REQUIRE(symlink(m.p("d/gone").c_str(), t.p("dangling").c_str()) == 0);
    const std::uint32_t id = kernel_id(map.get());
    for (const auto& path : {t.p("node"), t.p("dir/m"), t.p("rel")}) {
        INFO("get " << path);
        Got g = get(path);
        REQUIRE(ename(g.error) == ename(0));
        CHECK(kernel_id(g.fd.get()) == id);
    }
    CHECK(ename(get_errno(t.p("l1"))) == ename(ELOOP));
    CHECK(ename(get_errno(t.p("l1/x"))) == ename(ELOOP));
    CHECK(ename(get_errno(t.p("dangling"))) == ename(ENOENT));
    CHECK(ename(get_errno(t.p("dir"))) == ename(EACCES));
    must_pin(map.get(), t.p("dir/m2"));
    CHECK(exists(m.p("d/m2")));
}

TEST_CASE("get and pin work through a bind mount of a subdirectory",
          "[broker][kernel][get][bind]") {
    KMount m("mode=0755");
    must_mkdir(m.p("sub"));
    auto map = must_map();
    must_pin(map.get(), m.p("sub/m"));
    TempDir t;
    REQUIRE(mkdir(t.p("x").c_str(), 0755) == 0);
    REQUIRE(mkdir(t.p("ro").c_str(), 0755) == 0);
    BindMount bind(m.p("sub"), t.p("x"));
    INFO("mount --bind: " << ename(bind.error()));
    REQUIRE(bind.ok());
    const std::uint32_t id = kernel_id(map.get());
    {
        Got g = get(t.p("x/m"));
        REQUIRE(ename(g.error) == ename(0));
        CHECK(kernel_id(g.fd.get()) == id);
    }
    auto other = must_map("bpffs_bind");
    must_pin(other.get(), t.p("x/m2"));
    CHECK(exists(m.p("sub/m2")));
    {
        Got g = get(m.p("sub/m2"));
        REQUIRE(ename(g.error) == ename(0));
        CHECK(kernel_id(g.fd.get()) == kernel_id(other.get()));
    }
    CHECK(ename(pin(map.get(), t.p("x/m"))) == ename(EEXIST));
    // An unprivileged user reaches the broker through the bind mount too.
    REQUIRE(chmod(m.p("sub/m").c_str(), 0606) == 0);
    CHECK(ename(run_as(kUser, kUserGid, [&] { return get_errno(t.p("x/m")); })) == ename(0));

    // A read-only bind mount: pin is EROFS (the mount is checked), get works (the seed's
    // inode_permission checks the superblock, not the mount).
    BindMount robind(m.p("sub"), t.p("ro"));
    REQUIRE(robind.ok());
    REQUIRE(mount(nullptr, t.p("ro").c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) ==
            0);
    auto third = must_map("bpffs_ro");
    CHECK(ename(pin(third.get(), t.p("ro/m3"))) == ename(EROFS));
    CHECK_FALSE(exists(m.p("sub/m3")));
    Got g = get(t.p("ro/m"));
    CHECK(ename(g.error) == ename(0));
}

TEST_CASE("get: on a mount made -o ro, a directory is EROFS (before the type check)",
          "[broker][kernel][get][ro]") {
    KMount m("ro");
    CHECK(ename(get_errno(m.path())) == ename(EROFS));
}

TEST_CASE("get: on a mount remounted read-only, objects and directories are EROFS",
          "[broker][kernel][get][remount]") {
    KMount m;
    must_mkdir(m.p("d"));
    auto map = must_map();
    must_pin(map.get(), m.p("d/m"));
    REQUIRE(ename(get_errno(m.p("d/m"))) == ename(0));
    INFO("remount ro: " << ename(errno));
    REQUIRE(mount(nullptr, m.path().c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
    CHECK(ename(errno_of(mkdir(m.p("e").c_str(), 0700))) == ename(EROFS));  // the kernel agrees
    CHECK(ename(get_errno(m.p("d/m"))) == ename(EROFS));
    CHECK(ename(get_errno(m.p("d"))) == ename(EROFS));
    check_pin_fails(m, map.get(), m.p("d/m2"), EROFS);
    check_pin_fails(m, map.get(), m.p("d/a.b"), EROFS);
    check_pin_fails(m, map.get(), m.p("d/m"), EEXIST);
}

TEST_CASE("get: a get racing unlink and re-pin returns a valid fd or ENOENT",
          "[broker][kernel][get][race]") {
    KMount m;
    auto map = must_map();
    const std::uint32_t id = kernel_id(map.get());
    const std::string path = m.p("r");
    Pipe stop, results;
    std::vector<std::unique_ptr<Child>> kids;
    for (int i = 0; i < 4; ++i) {
        kids.push_back(std::make_unique<Child>([&] {
            stop.wr.reset();
            pollfd p{stop.rd.get(), POLLIN, 0};
            std::uint32_t ok = 0;
            // Until told to stop, and at least once successfully (the name stays pinned at the
            // end).
            while (poll(&p, 1, 0) == 0 || ok == 0) {
                Got g = get(path);
                if (g.error == 0) {
                    if (kernel_id(g.fd.get()) != id) return 200;
                    ++ok;
                } else if (g.error != ENOENT) {
                    return g.error;
                }
            }
            results.put(ok);
            return 0;
        }));
    }
    for (int i = 0; i < 300; ++i) {
        REQUIRE(ename(pin(map.get(), path)) == ename(0));
        REQUIRE(unlink(path.c_str()) == 0);
    }
    REQUIRE(ename(pin(map.get(), path)) == ename(0));
    stop.wr.reset();
    for (auto& k : kids) CHECK(ename(k->wait()) == ename(0));
    results.wr.reset();
    std::uint32_t total = 0;
    for (int i = 0; i < 4; ++i) total += results.take();
    INFO("successful gets: " << total);
    CHECK(total >= 4);
    CHECK(tree(m.path()) == std::set<std::string>{"r"});
    check_map_untouched(map.get(), id);
}

// ---------------------------------------------------------------------------------------------
// 6. Unlink and unmount release the kernel objects

TEST_CASE("unlink: the last name of a map or program going frees the kernel object",
          "[broker][kernel][unlink]") {
    KMount m;
    std::uint32_t map_id = 0, prog_id = 0;
    {
        auto map = must_map();
        auto prog = must_prog();
        map_id = kernel_id(map.get());
        prog_id = kernel_id(prog.get());
        must_pin(map.get(), m.p("m"));
        must_pin(map.get(), m.p("m2"));  // the same map under two names
        must_pin(prog.get(), m.p("p"));
        Got g = get(m.p("m"));
        REQUIRE(ename(g.error) == ename(0));
    }  // the test holds no fd from here on
    REQUIRE(map_id_alive(map_id));
    REQUIRE(prog_id_alive(prog_id));

    REQUIRE(unlink(m.p("p").c_str()) == 0);
    CHECK(wait_for([&] { return !prog_id_alive(prog_id); }));

    REQUIRE(unlink(m.p("m").c_str()) == 0);
    {
        // Still held by the other name: fetchable, the same object.
        Got g = get(m.p("m2"));
        REQUIRE(ename(g.error) == ename(0));
        CHECK(kernel_id(g.fd.get()) == map_id);
    }
    CHECK(map_id_alive(map_id));
    CHECK(ename(get_errno(m.p("m"))) == ename(ENOENT));
    REQUIRE(unlink(m.p("m2").c_str()) == 0);
    CHECK(wait_for([&] { return !map_id_alive(map_id); }));
}

TEST_CASE("unmount: every pinned object is released", "[broker][kernel][unmount]") {
    auto pinned = [](Mount& m, std::uint32_t& map_id, std::uint32_t& prog_id) {
        must_mkdir(m.p("a"));
        auto map = must_map();
        auto prog = must_prog();
        map_id = kernel_id(map.get());
        prog_id = kernel_id(prog.get());
        must_pin(map.get(), m.p("a/m"));
        must_pin(map.get(), m.p("a/m2"));
        must_pin(prog.get(), m.p("a/p"));
    };
    std::uint32_t map_id = 0, prog_id = 0;
    SECTION("the daemon stopped (SIGTERM)") {
        KMount m;
        pinned(m, map_id, prog_id);
        REQUIRE(map_id_alive(map_id));
        REQUIRE(prog_id_alive(prog_id));
        m.stop();
        CHECK(wait_for([&] { return !map_id_alive(map_id) && !prog_id_alive(prog_id); }));
    }
    SECTION("umount from outside") {
        KMount m;
        pinned(m, map_id, prog_id);
        REQUIRE(map_id_alive(map_id));
        INFO("umount: " << ename(errno));
        REQUIRE(umount2(m.path().c_str(), 0) == 0);
        CHECK(wait_for([&] { return !map_id_alive(map_id) && !prog_id_alive(prog_id); }));
        CHECK_FALSE(is_bpffs_mounted(m.path()));
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Concurrency

TEST_CASE("concurrency: 16 processes x 1000 gets all succeed with the same id, no fd leak",
          "[broker][kernel][concurrency]") {
    KMount m;
    auto map = must_map();
    const std::uint32_t id = kernel_id(map.get());
    must_pin(map.get(), m.p("m"));
    REQUIRE(ename(get_errno(m.p("m"))) == ename(0));  // warm up
    const int baseline = settled_fd_count(worker_of(m.pid()));
    REQUIRE(baseline > 0);
    const std::string path = m.p("m");
    std::vector<std::unique_ptr<Child>> kids;
    for (int i = 0; i < 16; ++i) {
        kids.push_back(std::make_unique<Child>([&] {
            for (int n = 0; n < 1000; ++n) {
                Got g = get(path);
                if (g.error != 0) return g.error;
                if (kernel_id(g.fd.get()) != id) return 200;
            }
            return 0;
        }));
    }
    for (auto& k : kids) CHECK(ename(k->wait(60000)) == ename(0));
    int now = 0;
    CHECK(wait_for([&] { return (now = count_fds(worker_of(m.pid()))) <= baseline; }));
    INFO("daemon fds: baseline " << baseline << ", now " << now);
    CHECK(now <= baseline);
    CHECK(map_id_alive(id));
}

// ---------------------------------------------------------------------------------------------
// 8. Malformed traffic (docs/protocol.md: undecodable -> closed without reply; wrong number
// of fds -> EINVAL; every fd received is closed)

TEST_CASE("broker: malformed traffic is refused without harm to the daemon or the objects",
          "[broker][kernel][malformed]") {
    KMount m;
    auto map = must_map();
    const std::uint32_t id = kernel_id(map.get());
    must_pin(map.get(), m.p("m"));
    auto node = o_path(m.p("m"));
    REQUIRE(ename(get_errno(m.p("m"))) == ename(0));
    const pid_t worker = worker_of(m.pid());
    const int baseline = settled_fd_count(worker);
    REQUIRE(baseline > 0);

    // A peer that never speaks stays connected through all of it.
    UniqueFd silent = must_connect(m);

    auto expect = [&](const std::string& what, const std::vector<std::uint8_t>& msg,
                      const std::vector<int>& fds, Answer::Kind kind, int error = 0) {
        UniqueFd s = must_connect(m);
        Answer a = round_trip(s.get(), msg, fds);
        INFO(what << ": " << describe(a));
        CHECK(a.kind == kind);
        if (kind == Answer::reply && a.kind == Answer::reply) {
            CHECK(ename(a.rep.error) == ename(error));
            CHECK(a.fds.empty());
        }
    };

    SECTION("random bytes of many sizes, 0 and 5000 included, are closed without reply") {
        std::mt19937 rng(20151015);
        for (std::size_t size : {0u, 1u, 8u, 15u, 16u, 17u, 100u, 4095u, 4096u, 4097u, 5000u}) {
            std::vector<std::uint8_t> msg(size);
            for (auto& b : msg) b = static_cast<std::uint8_t>(rng());
            expect("random " + std::to_string(size), msg, {}, Answer::closed);
            expect("random " + std::to_string(size) + " with an fd", msg, {node.get()},
                   Answer::closed);
        }
    }
    SECTION("bad headers are closed without reply") {
        using proto::kMagic;
        using proto::kVersion;
        auto good = request(proto::Op::get);
        expect("truncated header", std::vector<std::uint8_t>(good.begin(), good.begin() + 10),
               {node.get()}, Answer::closed);
        expect("bad magic", header(0xdeadbeef, kVersion, 2, 0, 0), {node.get()}, Answer::closed);
        expect("bad version", header(kMagic, 2, 2, 0, 0), {node.get()}, Answer::closed);
        expect("version 0", header(kMagic, 0, 2, 0, 0), {node.get()}, Answer::closed);
        expect("op 0", header(kMagic, kVersion, 0, 0, 0), {node.get()}, Answer::closed);
        expect("op 6", header(kMagic, kVersion, 6, 0, 0), {node.get()}, Answer::closed);
        expect("op 0xffff", header(kMagic, kVersion, 0xffff, 0, 0), {node.get()}, Answer::closed);
        expect("flags 1", header(kMagic, kVersion, 2, 1, 0), {node.get()}, Answer::closed);
        expect("flags high", header(kMagic, kVersion, 2, 0x80000000u, 0), {node.get()},
               Answer::closed);
        expect("payload_len > payload", header(kMagic, kVersion, 2, 0, 10), {node.get()},
               Answer::closed);
        expect("payload_len < payload", header(kMagic, kVersion, 2, 0, 0, "xyz"), {node.get()},
               Answer::closed);
        expect("pin payload_len short", header(kMagic, kVersion, 1, 0, 3, "abcde"),
               {map.get(), node.get()}, Answer::closed);
        expect("pin with an empty name", header(kMagic, kVersion, 1, 0, 0), {map.get(), node.get()},
               Answer::closed);
        expect("pin name with '/'", request(proto::Op::pin, "a/b"), {map.get(), node.get()},
               Answer::closed);
        expect("pin name with NUL", header(kMagic, kVersion, 1, 0, 3, std::string("a\0b", 3)),
               {map.get(), node.get()}, Answer::closed);
        expect("pin name of 256 bytes", request(proto::Op::pin, std::string(256, 'a')),
               {map.get(), node.get()}, Answer::closed);
        expect("get with a payload", header(kMagic, kVersion, 2, 0, 1, "x"), {node.get()},
               Answer::closed);
        expect("status with a payload", header(kMagic, kVersion, 3, 0, 1, "x"), {}, Answer::closed);
    }
    SECTION("the wrong number of fds is EINVAL, and the connection goes on") {
        UniqueFd s = must_connect(m);
        struct Case {
            const char* what;
            proto::Op op;
            std::vector<int> fds;
        };
        std::vector<Case> cases = {
            {"pin with 0 fds", proto::Op::pin, {}},
            {"pin with 1 fd", proto::Op::pin, {map.get()}},
            {"get with 0 fds", proto::Op::get, {}},
            {"get with 2 fds", proto::Op::get, {node.get(), node.get()}},
            {"status with 1 fd", proto::Op::status, {node.get()}},
            {"remount with 1 fd", proto::Op::remount, {node.get()}},
        };
        for (const auto& c : cases) {
            Answer a = round_trip(s.get(), request(c.op, c.op == proto::Op::pin ? "x" : ""), c.fds);
            INFO(c.what << ": " << describe(a));
            REQUIRE(a.kind == Answer::reply);
            CHECK(a.rep.op == c.op);
            CHECK(ename(a.rep.error) == ename(EINVAL));
            CHECK(a.fds.empty());
        }
        CHECK_FALSE(exists(m.p("x")));
        // Many requests on one connection: a good get still works on it.
        Answer a = round_trip(s.get(), request(proto::Op::get), {node.get()});
        REQUIRE(a.kind == Answer::reply);
        CHECK(ename(a.rep.error) == ename(0));
        REQUIRE(a.fds.size() == 1);
        CHECK(kernel_id(a.fds[0].get()) == id);
        REQUIRE(a.rep.get.has_value());
        CHECK(a.rep.get->id == id);
        CHECK(a.rep.get->kind == proto::ObjKind::map);
    }
    SECTION("253 fds are closed without reply; 300 cannot even be sent") {
        FdGroup pipes = make_pipes(150);
        std::vector<int> fds = pipes.raw();
        // 300 fds: the kernel refuses the message (SCM_MAX_FD is 253).
        {
            UniqueFd s = must_connect(m);
            auto msg = request(proto::Op::get);
            iovec iov{msg.data(), msg.size()};
            std::vector<char> control(CMSG_SPACE(sizeof(int) * 300));
            msghdr mh{};
            mh.msg_iov = &iov;
            mh.msg_iovlen = 1;
            mh.msg_control = control.data();
            mh.msg_controllen = control.size();
            cmsghdr* c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * 300);
            std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * 300);
            CHECK(ename(sendmsg(s.get(), &mh, MSG_NOSIGNAL) < 0 ? errno : 0) == ename(EINVAL));
        }
        fds.resize(253);
        fds[0] = node.get();
        expect("get with 253 fds", request(proto::Op::get), fds, Answer::closed);
        expect("pin with 253 fds", request(proto::Op::pin, "many"), fds, Answer::closed);
        expect("get with 3 fds", request(proto::Op::get), {node.get(), fds[1], fds[2]},
               Answer::closed);
        CHECK_FALSE(exists(m.p("many")));
    }
    SECTION("fds of the wrong kind get the spec's errors") {
        FdGroup pipes = make_pipes(1);
        auto p = pipes.raw();
        auto dir = o_path(m.path());
        TempDir t;
        auto elsewhere = o_path(t.path());
        expect("pin of a pipe", request(proto::Op::pin, "x"), {p[0], dir.get()}, Answer::reply,
               EINVAL);
        expect("pin of an O_PATH fd", request(proto::Op::pin, "x"), {node.get(), dir.get()},
               Answer::reply, EINVAL);
        expect("pin with a pipe as the directory", request(proto::Op::pin, "x"), {map.get(), p[0]},
               Answer::reply, ENOTDIR);
        expect("pin with a node as the directory", request(proto::Op::pin, "x"),
               {map.get(), node.get()}, Answer::reply, ENOTDIR);
        expect("pin into a directory elsewhere", request(proto::Op::pin, "x"),
               {map.get(), elsewhere.get()}, Answer::reply, EACCES);
        expect("get of a pipe", request(proto::Op::get), {p[0]}, Answer::reply, EACCES);
        expect("get of a directory", request(proto::Op::get), {dir.get()}, Answer::reply, EACCES);
        expect("get of a directory elsewhere", request(proto::Op::get), {elsewhere.get()},
               Answer::reply, EACCES);
        CHECK_FALSE(exists(m.p("x")));
        CHECK_FALSE(exists(t.p("x")));
    }
    SECTION("peers that vanish: silent, half a request, a request without reading the reply") {
        for (int i = 0; i < 20; ++i) {
            UniqueFd s = must_connect(m);  // connects and closes without speaking
        }
        for (int i = 0; i < 20; ++i) {
            UniqueFd s = must_connect(m);
            auto msg = request(proto::Op::get);
            msg.resize(8);
            REQUIRE(send_with_fds(s.get(), msg, std::vector<int>{node.get()}) == 0);
        }
        for (int i = 0; i < 20; ++i) {
            UniqueFd s = must_connect(m);
            REQUIRE(send_with_fds(s.get(), request(proto::Op::get), std::vector<int>{node.get()}) ==
                    0);
        }
        // The silent peer does not hold up others.
        Got g = get(m.p("m"));
        CHECK(ename(g.error) == ename(0));
    }

    // After all of it: alive, mounted, the object there, nothing leaked.
    silent.reset();
    CHECK(kill(m.pid(), 0) == 0);
    CHECK(waitpid(m.pid(), nullptr, WNOHANG) == 0);
    CHECK(worker_of(m.pid()) == worker);  // served by the same worker: it never crashed
    CHECK(is_bpffs_mounted(m.path()));
    Got g = get(m.p("m"));
    REQUIRE(ename(g.error) == ename(0));
    CHECK(kernel_id(g.fd.get()) == id);
    g.fd.reset();
    bpffs_close_kept_connections();  // the get's
    int now = 0;
    CHECK(wait_for([&] { return (now = count_fds(worker)) == baseline; }));
    INFO("daemon fds: baseline " << baseline << ", now " << now);
    CHECK(now == baseline);
    check_map_untouched(map.get(), id);
    CHECK(tree(m.path()) == std::set<std::string>{"m"});
}

TEST_CASE("broker: a status request reports the daemon's pid and counts", "[broker][kernel]") {
    KMount m("uid=5,gid=6,mode=0750");
    auto map = must_map();
    auto prog = must_prog();
    must_mkdir(m.p("d"));
    must_pin(map.get(), m.p("d/m"));
    must_pin(prog.get(), m.p("d/p"));
    UniqueFd s = must_connect(m);
    Answer a = round_trip(s.get(), request(proto::Op::status));
    INFO(describe(a));
    REQUIRE(a.kind == Answer::reply);
    REQUIRE(a.rep.status.has_value());
    CHECK(a.rep.status->pid == static_cast<std::uint32_t>(m.pid()));
    CHECK(a.rep.status->uid == 5);
    CHECK(a.rep.status->gid == 6);
    CHECK(a.rep.status->mode == 0750);
    CHECK(a.rep.status->dirs == 2);
    CHECK(a.rep.status->maps == 1);
    CHECK(a.rep.status->progs == 1);
}

// ---------------------------------------------------------------------------------------------
// 9. The scenario of a program that uses maps pinned by another (unprivileged) user

TEST_CASE("used-by: a root-pinned map handed to uid 1000 by chown is fetched and used",
          "[broker][kernel][scenario]") {
    KMount m("uid=1000,mode=0750");
    struct stat root = must_stat(m.path());
    CHECK(root.st_uid == kUser);
    CHECK(root.st_mode == (S_IFDIR | 0750));
    auto map = must_map("bpffs_usedby");
    REQUIRE(map_update(map.get(), 42, 4242) == 0);
    must_pin(map.get(), m.p("m"));
    // Before the chown the user may not have it.
    CHECK(ename(run_as(kUser, kUserGid, [&] { return get_errno(m.p("m")); })) == ename(EACCES));
    REQUIRE(chown(m.p("m").c_str(), kUser, kUserGid) == 0);
    Pipe ids;
    int e = run_as(kUser, kUserGid, [&] {
        Got g = get(m.p("m"));
        if (g.error != 0) return g.error;
        std::uint64_t v = 0;
        if (int r = map_lookup(g.fd.get(), 42, &v); r != 0) return r;
        if (v != 4242) return 200;
        if (int r = map_update(g.fd.get(), 43, 4343); r != 0) return r;
        ids.put(kernel_id(g.fd.get()));
        return 0;
    });
    CHECK(ename(e) == ename(0));
    ids.wr.reset();
    CHECK(ids.take() == kernel_id(map.get()));
    std::uint64_t v = 0;
    CHECK(ename(map_lookup(map.get(), 43, &v)) == ename(0));
    CHECK(v == 4343);
    auto r = run_cmd({"/usr/bin/getfattr", "-n", "bpf.type", m.p("m")});
    INFO("getfattr: " << r.out);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("bpf.type=\"map\"") != std::string::npos);
    // The user can read the type of its own object too.
    e = run_as(kUser, kUserGid, [&] {
        char b[16];
        ssize_t n = getxattr(m.p("m").c_str(), "bpf.type", b, sizeof b);
        return n == 4 && std::memcmp(b, "map", 4) == 0 ? 0 : 200;
    });
    CHECK(ename(e) == ename(0));
}

// Runs fn in a forked child (root, same credentials) and returns its exit code (-1: killed).
static int in_child(const std::function<int()>& fn) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) _exit(fn() & 0xff);
    int status = -1;
    if (!bpffs::test::wait_for([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 30000)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_CASE("discovery: from another mount namespace and inside a chroot, the path finds the broker",
          "[broker][kernel][discovery]") {
    KMount m("mode=0755");
    must_mkdir(m.p("sub"));
    auto map = must_map();
    must_pin(map.get(), m.p("sub/m"));
    const std::uint32_t id = kernel_id(map.get());
    // The mount point's parent holds only the mount: a chroot there sees the mount at /mnt.
    const std::string base = m.path().substr(0, m.path().rfind('/'));
    const std::string leaf = m.path().substr(m.path().rfind('/'));

    // A private mount namespace with its own bind mount of a subdirectory.
    int r = in_child([&] {
        if (unshare(CLONE_NEWNS) != 0) return 10;
        if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 11;
        std::string dst = base + "/ns-bind";
        if (mkdir(dst.c_str(), 0755) != 0) return 12;
        if (mount(m.p("sub").c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) != 0) return 13;
        int fd = bpffs_obj_get((dst + "/m").c_str());
        if (fd < 0) return 14;
        int ok = bpffs::test::kernel_id(fd) == id ? 0 : 15;
        close(fd);
        auto other = bpffs::test::create_hash_map("bpffs_ns");
        if (bpffs_obj_pin(other.get(), (dst + "/n").c_str()) != 0) return 16;
        umount2(dst.c_str(), MNT_DETACH);
        rmdir(dst.c_str());
        return ok;
    });
    CHECK(r == 0);
    CHECK(exists(m.p("sub/n")));  // pinned from the other namespace, seen here

    // A chroot: no /proc, the mount at /mnt.
    r = in_child([&] {
        if (chroot(base.c_str()) != 0 || chdir("/") != 0) return 20;
        auto id_of = [](int fd) {  // bpf(2) itself: there is no /proc in the chroot
            bpf_map_info info{};
            __u32 len = sizeof info;
            return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0u;
        };
        int fd = bpffs_obj_get((leaf + "/sub/m").c_str());
        if (fd < 0) return 21;
        int ok = id_of(fd) == id ? 0 : 22;
        close(fd);
        // A relative path from inside the mount works too.
        if (chdir((leaf + "/sub").c_str()) != 0) return 24;
        fd = bpffs_obj_get("m");
        if (fd < 0) return 25;
        if (id_of(fd) != id) ok = 26;
        close(fd);
        return ok;
    });
    CHECK(r == 0);
}

// ---------------------------------------------------------------------------------------------
// 11. Privilege comes from credentials the kernel binds to the connection or the message
// (issue 14; broker/peer.hpp, docs/protocol.md "Credentials"). Each case is an attack a local
// unprivileged user made against the earlier broker, which read capabilities from the peer's
// pid when the first privileged request came.

namespace {

constexpr uid_t kNobody = 65534;

// The effective uid of `pid` (/proc/PID/status), or -1.
long euid_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Uid:", 0) == 0) {
            std::istringstream f(line.substr(4));
            long real = -1, eff = -1;
            f >> real >> eff;
            return eff;
        }
    }
    return -1;
}

// A copy of the test's setuid_waiter, setuid root, in a directory of root's.
struct SetuidWaiter {
    TempDir dir{"/var/lib"};
    std::string path = dir.p("waiter");
    SetuidWaiter() {
        REQUIRE(run_cmd({"/bin/cp", BPFFS_SETUID_WAITER_BIN, path}).exit_code == 0);
        REQUIRE(chown(path.c_str(), 0, 0) == 0);
        REQUIRE(chmod(path.c_str(), 04755) == 0);
    }
};

// A script that leaves `marker` when run and says it is bpffs-fuse (what upgrade checks), in a
// directory owned by `owner`.
struct MarkerScript {
    TempDir dir;
    std::string path = dir.p("fake-bpffs-fuse");
    std::string marker = dir.p("ran");
    explicit MarkerScript(uid_t owner) {
        std::ofstream out(path);
        out << "#!/bin/sh\ntouch " << marker << "\necho 'bpffs-fuse 99.0'\n";
        out.close();
        REQUIRE(chmod(path.c_str(), 0755) == 0);
        REQUIRE(chown(path.c_str(), owner, owner) == 0);
        REQUIRE(chown(dir.path().c_str(), owner, owner) == 0);
    }
    bool ran() const { return exists(marker); }
};

// The replies an unprivileged process got for pin, remount, upgrade, get and status, as
// bytes on a pipe: one errno each (status: 0 with the counts shown, 1 hidden), 255: no reply.
enum AttackStep : std::size_t { kPin, kRemount, kUpgrade, kGet, kStatus, kSteps };

std::array<int, kSteps> attack(int s, int map_fd, const std::string& private_dir,
                               const std::string& secret, const std::string& upgrade_path) {
    std::array<int, kSteps> out;
    out.fill(255);
    auto send = [s](proto::Op op, const std::string& name, const std::vector<int>& fds = {}) {
        return round_trip(s, request(op, name), fds);
    };
    auto code = [](const Answer& a) { return a.kind == Answer::reply ? a.rep.error : 255; };
    UniqueFd dir(open(private_dir.c_str(), O_PATH | O_CLOEXEC));
    if (dir) out[kPin] = code(send(proto::Op::pin, "stolen", {map_fd, dir.get()}));
    out[kRemount] = code(send(proto::Op::remount, "uid=65534,mode=0777"));
    out[kUpgrade] = code(send(proto::Op::upgrade, upgrade_path));
    UniqueFd node(open(secret.c_str(), O_PATH | O_CLOEXEC));
    if (node) out[kGet] = code(send(proto::Op::get, "", {node.get()}));
    Answer st = send(proto::Op::status, "");
    if (st.kind == Answer::reply && st.rep.error == 0 && st.rep.status) {
        out[kStatus] = st.rep.status->counts_shown() ? 0 : 1;
    }
    return out;
}

// What the mount looks like to the attacks below: a root that others may enter, a root-only
// directory, a root-only map, and the root's options.
struct Target {
    KMount m{"mode=1777"};
    UniqueFd map = must_map("priv_secret");
    Target() {
        must_mkdir(m.p("private"), 0700);
        must_mkdir(m.p("objs"), 0755);
        must_pin(map.get(), m.p("objs/secret"));
        REQUIRE((must_stat(m.p("objs/secret")).st_mode & 07777) == 0600);
    }
    void check_untouched(const MarkerScript& script) {
        CHECK_FALSE(script.ran());
        CHECK_FALSE(exists(m.p("private/stolen")));
        struct stat root = must_stat(m.path());
        CHECK(root.st_uid == 0);
        CHECK((root.st_mode & 07777) == 01777);
        check_map_untouched(map.get(), kernel_id(map.get()));
    }
};

}  // namespace

TEST_CASE(
    "privilege: a process that connects and then execs a setuid-root program gives its "
    "children no privilege",
    "[broker][kernel][privilege]") {
    Target t;
    SetuidWaiter waiter;
    MarkerScript script(kNobody);
    Pipe results, waiter_stdin;
    const int res_wr = results.wr.get(), stdin_rd = waiter_stdin.rd.get();
    const std::string sock = t.m.p(".bpffs.sock");
    Child connector([&] {
        if (setresgid(kNobody, kNobody, kNobody) != 0 ||
            setresuid(kNobody, kNobody, kNobody) != 0) {
            return 200;
        }
        UniqueFd s = raw_connect(sock);
        if (!s) return 201;
        const pid_t self = getpid();
        pid_t sender = fork();
        if (sender < 0) return 202;
        if (sender == 0) {
            // Speak on the inherited connection once the connecting process is root.
            std::array<std::uint8_t, kSteps + 1> out{};
            out[kSteps] = wait_for([&] { return euid_of(self) == 0; }, 10000) ? 1 : 0;
            auto r =
                attack(s.get(), t.map.get(), t.m.p("private"), t.m.p("objs/secret"), script.path);
            for (std::size_t i = 0; i < kSteps; ++i) out[i] = static_cast<std::uint8_t>(r[i]);
            (void)!write(res_wr, out.data(), out.size());
            _exit(0);
        }
        dup2(stdin_rd, 0);
        execl(waiter.path.c_str(), "waiter", static_cast<char*>(nullptr));
        return 203;
    });
    std::array<std::uint8_t, kSteps + 1> got{};
    pollfd pf{results.rd.get(), POLLIN, 0};
    REQUIRE(poll(&pf, 1, 20000) == 1);
    REQUIRE(read(results.rd.get(), got.data(), got.size()) == static_cast<ssize_t>(got.size()));
    waiter_stdin.wr.reset();  // the waiter reads EOF and exits
    CHECK(connector.wait() == 0);
    INFO("pin " << ename(got[kPin]) << ", remount " << ename(got[kRemount]) << ", upgrade "
                << ename(got[kUpgrade]) << ", get " << ename(got[kGet]));
    REQUIRE(got[kSteps] == 1);  // the setuid program really ran as root (else: proves nothing)
    CHECK(got[kPin] == EPERM);
    CHECK(got[kRemount] == EPERM);
    CHECK(got[kUpgrade] == EPERM);
    CHECK(got[kGet] == EACCES);
    CHECK(got[kStatus] == 1);  // counts hidden
    t.check_untouched(script);
}

TEST_CASE(
    "privilege: a root process's child that drops to nobody speaks as nobody on the "
    "inherited connection",
    "[broker][kernel][privilege]") {
    Target t;
    MarkerScript script(kNobody);
    UniqueFd s = must_connect(t.m);
    Pipe results;
    const int res_wr = results.wr.get();
    Child child([&] {
        if (setresgid(kNobody, kNobody, kNobody) != 0 ||
            setresuid(kNobody, kNobody, kNobody) != 0) {
            return 200;
        }
        auto r = attack(s.get(), t.map.get(), t.m.p("private"), t.m.p("objs/secret"), script.path);
        std::array<std::uint8_t, kSteps> out{};
        for (std::size_t i = 0; i < kSteps; ++i) out[i] = static_cast<std::uint8_t>(r[i]);
        return write(res_wr, out.data(), out.size()) == static_cast<ssize_t>(out.size()) ? 0 : 201;
    });
    REQUIRE(child.wait() == 0);
    std::array<std::uint8_t, kSteps> got{};
    REQUIRE(read(results.rd.get(), got.data(), got.size()) == static_cast<ssize_t>(got.size()));
    CHECK(got[kPin] == EPERM);
    CHECK(got[kRemount] == EPERM);
    CHECK(got[kUpgrade] == EPERM);
    CHECK(got[kGet] == EACCES);
    CHECK(got[kStatus] == 1);
    t.check_untouched(script);

    // The connecting root process itself keeps its privilege on the same connection.
    UniqueFd dir = o_path(t.m.p("private"));
    Answer a = round_trip(s.get(), request(proto::Op::pin, "mine"), {t.map.get(), dir.get()});
    INFO(describe(a));
    CHECK((a.kind == Answer::reply && a.rep.error == 0));
    CHECK(exists(t.m.p("private/mine")));
    Answer st = round_trip(s.get(), request(proto::Op::status));
    REQUIRE(st.kind == Answer::reply);
    REQUIRE(st.rep.status.has_value());
    CHECK(st.rep.status->counts_shown());
    CHECK(st.rep.status->maps == 2);  // names: objs/secret and private/mine
}

TEST_CASE(
    "privilege: a root without CAP_SYS_ADMIN that enters a new user namespace right after "
    "its request is never granted (2000 tries)",
    "[broker][kernel][privilege]") {
    Target t;
    MarkerScript script(0);
    const std::string sock = t.m.p(".bpffs.sock");
    int granted = 0, failed = 0;
    for (int i = 0; i < 2000; ++i) {
        // tests/userns_racer.c: keeps uid 0, loses CAP_SYS_ADMIN for good, sends the request
        // and enters a new user namespace, which gives every capability back inside it only.
        const bool pin_try = i % 2 == 0;  // pin and upgrade in turn
        auto msg = pin_try ? request(proto::Op::pin, "ns" + std::to_string(i))
                           : request(proto::Op::upgrade, script.path);
        std::string hex;
        for (auto b : msg) {
            constexpr char kDigits[] = "0123456789abcdef";
            hex += kDigits[b >> 4];
            hex += kDigits[b & 15];
        }
        int rc = run_child([&] {
            int map_fd = dup(t.map.get());  // inherited across exec
            int dir_fd = open(t.m.p("private").c_str(), O_PATH);
            if (map_fd < 0 || dir_fd < 0) return 210;
            std::string a = std::to_string(map_fd), b = std::to_string(dir_fd);
            if (pin_try) {
                execl(BPFFS_USERNS_RACER_BIN, "userns_racer", sock.c_str(), hex.c_str(), a.c_str(),
                      b.c_str(), static_cast<char*>(nullptr));
            } else {
                execl(BPFFS_USERNS_RACER_BIN, "userns_racer", sock.c_str(), hex.c_str(),
                      static_cast<char*>(nullptr));
            }
            return 211;
        });
        rc = rc == EPERM ? 0 : rc == 0 ? 1 : rc;
        if (rc == 1) ++granted;
        if (rc != 0 && rc != 1) ++failed;
        if (failed > 0) {
            INFO("try " << i << ": child returned " << rc);
            REQUIRE(failed == 0);
        }
    }
    CHECK(granted == 0);
    t.check_untouched(script);
    CHECK(tree(t.m.path()) == std::set<std::string>{"private/", "objs/", "objs/secret"});
}

TEST_CASE("privilege: upgrade runs no binary a client names unless only root can change it",
          "[broker][kernel][privilege][upgrade]") {
    KMount m;
    SECTION("in a directory anyone may write (/tmp)") {
        MarkerScript script(0);
        REQUIRE(chmod(script.dir.path().c_str(), 0777) == 0);
        Answer a = round_trip(must_connect(m).get(), request(proto::Op::upgrade, script.path));
        INFO(describe(a));
        CHECK((a.kind == Answer::reply && a.rep.error == EACCES));
        CHECK_FALSE(script.ran());
    }
    SECTION("owned by another user") {
        MarkerScript script(kNobody);
        Answer a = round_trip(must_connect(m).get(), request(proto::Op::upgrade, script.path));
        CHECK((a.kind == Answer::reply && a.rep.error == EACCES));
        CHECK_FALSE(script.ran());
    }
    SECTION("group-writable, in a directory of root's") {
        TempDir trusted("/var/lib");
        MarkerScript script(0);
        const std::string path = trusted.p("fake");
        REQUIRE(run_cmd({"/bin/cp", script.path, path}).exit_code == 0);
        REQUIRE(chmod(path.c_str(), 0775) == 0);
        Answer a = round_trip(must_connect(m).get(), request(proto::Op::upgrade, path));
        CHECK((a.kind == Answer::reply && a.rep.error == EACCES));
        CHECK_FALSE(script.ran());
    }
    SECTION("bpffsctl says why") {
        MarkerScript script(kNobody);
        auto r = run_cmd({BPFFSCTL_BIN, "upgrade", m.path(), "--exec", script.path});
        INFO(r.out);
        CHECK(r.exit_code == 1);
        CHECK(r.out.find("must be owned by root") != std::string::npos);
        CHECK_FALSE(script.ran());
    }
    CHECK(is_bpffs_mounted(m.path()));
}

TEST_CASE("privilege: status tells the object counts only to a caller that may pin",
          "[broker][kernel][privilege]") {
    KMount m("mode=0755");
    auto map = must_map();
    must_mkdir(m.p("d"), 0700);
    must_pin(map.get(), m.p("d/m"));
    auto r = run_as(kNobody, kNobody, [&] {
        UniqueFd s = raw_connect(m.p(".bpffs.sock"));
        if (!s) return 200;
        Answer a = round_trip(s.get(), request(proto::Op::status));
        if (a.kind != Answer::reply || a.rep.error != 0 || !a.rep.status) return 201;
        const auto& st = *a.rep.status;
        if (st.counts_shown()) return 1;
        if (st.mode != 0755 || st.pid != static_cast<std::uint32_t>(m.pid())) return 2;
        return 0;
    });
    CHECK(r == 0);
    auto out = run_as(kNobody, kNobody, [&] {
        auto c = run_cmd({BPFFSCTL_BIN, "status", m.path()});
        return c.exit_code == 0 && c.out.find("maps: hidden") != std::string::npos ? 0 : 1;
    });
    CHECK(out == 0);
}

TEST_CASE("privilege: a non-root process holding CAP_SYS_ADMIN is unprivileged for the broker",
          "[broker][kernel][privilege]") {
    // The documented departure (docs/semantics.md): the kernel records no capabilities at
    // connect, so only a caller that was root then may use them.
    KMount m("mode=1777");
    must_mkdir(m.p("d"), 0777);
    auto map = must_map();
    int rc = run_child([&] {
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return 200;
        if (setresgid(kUserGid, kUserGid, kUserGid) != 0 || setresuid(kUser, kUser, kUser) != 0) {
            return 201;
        }
        __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        if (syscall(SYS_capget, &hdr, data) != 0) return 202;
        data[0].effective |= 1u << CAP_SYS_ADMIN;  // still permitted: PR_SET_KEEPCAPS
        if (syscall(SYS_capset, &hdr, data) != 0) return 203;
        int e = pin(map.get(), m.p("d/m"));
        return e == 250 ? 204 : e;
    });
    CHECK(ename(rc) == ename(EPERM));
    CHECK_FALSE(exists(m.p("d/m")));
}

// ---------------------------------------------------------------------------------------------
// 8. Attacks

namespace {

// An attacker's FUSE filesystem (stuck_fuse.c) on a temp dir: its file's close never returns.
// Killed, and its mount taken away, on destruction.
class StuckFuse {
public:
    StuckFuse() {
        pid_ = spawn({BPFFS_STUCK_FUSE_BIN, dir_.path()}, -1);
        if (pid_ <= 0 || !wait_for([&] { return is_mounted(dir_.path(), "fuse.stuck"); }))
            throw std::runtime_error("stuck_fuse did not mount");
    }
    ~StuckFuse() {
        kill(pid_, SIGKILL);
        wait_status(pid_, 10000);
        umount2(dir_.path().c_str(), MNT_DETACH);
    }
    std::string file() const { return dir_.p("f"); }
    const std::string& dir() const { return dir_.path(); }  // its STATFS is never answered

private:
    TempDir dir_;
    pid_t pid_ = -1;
};

}  // namespace

TEST_CASE(
    "attack: files whose close never returns, sent by an unprivileged user, hold no "
    "serving thread, and the daemon still stops",
    "[broker][kernel][attack]") {
    // compat=linux: the attacker may pin, so its pins reach the checks of their fds.
    KMount m("compat=linux");
    auto map = must_map();
    must_pin(map.get(), m.p("m"));
    StuckFuse stuck;
    // As an unprivileged uid: the stuck file, sent on 16 connections as a pin's object and
    // directory and as a get's node, and a pin of a real map into the stuck filesystem's root
    // (a foreign parent the broker must not ask anything: its STATFS never answers); the
    // connections stay open.
    constexpr int kConns = 16;
    Pipe ready;
    pid_t attacker = fork();
    REQUIRE(attacker >= 0);
    if (attacker == 0) {
        if (setresgid(kUserGid, kUserGid, kUserGid) != 0 || setresuid(kUser, kUser, kUser) != 0) {
            ready.put(1000 + errno);
            _exit(10);
        }
        int fd = open(stuck.file().c_str(), O_RDWR | O_CLOEXEC);  // kept: its close would block
        if (fd < 0) {
            ready.put(2000 + errno);
            _exit(11);
        }
        std::vector<UniqueFd> conns;
        for (int i = 0; i < kConns; ++i) {
            UniqueFd s = raw_connect(m.p(".bpffs.sock"));
            if (!s) {
                ready.put(3000 + errno);
                _exit(12);
            }
            send_with_fds(s.get(), request(proto::Op::pin, "x"), std::vector<int>{fd, fd});
            send_with_fds(s.get(), request(proto::Op::get), std::vector<int>{fd});
            UniqueFd root(open(stuck.dir().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
            send_with_fds(s.get(), request(proto::Op::pin, "x"),
                          std::vector<int>{map.get(), root.get()});
            conns.push_back(std::move(s));
        }
        ready.put(static_cast<std::uint32_t>(conns.size()));
        pause();
        _exit(0);
    }
    struct Reaper {  // the attacker goes first, then (StuckFuse) its filesystem
        pid_t pid;
        ~Reaper() { kill(pid, SIGKILL); }
    } reaper{attacker};
    ready.wr.reset();
    // 1000 + errno: no uid; 2000 + errno: no stuck file; 3000 + errno: no connection.
    REQUIRE(ready.take() == kConns);

    // Root's requests are answered at once meanwhile.
    auto t0 = std::chrono::steady_clock::now();
    UniqueFd s = must_connect(m);
    Answer st = round_trip(s.get(), request(proto::Op::status));
    CHECK(describe(st) == "reply " + ename(0));
    auto again = get(m.p("m"));
    CHECK(ename(again.error) == ename(0));
    must_pin(map.get(), m.p("m2"));
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took < std::chrono::seconds(2));

    // The closing thread's watchdog aborts the attacker's connection, and the daemon stops.
    CHECK(wait_for([&] { return m.log().find("aborted FUSE connection") != std::string::npos; },
                   15000));
    auto t1 = std::chrono::steady_clock::now();
    CHECK(m.stop() == 0);
    CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::seconds(10));
    INFO(m.log());
}

namespace {

// A child as `uid` (no capabilities) that opens connections until `want` are admitted or one is
// refused (each checked with a status request: the broker admits at accept), and holds them
// until it is killed.
struct Holder {
    pid_t pid = -1;
    std::uint32_t admitted = 0;
    int refusal = 0;  // the errno of the first refusal, 0 if none, -1 if it closed unanswered
    Holder() = default;
    Holder(Holder&& o) noexcept : pid(o.pid), admitted(o.admitted), refusal(o.refusal) {
        o.pid = -1;
    }
    ~Holder() {
        if (pid <= 0) return;
        kill(pid, SIGKILL);
        wait_status(pid, 10000);
    }
};

Holder hold_connections(const Mount& m, uid_t uid, std::uint32_t want) {
    Pipe out;
    Holder h;
    h.pid = fork();
    if (h.pid == 0) {
        if (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 ||
            setresuid(uid, uid, uid) != 0)
            _exit(10);
        std::vector<UniqueFd> held;
        int refusal = 0;
        while (held.size() < want && refusal == 0) {
            UniqueFd s = raw_connect(m.p(".bpffs.sock"));
            Answer a = s ? round_trip(s.get(), request(proto::Op::status)) : Answer{};
            if (a.kind == Answer::reply && a.rep.error == 0)
                held.push_back(std::move(s));
            else
                refusal = a.kind == Answer::reply ? a.rep.error : -1;
        }
        out.put(static_cast<std::uint32_t>(held.size()));
        out.put(static_cast<std::uint32_t>(refusal));
        pause();
        _exit(0);
    }
    out.wr.reset();
    h.admitted = out.take();
    h.refusal = static_cast<int>(out.take());
    return h;
}

}  // namespace

TEST_CASE("limits: no unprivileged uid, nor all of them together, locks out another uid or root",
          "[broker][kernel][attack][limits]") {
    // 64 connections in all, 8 per unprivileged uid; the last 64 / 16 = 4 are root's and the
    // owner's alone.
    KMount m("mode=0755,max_conns=64,max_conns_per_uid=8");
    auto map = must_map();
    must_pin(map.get(), m.p("m"));
    Holder a = hold_connections(m, kUser, 100);
    CHECK(a.admitted == 8);
    CHECK(ename(a.refusal) == ename(EUSERS));  // a clear refusal, not a reset
    {                                          // and bpffsctl says why to that uid
        TempDir bin;
        const std::string ctl = copy_for_others(BPFFSCTL_BIN, bin.path());
        const std::string mnt = m.path();
        int said = run_as(kUser, kUserGid, [&] {
            auto out = run_cmd({ctl, "status", mnt});
            bool why = out.out.find("too many are open (max_conns_per_uid") != std::string::npos;
            return out.exit_code == 1 && why ? 0 : 1;
        });
        CHECK(said == 0);
    }
    // Another uid still gets in, and root.
    Holder b = hold_connections(m, kOther, 1);
    CHECK(b.admitted == 1);
    CHECK(ename(get(m.p("m")).error) == ename(0));
    // Every unprivileged connection taken, by many uids: root still pins, gets and asks.
    std::vector<Holder> many;
    std::uint32_t held = a.admitted + b.admitted;
    for (uid_t u = 2000; held < 64; ++u) {
        many.push_back(hold_connections(m, u, 8));
        if (many.back().admitted == 0) break;
        held += many.back().admitted;
    }
    // The pool may count a few connections whose clients have just left (the broker learns of a
    // hangup asynchronously), never more than its size.
    CHECK(held <= 64 - 4);
    CHECK(held >= 64 - 4 - 6);
    CHECK(ename(many.back().refusal) == ename(EUSERS));
    CHECK(ename(get(m.p("m")).error) == ename(0));
    must_pin(map.get(), m.p("m2"));
    UniqueFd s = must_connect(m);
    Answer st = round_trip(s.get(), request(proto::Op::status));
    REQUIRE(describe(st) == "reply " + ename(0));
    REQUIRE(st.rep.status->service.has_value());
    const auto& service = *st.rep.status->service;
    CHECK(service.connections >= held);
    CHECK(service.refused >= 2);  // a's and the last uid's
    CHECK(service.max_conns == 64);
    CHECK(service.max_conns_per_uid == 8);
    auto log = m.log();
    CHECK(log.find("refused so far") != std::string::npos);
}

TEST_CASE("attack: a hundred thousand malformed messages from one user cost the log a few lines",
          "[broker][kernel][attack]") {
    KMount m("mode=0755");
    const auto lines = [&] {
        std::string log = m.log();
        return static_cast<std::size_t>(std::count(log.begin(), log.end(), '\n'));
    };
    const std::size_t before = lines();
    constexpr int kMessages = 100000;
    int sent = run_as(kUser, kUserGid, [&] {
        const std::vector<std::uint8_t> junk = header(0xdeadbeef, 1, 1, 0, 0);
        int n = 0;
        for (int i = 0; i < kMessages; ++i) {
            UniqueFd s = raw_connect(m.p(".bpffs.sock"));
            if (!s) continue;
            n += send_with_fds(s.get(), junk, std::vector<int>{}) == 0;
            receive(s.get());  // the broker closes it
        }
        return n == kMessages ? 0 : 1;
    });
    REQUIRE(sent == 0);
    // A line per doubling: 17 for 100,000 (and the daemon still answers).
    UniqueFd s = must_connect(m);
    CHECK(describe(round_trip(s.get(), request(proto::Op::status))) == "reply " + ename(0));
    const std::size_t added = lines() - before;
    INFO(m.log().substr(m.log().size() > 2000 ? m.log().size() - 2000 : 0));
    CHECK(added <= 20);
    CHECK(m.log().find("100000 malformed") == std::string::npos);  // 65536 is the last power
    CHECK(m.log().find("65536 malformed messages so far") != std::string::npos);
}

TEST_CASE(
    "attack: a hundred thousand refused mkdirs and pins from one user cost the log a few lines",
    "[broker][kernel][attack]") {
    // compat=linux: an unprivileged user may pin, and each pin of a root-less caller would be a
    // line; its share of the tree is 10 nodes, and every mkdir and pin past it is ENOSPC.
    KMount m("compat=linux,mode=01777,nr_inodes_per_uid=10");
    auto map = must_map("flood");
    const auto lines = [&] {
        std::string log = m.log();
        return static_cast<std::size_t>(std::count(log.begin(), log.end(), '\n'));
    };
    const std::size_t before = lines();
    constexpr int kTries = 100000;
    int r = run_as(kUser, kUserGid, [&] {
        for (int i = 0; i < 10; ++i) {
            if (bpffs_obj_pin(map.get(), m.p("p" + std::to_string(i)).c_str()) != 0) return 1;
        }
        for (int i = 0; i < kTries; ++i) {
            std::string p = m.p("x" + std::to_string(i));
            if (mkdir(p.c_str(), 0755) == 0 || errno != ENOSPC) return 2;
        }
        for (int i = 0; i < 1000; ++i) {
            if (bpffs_obj_pin(map.get(), m.p("y").c_str()) == 0 || errno != ENOSPC) return 3;
        }
        return 0;
    });
    REQUIRE(r == 0);
    // A line per doubling: 17 for 100,000 mkdirs, and none per pin of an unprivileged user.
    const std::size_t added = lines() - before;
    INFO(m.log().substr(m.log().size() > 2000 ? m.log().size() - 2000 : 0));
    CHECK(added <= 40);
    CHECK(m.log().find("65536 request(s) failed so far") != std::string::npos);
    CHECK(m.log().find("pinned map") == std::string::npos);
    UniqueFd s = must_connect(m);
    CHECK(describe(round_trip(s.get(), request(proto::Op::status))) == "reply " + ename(0));
}

TEST_CASE(
    "attack: 64 clients pinning, getting, listing and unlinking at once: no error, no fd "
    "left behind",
    "[broker][kernel][attack][stress]") {
    KMount m("compat=linux");
    for (int d = 0; d < 8; ++d) must_mkdir(m.p("d" + std::to_string(d)));
    auto map = must_map();
    const std::uint32_t id = kernel_id(map.get());
    const pid_t worker = worker_of(m.pid());
    const int daemon_fds = settled_fd_count(worker);
    const int own_fds = count_fds(getpid());
    constexpr int kClients = 64;
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::seconds(BPFFS_STRESS_SECONDS);
    std::vector<std::string> errors(kClients);
    std::vector<int> rounds(kClients);
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c) {
        clients.emplace_back([&, c] {
            const std::string dir = m.p("d" + std::to_string(c % 8));
            auto fail = [&](const std::string& what, int e) {
                if (errors[c].size() < 400) errors[c] += what + ": " + ename(e) + "\n";
            };
            for (int k = 0; std::chrono::steady_clock::now() < until; ++k) {
                const std::string path = dir + "/c" + std::to_string(c) + "_" + std::to_string(k);
                if (int e = pin(map.get(), path); e != 0) fail("pin " + path, e);
                auto g = get(path);
                if (g.error != 0) fail("get " + path, g.error);
                if (g.fd && kernel_id(g.fd.get()) != id) fail("id of " + path, EBADF);
                if (tree(dir).count("c" + std::to_string(c) + "_" + std::to_string(k)) == 0)
                    fail("listing " + dir, ENOENT);
                if (unlink(path.c_str()) != 0) fail("unlink " + path, errno);
                ++rounds[c];
            }
        });
    }
    for (auto& t : clients) t.join();
    int total = 0;
    for (int c = 0; c < kClients; ++c) {
        INFO("client " << c);
        CHECK(errors[c] == "");
        CHECK(rounds[c] > 0);
        total += rounds[c];
    }
    INFO("rounds: " << total);
    for (int d = 0; d < 8; ++d) CHECK(tree(m.p("d" + std::to_string(d))).empty());
    CHECK(settled_fd_count(worker) == daemon_fds);
    CHECK(count_fds(getpid()) == own_fds);
    check_map_untouched(map.get(), id);
}
