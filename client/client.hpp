// SPDX-License-Identifier: GPL-2.0-or-later
// The client side of the broker protocol, shared by libbpffs's C API and bpffsctl: find the
// broker of a directory, send one request with its fds, read one reply (with a timeout).
#pragma once

#include "broker/protocol.hpp"
#include "common/unique_fd.hpp"
#include "fsops/result.hpp"

#include <span>
#include <string>

namespace bpffs::client {

struct Response {
    protocol::Reply reply;
    UniqueFd fd;  // the fetched object (get)
};

// Connects to the broker that serves directory `dir` ($BPFFS_SOCKET if set, else
// "<dir>/.bpffs.sock"; when that is too long for a socket address, `dir` is reached through
// /proc/self/fd/<dirfd>, with `dirfd` an O_PATH fd of it, or one opened here when it is -1). ENOENT: no broker there (not a bpffs-fuse directory).
Result<UniqueFd> connect_broker(const std::string& dir, int dirfd);

// One request/reply exchange on a connected socket. Protocol errors: EPROTO.
Result<Response> exchange(int sock, const protocol::Request& req, std::span<const int> fds);

// The directory part of a path as the kernel's walk would see it ("a/b" -> "a", "b" -> ".",
// "/b" -> "/"), and the last component ("" when the path ends in '/').
std::string dir_part(const std::string& path);
std::string name_part(const std::string& path);

}  // namespace bpffs::client
