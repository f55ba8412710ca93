// SPDX-License-Identifier: GPL-2.0-or-later
// The errno of a Result, of a system call or of a libbpffs call, and errno values by name, as
// the tests compare them (no kernel, no Catch2).
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

namespace bpffs::test {

// "ENOENT" for ENOENT, "ok" for 0: errno values compared by name read well in a failure.
inline std::string ename(int e) {
    if (e == 0) return "ok";
    const char* n = strerrorname_np(e);
    return n != nullptr ? n : std::to_string(e);
}

// 0 for a Result with a value, else its errno.
template <class R>
int err_of(const R& r) {
    return r.has_value() ? 0 : r.error().value;
}

// The errno of a call returning 0 or -1. Takes the call's result, so errno is read before
// anything else can run.
inline int errno_of(int rc) { return rc == 0 ? 0 : errno; }

// 0 or the errno of a libbpffs call that returns 0/an fd or -errno with errno set (libbpf 1.x
// style); 250 if the return value and errno disagree.
inline int lib_errno(int rc) {
    if (rc >= 0) return 0;
    return rc == -errno ? errno : 250;
}

}  // namespace bpffs::test
