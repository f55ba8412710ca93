// SPDX-License-Identifier: GPL-2.0-or-later
// Mount options: parsing and validation of the -o list, remount, and show-options, with the
// seed's rules (bpf_parse_options of the 2015 patch, plus uid=/gid=):
//  - uid=, gid=: an integer as the kernel's match_int reads it (C base 0: 1001, 0x3e9, 010;
//    a sign is allowed; it must fit an int), then a valid id: (uid_t)-1 is not one.
//  - mode=: octal (match_octal: base 8, fits an int), masked with 07777.
//  - standard FUSE and mount options (rw, nosuid, allow_other, fsname=, ...) are not ours: they are
//    returned for libfuse. Anything else is an error naming the option. Empty elements are skipped.
// Errors carry a one-line message for the operator.
#pragma once

#include "common/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bpffs::fsops {

inline constexpr std::uint32_t kDefaultRootMode = 0700;

struct MountOptions {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::uint32_t mode = kDefaultRootMode;  // permission bits of the root, 07777
    friend bool operator==(const MountOptions&, const MountOptions&) = default;
};

struct OptionError {
    std::string option;   // the element as given, e.g. "uid=abc"
    std::string message;  // e.g. "invalid value for uid: 'abc'"
};

struct ParsedOptions {
    MountOptions ours;
    std::vector<std::string> passthrough;  // standard FUSE/mount options, in order
};

// Parses a comma-separated list, starting from `base` (defaults at mount).
Result<ParsedOptions, OptionError> parse_mount_options(std::string_view list,
                                                       const MountOptions& base = {});

// Remount (seed bpf_remount): mode resets to 0700 when not given; uid/gid keep their current
// values when not given. All or nothing: on error `current` is what stays in force.
Result<MountOptions, OptionError> parse_remount_options(std::string_view list,
                                                        const MountOptions& current);

// Show-options: "uid=N" if not 0, "gid=N" if not 0, "mode=O" (octal) if not 0700, comma-joined.
std::string show_options(const MountOptions& opts);

// True when `name` (the part before '=') is a standard option that belongs to libfuse / mount(8).
bool is_passthrough_option(std::string_view element);

}  // namespace bpffs::fsops
