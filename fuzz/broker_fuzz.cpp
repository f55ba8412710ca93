// SPDX-License-Identifier: GPL-2.0-or-later
// The broker's request handling (broker/server.cpp, broker/handlers.cpp) as a client drives it:
// the real server, adopting a listening socket on an abstract address and /tmp as its "mount"
// (Broker::adopt, as a restarted worker does), serves a core with no FUSE mount and no kernel
// bpffs. Each input is a connection's messages, each [u8 fds][u16 length][bytes]: the low two
// bits of `fds` say how many fds travel with it (0 to 3), each next two bits which one (O_PATH
// /tmp, a BPF array map when the process may make one, a memfd, /dev/null).
// Invariants (each an abort when it fails):
//  - a message over kMaxMessage, with more than kMaxFds fds, or that decode_request() refuses
//    closes the connection without a reply; every other one is answered, in order, with a reply
//    that decodes, has the request's op, EINVAL for the wrong number of fds, and no fd;
//  - a status shows the core's options (and counts, to a caller with CAP_SYS_ADMIN); a remount
//    does exactly what parse_remount_options() says, or nothing and EINVAL (EPERM without
//    CAP_SYS_ADMIN); upgrade is ENOTSUP (no supervisor here); pin and get fail (no object is
//    pinned and /tmp's inodes are not the core's);
//  - every connection and every fd received is closed: after the input the process has the
//    fds it had before it (checked with a deadline, since the broker closes on its own thread).
// Left out: a pin that succeeds (publish_pin is a MKNOD through a FUSE mount, docs/protocol.md)
// and a get of a pinned object (the node must be on the mount's device): both need a mount.
#include "broker/broker.hpp"
#include "common/caps.hpp"
#include "common/protocol.hpp"
#include "common/scm.hpp"
#include "fsops/mount_options.hpp"
#include "fuzz/fuzz_check.hpp"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <thread>
#include <vector>

using namespace bpffs;
using namespace std::chrono_literals;
using protocol::Op;

namespace {

// The process's open fds but pipes: libFuzzer and the sanitizers keep pipes to a symbolizer
// they start when they first print a function, and no message carries a pipe.
std::size_t open_fds() {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        n += std::filesystem::read_symlink(e.path(), ec).native().rfind("pipe:", 0) != 0;
    }
    return n;
}

// The broker, serving on one thread of its own for the life of the process.
struct Served {
    fsops::Filesystem fs;
    broker::Registry registry;
    broker::Broker broker{fs, registry, {}, broker::BrokerConfig{.threads = 1, .version = "fuzz"}};
    sockaddr_un addr{};
    std::array<UniqueFd, 4> kinds;  // the fds a message may carry, by kind
    bool privileged = false;
    std::size_t baseline = 0;
    std::thread thread;

    Served() {
        spdlog::set_level(spdlog::level::off);  // a warning per malformed message otherwise
        UniqueFd listener(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        addr.sun_family = AF_UNIX;
        std::string name = "bpffs-fuzz-broker-" + std::to_string(getpid());
        std::memcpy(addr.sun_path + 1, name.data(), name.size());  // abstract: no file
        FUZZ_CHECK(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        FUZZ_CHECK(listen(listener.get(), 64) == 0);
        UniqueFd tree(open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC));
        FUZZ_CHECK(broker.adopt("/tmp", std::move(listener), std::move(tree)) == 0);
        kinds[0].reset(open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC));
        kinds[1].reset(bpf_map_create(BPF_MAP_TYPE_ARRAY, "fuzz", 4, 4, 1, nullptr));
        if (!kinds[1]) kinds[1].reset(memfd_create("fuzz-not-a-map", MFD_CLOEXEC));
        kinds[2].reset(memfd_create("fuzz", MFD_CLOEXEC));
        kinds[3].reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
        for (const UniqueFd& fd : kinds) FUZZ_CHECK(fd);
        auto caps = effective_caps(0);
        privileged = geteuid() == 0 && caps && cap_in(*caps, kCapSysAdmin);
        thread = std::thread([this] { broker.run(); });
        // Each serving thread opens its own mountinfo file as it starts: the baseline is the
        // count once it has stopped changing (100 ms).
        baseline = open_fds();
        for (int quiet = 0; quiet < 10;) {
            usleep(10000);
            std::size_t now = open_fds();
            quiet = now == baseline ? quiet + 1 : 0;
            baseline = now;
        }
    }
    ~Served() {
        broker.stop();
        thread.join();
    }
};

Served& served() {
    static Served s;
    return s;
}

// One message of the input.
struct Message {
    std::vector<int> fds;
    std::span<const std::uint8_t> bytes;
};

// The next message at `pos`, or nothing at the end.
std::optional<Message> next_message(std::span<const std::uint8_t> in, std::size_t& pos) {
    if (pos >= in.size()) return std::nullopt;
    std::uint8_t spec = in[pos++];
    Message m;
    for (unsigned i = 0; i < (spec & 3u); ++i) {
        m.fds.push_back(served().kinds[(spec >> (2 + 2 * i)) & 3u].get());
    }
    std::size_t len = 0;
    for (int i = 0; i < 2 && pos < in.size(); ++i) len |= std::size_t{in[pos++]} << (8 * i);
    len = std::min(len, in.size() - pos);
    m.bytes = in.subspan(pos, len);
    pos += len;
    return m;
}

// What a reply to a well-formed request with the right fds must say (`before`: the core's
// options when it was sent).
void check_answer(const protocol::Request& req, const protocol::Reply& rep,
                  const fsops::MountOptions& before) {
    Served& s = served();
    switch (req.op) {
        case Op::pin:
        case Op::get:
            FUZZ_CHECK(rep.error != 0);
            break;
        case Op::status:
            FUZZ_CHECK(rep.error == 0 && rep.status.has_value());
            FUZZ_CHECK(rep.status->uid == before.uid && rep.status->gid == before.gid);
            FUZZ_CHECK(rep.status->mode == before.mode);
            FUZZ_CHECK(rep.status->counts_shown() == s.privileged);
            break;
        case Op::remount: {
            auto want = fsops::parse_remount_options(req.name, before);
            if (!s.privileged) want = before;
            int err = !s.privileged ? EPERM : want ? 0 : EINVAL;
            FUZZ_CHECK(rep.error == err);
            FUZZ_CHECK(s.fs.options() == (want ? *want : before));
            break;
        }
        case Op::upgrade:
            FUZZ_CHECK(rep.error == (s.privileged ? ENOTSUP : EPERM));
            break;
    }
}

// Sends one message and checks what comes back; false once the broker closed the connection.
bool exchange(int sock, const Message& m) {
    Served& s = served();
    fsops::MountOptions before = s.fs.options();
    FUZZ_CHECK(send_with_fds(sock, m.bytes, m.fds) == 0);
    std::array<std::uint8_t, protocol::kMaxMessage> buf;
    Received r = recv_with_fds(sock, buf, protocol::kMaxFds);
    FUZZ_CHECK(r.error == 0);  // EAGAIN: no answer within the timeout
    auto req = protocol::decode_request(m.bytes);
    if (m.bytes.size() > protocol::kMaxMessage || m.fds.size() > protocol::kMaxFds || !req) {
        FUZZ_CHECK(r.size == 0 && r.fds.empty());  // closed, no reply
        return false;
    }
    FUZZ_CHECK(r.size > 0 && !r.truncated && r.fds.empty());
    auto rep = protocol::decode_reply(std::span(buf.data(), r.size));
    FUZZ_CHECK(rep.has_value() && rep->op == req->op);
    if (m.fds.size() != protocol::expected_fds(req->op)) {
        FUZZ_CHECK(rep->error == EINVAL);
    } else {
        check_answer(*req, *rep, before);
    }
    return true;
}

// What every fd of the process is (for the report of a leak).
std::string fd_list() {
    std::string out;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        out += e.path().filename().native() + " -> " +
               std::filesystem::read_symlink(e.path(), ec).native() + "\n";
    }
    return out;
}

// The broker closes a connection, and the closing thread the fds it was sent, on their own
// threads: a loaded machine (the sanitizers, CI's other builds) may take a while.
void wait_for_baseline() {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (open_fds() != served().baseline) {
        if (std::chrono::steady_clock::now() >= deadline) {
            std::fprintf(stderr, "baseline %zu fds, now:\n%s", served().baseline,
                         fd_list().c_str());
            FUZZ_CHECK(false);  // an fd leaked
        }
        std::this_thread::sleep_for(20us);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Served& s = served();
    s.fs.apply_options(fsops::MountOptions{});  // each input from the same start
    {
        UniqueFd sock(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        timeval limit{10, 0};  // a broker that does not answer in 10 s has hung
        FUZZ_CHECK(setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit) == 0);
        FUZZ_CHECK(connect(sock.get(), reinterpret_cast<sockaddr*>(&s.addr), sizeof s.addr) == 0);
        std::span<const std::uint8_t> in(data, size);
        std::size_t pos = 0;
        while (auto m = next_message(in, pos)) {
            if (!exchange(sock.get(), *m)) break;
        }
    }
    wait_for_baseline();
    return 0;
}
