// SPDX-License-Identifier: GPL-2.0-or-later
// bpffsctl's --mode and --owner (pin, mkdir): the mode and owner a new object or directory gets.
#pragma once

#include "common/pin_attrs.hpp"
#include "common/result.hpp"

#include <string>

namespace bpffs::ctl {

// MODE: octal permission bits (at most 0777), as chmod(1) takes them in digits. OWNER, as
// chown(1) takes it: USER, USER:GROUP or :GROUP, each a name or a number. Empty strings set
// nothing. The attrs, or the message of a usage error.
Result<PinAttrs, std::string> parse_attrs(const std::string& mode, const std::string& owner);

}  // namespace bpffs::ctl
