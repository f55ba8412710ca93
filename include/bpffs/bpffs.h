/* SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause */
/*
 * libbpffs: pin and fetch eBPF maps and programs on a bpffs-fuse mount.
 *
 * The two calls mirror libbpf's bpf_obj_pin() and bpf_obj_get() (BPF_OBJ_PIN / BPF_OBJ_GET) for
 * paths on a bpffs-fuse mount: they find the mount's broker through the path itself (a socket
 * reachable as ".bpffs.sock" in every directory of the mount; $BPFFS_SOCKET overrides it), let
 * the kernel walk the path (search permission, symlinks, bind mounts, namespaces) and send the
 * result with the request. Errors are those of the kernel's bpf filesystem of 2015, as listed
 * in bpffs(3) and docs/semantics.md.
 *
 * Return values follow libbpf 1.x: 0 or a new fd on success, a negative errno on failure, with
 * errno set to the same (positive) value. Thread-safe; no global state; fds are close-on-exec.
 */
#ifndef BPFFS_BPFFS_H
#define BPFFS_BPFFS_H

#ifdef __cplusplus
extern "C" {
#endif

#define BPFFS_API __attribute__((visibility("default")))

/* Pins the map or program `fd` at `pathname` (the caller keeps `fd`). Needs CAP_SYS_ADMIN.
 * Errors: EPERM (no CAP_SYS_ADMIN, or a name with '.'), EBADF, EINVAL (not a map or program),
 * ENOENT, ENOTDIR, EACCES (search permission; parent not on a bpffs-fuse mount), EEXIST,
 * EBUSY (the directory has subdirectories), EROFS, ETIMEDOUT/ECONNREFUSED (broker gone). */
BPFFS_API int bpffs_obj_pin(int fd, const char *pathname);

/* Returns a new fd (O_RDWR, close-on-exec) for the object pinned at `pathname`.
 * Errors: ENOENT, ENOTDIR, ELOOP, EACCES (search or write permission; not an object), EROFS. */
BPFFS_API int bpffs_obj_get(const char *pathname);

#ifdef __cplusplus
}
#endif

#endif /* BPFFS_BPFFS_H */
