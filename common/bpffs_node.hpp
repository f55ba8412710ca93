// SPDX-License-Identifier: GPL-2.0-or-later
// Is a node on a bpffs-fuse mount? Asked where a bpf(2) pin or get, or a statfs, is to be served
// instead of the kernel: by the preload shim inside the caller, and by bpffsctl's seccomp
// supervisor on the caller's behalf (client/seccomp_supervisor.hpp).
//
// "On a bpffs-fuse mount" is decided from the filesystem, never from the path's text: the kernel
// walks the path (relative paths, symlinks, bind mounts, mount namespaces, chroots all resolve
// as they would for the real call), the object's filesystem must report FUSE_SUPER_MAGIC, and
// the directory that holds it must contain the broker's socket `.bpffs.sock` (a lookup the
// daemon answers in every directory; readdir never lists it) on the same device. A node that is
// not a directory is judged by its parent: the lexical one, after following a final symlink as
// the kernel does (for fstatfs, which has no path: the directory /proc/self/fd names). A
// directory the caller may not search is judged by its parent (through /proc/self/fd).
//
// Async-signal-safe and thread-safe: no locks, no allocation, only system calls (open, fstat,
// fstatat, fstatfs, readlink, close) and stack buffers; errno is clobbered.
#pragma once

namespace bpffs::node {

// Is the open `fd` on a FUSE filesystem (fstatfs(2) through syscall(2))?
bool on_fuse(int fd);
// Is the open node `fd` (on a FUSE filesystem) on a bpffs-fuse mount? `path` (relative to
// `dirfd`), when given, is how the caller named it: the directory holding it is then found from
// the path, so that no /proc is needed.
bool node_on_bpffs_fuse(int fd, int dirfd, const char* path);
// statfs(path) follows symlinks, and so does this.
bool on_bpffs_fuse(const char* path);
bool on_bpffs_fuse(int fd);
// The target of a pin: is the parent directory of `path` (relative to `dirfd`) a bpffs-fuse
// directory? `path` has been read already (a string shorter than PATH_MAX).
bool pin_target_on_bpffs_fuse(int dirfd, const char* path);
// The target of a get: is what `path` (relative to `dirfd`) names on a bpffs-fuse mount?
bool get_target_on_bpffs_fuse(int dirfd, const char* path);

}  // namespace bpffs::node
