// SPDX-License-Identifier: GPL-2.0-or-later
// Writes the seed corpus (fuzz/corpus/<harness>/seed-*): a handful of valid inputs per harness,
// made with the real encoders and cores, so the fuzzers start from messages, records and logs
// the code accepts. Deterministic (a fixed clock). Inputs of findings (crash-*) are not touched.
//   fuzz_make_corpus fuzz/corpus
#include "common/protocol.hpp"
#include "fsops/filesystem.hpp"
#include "fsops/state.hpp"
#include "tests/fsops_helpers.hpp"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

using namespace bpffs;
using namespace bpffs::fsops;
namespace fs = std::filesystem;

namespace {

// Writes corpus/<harness>/seed-<name>.
struct Corpus {
    fs::path dir;
    void write(const std::string& harness, const std::string& name, std::string_view bytes) const;
};

void Corpus::write(const std::string& harness, const std::string& name,
                   std::string_view bytes) const {
    fs::create_directories(dir / harness);
    std::ofstream(dir / harness / ("seed-" + name), std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
std::string str(const std::vector<std::uint8_t>& v) { return {v.begin(), v.end()}; }

protocol::Request request(protocol::Op op, std::string name = "", std::uint32_t flags = 0,
                          std::uint32_t umask = 0) {
    return protocol::Request{op, std::move(name), flags, umask};
}

// A pin that asks a mode and owner for its object (umask 0: sent anyway, before them).
protocol::Request pin_given(std::string name, const PinAttrs& attrs) {
    protocol::Request r = request(protocol::Op::pin, std::move(name));
    r.attrs = attrs;
    return r;
}

std::vector<protocol::Request> requests() {
    using protocol::Op;
    return {request(Op::pin, "map1"),
            request(Op::pin, "prog", kBpfFPathFd, 022),
            request(Op::get),
            request(Op::get, "", kBpfFRdonly | kBpfFPathFd),
            request(Op::status),
            request(Op::remount, "uid=1000,mode=0750"),
            request(Op::upgrade, "/usr/sbin/bpffs-fuse"),
            pin_given("shared", PinAttrs{0640, 1000, {}})};
}

void protocol_seeds(const Corpus& out) {
    auto reqs = requests();
    for (std::size_t i = 0; i < reqs.size(); ++i)
        out.write("protocol", "request-" + std::to_string(i), str(protocol::encode(reqs[i])));
    protocol::Reply got{protocol::Op::get, 0, protocol::GetReply{protocol::ObjKind::prog, 42}};
    protocol::StatusInfo st{4242, 1000, 100, 0750, 3, 2, 1, "0.1.0", 4243, 2, 1, 1, 5};
    protocol::Reply status{protocol::Op::status, 0, std::nullopt, st};
    out.write("protocol", "reply-get", str(protocol::encode(got)));
    out.write("protocol", "reply-status", str(protocol::encode(status)));
    out.write("protocol", "reply-error",
              str(protocol::encode(protocol::reply_error(protocol::Op::pin, EEXIST))));
}

// One message of a broker input: [u8 fds][u16 length][bytes] (fuzz/broker_fuzz.cpp).
std::string framed(std::uint8_t fds, const std::string& bytes) {
    std::string out(1, static_cast<char>(fds));
    out.push_back(static_cast<char>(bytes.size() & 0xff));
    out.push_back(static_cast<char>(bytes.size() >> 8));
    return out + bytes;
}

void broker_seeds(const Corpus& out) {
    auto reqs = requests();
    // fds: count in the low bits, then kinds (0: O_PATH dir, 1: a map, 2: a memfd).
    const std::uint8_t fds[] = {2 | (1 << 2) | (0 << 4), 2 | (1 << 2), 1, 1 | (2 << 2), 0, 0, 0};
    std::string all;
    for (std::size_t i = 0; i < reqs.size(); ++i) {
        std::string m = framed(fds[i], str(protocol::encode(reqs[i])));
        out.write("broker", "request-" + std::to_string(i), m);
        all += m;
    }
    out.write("broker", "conversation", all);
    out.write("broker", "malformed-then-status",
              framed(0, "BPFS?") + framed(0, str(protocol::encode(reqs[4]))));
}

// Each step of a seed core must work: else the seeds are not what they say.
template <class T>
T must(Result<T> r) {
    if (!r) {
        std::cerr << "fuzz_make_corpus: a seed step failed: " << std::strerror(r.error().value)
                  << "\n";
        std::exit(1);
    }
    return std::move(*r);
}

// A seed core and a compat=linux one, each with what the state can hold.
std::vector<Change> seed_core_log(bool linux) {
    test::FakeClock clk;
    MountOptions opts{1000, 100, 0755, linux ? Compat::linux : Compat::seed};
    Filesystem core(opts, clk.clock());
    std::vector<Change> log = to_changes(core.snapshot());
    core.set_change_sink(
        [&](const std::vector<Change>& cs) { log.insert(log.end(), cs.begin(), cs.end()); });
    Caller root = Caller::root();
    Ino dir = must(core.mkdir(root, kRootIno, "dir", 0750)).ino;
    clk.advance(1, 5);
    Ino map = must(core.pin(root, dir, "map", ObjType::map, 1)).ino;
    Ino prog = must(core.pin(root, dir, "prog", ObjType::prog, 2, false, true)).ino;
    must(core.make_socket_node());
    must(core.lookup(dir, "map"));
    clk.advance(7);
    must(core.get(root, prog));
    must(core.unlink(dir, "prog"));  // removed, still looked up
    must(core.pin(root, dir, "gone", ObjType::map, 4));
    must(core.unlink(dir, "gone"));  // freed at once: an erase
    if (linux) {
        must(core.pin(root, dir, "link", ObjType::link, 3));
        Ino sub = must(core.mkdir(root, dir, "sub", 0700)).ino;
        must(core.link(map, sub, "again"));
        must(core.symlink(root, sub, "to-map", "../map"));
    }
    return log;
}

std::string records(const std::vector<Change>& cs) {
    std::string out;
    for (const Change& c : cs) {
        std::string rec = encode(c);
        for (std::size_t len = rec.size();; len >>= 7) {  // LEB128, as the log frames them
            out.push_back(static_cast<char>((len & 0x7f) | (len >= 0x80 ? 0x80 : 0)));
            if (len < 0x80) break;
        }
        out += rec;
    }
    return out;
}

// The batches of a log of version 2 (no CRC word, the framing the state_log harness reads):
// `cs` in one batch per change, each | total u32 | records | padding to 4 |.
std::string log_batches(const std::vector<Change>& cs) {
    std::string bytes;
    for (const Change& c : cs) {
        std::string recs = records({c});
        auto total = static_cast<std::uint32_t>(recs.size());
        bytes.append(reinterpret_cast<const char*>(&total), 4);
        bytes += recs;
        bytes.append((4 - recs.size() % 4) % 4, '\0');
    }
    return bytes;
}

void state_seeds(const Corpus& out) {
    for (bool linux : {false, true}) {
        std::vector<Change> log = seed_core_log(linux);
        std::string name = linux ? "compat-linux" : "compat-seed";
        out.write("state", name + "-log", records(log));
        StateBuilder b;
        b.apply(log);
        out.write("state", name + "-snapshot", records(to_changes(b.state())));
        out.write("state_log", name + "-log", log_batches(log));
    }
    out.write("state_log", "new-core", log_batches(to_changes(Filesystem().snapshot())));
}

void mount_options_seeds(const Corpus& out) {
    const char* lists[] = {"uid=1000,gid=100,mode=0750", "compat=linux,uid=0x3e9,mode=755",
                           "mode=01777,allow_other,fsname=bpffs", "compat=seed,uid=+7,gid=010",
                           "compat=linux,bogus,ro,,max_read=4096"};
    for (std::size_t i = 0; i < std::size(lists); ++i)
        out.write("mount_options", "list-" + std::to_string(i), lists[i]);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: fuzz_make_corpus CORPUS_DIR\n";
        return 2;
    }
    Corpus out{argv[1]};
    protocol_seeds(out);
    broker_seeds(out);
    state_seeds(out);
    mount_options_seeds(out);
    return 0;
}
