// SPDX-License-Identifier: GPL-2.0-or-later
// Mount options: parsing and validation of the -o list, remount, and show-options. compat=
// chooses the rule set of the whole mount (fsops/policy.hpp): `seed` (the default) or `linux`
// (today's kernel bpffs, spec section 7). With the seed's rules (bpf_parse_options of the 2015
// patch, plus uid=/gid=):
//  - uid=, gid=: an integer as the kernel's match_int reads it (C base 0: 1001, 0x3e9, 010;
//    a sign is allowed; it must fit an int), then a valid id: (uid_t)-1 is not one.
//  - mode=: octal (match_octal: base 8, fits an int), masked with 07777.
//  - standard FUSE and mount options (rw, nosuid, allow_other, fsname=, ...) are not ours: they are
//    returned for libfuse. Anything else is an error naming the option. Empty elements are skipped.
// compat=linux as today's kernel: the root defaults to 01777 owned by the mounter, the sticky
// bit is always added to mode=, unknown options are ignored (bad values of ours are still
// errors), and a remount validates its list and changes nothing. compat= itself cannot change
// at remount (an error in both modes).
// This product's service limits (ServiceLimits) are options of both rule sets; like compat=,
// they cannot change at remount (an error in both).
// Errors carry a one-line message for the operator.
#pragma once

#include "common/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bpffs::fsops {

inline constexpr std::uint32_t kDefaultRootMode = 0700;
inline constexpr std::uint32_t kLinuxRootMode = 01777;  // compat=linux's default

// The rule set of a mount: the seed's filesystem, or today's kernel bpffs.
enum class Compat : std::uint8_t { seed, linux };

struct MountOptions {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint32_t mode = kDefaultRootMode;  // permission bits of the root, 07777
    Compat compat = Compat::seed;
    friend bool operator==(const MountOptions&, const MountOptions&) = default;
};

// Who mounts: compat=linux's root belongs to them unless uid= or gid= say otherwise.
struct Mounter {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
};

struct OptionError {
    std::string option;   // the element as given, e.g. "uid=abc"
    std::string message;  // e.g. "invalid value for uid: 'abc'"
};

// What clients may hold (docs/operations.md, "What one user can take from others"): the tree's
// nodes (below), and the broker's connections: max_conns= connections in
// all, max_conns_per_uid= for one unprivileged uid. A uid is privileged when it is root or owns
// the mount: privileged uids have no share of their own, and the last reserved_conns() of
// max_conns are theirs alone, so that no unprivileged user can lock them out. Not the core's
// (the broker's), and not in the state: every worker is handed the options.
struct ServiceLimits {
    std::uint32_t max_conns = 4096;
    std::uint32_t max_conns_per_uid = 256;
    // nr_inodes=, nr_inodes_per_uid=: nodes in the tree, in all and owned by one uid (the core's
    // NodeLimits; root and the root directory's owner have no share of their own).
    std::uint32_t nr_inodes = 4194304;
    std::uint32_t nr_inodes_per_uid = 65536;
    // A sixteenth of max_conns, at least one where there is more than one.
    std::uint32_t reserved_conns() const {
        return max_conns / 16 > 0 ? max_conns / 16 : max_conns > 1 ? 1 : 0;
    }
    friend bool operator==(const ServiceLimits&, const ServiceLimits&) = default;
};

struct ParsedOptions {
    MountOptions ours;
    std::vector<std::string> passthrough;  // standard FUSE/mount options, in order
    ServiceLimits limits;
};

// Parses a comma-separated list, starting from `base` (the seed's defaults at mount; under
// compat=linux its defaults replace base's uid, gid (the mounter's) and mode).
Result<ParsedOptions, OptionError> parse_mount_options(std::string_view list,
                                                       const MountOptions& base = {},
                                                       Mounter mounter = {});

// Remount (seed bpf_remount): mode resets to 0700 when not given; uid/gid keep their current
// values when not given. All or nothing: on error `current` is what stays in force.
Result<MountOptions, OptionError> parse_remount_options(std::string_view list,
                                                        const MountOptions& current);

// Show-options: "uid=N" if not 0, "gid=N" if not 0, "mode=O" (octal) if not 0700, comma-joined.
// compat=linux: "compat=linux" first, then as today's kernel shows them: uid and gid as above,
// mode without the sticky bit unless it is 0777.
std::string show_options(const MountOptions& opts);

// Every option, explicitly ("compat=linux,uid=N,gid=N,mode=O,max_conns=N,max_conns_per_uid=N"):
// what parse_mount_options reads back as `opts` and `limits` whoever mounts (an id above INT_MAX
// as the negative int it was given as). For handing the options to another process.
std::string full_options(const MountOptions& opts, const ServiceLimits& limits = {});

// True when `name` (the part before '=') is a standard option that belongs to libfuse / mount(8).
bool is_passthrough_option(std::string_view element);

}  // namespace bpffs::fsops
