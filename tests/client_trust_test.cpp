// SPDX-License-Identifier: GPL-2.0-or-later
// Tests of the client's trust check (issue 15, docs/protocol.md "What the client checks"): the
// client sends nothing to, and takes no fd from, a socket named .bpffs.sock that is not served
// by a trusted bpffs-fuse daemon. Needs root (mounting, setresuid, CAP_BPF).
//
// The other user is uid 65534 (nobody). Its socket is an Impostor: a forked child that drops to
// that uid, listens on the path, answers every request as a willing broker would (pin: done;
// get: a real map fd), and reports on a pipe each connection it accepts and each message it
// reads, with the number of fds that came along. So "nothing left the process" is checked on
// the listener's side. Its FUSE mount is a MinFuse made as fusermount3 would make one for that
// user (mount_fixture.hpp), so that no /etc/fuse.conf change (user_allow_other) is needed.
//
// The children are forked while this process runs no other thread.
#include "tests/bpf_test_util.hpp"
#include "tests/kernel_helpers.hpp"
#include "tests/mount_fixture.hpp"

#include "common/protocol.hpp"
#include "common/scm.hpp"
#include "common/unique_fd.hpp"

#include <bpffs/bpffs.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpffs/bpffs.hpp>
#include <catch2/catch.hpp>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using namespace bpffs;
using namespace bpffs::test;
namespace proto = bpffs::protocol;

namespace {

constexpr uid_t kOther = 65534;

std::string make_file(const std::string& path) {
    UniqueFd f(open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (!f) throw std::system_error(errno, std::generic_category(), "create " + path);
    return path;
}

// The forked listener (see the top of the file). Lines on the report pipe: "ready", "accept",
// "msg op=N fds=M".
class Impostor {
public:
    Impostor(const std::string& path, int map_fd, uid_t uid = kOther) {
        int rep[2], stop[2];
        if (pipe2(rep, O_CLOEXEC) != 0 || pipe2(stop, O_CLOEXEC) != 0) {
            throw std::runtime_error("impostor: pipe");
        }
        report_.reset(rep[0]);
        UniqueFd rep_w(rep[1]);
        stop_.reset(stop[1]);
        UniqueFd stop_r(stop[0]);
        pid_ = fork();
        if (pid_ == 0) {
            stop_.reset();  // or the child's own copy would keep the stop pipe open
            report_.reset();
            _exit(serve(path, map_fd, uid, rep_w.get(), stop_r.get()));
        }
        if (pid_ < 0) throw std::runtime_error("impostor: fork");
        rep_w.reset();
        std::string first = read_line(10000);
        if (first != "ready") {
            stop_all();
            throw std::runtime_error("impostor did not listen: " + first);
        }
    }
    ~Impostor() { stop_all(); }
    Impostor(const Impostor&) = delete;
    Impostor& operator=(const Impostor&) = delete;

    // Stops the listener (its socket name stays) and returns every line it reported.
    std::vector<std::string> stop() {
        stop_all();
        std::vector<std::string> out;
        for (std::string l = read_line(0); !l.empty(); l = read_line(0)) out.push_back(l);
        return out;
    }

private:
    static int serve(const std::string& path, int map_fd, uid_t uid, int rep, int stop) {
        if (uid != 0 && (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 ||
                         setresuid(uid, uid, uid) != 0)) {
            return 10;
        }
        auto say = [rep](const std::string& s) {
            std::string l = s + "\n";
            return write(rep, l.data(), l.size()) == static_cast<ssize_t>(l.size());
        };
        umask(0);  // a socket node everyone may connect to (write permission), as the broker's
        UniqueFd ls(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        if (!ls || path.size() >= sizeof a.sun_path) return 11;
        std::memcpy(a.sun_path, path.data(), path.size());
        if (bind(ls.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            say("bind: " + std::string(std::strerror(errno)));
            return 12;
        }
        if (listen(ls.get(), 16) != 0 || !say("ready")) return 13;
        std::vector<UniqueFd> conns;
        while (true) {
            std::vector<pollfd> p{{stop, POLLIN, 0}, {ls.get(), POLLIN, 0}};
            for (auto& c : conns) p.push_back({c.get(), POLLIN, 0});
            if (poll(p.data(), p.size(), 30000) <= 0) return 14;
            if (p[0].revents != 0) return 0;
            if (p[1].revents != 0) {
                conns.emplace_back(accept4(ls.get(), nullptr, nullptr, SOCK_CLOEXEC));
                say("accept");
            }
            for (std::size_t i = 2; i < p.size(); ++i) {
                if (p[i].revents == 0) continue;
                int s = p[i].fd;
                std::array<std::uint8_t, proto::kMaxMessage> buf;
                Received got = recv_with_fds(s, buf, 8);
                std::vector<UniqueFd>& fds = got.fds;
                ssize_t n = got.error != 0 ? -1 : static_cast<ssize_t>(got.size);
                if (n <= 0) {
                    shutdown(s, SHUT_RDWR);  // EOF: polled no more once it is read again
                    conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(i - 2));
                    break;  // the poll set changed
                }
                auto req = proto::decode_request(std::span(buf.data(), static_cast<size_t>(n)));
                int op = req ? static_cast<int>(req->op) : 0;
                say("msg op=" + std::to_string(op) + " fds=" + std::to_string(fds.size()));
                if (!req) continue;
                proto::Reply r;
                r.op = req->op;
                r.error = 0;
                std::vector<int> out;
                if (req->op == proto::Op::get) {
                    r.get = proto::GetReply{proto::ObjKind::map, 0};
                    out.push_back(map_fd);
                }
                send_with_fds(s, proto::encode(r), out);
            }
        }
    }

    // One line from the report pipe, waiting at most timeout_ms ("" at EOF or timeout).
    std::string read_line(int timeout_ms) {
        std::string l;
        while (true) {
            pollfd p{report_.get(), POLLIN, 0};
            if (poll(&p, 1, timeout_ms) != 1) return l;
            char c;
            if (read(report_.get(), &c, 1) != 1 || c == '\n') return l;
            l += c;
        }
    }

    void stop_all() {
        stop_.reset();  // the child's poll sees the pipe's end
        if (pid_ <= 0) return;
        int status;
        bool done = wait_for([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, 10000);
        if (!done) {
            kill(pid_, SIGKILL);
            waitpid(pid_, &status, 0);
        }
        pid_ = -1;
    }

    UniqueFd report_;
    UniqueFd stop_;
    pid_t pid_ = -1;
};

std::vector<std::string> messages(const std::vector<std::string>& report) {
    std::vector<std::string> out;
    for (const auto& l : report) {
        if (l.rfind("msg", 0) == 0) out.push_back(l);
    }
    return out;
}

bpffs_opts trusting(uid_t uid) {
    bpffs_opts o{};
    o.sz = sizeof o;
    o.trust_uid = uid;
    return o;
}

// A plain directory of the other user, in /tmp.
struct OtherUsersDir {
    TempDir dir;
    OtherUsersDir() {
        if (chown(dir.path().c_str(), kOther, kOther) != 0) {
            throw std::system_error(errno, std::generic_category(), "chown");
        }
    }
};

std::string peer_message(const std::string& dir, const std::string& why) {
    return dir + "/.bpffs.sock is not served by a trusted bpffs-fuse daemon (" + why + ")";
}

}  // namespace

TEST_CASE("trust: another user's socket in a plain directory gets no pin and hands out no fd",
          "[client][trust][kernel]") {
    OtherUsersDir d;
    auto map = must_map();
    std::string obj = make_file(d.dir.p("obj"));
    Impostor imp(d.dir.p(".bpffs.sock"), map.get());
    int fds_before = count_fds(getpid());
    CHECK(ename(lib_errno(bpffs_obj_pin(map.get(), d.dir.p("x").c_str()))) == ename(EPERM));
    CHECK(ename(lib_errno(bpffs_obj_get(obj.c_str()))) == ename(EPERM));
    bpffs_conn* c = nullptr;
    CHECK(ename(lib_errno(bpffs_conn_open(d.dir.path().c_str(), &c))) == ename(EPERM));
    CHECK(c == nullptr);
    // Trusting the uid does not make a plain directory a bpffs-fuse one.
    auto opts = trusting(kOther);
    CHECK(ename(lib_errno(bpffs_obj_get_opts(obj.c_str(), &opts))) == ename(EPERM));
    CHECK(count_fds(getpid()) == fds_before);
    // bpffsctl says why.
    auto r = run_cmd(
        {BPFFSCTL_BIN, "pin", "--map-id", std::to_string(kernel_id(map.get())), d.dir.p("x")});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains(peer_message(d.dir.path(), "not on a FUSE mount")));
    // Not even a connection was made.
    CHECK(imp.stop().empty());
}

TEST_CASE(
    "trust: on a FUSE mount another user made, that user's socket gets nothing, "
    "trusting its uid works",
    "[client][trust][kernel]") {
    auto map = must_map();
    MinFuse fs(BPFFS_MINFUSE_BIN, kOther, kOther);
    std::string obj = make_file(fs.p("obj"));
    {
        Impostor imp(fs.p(".bpffs.sock"), map.get());
        int fds_before = count_fds(getpid());
        CHECK(ename(lib_errno(bpffs_obj_pin(map.get(), fs.p("x").c_str()))) == ename(EPERM));
        CHECK(ename(lib_errno(bpffs_obj_get(obj.c_str()))) == ename(EPERM));
        bpffs_conn* c = nullptr;
        CHECK(ename(lib_errno(bpffs_conn_open(fs.path().c_str(), &c))) == ename(EPERM));
        CHECK(c == nullptr);
        CHECK(count_fds(getpid()) == fds_before);
        // An unprivileged caller of a third uid refuses it too.
        CHECK(ename(run_as(1001, 1001, [&] { return lib_errno(bpffs_obj_get(obj.c_str())); })) ==
              ename(EPERM));
        // bpffsctl: pin, get, status, remount, upgrade.
        std::string msg = peer_message(fs.path(), "peer uid 65534");
        std::string id = std::to_string(kernel_id(map.get()));
        for (const auto& argv : std::vector<std::vector<std::string>>{
                 {BPFFSCTL_BIN, "pin", "--map-id", id, fs.p("x")},
                 {BPFFSCTL_BIN, "get", obj},
                 {BPFFSCTL_BIN, "exec", obj, "--", "/bin/true"},
                 {BPFFSCTL_BIN, "status", fs.path()},
                 {BPFFSCTL_BIN, "remount", fs.path(), "-o", "mode=0700"},
                 {BPFFSCTL_BIN, "upgrade", fs.path()}}) {
            INFO(argv[1]);
            auto r = run_cmd(argv);
            CHECK(r.exit_code == 1);
            CHECK_THAT(r.out, Catch::Contains(msg));
        }
        // The listener was connected to and left: no message, no fd.
        auto report = imp.stop();
        CHECK(messages(report).empty());
    }
    REQUIRE(unlink(fs.p(".bpffs.sock").c_str()) == 0);
    Impostor imp(fs.p(".bpffs.sock"), map.get());
    auto opts = trusting(kOther);
    int fd = bpffs_obj_get_opts(obj.c_str(), &opts);
    INFO("bpffs_obj_get_opts: " << ename(lib_errno(fd)));
    REQUIRE(fd >= 0);
    UniqueFd got(fd);
    CHECK(kernel_id(got.get()) == kernel_id(map.get()));
    CHECK(ename(lib_errno(bpffs_obj_pin_opts(map.get(), fs.p("y").c_str(), &opts))) == ename(0));
    {
        bpffs::Connection conn(fs.path(), &opts);
        CHECK(kernel_id(conn.obj_get(obj).get()) == kernel_id(map.get()));
    }
    auto r = run_cmd({BPFFSCTL_BIN, "get", "--trust-uid", "65534", obj});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("type: map"));
    CHECK(messages(imp.stop()) == std::vector<std::string>{"msg op=2 fds=1", "msg op=1 fds=2",
                                                           "msg op=2 fds=1", "msg op=2 fds=1"});
}

TEST_CASE("trust: a rootless mount served by the caller's own uid is trusted",
          "[client][trust][kernel]") {
    auto map = must_map();
    MinFuse fs(BPFFS_MINFUSE_BIN, kOther, kOther);
    std::string obj = make_file(fs.p("obj"));
    Impostor imp(fs.p(".bpffs.sock"), map.get());
    std::uint32_t id = kernel_id(map.get());
    int rc = run_as(kOther, kOther, [&] {
        int fd = bpffs_obj_get(obj.c_str());
        if (fd < 0) return errno;
        UniqueFd owned(fd);
        return kernel_id(fd) == id ? 0 : 200;
    });
    CHECK(ename(rc) == ename(0));
    CHECK(messages(imp.stop()) == std::vector<std::string>{"msg op=2 fds=1"});
}

TEST_CASE("trust: a kept connection checks the socket again when it reconnects",
          "[client][trust][conn][kernel]") {
    auto map = must_map();
    MinFuse fs(BPFFS_MINFUSE_BIN, kOther, kOther);
    std::string obj = make_file(fs.p("obj"));
    auto root = std::make_unique<Impostor>(fs.p(".bpffs.sock"), map.get(), 0);
    bpffs_conn* c = nullptr;
    REQUIRE(ename(lib_errno(bpffs_conn_open(fs.path().c_str(), &c))) == ename(0));
    std::unique_ptr<bpffs_conn, void (*)(bpffs_conn*)> owner(c, bpffs_conn_close);
    {
        UniqueFd fd(bpffs_conn_obj_get(c, obj.c_str(), 0));
        CHECK(kernel_id(fd.get()) == kernel_id(map.get()));
    }
    CHECK(messages(root->stop()) == std::vector<std::string>{"msg op=2 fds=1"});
    root.reset();
    // The root listener is gone; another user binds the name.
    REQUIRE(unlink(fs.p(".bpffs.sock").c_str()) == 0);
    Impostor imp(fs.p(".bpffs.sock"), map.get());
    int fds_before = count_fds(getpid());
    CHECK(ename(lib_errno(bpffs_conn_obj_get(c, obj.c_str(), 0))) == ename(EPERM));
    CHECK(ename(lib_errno(bpffs_conn_obj_pin(c, map.get(), fs.p("z").c_str()))) == ename(EPERM));
    CHECK(count_fds(getpid()) == fds_before - 1);  // the broken kept socket is closed, no fd came
    CHECK(messages(imp.stop()).empty());
}

TEST_CASE("trust: a .bpffs.sock symlink to a real broker is refused, the broker itself works",
          "[client][trust][kernel]") {
    Mount m("mode=0755");
    auto map = must_map();
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("m").c_str()))) == ename(0));
    OtherUsersDir d;
    std::string obj = make_file(d.dir.p("obj"));
    REQUIRE(symlink(m.p(".bpffs.sock").c_str(), d.dir.p(".bpffs.sock").c_str()) == 0);
    CHECK(ename(lib_errno(bpffs_obj_get(obj.c_str()))) == ename(EPERM));
    CHECK(ename(lib_errno(bpffs_obj_pin(map.get(), d.dir.p("x").c_str()))) == ename(EPERM));
    auto r = run_cmd({BPFFSCTL_BIN, "status", d.dir.path()});
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::Contains(
                          peer_message(d.dir.path(), "not a socket on the directory's own mount")));
    // The daemon's mount, as root and as another user (write permission: 0600 root's, so the
    // other user's get is EACCES from the broker, which it reached).
    UniqueFd fd(bpffs_obj_get(m.p("m").c_str()));
    CHECK(kernel_id(fd.get()) == kernel_id(map.get()));
    CHECK(ename(run_as(1001, 1001, [&] { return lib_errno(bpffs_obj_get(m.p("m").c_str())); })) ==
          ename(EACCES));
    REQUIRE(chmod(m.p("m").c_str(), 0666) == 0);
    CHECK(ename(run_as(1001, 1001, [&] { return lib_errno(bpffs_obj_get(m.p("m").c_str())); })) ==
          ename(0));
    r = run_cmd({BPFFSCTL_BIN, "status", m.path()});
    CHECK(r.exit_code == 0);
}

TEST_CASE(
    "trust: under the preload shim, another user's socket is EPERM until "
    "$BPFFS_TRUST_UID names it",
    "[client][trust][preload][kernel]") {
    auto map = must_map();
    MinFuse fs(BPFFS_MINFUSE_BIN, kOther, kOther);
    std::string obj = make_file(fs.p("obj"));
    Impostor imp(fs.p(".bpffs.sock"), map.get());
    const std::string preload = std::string("LD_PRELOAD=") + BPFFS_PRELOAD_LIB;
    // The probe makes the bpf(2) calls an unmodified program makes (preload/tests/probe.c).
    auto r = run_cmd({"/usr/bin/env", preload, PRELOAD_PROBE_BIN, "get", obj});
    CHECK(r.out == "EPERM\n");
    r = run_cmd({"/usr/bin/env", preload, PRELOAD_PROBE_BIN, "pin", fs.p("x")});
    CHECK(r.out == "EPERM\n");
    r = run_cmd({"/usr/bin/env", preload, "BPFFS_TRUST_UID=1001", PRELOAD_PROBE_BIN, "get", obj});
    CHECK(r.out == "EPERM\n");
    r = run_cmd({"/usr/bin/env", preload, "BPFFS_TRUST_UID=65534x", PRELOAD_PROBE_BIN, "get", obj});
    CHECK(r.out == "EPERM\n");
    CHECK(messages(imp.stop()).empty());
    REQUIRE(unlink(fs.p(".bpffs.sock").c_str()) == 0);
    Impostor trusted(fs.p(".bpffs.sock"), map.get());
    r = run_cmd({"/usr/bin/env", preload, "BPFFS_TRUST_UID=65534", PRELOAD_PROBE_BIN, "get", obj});
    CHECK(r.out == "ok id=" + std::to_string(kernel_id(map.get())) + "\n");
    // bpffsctl run --trust-uid hands it on.
    r = run_cmd({"/usr/bin/env", std::string("BPFFS_PRELOAD=") + BPFFS_PRELOAD_LIB, BPFFSCTL_BIN,
                 "run", "--trust-uid", "65534", "--", PRELOAD_PROBE_BIN, "get", obj});
    CHECK(r.out == "ok id=" + std::to_string(kernel_id(map.get())) + "\n");
    CHECK(messages(trusted.stop()) == std::vector<std::string>{"msg op=2 fds=1", "msg op=2 fds=1"});
}

TEST_CASE("trust: bpffs_opts with a bad size is EINVAL", "[client][trust]") {
    bpffs_opts o{};
    o.sz = 1;
    CHECK(ename(lib_errno(bpffs_obj_get_opts("/nonexistent", &o))) == ename(EINVAL));
    struct {
        bpffs_opts opts;
        std::uint64_t more;
    } bigger{};
    bigger.opts.sz = sizeof bigger;
    bigger.more = 1;  // a field this version does not know, set
    CHECK(ename(lib_errno(bpffs_obj_get_opts("/nonexistent", &bigger.opts))) == ename(EINVAL));
    bigger.more = 0;
    CHECK(ename(lib_errno(bpffs_obj_get_opts("/nonexistent", &bigger.opts))) == ename(ENOENT));
}
