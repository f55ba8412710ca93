// SPDX-License-Identifier: GPL-2.0-or-later
// The compat=linux comparison the compat tests share (tests/compat_linux_test.cpp,
// tests/btf_text_test.cpp): the same steps run on a kernel bpffs (`mount -t bpf`) and on a
// `bpffs-fuse -o compat=linux` mount made with the same options, each step's outcome a string,
// so a difference reads as two lines. Header-only (it uses CHECK and INFO); needs root.
#pragma once

#include "tests/bpf_test_util.hpp"   // KernelBpffs
#include "tests/kernel_helpers.hpp"  // pin
#include "tests/mount_fixture.hpp"
#include "tests/result_helpers.hpp"

#include <bpf/bpf.h>
#include <sys/stat.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace bpffs::test {

// One of the two filesystems under comparison: where it is, and how a pin reaches it.
struct Side {
    std::string root;
    bool kernel;
    std::string p(const std::string& rel) const { return rel.empty() ? root : root + "/" + rel; }
};

// "ENOENT", or "dir 1777 0:0 nlink 2" (type, permission bits, owner, links); a symlink adds its
// size and target: "symlink 0777 0:0 nlink 1 size 0 -> m".
inline std::string stat_of(const std::string& path) {
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) return ename(errno);
    const char* type = S_ISDIR(st.st_mode)   ? "dir"
                       : S_ISREG(st.st_mode) ? "file"
                       : S_ISLNK(st.st_mode) ? "symlink"
                                             : "other";
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s %04o %u:%u nlink %lu", type, st.st_mode & 07777, st.st_uid,
                  st.st_gid, static_cast<unsigned long>(st.st_nlink));
    std::string out = buf;
    if (S_ISLNK(st.st_mode)) {
        char target[256] = {};
        ssize_t n = readlink(path.c_str(), target, sizeof target - 1);
        out += " size " + std::to_string(st.st_size) + " -> " + (n >= 0 ? target : ename(errno));
    }
    return out;
}

// The outcome of a call: its errno name (OK for 0), then what `path` is afterwards.
inline std::string outcome(int e, const std::string& path) {
    return (e == 0 ? std::string("OK") : ename(e)) + " -> " + stat_of(path);
}

// Pins `fd` at `path` the way each side takes pins: bpf(2) on the kernel's, libbpffs on ours.
inline std::string pin_at(const Side& s, int fd, const std::string& path) {
    int e = s.kernel ? -bpf_obj_pin(fd, path.c_str()) : pin(fd, path);
    return outcome(e, path);
}

// Runs `steps` on both sides and compares the outcomes one by one; returns the kernel's.
using Steps = std::function<std::vector<std::string>(const Side&)>;
inline std::vector<std::string> compare(const std::string& opts, const Steps& steps) {
    KernelBpffs kernel(opts);
    Mount ours(opts.empty() ? "compat=linux" : "compat=linux," + opts);
    auto want = steps(Side{kernel.path(), true});
    auto got = steps(Side{ours.path(), false});
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        INFO("step " << i << " with -o '" << opts << "'");
        CHECK(got[i] == want[i]);
    }
    return want;
}

}  // namespace bpffs::test
