// SPDX-License-Identifier: GPL-2.0-or-later
// What makes a name one that mkdir and pin accept: the rules' vocabulary, shared by the
// operations (filesystem.cpp) and restore's checks (restore.cpp).
#pragma once

#include "fsops/types.hpp"

#include <string_view>

namespace bpffs::fsops {

// '.' anywhere: reserved (the seed's bpf_dname_reserved: EPERM).
inline bool is_dotted(std::string_view name) { return name.find('.') != std::string_view::npos; }
inline constexpr const char* kDottedRule = "names containing '.' are reserved";
// The root's directory of objects the daemon holds that no restored name does (a damaged state
// log, docs/operations.md "The state log"): a generated name, as the broker's socket is.
inline constexpr std::string_view kLostFoundName = ".lost+found";
// A dotted name the daemon generates, which lookup finds in both rule sets: the socket in every
// directory, kLostFoundName in the root.
inline bool is_generated(Ino parent, std::string_view name) {
    return name == kSocketName || (parent == kRootIno && name == kLostFoundName);
}
// A name no path component can be.
inline bool is_bad_name(std::string_view name) {
    return name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos;
}
// A name mkdir or pin could have created.
inline bool is_valid_name(std::string_view name) {
    return !name.empty() && name.size() <= kNameMax && !is_bad_name(name) && !is_dotted(name);
}

}  // namespace bpffs::fsops
