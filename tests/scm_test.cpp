// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests of the shared fd plumbing: send_with_fds/recv_with_fds over a SOCK_SEQPACKET
// socketpair (common/scm.hpp) and UniqueFd (common/unique_fd.hpp). No root needed.
//
// Leaks are measured as the number of entries of /proc/self/fd, before and after.
#include "common/scm.hpp"
#include "common/unique_fd.hpp"
#include "tests/result_helpers.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

using namespace bpffs;
using bpffs::test::ename;

namespace {

int open_fds() {
    DIR* d = opendir("/proc/self/fd");
    if (d == nullptr) return -1;
    int n = 0;
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
    return n - 1;  // the DIR's own fd
}

bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

struct Pair {
    UniqueFd a, b;
    Pair() {
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
        a.reset(sv[0]);
        b.reset(sv[1]);
    }
};

struct PipeFds {
    UniqueFd rd, wr;
    PipeFds() {
        int p[2];
        REQUIRE(pipe2(p, O_CLOEXEC) == 0);
        rd.reset(p[0]);
        wr.reset(p[1]);
    }
};

std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

bool same_file(int x, int y) {
    struct stat a {
    }, b{};
    return fstat(x, &a) == 0 && fstat(y, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

}  // namespace

TEST_CASE("scm: a message with 0, 1 or 2 fds arrives whole, the fds usable", "[scm]") {
    Pair p;
    PipeFds x, y;
    std::array<std::uint8_t, 64> buf;

    REQUIRE(ename(send_with_fds(p.a.get(), bytes("none"), {})) == ename(0));
    Received r0 = recv_with_fds(p.b.get(), buf, 2);
    CHECK(ename(r0.error) == ename(0));
    CHECK(r0.size == 4);
    CHECK(std::string(buf.begin(), buf.begin() + 4) == "none");
    CHECK_FALSE(r0.truncated);
    CHECK_FALSE(r0.ctruncated);
    CHECK(r0.fds.empty());

    std::vector<int> one{x.wr.get()};
    REQUIRE(ename(send_with_fds(p.a.get(), bytes("one"), one)) == ename(0));
    Received r1 = recv_with_fds(p.b.get(), buf, 2);
    CHECK(ename(r1.error) == ename(0));
    CHECK(r1.size == 3);
    REQUIRE(r1.fds.size() == 1);
    CHECK(r1.fds[0].get() != x.wr.get());
    CHECK(same_file(r1.fds[0].get(), x.wr.get()));
    // The received end writes into the same pipe.
    REQUIRE(write(r1.fds[0].get(), "z", 1) == 1);
    char c = 0;
    REQUIRE(read(x.rd.get(), &c, 1) == 1);
    CHECK(c == 'z');

    std::vector<int> two{x.rd.get(), y.wr.get()};
    REQUIRE(ename(send_with_fds(p.a.get(), bytes("two"), two)) == ename(0));
    Received r2 = recv_with_fds(p.b.get(), buf, 2);
    CHECK(ename(r2.error) == ename(0));
    REQUIRE(r2.fds.size() == 2);
    CHECK(same_file(r2.fds[0].get(), x.rd.get()));  // in order
    CHECK(same_file(r2.fds[1].get(), y.wr.get()));
}

TEST_CASE("scm: received fds are close-on-exec", "[scm]") {
    Pair p;
    PipeFds x;
    // The sender's fd without FD_CLOEXEC: the flag must come from the receive.
    UniqueFd plain(dup(x.wr.get()));
    REQUIRE(plain);
    REQUIRE((fcntl(plain.get(), F_GETFD) & FD_CLOEXEC) == 0);
    std::vector<int> fds{plain.get(), x.rd.get()};
    REQUIRE(ename(send_with_fds(p.a.get(), bytes("x"), fds)) == ename(0));
    std::array<std::uint8_t, 8> buf;
    Received r = recv_with_fds(p.b.get(), buf, 2);
    REQUIRE(r.fds.size() == 2);
    for (const auto& fd : r.fds) CHECK((fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("scm: more fds than max_fds sets ctruncated and leaves no fd open", "[scm]") {
    Pair p;
    std::vector<PipeFds> pipes(200);
    std::vector<int> all;
    for (const auto& pp : pipes) {
        all.push_back(pp.rd.get());
        all.push_back(pp.wr.get());
    }
    std::array<std::uint8_t, 64> buf;
    for (std::size_t n : {3u, 8u, 9u, 64u, 253u}) {
        for (std::size_t max : {0u, 1u, 2u}) {
            INFO(n << " fds sent, at most " << max << " taken");
            const int before = open_fds();
            std::vector<int> fds(all.begin(), all.begin() + static_cast<long>(n));
            REQUIRE(ename(send_with_fds(p.a.get(), bytes("many"), fds)) == ename(0));
            Received r = recv_with_fds(p.b.get(), buf, max);
            CHECK(ename(r.error) == ename(0));
            CHECK(r.size == 4);
            CHECK(r.ctruncated);
            CHECK(r.fds.empty());
            CHECK(open_fds() == before);
        }
    }
    // Exactly max_fds is fine.
    std::vector<int> two{all[0], all[1]};
    REQUIRE(ename(send_with_fds(p.a.get(), bytes("two"), two)) == ename(0));
    Received r = recv_with_fds(p.b.get(), buf, 2);
    CHECK_FALSE(r.ctruncated);
    CHECK(r.fds.size() == 2);
}

TEST_CASE("scm: a message longer than the buffer is truncated and its fds closed", "[scm]") {
    Pair p;
    PipeFds x;
    const int before = open_fds();
    std::vector<int> one{x.rd.get()};
    REQUIRE(ename(send_with_fds(p.a.get(), std::vector<std::uint8_t>(100, 7), one)) == ename(0));
    std::array<std::uint8_t, 10> small;
    Received r = recv_with_fds(p.b.get(), small, 2);
    CHECK(ename(r.error) == ename(0));
    CHECK(r.truncated);
    CHECK(r.size == 10);
    // The caller is expected to drop the fds of a truncated message; at most they are owned.
    r.fds.clear();
    CHECK(open_fds() == before);
}

TEST_CASE("scm: the edge cases: peer closed, nothing to read, send errors", "[scm]") {
    std::array<std::uint8_t, 16> buf;
    SECTION("an empty queue with MSG_DONTWAIT is EAGAIN") {
        Pair p;
        Received r = recv_with_fds(p.b.get(), buf, 2, MSG_DONTWAIT);
        CHECK(ename(r.error) == ename(EAGAIN));
        CHECK(r.fds.empty());
    }
    SECTION("a closed peer reads as size 0, error 0") {
        Pair p;
        p.a.reset();
        Received r = recv_with_fds(p.b.get(), buf, 2);
        CHECK(ename(r.error) == ename(0));
        CHECK(r.size == 0);
    }
    SECTION("sending to a closed peer is EPIPE (no SIGPIPE)") {
        Pair p;
        p.b.reset();
        CHECK(ename(send_with_fds(p.a.get(), bytes("x"), {})) == ename(EPIPE));
    }
    SECTION("a 0-byte message with an fd") {
        Pair p;
        PipeFds x;
        std::vector<int> one{x.rd.get()};
        REQUIRE(ename(send_with_fds(p.a.get(), {}, one)) == ename(0));
        Received r = recv_with_fds(p.b.get(), buf, 2);
        CHECK(ename(r.error) == ename(0));
        CHECK(r.size == 0);
    }
    SECTION("a closed fd is EBADF; more than 253 fds EINVAL; nothing is sent") {
        Pair p;
        PipeFds x;
        int closed = dup(x.rd.get());
        REQUIRE(closed >= 0);
        ::close(closed);
        std::vector<int> bad{closed};
        CHECK(ename(send_with_fds(p.a.get(), bytes("x"), bad)) == ename(EBADF));
        std::vector<int> many(254, x.rd.get());
        CHECK(ename(send_with_fds(p.a.get(), bytes("x"), many)) == ename(EINVAL));
        Received r = recv_with_fds(p.b.get(), buf, 2, MSG_DONTWAIT);
        CHECK(ename(r.error) == ename(EAGAIN));
    }
    SECTION("not a socket is ENOTSOCK") {
        PipeFds x;
        CHECK(ename(send_with_fds(x.wr.get(), bytes("x"), {})) == ename(ENOTSOCK));
        Received r = recv_with_fds(x.rd.get(), buf, 2);
        CHECK(ename(r.error) == ename(ENOTSOCK));
    }
}

TEST_CASE("UniqueFd: owns, moves, releases and resets", "[scm][unique_fd]") {
    PipeFds x;
    SECTION("default is invalid") {
        UniqueFd u;
        CHECK_FALSE(u.valid());
        CHECK_FALSE(u);
        CHECK(u.get() == -1);
    }
    SECTION("the destructor closes") {
        int fd = dup(x.rd.get());
        REQUIRE(fd >= 0);
        {
            UniqueFd u(fd);
            CHECK(u.get() == fd);
        }
        CHECK_FALSE(is_open(fd));
    }
    SECTION("move construction transfers, the source is empty") {
        int fd = dup(x.rd.get());
        UniqueFd a(fd);
        UniqueFd b(std::move(a));
        CHECK(a.get() == -1);
        CHECK(b.get() == fd);
        CHECK(is_open(fd));
    }
    SECTION("move assignment closes the target's old fd") {
        int f1 = dup(x.rd.get());
        int f2 = dup(x.rd.get());
        UniqueFd a(f1), b(f2);
        b = std::move(a);
        CHECK_FALSE(is_open(f2));
        CHECK(b.get() == f1);
        CHECK(a.get() == -1);
        CHECK(is_open(f1));
        auto& self = b;
        b = std::move(self);  // self-move keeps the fd
        CHECK(b.get() == f1);
        CHECK(is_open(f1));
    }
    SECTION("release gives the fd away without closing it") {
        int fd = dup(x.rd.get());
        int got = -1;
        {
            UniqueFd u(fd);
            got = u.release();
            CHECK(u.get() == -1);
        }
        CHECK(got == fd);
        CHECK(is_open(fd));
        ::close(fd);
    }
    SECTION("reset closes the old fd and takes the new one") {
        int f1 = dup(x.rd.get());
        int f2 = dup(x.rd.get());
        UniqueFd u(f1);
        u.reset(f2);
        CHECK_FALSE(is_open(f1));
        CHECK(u.get() == f2);
        u.reset();
        CHECK_FALSE(is_open(f2));
        CHECK_FALSE(u);
    }
}
