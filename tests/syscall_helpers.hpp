// SPDX-License-Identifier: GPL-2.0-or-later
// Catch2 helpers for plain syscalls that the mount, kernel and client tests share: each one
// makes the call or stops the test with its errno by name (header-only: they use REQUIRE and
// INFO, so they live apart from the support library the bench links too).
#pragma once

#include "tests/result_helpers.hpp"

#include <sys/stat.h>
#include <sys/types.h>
#include <catch2/catch.hpp>

#include <string>

namespace bpffs::test {

// mkdir(2) with `mode` (masked by the umask, as mkdir's is), or the test stops here.
inline void must_mkdir(const std::string& path, mode_t mode = 0755) {
    INFO("mkdir " << path);
    REQUIRE(ename(errno_of(::mkdir(path.c_str(), mode))) == ename(0));
}

// stat(2) of `path`, or the test stops here.
inline struct stat must_stat(const std::string& path) {
    struct stat st {};
    INFO("stat " << path);
    REQUIRE(ename(errno_of(::stat(path.c_str(), &st))) == ename(0));
    return st;
}

}  // namespace bpffs::test
