// SPDX-License-Identifier: GPL-2.0-or-later
// The broker's wire protocol, version 1 (docs/protocol.md): pure encode/decode of one
// SOCK_SEQPACKET message, length-checked, every field validated. No sockets, no fds here: the
// fds that travel with a message (SCM_RIGHTS) are counted by the transport and checked against
// expected_fds().
//
// All integers are in host byte order (both ends are on one machine).
//   request:  magic u32 | version u16 | op u16 | flags u32 | payload_len u32 | payload
// A request's flags are the bpf(2) file_flags of the call it stands for (common/bpf_flags.hpp):
// a get may carry BPF_F_RDONLY, BPF_F_WRONLY and BPF_F_PATH_FD, a pin BPF_F_PATH_FD (the client
// has resolved the path already; the flag tells the broker the call used it, which the seed's
// rules refuse); other ops none. Any other bit is undecodable (EPROTO). Whether the flags are
// valid for the mount (both RDONLY and WRONLY, any flag under compat=seed: EINVAL) is the
// broker's answer, not the codec's.
//   reply:    magic u32 | version u16 | op u16 | error u32 | payload_len u32 | payload
#pragma once

#include "common/bpf_flags.hpp"
#include "common/pin_attrs.hpp"
#include "common/result.hpp"
#include "common/socket_name.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bpffs::protocol {

inline constexpr std::uint32_t kMagic = 0x53465042;  // "BPFS" in little-endian memory order
inline constexpr std::uint16_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 16;
inline constexpr std::size_t kMaxMessage = 4096;  // header + payload, either direction
inline constexpr std::size_t kMaxFds = 2;         // per message
// The name clients connect to in any directory of a mount: reserved ('.'), so no user name
// can clash with it.
using bpffs::kSocketName;

enum class Op : std::uint16_t {
    pin = 1,      // fds: object, O_PATH parent dir; payload: the name [NUL, u16 umask [PinAttrs]]
    get = 2,      // fds: O_PATH node; payload: empty
    status = 3,   // fds: none; payload: empty. Reply: StatusInfo
    remount = 4,  // fds: none; payload: the option list (uid=,gid=,mode=)
    upgrade = 5,  // fds: none; payload: the new binary's absolute path (empty: the same one)
};

enum class ObjKind : std::uint8_t { map = 1, prog = 2, link = 3 };

struct Request {
    Op op = Op::get;
    std::string name;         // pin: the new name; remount: the option list; upgrade: the path
    std::uint32_t flags = 0;  // get, pin: bpf(2) file_flags (see the top of this file)
    // pin: the caller's umask (1 to 0777: a NUL and a u16 after the name; 0: nothing, as an
    // older client sends); compat=linux makes the object 0600 & ~umask.
    std::uint32_t umask = 0;
    // pin: the mode and owner asked for the new object (after the umask, which is then sent
    // even when 0: u32 set (kPinMode | kPinUid | kPinGid, not 0), u32 mode, u32 uid, u32 gid,
    // each 0 when not set; a mode within PinAttrs::kModeMax, no id PinAttrs::kNoId).
    PinAttrs attrs;
    static constexpr std::uint32_t kPinMode = 1, kPinUid = 2, kPinGid = 4;
    friend bool operator==(const Request&, const Request&) = default;
};

// The flags a request of this op may carry (0: none).
std::uint32_t allowed_flags(Op op);

struct GetReply {
    ObjKind kind = ObjKind::map;
    std::uint32_t id = 0;  // kernel object id
    friend bool operator==(const GetReply&, const GetReply&) = default;
};

// The broker's service figures in a status reply (StatusInfo::service). Outside StatusInfo so
// that it is complete where std::optional needs it (clang checks that in the class).
struct ServiceStatus {
    std::uint32_t connections = 0;  // open now
    std::uint32_t max_conns = 0, max_conns_per_uid = 0;
    std::uint64_t refused = 0;        // connections refused over a limit, so far
    std::uint32_t files_closing = 0;  // files clients sent that wait for the closing thread
    std::uint64_t fuse_aborted = 0;   // FUSE connections aborted for a stuck close
    std::uint64_t nodes = 0;          // in the tree (removed ones the kernel holds too)
    std::uint32_t nr_inodes = 0, nr_inodes_per_uid = 0;
    friend bool operator==(const ServiceStatus&, const ServiceStatus&) = default;
};

// What the worker serving found lost when it started (daemon/recovery.hpp), and what waits
// under /.lost+found now (StatusInfo::recovery).
struct RecoveryStatus {
    std::uint64_t damaged_at = 0;     // the state log's first dropped byte (0: none)
    std::uint8_t unrestorable = 0;    // 1: the log held no consistent tree; an empty one is served
    std::uint64_t names_dropped = 0;  // names whose kernel object was gone
    std::uint64_t kept = 0;           // objects put under /.lost+found at that start
    std::uint64_t lost_found = 0;     // objects under /.lost+found now
    friend bool operator==(const RecoveryStatus&, const RecoveryStatus&) = default;
};

struct StatusInfo {
    // The value of dirs, maps, progs and links for a caller without CAP_SYS_ADMIN: the counts take
    // in directories it may not list (docs/protocol.md, "Who may ask what").
    static constexpr std::uint64_t kHidden = ~std::uint64_t{0};

    std::uint32_t pid = 0;
    std::uint32_t uid = 0, gid = 0, mode = 0;  // options in effect
    std::uint64_t dirs = 0, maps = 0, progs = 0;
    bool counts_shown() const { return dirs != kHidden; }
    std::string version;
    // pid is the daemon's (the supervisor's, docs/operations.md); this is the process serving.
    std::uint32_t worker_pid = 0;
    std::uint32_t generation = 0;  // workers started so far (1 = the first)
    std::uint32_t restarts = 0;    // of them, after a crash
    // The mount's rule set (compat=): kCompatSeed or kCompatLinux. A daemon that predates
    // compat= sends none, and means the seed.
    static constexpr std::uint8_t kCompatSeed = 0, kCompatLinux = 1;
    std::uint8_t compat = kCompatSeed;
    // Pinned links (kHidden as the other counts). A daemon that predates links sends none.
    std::optional<std::uint64_t> links;
    // What the broker serves and refuses (docs/operations.md, "What one user can take from
    // others"). Sent after links; a daemon that predates them sends none.
    using Service = ServiceStatus;
    std::optional<Service> service;
    // Sent after service; a daemon that predates recovery sends none.
    std::optional<RecoveryStatus> recovery;
    // Kernel bpf filesystems mounted on or under the mount (bpftool without `bpffsctl run` makes
    // them): their mount points, at most kMaxKernelBpffs of at most 512 bytes each. Sent after
    // recovery; a daemon that predates it sends none.
    static constexpr std::size_t kMaxKernelBpffs = 4;
    std::optional<std::vector<std::string>> kernel_bpffs;
    friend bool operator==(const StatusInfo&, const StatusInfo&) = default;
};

struct Reply {
    Op op = Op::get;
    int error = 0;  // 0 or a positive errno
    std::optional<GetReply> get;
    std::optional<StatusInfo> status;
    friend bool operator==(const Reply&, const Reply&) = default;
};

// How many fds must travel with a request of this op.
std::size_t expected_fds(Op op);

std::vector<std::uint8_t> encode(const Request& r);
std::vector<std::uint8_t> encode(const Reply& r);
// A reply that carries only an errno (0: success without payload).
Reply reply_error(Op op, int error);
// "pin", "get", ... for logs; "?" for a value that is no op.
const char* op_name(Op op);
// EPROTO: bad magic, version, op, flags, lengths or payload; EMSGSIZE: longer than kMaxMessage.
Result<Request> decode_request(std::span<const std::uint8_t> msg);
Result<Reply> decode_reply(std::span<const std::uint8_t> msg);

}  // namespace bpffs::protocol
