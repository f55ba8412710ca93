// SPDX-License-Identifier: GPL-2.0-or-later
// Catch2 helpers the kernel tests share: maps, programs, pins (header-only: they use REQUIRE and
// INFO, so they live apart from the support library the bench links too).
#pragma once

#include "tests/bpf_test_util.hpp"

#include <bpffs/bpffs.h>
#include <fcntl.h>
#include <catch2/catch.hpp>

#include <cerrno>
#include <string>

namespace bpffs::test {

// A map / a program, or the test stops here with the kernel's errno.
inline UniqueFd must_map(const char* name = "bpffs_test") {
    UniqueFd fd = create_hash_map(name);
    INFO("bpf_map_create: " << ename(errno));
    REQUIRE(fd);
    return fd;
}
inline UniqueFd must_prog(const char* name = "bpffs_test") {
    UniqueFd fd = load_trivial_prog(name);
    INFO("bpf_prog_load: " << ename(errno));
    REQUIRE(fd);
    return fd;
}
// A link of a new cgroup_skb program to `cg` (the link holds the program), or the test stops.
inline UniqueFd must_cgroup_link(const TempCgroup& cg) {
    UniqueFd link = new_cgroup_link(cg);
    INFO("cgroup_skb program and bpf_link_create to " << cg.path() << ": " << ename(errno));
    REQUIRE(link);
    return link;
}

// An O_PATH fd of `path`, or the test stops here.
inline UniqueFd o_path(const std::string& path) {
    UniqueFd fd(open(path.c_str(), O_PATH | O_CLOEXEC));
    INFO("open O_PATH " << path << ": " << ename(errno));
    REQUIRE(fd);
    return fd;
}

// 0 or the errno of bpffs_obj_pin; 250 if the return value and errno disagree (libbpf 1.x
// style: -errno returned, errno set).
inline int pin(int fd, const std::string& path) {
    errno = 0;
    int rc = bpffs_obj_pin(fd, path.c_str());
    if (rc == 0) return 0;
    int e = errno;
    return rc == -e ? e : 250;
}
inline void must_pin(int fd, const std::string& path) {
    INFO("pin " << path);
    REQUIRE(ename(pin(fd, path)) == ename(0));
}

}  // namespace bpffs::test
