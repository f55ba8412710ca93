// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
// Header-only C++ wrapper over libbpffs: an owning fd type, throwing pin/get, and a kept
// connection.
//   bpffs::ObjectFd map = bpffs::obj_get("/mnt/bpf/tc/counters");
//   bpffs::obj_pin(map.get(), "/mnt/bpf/tc/counters2");
//   bpffs::Connection conn("/mnt/bpf");           // many requests, one connection
//   bpffs::ObjectFd again = conn.obj_get("/mnt/bpf/tc/counters");
// Every call takes an optional `const bpffs_opts*` (bpffs.h: e.g. a trusted uid).
// Errors are std::system_error with the errno of the C call (see bpffs.h, which also says what
// a connection's credentials are and how it behaves across threads and fork()).
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

inline ObjectFd obj_get(const std::string& path, const bpffs_opts* opts = nullptr) {
    int fd = bpffs_obj_get_opts(path.c_str(), opts);
    if (fd < 0) throw std::system_error(-fd, std::generic_category(), "bpffs_obj_get " + path);
    return ObjectFd(fd);
}

inline void obj_pin(int fd, const std::string& path, const bpffs_opts* opts = nullptr) {
    int rc = bpffs_obj_pin_opts(fd, path.c_str(), opts);
    if (rc < 0) throw std::system_error(-rc, std::generic_category(), "bpffs_obj_pin " + path);
}

// Owns a struct bpffs_conn. Move-only; closes it on destruction.
class Connection {
public:
    explicit Connection(const std::string& path_in_mount, const bpffs_opts* opts = nullptr) {
        int rc = bpffs_conn_open_opts(path_in_mount.c_str(), opts, &c_);
        if (rc < 0) {
            throw std::system_error(-rc, std::generic_category(),
                                    "bpffs_conn_open " + path_in_mount);
        }
    }
    ~Connection() { bpffs_conn_close(c_); }
    Connection(Connection&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
    Connection& operator=(Connection&& o) noexcept {
        if (this != &o) {
            bpffs_conn_close(c_);
            c_ = std::exchange(o.c_, nullptr);
        }
        return *this;
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    ObjectFd obj_get(const std::string& path, unsigned flags = 0) {
        int fd = bpffs_conn_obj_get(c_, path.c_str(), flags);
        if (fd < 0) {
            throw std::system_error(-fd, std::generic_category(), "bpffs_conn_obj_get " + path);
        }
        return ObjectFd(fd);
    }
    void obj_pin(int fd, const std::string& path) {
        int rc = bpffs_conn_obj_pin(c_, fd, path.c_str());
        if (rc < 0) {
            throw std::system_error(-rc, std::generic_category(), "bpffs_conn_obj_pin " + path);
        }
    }
    // The C handle (still owned by this object); null after a move.
    bpffs_conn* get() const noexcept { return c_; }

private:
    bpffs_conn* c_ = nullptr;
};

}  // namespace bpffs
