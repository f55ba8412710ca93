// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Header-only C++ wrapper over libbpffs: an owning fd type and throwing pin/get.
//   bpffs::ObjectFd map = bpffs::obj_get("/mnt/bpf/tc/counters");
//   bpffs::obj_pin(map.get(), "/mnt/bpf/tc/counters2");
// Errors are std::system_error with the errno of the C call (see bpffs.h).
#pragma once

#include <bpffs/bpffs.h>
#include <unistd.h>

#include <string>
#include <system_error>
#include <utility>

namespace bpffs {

class ObjectFd {
public:
    ObjectFd() = default;
    explicit ObjectFd(int fd) : fd_(fd) {}
    ~ObjectFd() { reset(); }
    ObjectFd(ObjectFd&& o) noexcept : fd_(o.release()) {}
    ObjectFd& operator=(ObjectFd&& o) noexcept {
        if (this != &o) reset(o.release());
        return *this;
    }
    ObjectFd(const ObjectFd&) = delete;
    ObjectFd& operator=(const ObjectFd&) = delete;

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

inline ObjectFd obj_get(const std::string& path) {
    int fd = bpffs_obj_get(path.c_str());
    if (fd < 0) throw std::system_error(-fd, std::generic_category(), "bpffs_obj_get " + path);
    return ObjectFd(fd);
}

inline void obj_pin(int fd, const std::string& path) {
    int rc = bpffs_obj_pin(fd, path.c_str());
    if (rc < 0) throw std::system_error(-rc, std::generic_category(), "bpffs_obj_pin " + path);
}

}  // namespace bpffs
