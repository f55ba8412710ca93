// SPDX-License-Identifier: GPL-2.0-or-later
// The errno of a Result or of a system call, as the tests compare them (no kernel, no Catch2).
#pragma once

#include <cerrno>

namespace bpffs::test {

// 0 for a Result with a value, else its errno.
template <class R>
int err_of(const R& r) {
    return r.has_value() ? 0 : r.error().value;
}

// The errno of a call returning 0 or -1. Takes the call's result, so errno is read before
// anything else can run.
inline int errno_of(int rc) { return rc == 0 ? 0 : errno; }

}  // namespace bpffs::test
