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
 * errno set to the same (positive) value. Thread-safe; fds are close-on-exec; no call raises
 * SIGPIPE.
 *
 * bpffs_obj_pin() and bpffs_obj_get() keep the connection they make to a mount's broker and
 * take it again at the next call (below, "Connections"); a struct bpffs_conn is one such
 * connection the caller holds itself, whatever its credentials do meanwhile.
 *
 * Trust: before it sends anything (or accepts an fd), every call checks the socket it found:
 * a socket on the directory's own FUSE mount (not a symlink, not on another filesystem),
 * listened on by a process (SO_PEERCRED) running as root, as the caller's effective uid, or
 * as the trusted uid of the _opts calls (bpffs_opts.trust_uid: for a mount another user made,
 * e.g. with fusermount3). Otherwise the call fails with EPERM and nothing leaves the process.
 * docs/protocol.md ("What the client checks") says what this proves and what it cannot.
 *
 * The daemon may restart its worker or be upgraded while a call is under way: a connection that
 * breaks before its reply (EOF, ECONNRESET, EPIPE), or a connect refused meanwhile (ECONNREFUSED,
 * EAGAIN), is retried on a new connection for about 2 s (pauses of 10 ms, doubling). A get is
 * simply sent again. A pin is sent again; if that answers EEXIST, the object pinned under the
 * name is fetched and compared (kernel id): the same object means the first attempt did it, and
 * the pin succeeds.
 */
#ifndef BPFFS_BPFFS_H
#define BPFFS_BPFFS_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stddef.h>
#include <sys/types.h>

#define BPFFS_API __attribute__((visibility("default")))

/* The bpf(2) file_flags of BPF_OBJ_GET / BPF_OBJ_PIN, with the kernel's values (BPF_F_RDONLY,
 * BPF_F_WRONLY and BPF_F_PATH_FD of <linux/bpf.h>; the last is Linux 6.5 and missing from older
 * headers). */
#define BPFFS_F_RDONLY (1U << 3)
#define BPFFS_F_WRONLY (1U << 4)
#define BPFFS_F_PATH_FD (1U << 14)

/* The bits of bpffs_opts.pin_set: the fields a pin gives its new object. */
#define BPFFS_PIN_MODE (1U << 0)
#define BPFFS_PIN_UID (1U << 1)
#define BPFFS_PIN_GID (1U << 2)

/* Options of the _opts calls. Zero it, set sz = sizeof(struct bpffs_opts), then the fields
 * wanted (libbpf's convention: a later version may add fields; a NULL opts is all defaults; a
 * caller built against an older header passes a smaller sz, and the fields it lacks are 0; an
 * sz larger than this version knows is EINVAL unless the bytes beyond are 0). */
struct bpffs_opts {
    size_t sz;
    /* Trust the broker of a daemon that runs as this uid too (root's and the caller's own are
     * always trusted; 0: no other). Trust it only if that user may hold your objects. */
    uid_t trust_uid;
    /* As libbpf's bpf_obj_get_opts / bpf_obj_pin_opts .file_flags. get: BPFFS_F_RDONLY (needs
     * read permission; a map's fd is read-only: updates through it fail with EPERM),
     * BPFFS_F_WRONLY (write permission; a write-only map fd), neither (read and write
     * permission on a compat=linux mount, write permission on a compat=seed one: O_RDWR), both:
     * EINVAL. pin: 0. Both: BPFFS_F_PATH_FD, then `path_fd` is the directory a relative
     * pathname starts from. Other bits: EINVAL. A compat=seed mount (the 2015 filesystem, whose
     * bpf(2) had no flags) answers EINVAL to any of them. bpffs_conn_open_opts: must be 0. */
    unsigned int file_flags;
    /* With BPFFS_F_PATH_FD: a directory fd (AT_FDCWD: the working directory); relative
     * pathnames start there, absolute ones ignore it (EBADF: not an open fd; ENOTDIR: not a
     * directory). Without the flag it must be 0 (EINVAL), as bpf(2) says. */
    int path_fd;
    /* Pin only (other calls: all 0, else EINVAL). The new object's permission bits and owner,
     * given as it is made, so that nobody ever sees it with others: as a pin, a chmod and a
     * chown in one step. pin_set says which fields count (BPFFS_PIN_MODE, _UID, _GID); the
     * others keep the mount's defaults (the caller's uid and gid, or a setgid parent's group;
     * 0600, minus the umask on a compat=linux mount). `mode`: permission bits only (<= 0777);
     * `uid`, `gid`: not (uid_t)-1 / (gid_t)-1 (EINVAL). Who may give what, as chown(2) says:
     * another owner needs CAP_CHOWN, another group membership of it or CAP_CHOWN (capabilities
     * count for root only, docs/protocol.md); else EPERM, after the pin's other checks.
     * A daemon older than these fields answers EPROTO. */
    unsigned int pin_set;
    mode_t mode;
    uid_t uid;
    gid_t gid;
};

/* Pins the map or program (compat=linux: also the link) `fd` at `pathname` (the caller keeps
 * `fd`). Needs CAP_SYS_ADMIN on a compat=seed mount; on a compat=linux mount none, but write and
 * search permission on the parent, and the object's mode is 0600 minus the caller's umask.
 * Errors: EPERM (no CAP_SYS_ADMIN (seed), a name with '.', a parent on another filesystem
 * (linux), or the socket is not served by a trusted daemon: nothing was sent), EBADF (seed),
 * EINVAL (not a map or program; a link unless linux), ENOENT, ENOTDIR, EACCES (search permission;
 * write permission (linux); parent not on a bpffs-fuse mount (seed)), EEXIST, EBUSY (the directory
 * has subdirectories: seed), EROFS, ETIMEDOUT/ECONNREFUSED (broker gone). */
BPFFS_API int bpffs_obj_pin(int fd, const char* pathname);
/* The same with options (NULL: as bpffs_obj_pin): file_flags 0 or BPFFS_F_PATH_FD with
 * path_fd. EINVAL for a bad opts (checked first, as bpf(2) checks its flags first). */
BPFFS_API int bpffs_obj_pin_opts(int fd, const char* pathname, const struct bpffs_opts* opts);

/* Connections: the calls above and below that take a path keep the connection they make to a
 * mount's broker (a close-on-exec socket), and a later call on that mount takes it again, as
 * long as the calling thread's credentials (uids, gids, groups, effective capabilities) are
 * those it had when it was made and the process is the same: a setuid, a capability drop, a
 * user-namespace change or a fork() makes the next call connect anew, with the credentials of
 * that moment. Concurrent calls from several threads each use a connection of their own. */

/* Closes the connections the one-shot calls keep (the next call connects again): for a program
 * about to close fds it did not open, or that counts its own. Safe to call at any time; not
 * from a signal handler. */
BPFFS_API void bpffs_close_kept_connections(void);

/* Returns a new fd (O_RDWR, close-on-exec) for the object pinned at `pathname`.
 * Errors: ENOENT, ENOTDIR, ELOOP, EACCES (search or write permission; not an object), EROFS,
 * EPERM (the socket is not served by a trusted daemon: nothing was sent or accepted). */
BPFFS_API int bpffs_obj_get(const char* pathname);
/* The same with options (NULL: as bpffs_obj_get): file_flags BPFFS_F_RDONLY or BPFFS_F_WRONLY
 * (compat=linux mounts: a read-only or write-only map fd; a program's fd is O_RDWR anyway; a
 * read-only mount refuses all but BPFFS_F_RDONLY with EROFS), BPFFS_F_PATH_FD with path_fd.
 * EINVAL for a bad opts (checked before the path, as bpf(2) does), and from a compat=seed
 * mount's broker for any flag (after the path: the client cannot know the mount's rules
 * before it reaches the broker). A daemon that may not open objects by id (rootless) answers
 * a read-only or write-only map get with EPERM. */
BPFFS_API int bpffs_obj_get_opts(const char* pathname, const struct bpffs_opts* opts);

/* A kept connection to the broker of one bpffs-fuse mount.
 *
 * Credentials: the broker knows a caller by the credentials the kernel recorded when the
 * connection was made (SO_PEERCRED, SO_PEERGROUPS), as with any Unix socket. Every request on
 * a connection is answered for those credentials, also after the process has changed its
 * uid, gid or groups: a process that changes them (e.g. drops privileges) must close the
 * connection and open a new one. A process that inherits a connection over fork() gets its
 * own socket at its first call (connected with its credentials of that moment), provided no
 * other thread was in a call on it at the time of the fork (its lock would stay taken).
 *
 * Threads: a connection may be used from several threads; their calls are served one at a
 * time (the protocol answers one request at a time per connection). Open one connection per
 * thread for parallel requests.
 *
 * Every reconnect checks the socket again as the first connect did (EPERM if it fails).
 * A reconnect after a broken connection (see above) is transparent; the broker also closes
 * a connection idle for 30 s, and the next call reconnects without delay. When no broker can
 * be reached any more, calls fail with -1 (ECONNREFUSED, ECONNRESET, ENOENT...) and errno. */
struct bpffs_conn;

/* Connects to the broker of the mount that holds `path_in_mount` (any directory or file on
 * the mount; it is found as the calls above find it, $BPFFS_SOCKET included). 0 and *out set,
 * or a negative errno (*out NULL): ENOENT, ENOTDIR, ELOOP, EACCES (search permission; not on
 * a bpffs-fuse mount), EPERM (not served by a trusted daemon), EFAULT (NULL argument),
 * ENOMEM. */
BPFFS_API int bpffs_conn_open(const char* path_in_mount, struct bpffs_conn** out);
/* The same with options (NULL: as bpffs_conn_open), kept for the connection's life: its
 * reconnects and the calls it hands to another mount's broker trust the same uid. */
BPFFS_API int bpffs_conn_open_opts(const char* path_in_mount, const struct bpffs_opts* opts,
                                   struct bpffs_conn** out);

/* As bpffs_obj_get_opts() with file_flags `flags`, over the connection: 0, BPFFS_F_RDONLY or
 * BPFFS_F_WRONLY (compat=linux mounts; EINVAL from a compat=seed one); anything else EINVAL
 * (there is no path_fd here). A path on another mount is answered by that mount's broker, on a
 * connection of its own, as bpffs_obj_get() would. */
BPFFS_API int bpffs_conn_obj_get(struct bpffs_conn* conn, const char* pathname, unsigned flags);

/* As bpffs_obj_pin(), over the connection (a path on another mount: as bpffs_obj_pin()). */
BPFFS_API int bpffs_conn_obj_pin(struct bpffs_conn* conn, int fd, const char* pathname);

/* Closes the connection and frees it. NULL is allowed. No call may use it any more. */
BPFFS_API void bpffs_conn_close(struct bpffs_conn* conn);

#ifdef __cplusplus
}
#endif

#endif /* BPFFS_BPFFS_H */
