// SPDX-License-Identifier: GPL-2.0-or-later
// Tests of libbpffs's kept connection (bpffs_conn, bpffs::Connection), of the client's retries
// when a connection breaks (the daemon restarting its worker), and of the kernel's readdir
// cache, which a pin through the broker must invalidate. Needs root (mounting, CAP_BPF).
//
// The retry tests talk to a FakeBroker: a SOCK_SEQPACKET socket bound as "<dir>/.bpffs.sock" in
// the root of a FUSE mount (bench/bpffs-bench-minfuse, MinFuse: the client trusts no socket
// elsewhere), which the client finds through the path as it finds a real broker, served by a
// thread that runs one scripted handler per accepted connection (close before or after
// reading, answer).
// Handlers record what they saw; the test thread checks it (Catch2's macros stay on the test
// thread). Tests that could raise SIGPIPE run their client in a forked child with the default
// SIGPIPE action, so a signal would show as a dead child.
//
// The readdir tests tell a listing served by the kernel's cache from one that reached the
// daemon by the daemon's debug log, which has one line per READDIR(PLUS) request.
#include "tests/bpf_test_util.hpp"
#include "tests/kernel_helpers.hpp"
#include "tests/mount_fixture.hpp"
#include "tests/result_helpers.hpp"
#include "tests/syscall_helpers.hpp"

#include "client/client.hpp"
#include "common/protocol.hpp"
#include "common/scm.hpp"
#include "common/unique_fd.hpp"

#include <bpffs/bpffs.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpffs/bpffs.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
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

// The names in a directory, "." and ".." left out; a fresh open each time, as ls does.
std::set<std::string> list(const std::string& dir) {
    std::set<std::string> out;
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) throw std::system_error(errno, std::generic_category(), "opendir " + dir);
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") out.insert(n);
    }
    closedir(d);
    return out;
}

// How many READDIR and READDIRPLUS requests the daemon has logged (--log-level debug).
std::size_t readdir_requests(const Mount& m) {
    std::string log = m.log();
    std::size_t n = 0;
    for (auto at = log.find("op=readdir"); at != std::string::npos;
         at = log.find("op=readdir", at + 1)) {
        ++n;
    }
    return n;
}

// The broker's open client connections, wherever in the daemon's process tree it runs: the
// daemon's SOCK_SEQPACKET sockets that carry the address of the broker's socket (accepted
// sockets show their listener's path in /proc/net/unix) and are not listening. Other
// connected sockets (between a supervisor and its worker) have no address.
int broker_connections(const Mount& m) {
    // /proc/net/unix: Num RefCount Protocol Flags Type St Inode [Path]; Flags 00010000 is
    // __SO_ACCEPTCON (listening), Type 0005 SOCK_SEQPACKET.
    std::set<std::string> accepted;
    std::ifstream in("/proc/net/unix");
    std::string line;
    std::getline(in, line);  // the header
    std::string suffix(proto::kSocketName);
    suffix.insert(suffix.begin(), '/');
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string num, refs, protocol, flags, type, st, ino, path;
        if (!(ls >> num >> refs >> protocol >> flags >> type >> st >> ino >> path)) continue;
        bool ours = path.size() >= suffix.size() &&
                    path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
        if (type == "0005" && flags != "00010000" && ours) accepted.insert("socket:[" + ino + "]");
    }
    int n = 0;
    for (pid_t p : process_tree(m.pid())) {
        std::string fd_dir = "/proc/" + std::to_string(p) + "/fd";
        DIR* d = opendir(fd_dir.c_str());
        if (d == nullptr) continue;
        while (dirent* e = readdir(d)) {
            char link[64];
            ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
            if (len > 0 && accepted.count(std::string(link, static_cast<std::size_t>(len)))) ++n;
        }
        closedir(d);
    }
    return n;
}

// Sets SIGPIPE to its default action (a forked child's client call would die of it).
void default_sigpipe() {
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &sa, nullptr);
}

// --- a scripted broker -----------------------------------------------------------------------

struct Incoming {
    proto::Request req;
    std::vector<UniqueFd> fds;
};

// Reads one request (10 s at most); false on EOF, error or an undecodable message.
bool read_request(int sock, Incoming* in) {
    pollfd p{sock, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) return false;
    std::array<std::uint8_t, proto::kMaxMessage> buf;
    Received r = recv_with_fds(sock, buf, proto::kMaxFds);
    if (r.error != 0 || r.size == 0) return false;
    auto req = proto::decode_request(std::span(buf.data(), r.size));
    if (!req) return false;
    in->req = std::move(*req);
    in->fds = std::move(r.fds);
    return true;
}

void send_reply(int sock, proto::Op op, int error, int fd = -1, std::uint32_t id = 0) {
    proto::Reply rep;
    rep.op = op;
    rep.error = error;
    if (op == proto::Op::get && error == 0) rep.get = proto::GetReply{proto::ObjKind::map, id};
    auto msg = proto::encode(rep);
    std::array<int, 1> one{fd};
    send_with_fds(sock, msg, fd >= 0 ? std::span<const int>(one) : std::span<const int>());
}

// A broker at "<dir>/.bpffs.sock" (dir: the root of a fresh minfuse mount, run as root) that hands
// its i-th accepted connection to script[i] and closes any further connection at once; a connection
// is closed when its handler returns. start() binds, sets the script and listens (unless told not
// to: a connect is then refused until listen()); stop() takes the broker away and leaves the dir.
class FakeBroker {
public:
    using Handler = std::function<void(int sock)>;
    FakeBroker() : stop_(eventfd(0, EFD_CLOEXEC)) {
        sock_path_ = dir_.p(std::string(proto::kSocketName));
    }
    ~FakeBroker() { stop(); }
    FakeBroker(const FakeBroker&) = delete;
    FakeBroker& operator=(const FakeBroker&) = delete;

    void start(std::vector<Handler> script, bool listen_now = true) {
        script_ = std::move(script);
        listen_fd_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        if (!listen_fd_ || sock_path_.size() >= sizeof a.sun_path) {
            throw std::runtime_error("fake broker: socket");
        }
        std::memcpy(a.sun_path, sock_path_.data(), sock_path_.size());
        if (bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            throw std::system_error(errno, std::generic_category(), "fake broker: bind");
        }
        if (listen_now) listen();
    }
    // Starts listening, and the thread that serves. Returns once that thread runs: tests fork
    // right after, and a thread that is still starting may hold an allocator lock the child
    // would inherit (GCC 12's libasan has no fork handler; see Watchdog in persist_test.cpp).
    void listen() {
        if (::listen(listen_fd_.get(), 16) != 0) {
            throw std::system_error(errno, std::generic_category(), "fake broker: listen");
        }
        std::unique_lock l(mu_);
        thread_ = std::thread([this] {
            {
                std::lock_guard started(mu_);
                running_ = true;
            }
            running_cv_.notify_all();
            serve();
        });
        running_cv_.wait(l, [this] { return running_; });
    }
    // Stops serving and closes the listening socket; `unlink_socket`: removes its name too
    // (connect: ENOENT), else leaves it (connect: ECONNREFUSED).
    void stop(bool unlink_socket = true) {
        if (thread_.joinable()) {
            std::uint64_t one = 1;
            (void)!write(stop_.get(), &one, sizeof one);
            thread_.join();
        }
        listen_fd_.reset();
        if (unlink_socket) unlink(sock_path_.c_str());
    }

    const std::string& dir() const { return dir_.path(); }
    std::string p(const std::string& rel) const { return dir_.p(rel); }
    int accepted() const { return accepted_.load(); }
    // What the handlers noted ("pin x", "get", ...), in order.
    std::vector<std::string> seen() const {
        std::lock_guard lock(mu_);
        return seen_;
    }
    void note(const std::string& s) {
        std::lock_guard lock(mu_);
        seen_.push_back(s);
    }

private:
    void serve() {
        while (true) {
            std::array<pollfd, 2> p{pollfd{listen_fd_.get(), POLLIN, 0},
                                    pollfd{stop_.get(), POLLIN, 0}};
            if (poll(p.data(), p.size(), -1) < 0) {
                if (errno == EINTR) continue;
                return;
            }
            if (p[1].revents != 0) return;
            if (p[0].revents == 0) continue;
            UniqueFd s(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!s) continue;
            std::size_t i = static_cast<std::size_t>(accepted_.fetch_add(1));
            if (i < script_.size()) script_[i](s.get());
        }
    }

    MinFuse dir_{BPFFS_MINFUSE_BIN};
    std::string sock_path_;
    std::vector<Handler> script_;
    UniqueFd listen_fd_;
    UniqueFd stop_;
    std::atomic<int> accepted_{0};
    mutable std::mutex mu_;
    std::vector<std::string> seen_;  // guarded by mu_
    bool running_ = false;           // guarded by mu_
    std::condition_variable running_cv_;
    std::thread thread_;
};

std::string describe(const Incoming& in) {
    switch (in.req.op) {
        case proto::Op::pin:
            return "pin " + in.req.name;
        case proto::Op::get:
            return "get";
        case proto::Op::status:
            return "status";
        case proto::Op::remount:
            return "remount";
        default:
            return "op " + std::to_string(static_cast<int>(in.req.op));
    }
}

// Handlers. Each notes every request it reads.
FakeBroker::Handler close_unread() {
    return [](int) {};
}

FakeBroker::Handler close_after_reading(FakeBroker& fb) {
    return [&fb](int s) {
        Incoming in;
        if (read_request(s, &in)) fb.note(describe(in));
    };
}

// Answers every get with `map` (and its id), every pin with `pin_error`, until the client
// leaves; after `max` requests it closes without answering the next one.
FakeBroker::Handler answer(FakeBroker& fb, int map, int pin_error = 0, int max = 1 << 30) {
    return [&fb, map, pin_error, max](int s) {
        for (int n = 0;; ++n) {
            Incoming in;
            if (!read_request(s, &in)) return;
            fb.note(describe(in));
            if (n >= max) return;
            if (in.req.op == proto::Op::get)
                send_reply(s, in.req.op, 0, map, kernel_id(map));
            else
                send_reply(s, in.req.op, in.req.op == proto::Op::pin ? pin_error : 0);
        }
    };
}

// A regular file in the fake broker's directory, to get (the client opens it O_PATH).
std::string make_file(const FakeBroker& fb, const std::string& name) {
    std::string path = fb.p(name);
    UniqueFd f(open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (!f) throw std::system_error(errno, std::generic_category(), "create " + path);
    return path;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Retries of the one-shot calls

TEST_CASE("retry: a get whose connection breaks before the reply is sent again and answered",
          "[client][retry]") {
    auto map = must_map();
    FakeBroker fb;
    // Closed with the request unread (ECONNRESET), closed after reading it (EOF), answered.
    fb.start({close_unread(), close_after_reading(fb), answer(fb, map.get())});
    std::string path = make_file(fb, "obj");
    int fd = bpffs_obj_get(path.c_str());
    INFO("bpffs_obj_get: " << ename(lib_errno(fd)));
    REQUIRE(fd >= 0);
    UniqueFd got(fd);
    CHECK(kernel_id(got.get()) == kernel_id(map.get()));
    CHECK(fb.accepted() == 3);
    CHECK(fb.seen() == std::vector<std::string>{"get", "get"});
}

TEST_CASE("retry: a pin whose reply was lost is a success when the retry finds the same object",
          "[client][retry]") {
    auto map = must_map();
    FakeBroker fb;
    std::string target = fb.p("m");
    // Attempt 1: the "broker" creates the name and dies before replying. Attempt 2: EEXIST, then
    // the client's get of the name returns the very map.
    auto pin_and_die = [&fb, &target](int s) {
        close_after_reading(fb)(s);
        UniqueFd f(open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    };
    fb.start({pin_and_die, answer(fb, map.get(), EEXIST)});
    CHECK(ename(lib_errno(bpffs_obj_pin(map.get(), target.c_str()))) == ename(0));
    CHECK(fb.seen() == std::vector<std::string>{"pin m", "pin m", "get"});
}

TEST_CASE("retry: a resent pin answered EEXIST for another object under the name is EEXIST",
          "[client][retry]") {
    auto map = must_map();
    auto other = must_map("bpffs_other");
    FakeBroker fb;
    std::string target = fb.p("m");
    auto pin_and_die = [&fb, &target](int s) {
        close_after_reading(fb)(s);
        UniqueFd f(open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    };
    fb.start({pin_and_die, answer(fb, other.get(), EEXIST)});
    CHECK(ename(lib_errno(bpffs_obj_pin(map.get(), target.c_str()))) == ename(EEXIST));
    CHECK(fb.seen() == std::vector<std::string>{"pin m", "pin m", "get"});
}

TEST_CASE("retry: a pin refused EEXIST at its first attempt is EEXIST without a get",
          "[client][retry]") {
    auto map = must_map();
    FakeBroker fb;
    fb.start({answer(fb, map.get(), EEXIST)});
    CHECK(ename(lib_errno(bpffs_obj_pin(map.get(), fb.p("m").c_str()))) == ename(EEXIST));
    CHECK(fb.seen() == std::vector<std::string>{"pin m"});
    CHECK(fb.accepted() == 1);
}

TEST_CASE("retry: a refused connect (a worker not listening yet) is tried again",
          "[client][retry]") {
    auto map = must_map();
    FakeBroker fb;
    fb.start({answer(fb, map.get())}, /*listen_now=*/false);
    std::string path = make_file(fb, "obj");
    UniqueFd node(open(path.c_str(), O_PATH | O_CLOEXEC));
    REQUIRE(node);
    // The library's own policy, with a hook that starts listening at the first retry.
    client::RetryPolicy policy;
    std::vector<int> retried;
    policy.before_retry = [&](int e) {
        retried.push_back(e);
        fb.listen();
    };
    client::Channel ch(fb.dir(), -1, policy);
    std::array<int, 1> fds{node.get()};
    auto r = ch.call(proto::Request{proto::Op::get, {}}, fds);
    REQUIRE(r);
    CHECK(r->resp.reply.error == 0);
    CHECK(kernel_id(r->resp.fd.get()) == kernel_id(map.get()));
    CHECK_FALSE(r->maybe_done_before);
    CHECK(retried == std::vector<int>{ECONNREFUSED});
    CHECK(fb.seen() == std::vector<std::string>{"get"});
}

TEST_CASE("retry: a broker that keeps closing makes get fail with the error, not SIGPIPE",
          "[client][retry]") {
    FakeBroker fb;
    fb.start({});  // closes every connection unread
    std::string path = make_file(fb, "obj");
    int rc = run_child([&] {
        default_sigpipe();
        return lib_errno(bpffs_obj_get(path.c_str()));
    });
    INFO("child: " << (rc < 0 ? "killed" : ename(rc)));
    CHECK((rc == ECONNRESET || rc == EPIPE));
    CHECK(fb.accepted() > 1);
}

// ---------------------------------------------------------------------------------------------
// The kept connection against the scripted broker

TEST_CASE("conn: a kept connection that breaks is reconnected and the request sent again",
          "[client][conn][retry]") {
    auto map = must_map();
    FakeBroker fb;
    // Connection 1 answers one get and drops the second unanswered; connection 2 answers.
    fb.start({answer(fb, map.get(), 0, 1), answer(fb, map.get())});
    std::string path = make_file(fb, "obj");
    bpffs_conn* c = nullptr;
    REQUIRE(ename(lib_errno(bpffs_conn_open(fb.dir().c_str(), &c))) == ename(0));
    REQUIRE(c != nullptr);
    for (int i = 0; i < 3; ++i) {
        UniqueFd fd(bpffs_conn_obj_get(c, path.c_str(), 0));
        INFO("get " << i << ": " << ename(fd ? 0 : errno));
        CHECK(kernel_id(fd.get()) == kernel_id(map.get()));
    }
    bpffs_conn_close(c);
    CHECK(fb.accepted() == 2);
    CHECK(fb.seen() == std::vector<std::string>{"get", "get", "get", "get"});
}

TEST_CASE("conn: with the broker gone, a call fails with -1 and errno (ENOENT: no socket left)",
          "[client][conn][retry]") {
    auto map = must_map();
    FakeBroker fb;
    fb.start({answer(fb, map.get())});
    std::string path = make_file(fb, "obj");
    default_sigpipe();  // as it is by default: a SIGPIPE would end the test program
    bpffs::Connection conn(fb.dir());
    CHECK(kernel_id(conn.obj_get(path).get()) == kernel_id(map.get()));
    fb.stop();
    errno = 0;
    CHECK(bpffs_conn_obj_get(conn.get(), path.c_str(), 0) == -ENOENT);
    CHECK(errno == ENOENT);
}

TEST_CASE("conn: with the broker dead but its socket left, a call fails with ECONNREFUSED",
          "[client][conn][retry]") {
    auto map = must_map();
    FakeBroker fb;
    fb.start({answer(fb, map.get())});
    std::string path = make_file(fb, "obj");
    bpffs::Connection conn(fb.dir());
    CHECK(kernel_id(conn.obj_get(path).get()) == kernel_id(map.get()));
    fb.stop(/*unlink_socket=*/false);
    errno = 0;
    CHECK(bpffs_conn_obj_get(conn.get(), path.c_str(), 0) == -ECONNREFUSED);
    CHECK(errno == ECONNREFUSED);
}

// ---------------------------------------------------------------------------------------------
// The kept connection against the daemon

TEST_CASE("conn: pins and gets on one connection reach the broker over one socket",
          "[client][conn][kernel]") {
    Mount m;
    auto map = must_map();
    must_mkdir(m.p("a"));
    bpffs_conn* c = nullptr;
    REQUIRE(ename(lib_errno(bpffs_conn_open(m.p("a").c_str(), &c))) == ename(0));
    std::unique_ptr<bpffs_conn, void (*)(bpffs_conn*)> owner(c, bpffs_conn_close);
    REQUIRE(ename(lib_errno(bpffs_conn_obj_pin(c, map.get(), m.p("a/m").c_str()))) == ename(0));
    CHECK(ename(lib_errno(bpffs_conn_obj_pin(c, map.get(), m.p("a/m").c_str()))) == ename(EEXIST));
    for (int i = 0; i < 50; ++i) {
        UniqueFd fd(bpffs_conn_obj_get(c, m.p("a/m").c_str(), 0));
        REQUIRE(fd);
        CHECK(kernel_id(fd.get()) == kernel_id(map.get()));
    }
    // The broker closes one-shot connections asynchronously; the kept one stays.
    CHECK(wait_for([&] { return broker_connections(m) == 1; }));
    owner.reset();
    CHECK(wait_for([&] { return broker_connections(m) == 0; }));
}

TEST_CASE("conn: errors are the one-shot calls' errors, as -errno with errno set",
          "[client][conn][kernel]") {
    Mount m;
    auto map = must_map();
    must_mkdir(m.p("d"));
    bpffs_conn* c = nullptr;
    errno = 0;
    CHECK(bpffs_conn_open(nullptr, &c) == -EFAULT);
    CHECK(errno == EFAULT);
    CHECK(c == nullptr);
    CHECK(ename(lib_errno(bpffs_conn_open(m.p("missing").c_str(), &c))) == ename(ENOENT));
    CHECK(c == nullptr);
    {
        TempDir plain;  // no broker there
        CHECK(ename(lib_errno(bpffs_conn_open(plain.path().c_str(), &c))) == ename(EACCES));
        CHECK(c == nullptr);
    }
    REQUIRE(ename(lib_errno(bpffs_conn_open(m.path().c_str(), &c))) == ename(0));
    std::unique_ptr<bpffs_conn, void (*)(bpffs_conn*)> owner(c, bpffs_conn_close);
    CHECK(ename(lib_errno(bpffs_conn_obj_get(c, m.p("d/nope").c_str(), 0))) == ename(ENOENT));
    CHECK(ename(lib_errno(bpffs_conn_obj_get(c, m.p("d").c_str(), 0))) == ename(EACCES));
    CHECK(ename(lib_errno(bpffs_conn_obj_get(c, nullptr, 0))) == ename(EFAULT));
    CHECK(ename(lib_errno(bpffs_conn_obj_pin(c, map.get(), m.p("nope/m").c_str()))) ==
          ename(ENOENT));
    CHECK(ename(lib_errno(bpffs_conn_obj_pin(c, map.get(), m.p("d/a.b").c_str()))) == ename(EPERM));
    REQUIRE(ename(lib_errno(bpffs_conn_obj_pin(c, map.get(), m.p("d/m").c_str()))) == ename(0));
    CHECK(ename(lib_errno(bpffs_conn_obj_get(c, m.p("d/m").c_str(), 1))) == ename(EINVAL));
    CHECK(ename(lib_errno(bpffs_conn_obj_get(nullptr, m.p("d/m").c_str(), 0))) == ename(EINVAL));
    bpffs_conn_close(nullptr);  // allowed
}

TEST_CASE("conn: a pin where the caller may not search the parent is EACCES, before EEXIST",
          "[client][conn][kernel]") {
    // The library no longer looks the name up itself: the broker checks the search permission
    // on the parent with the caller's credentials, as the kernel's lookup would.
    Mount m;
    auto map = must_map();
    must_mkdir(m.p("nox"));
    must_mkdir(m.p("ok"));
    REQUIRE(bpffs_obj_pin(map.get(), m.p("nox/old").c_str()) == 0);
    REQUIRE(chmod(m.p("nox").c_str(), 0600) == 0);  // owner root: rw-, no search
    auto before = tree(m.path());
    int e = run_child([&] {
        if (drop_dac_caps() != 0) return 200;
        bpffs_conn* c = nullptr;
        if (bpffs_conn_open(m.path().c_str(), &c) != 0) return 201;
        std::unique_ptr<bpffs_conn, void (*)(bpffs_conn*)> owner(c, bpffs_conn_close);
        if (bpffs_conn_obj_pin(c, map.get(), m.p("nox/m").c_str()) != -EACCES) return 202;
        if (bpffs_conn_obj_pin(c, map.get(), m.p("nox/old").c_str()) != -EACCES) return 203;
        // Where it may search, the same connection pins, and an existing name is EEXIST.
        if (bpffs_conn_obj_pin(c, map.get(), m.p("ok/m").c_str()) != 0) return 204;
        if (bpffs_conn_obj_pin(c, map.get(), m.p("ok/m").c_str()) != -EEXIST) return 205;
        return 0;
    });
    CHECK(e == 0);
    auto after = before;
    after.insert("ok/m");
    CHECK(tree(m.path()) == after);
    // With its DAC capabilities, root may search anywhere.
    CHECK(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("nox/m").c_str()))) == ename(0));
}

TEST_CASE("conn: opened on a file, and a path on another mount is answered by that mount's broker",
          "[client][conn][kernel]") {
    Mount m1;
    Mount m2;
    auto map1 = must_map("bpffs_one");
    auto map2 = must_map("bpffs_two");
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map1.get(), m1.p("m").c_str()))) == ename(0));
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map2.get(), m2.p("m").c_str()))) == ename(0));
    bpffs::Connection conn(m1.p("m"));
    CHECK(kernel_id(conn.obj_get(m1.p("m")).get()) == kernel_id(map1.get()));
    CHECK(kernel_id(conn.obj_get(m2.p("m")).get()) == kernel_id(map2.get()));
    conn.obj_pin(map1.get(), m2.p("from1"));
    CHECK(kernel_id(bpffs::obj_get(m2.p("from1")).get()) == kernel_id(map1.get()));
    try {
        conn.obj_pin(map1.get(), m1.p("m"));
        FAIL("a pin over an existing name did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::file_exists);
    }
    bpffs::Connection moved(std::move(conn));
    CHECK(conn.get() == nullptr);
    CHECK(kernel_id(moved.obj_get(m1.p("m")).get()) == kernel_id(map1.get()));
    CHECK_THROWS_AS(bpffs::Connection(m1.p("nope")), std::system_error);
}

TEST_CASE("conn: after fork, the child's calls use a connection of its own",
          "[client][conn][kernel]") {
    Mount m;
    auto map = must_map();
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("m").c_str()))) == ename(0));
    bpffs_close_kept_connections();  // the pin's
    bpffs::Connection conn(m.path());
    (void)conn.obj_get(m.p("m"));
    REQUIRE(wait_for([&] { return broker_connections(m) == 1; }));  // the kept one only
    std::uint32_t id = kernel_id(map.get());
    int rc = run_child([&] {
        for (int i = 0; i < 20; ++i) {
            int fd = bpffs_conn_obj_get(conn.get(), m.p("m").c_str(), 0);
            if (fd < 0) return errno;
            UniqueFd owned(fd);
            if (kernel_id(fd) != id) return 201;
        }
        // The parent's connection and this child's own.
        return broker_connections(m) == 2 ? 0 : 202;
    });
    CHECK(ename(rc) == ename(0));
    // The parent's connection still answers in step.
    for (int i = 0; i < 20; ++i) CHECK(kernel_id(conn.obj_get(m.p("m")).get()) == id);
}

TEST_CASE("conn: several threads share one connection", "[client][conn][kernel]") {
    Mount m;
    auto map = must_map();
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("m").c_str()))) == ename(0));
    bpffs::Connection conn(m.path());
    std::uint32_t id = kernel_id(map.get());
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 100; ++i) {
                int fd = bpffs_conn_obj_get(conn.get(), m.p("m").c_str(), 0);
                UniqueFd owned(fd);
                if (fd < 0 || kernel_id(fd) != id) ++bad;
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(bad.load() == 0);
}

// ---------------------------------------------------------------------------------------------
// The kernel's readdir cache

TEST_CASE("readdir: a directory listed again unchanged is then listed from the kernel's cache",
          "[client][readdir][mount]") {
    Mount m("", {"--log-level", "debug"});
    auto map = must_map();
    must_mkdir(m.p("d"));
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("d/m0").c_str()))) == ename(0));
    CHECK(list(m.p("d")) == std::set<std::string>{"m0"});  // asks the daemon
    std::size_t after_first = readdir_requests(m);
    CHECK(after_first > 0);
    CHECK(list(m.p("d")) == std::set<std::string>{"m0"});  // asks, and the kernel keeps it
    std::size_t after_second = readdir_requests(m);
    CHECK(after_second > after_first);
    CHECK(list(m.p("d")) == std::set<std::string>{"m0"});
    CHECK(list(m.p("d")) == std::set<std::string>{"m0"});
    CHECK(readdir_requests(m) == after_second);
}

TEST_CASE("readdir: the first listing after a change does not fill the kernel's cache",
          "[client][readdir][mount]") {
    // Filling the cache makes a listing about twice as slow; a directory that changes between
    // listings would pay for it every time (docs/performance.md).
    Mount m("", {"--log-level", "debug"});
    auto map = must_map();
    must_mkdir(m.p("d"));
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("d/m0").c_str()))) == ename(0));
    using Names = std::set<std::string>;
    CHECK(list(m.p("d")) == Names{"m0"});
    CHECK(list(m.p("d")) == Names{"m0"});  // cached from here on
    std::size_t cached = readdir_requests(m);
    CHECK(list(m.p("d")) == Names{"m0"});
    CHECK(readdir_requests(m) == cached);
    // Each kind of change: the next listing asks the daemon, and so does the one after it
    // (which fills the cache); then the kernel answers.
    const std::vector<std::pair<std::function<void()>, Names>> changes{
        {[&] { REQUIRE(bpffs_obj_pin(map.get(), m.p("d/m1").c_str()) == 0); }, {"m0", "m1"}},
        {[&] { REQUIRE(::unlink(m.p("d/m1").c_str()) == 0); }, {"m0"}},
        {[&] { must_mkdir(m.p("d/m0x")); }, {"m0", "m0x"}},
    };
    for (std::size_t i = 0; i < changes.size(); ++i) {
        INFO("change " << i);
        if (i == 2) {  // mkdir needs a directory without objects
            REQUIRE(::unlink(m.p("d/m0").c_str()) == 0);
            CHECK(list(m.p("d")) == Names{});
            CHECK(list(m.p("d")) == Names{});
        }
        Names want = changes[i].second;
        if (i == 2) want = {"m0x"};
        changes[i].first();
        std::size_t before = readdir_requests(m);
        CHECK(list(m.p("d")) == want);
        std::size_t first = readdir_requests(m);
        CHECK(first > before);
        CHECK(list(m.p("d")) == want);
        std::size_t second = readdir_requests(m);
        CHECK(second > first);
        CHECK(list(m.p("d")) == want);
        CHECK(readdir_requests(m) == second);
    }
}

TEST_CASE("readdir: a directory kept open across a pin lists the new name after rewinddir",
          "[client][readdir][mount]") {
    // The open asked for the kernel's cache; a pin does not change the directory's version in
    // the kernel, so only the broker's invalidation of the directory's inode drops the cache.
    Mount m;
    auto map = must_map();
    must_mkdir(m.p("d"));
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("d/m0").c_str()))) == ename(0));
    CHECK(list(m.p("d")) == std::set<std::string>{"m0"});
    CHECK(list(m.p("d")) == std::set<std::string>{"m0"});  // the next open is a cached one
    DIR* d = opendir(m.p("d").c_str());
    REQUIRE(d != nullptr);
    std::unique_ptr<DIR, int (*)(DIR*)> owner(d, closedir);
    auto names = [&] {
        std::set<std::string> out;
        rewinddir(d);
        while (dirent* e = readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != "..") out.insert(n);
        }
        return out;
    };
    CHECK(names() == std::set<std::string>{"m0"});
    CHECK(names() == std::set<std::string>{"m0"});
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("d/m1").c_str()))) == ename(0));
    CHECK(names() == std::set<std::string>{"m0", "m1"});
}

TEST_CASE("readdir: a cached listing shows pins through the broker, unlink, mkdir and rmdir",
          "[client][readdir][mount]") {
    Mount m;
    auto map = must_map();
    must_mkdir(m.p("d"));
    must_mkdir(m.p("e"));
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("d/m0").c_str()))) == ename(0));
    using Names = std::set<std::string>;
    CHECK(list(m.p("d")) == Names{"m0"});
    CHECK(list(m.p("d")) == Names{"m0"});  // cached

    // A pin behind the kernel's back: the broker invalidates the directory.
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("d/m1").c_str()))) == ename(0));
    CHECK(list(m.p("d")) == Names{"m0", "m1"});
    {
        bpffs::Connection conn(m.path());
        conn.obj_pin(map.get(), m.p("d/m2"));
    }
    CHECK(list(m.p("d")) == Names{"m0", "m1", "m2"});
    // The same from another process.
    int rc =
        run_child([&] { return bpffs_obj_pin(map.get(), m.p("d/m3").c_str()) == 0 ? 0 : errno; });
    CHECK(ename(rc) == ename(0));
    CHECK(list(m.p("d")) == Names{"m0", "m1", "m2", "m3"});

    // Changes through the mount.
    REQUIRE(::unlink(m.p("d/m1").c_str()) == 0);
    CHECK(list(m.p("d")) == Names{"m0", "m2", "m3"});
    CHECK(list(m.p("e")) == Names{});
    CHECK(list(m.p("e")) == Names{});
    must_mkdir(m.p("e/sub"));
    CHECK(list(m.p("e")) == Names{"sub"});
    REQUIRE(::rmdir(m.p("e/sub").c_str()) == 0);
    CHECK(list(m.p("e")) == Names{});
    // The root's listing, too.
    CHECK(list(m.path()) == Names{"d", "e"});
    CHECK(list(m.path()) == Names{"d", "e"});
    must_mkdir(m.p("f"));
    CHECK(list(m.path()) == Names{"d", "e", "f"});
    REQUIRE(::rmdir(m.p("f").c_str()) == 0);
    CHECK(list(m.path()) == Names{"d", "e"});
}

TEST_CASE("readdir: a pin of a name the kernel never looked up shows up in a cached listing",
          "[client][readdir][mount]") {
    // Nobody looks the name up before the pin (no cached negative entry the broker's entry
    // invalidation could find): a client speaking the protocol directly.
    Mount m;
    auto map = must_map();
    must_mkdir(m.p("d"));
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("d/m0").c_str()))) == ename(0));
    CHECK(list(m.p("d")) == std::set<std::string>{"m0"});
    CHECK(list(m.p("d")) == std::set<std::string>{"m0"});
    UniqueFd dirfd(open(m.p("d").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(dirfd);
    auto sock = client::connect_broker(m.p("d"), dirfd.get());
    REQUIRE(sock);
    std::array<int, 2> fds{map.get(), dirfd.get()};
    auto rep = client::exchange(sock->get(), proto::Request{proto::Op::pin, "raw"}, fds);
    REQUIRE(rep);
    REQUIRE(ename(rep->reply.error) == ename(0));
    CHECK(list(m.p("d")) == std::set<std::string>{"m0", "raw"});
}

TEST_CASE("readdir: a pin into the root, whose listing is cached, shows up",
          "[client][readdir][mount]") {
    Mount m;
    auto map = must_map();
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("a").c_str()))) == ename(0));
    CHECK(list(m.path()) == std::set<std::string>{"a"});
    CHECK(list(m.path()) == std::set<std::string>{"a"});
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("b").c_str()))) == ename(0));
    CHECK(list(m.path()) == std::set<std::string>{"a", "b"});
}

// ---------------------------------------------------------------------------------------------
// The one-shot calls' kept connections (client/kept.hpp)

namespace {

// The kernel id of what a one-shot get of `path` returns; 0 and errno on failure.
std::uint32_t oneshot_id(const std::string& path) {
    int fd = bpffs_obj_get(path.c_str());
    if (fd < 0) return 0;
    UniqueFd owned(fd);
    return kernel_id(fd);
}

// errno of a one-shot get of `path` (0: it worked).
int oneshot_errno(const std::string& path) {
    int fd = bpffs_obj_get(path.c_str());
    int e = fd < 0 ? errno : 0;
    if (fd >= 0) close(fd);
    return e;
}

// The fds of this process that are sockets.
std::set<int> socket_fds() {
    std::set<int> out;
    for (int fd = 0; fd < 1024; ++fd) {
        struct stat st {};
        if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) out.insert(fd);
    }
    return out;
}

}  // namespace

TEST_CASE(
    "kept: a one-shot call after a setuid, a setgroups, a capability drop or on a thread with "
    "other ids speaks with the credentials of that moment",
    "[client][kept][kernel]") {
    Mount m("mode=0755");
    auto map = must_map();
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("m").c_str()))) == ename(0));
    // Only group 5000 may write it (a get asks write permission): root by CAP_DAC_OVERRIDE.
    REQUIRE(chown(m.p("m").c_str(), 0, 5000) == 0);
    REQUIRE(chmod(m.p("m").c_str(), 0060) == 0);
    const std::uint32_t id = kernel_id(map.get());
    const std::string obj = m.p("m");
    int rc = run_child([&] {
        if (oneshot_id(obj) != id) return 10;  // as root; the connection is kept
        std::array<gid_t, 1> g{5000};
        // euid 1000 in group 5000, the saved uid 0 kept to come back.
        if (setgroups(1, g.data()) != 0 || setresgid(1000, 1000, 1000) != 0 ||
            setresuid(1000, 1000, 0) != 0)
            return 11;
        if (oneshot_id(obj) != id) return 12;  // the group's write permission
        // Without the group (a connection of root's and one with the group are kept): refused.
        if (setresuid(-1, 0, -1) != 0 || setgroups(0, nullptr) != 0 ||
            setresuid(1000, 1000, 0) != 0)
            return 13;
        if (int e = oneshot_errno(obj); e != EACCES) return e == 0 ? 14 : e;
        // Back to root, then one thread alone drops to 65534 (the raw system call changes the
        // calling thread only): that thread is refused while the other still gets.
        if (setresuid(-1, 0, -1) != 0) return 15;
        if (oneshot_id(obj) != id) return 16;
        int thread_errno = -1;
        std::thread t([&] {
            if (syscall(SYS_setresuid, -1, 65534, -1) != 0) return;
            thread_errno = oneshot_errno(obj);
        });
        t.join();
        if (thread_errno != EACCES) return thread_errno == 0 ? 17 : 18;
        if (oneshot_id(obj) != id) return 19;
        // Root without CAP_DAC_OVERRIDE: the owner class (---) refuses, as the kernel would.
        if (drop_dac_caps() != 0) return 20;
        if (int e = oneshot_errno(obj); e != EACCES) return e == 0 ? 21 : e;
        return 0;
    });
    CHECK(rc == 0);
}

TEST_CASE("kept: a forked child and its parent get at once, each on a connection of its own",
          "[client][kept][kernel]") {
    Mount m;
    auto map1 = must_map("kept_1");
    auto map2 = must_map("kept_2");
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map1.get(), m.p("m1").c_str()))) == ename(0));
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map2.get(), m.p("m2").c_str()))) == ename(0));
    const std::uint32_t id1 = kernel_id(map1.get()), id2 = kernel_id(map2.get());
    REQUIRE(oneshot_id(m.p("m1")) == id1);  // the parent's connection is kept
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        for (int i = 0; i < 500; ++i) {
            if (oneshot_id(m.p("m2")) != id2) _exit(1);
        }
        _exit(0);
    }
    int wrong = 0;
    for (int i = 0; i < 500; ++i) wrong += oneshot_id(m.p("m1")) != id1;
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(wrong == 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("kept: eight threads get eight objects at once, and a few connections stay kept",
          "[client][kept][kernel]") {
    Mount m;
    std::vector<UniqueFd> maps;
    std::vector<std::uint32_t> ids;
    for (int i = 0; i < 8; ++i) {
        maps.push_back(must_map("kept_t"));
        std::string p = m.p("m" + std::to_string(i));
        REQUIRE(ename(lib_errno(bpffs_obj_pin(maps.back().get(), p.c_str()))) == ename(0));
        ids.push_back(kernel_id(maps.back().get()));
    }
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            std::string p = m.p("m" + std::to_string(t));
            for (int i = 0; i < 300; ++i) wrong += oneshot_id(p) != ids[static_cast<size_t>(t)];
        });
    }
    for (auto& t : threads) t.join();
    CHECK(wrong.load() == 0);
    int kept = broker_connections(m);
    CHECK(kept >= 1);
    CHECK(kept <= 8);
    bpffs_close_kept_connections();
    CHECK(wait_for([&] { return broker_connections(m) == 0; }));
}

TEST_CASE(
    "kept: a kept socket the program closed and whose number it reused is left alone, and the "
    "next call connects anew",
    "[client][kept][kernel]") {
    Mount m;
    auto map = must_map();
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("m").c_str()))) == ename(0));
    const std::uint32_t id = kernel_id(map.get());
    int rc = run_child([&] {
        bpffs_close_kept_connections();  // the pin's, inherited: a child has none anyway
        std::set<int> before = socket_fds();
        if (oneshot_id(m.p("m")) != id) return 10;
        std::set<int> after = socket_fds();
        std::vector<int> added;
        std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                            std::back_inserter(added));
        if (added.size() != 1) return 11;
        int kept = added.front();
        int p[2];
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return 12;
        if (dup2(p[1], kept) != kept) return 13;  // closes the kept socket, takes its number
        if (oneshot_id(m.p("m")) != id) return 14;
        struct stat st {};
        if (fstat(kept, &st) != 0 || !S_ISFIFO(st.st_mode)) return 15;  // still the program's
        char c;
        if (read(p[0], &c, 1) != -1 || errno != EAGAIN) return 16;  // nothing was sent on it
        return 0;
    });
    CHECK(rc == 0);
}

TEST_CASE("kept: a worker killed between two one-shot gets: the second connects to the new one",
          "[client][kept][kernel]") {
    Mount m;
    m.allow_restarts();
    auto map = must_map();
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("m").c_str()))) == ename(0));
    const std::uint32_t id = kernel_id(map.get());
    REQUIRE(oneshot_id(m.p("m")) == id);
    pid_t worker = worker_of(m.pid());
    REQUIRE(worker > 0);
    REQUIRE(kill(worker, SIGKILL) == 0);
    REQUIRE(wait_for([&] {
        pid_t w = worker_of(m.pid());
        return w > 0 && w != worker;
    }));
    CHECK(oneshot_id(m.p("m")) == id);
}

TEST_CASE(
    "kept: a uid whose share of connections its own idle kept connections hold still gets in "
    "(the broker closes the one idle longest)",
    "[client][kept][kernel][limits]") {
    Mount m("mode=0755,max_conns_per_uid=4");
    auto map = must_map();
    REQUIRE(ename(lib_errno(bpffs_obj_pin(map.get(), m.p("m").c_str()))) == ename(0));
    REQUIRE(chmod(m.p("m").c_str(), 0666) == 0);
    bpffs_close_kept_connections();
    const std::uint32_t id = kernel_id(map.get());
    const std::string obj = m.p("m");
    // Four processes of uid 65534 get once and stay, each keeping its connection: the share.
    int go[2];
    REQUIRE(pipe2(go, O_CLOEXEC) == 0);
    UniqueFd go_r(go[0]), go_w(go[1]);
    std::vector<pid_t> holders;
    for (int i = 0; i < 4; ++i) {
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            go_w.reset();
            if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
                setresuid(65534, 65534, 65534) != 0)
                _exit(10);
            if (oneshot_id(obj) != id) _exit(11);
            char c;
            while (read(go_r.get(), &c, 1) < 0 && errno == EINTR) {}
            _exit(0);
        }
        holders.push_back(pid);
    }
    REQUIRE(wait_for([&] { return broker_connections(m) == 4; }));
    // Within a quarter of the broker's idle timeout (30 s) they count as busy: a fifth is refused.
    CHECK(ename(run_as(65534, 65534, [&] { return oneshot_errno(obj); })) == ename(EUSERS));
    // Idle longer than that, the one idle longest gives way.
    sleep(8);
    CHECK(ename(run_as(65534, 65534, [&] { return oneshot_errno(obj); })) == ename(0));
    go_w.reset();  // the holders exit
    for (pid_t pid : holders) {
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
}
