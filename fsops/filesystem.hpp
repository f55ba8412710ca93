// SPDX-License-Identifier: GPL-2.0-or-later
// The bpffs semantics as a pure in-memory core: the tree, names, the terminal-directory rule,
// modes and owners, xattrs, the inode table with lookup counts, and the two bpf(2) commands
// BPF_PIN_FD / BPF_NEW_FD (pin, get). No FUSE, no syscalls, no fds: a pinned object is an
// ObjHandle that the broker resolves.
//
// Layering, as in the kernel: the VFS (with FUSE's default_permissions) does the permission
// checks of mkdir/rmdir/unlink/setattr (W+X on the parent, owner/CAP_FOWNER/CAP_CHOWN, sticky)
// before the daemon sees a request; the core is the filesystem below it (the seed's inode
// operations), so those calls apply what they are given. Where the spec's result depends on the
// caller at the filesystem level (open, getxattr, get) or emulates a syscall the kernel does not
// check for us (pin, get), the core takes a Caller and checks.
//
// Inode numbers are never reused. A node the kernel knows (nlookup > 0) outlives its unlink
// until forget() drops the count to 0, as FUSE requires; its kernel object is released at
// unlink (the handle is returned to the caller), not at forget.
//
// Persistence (state.hpp): every call that changes a node or the meta reports its changes to the
// change sink, once, at its end; snapshot() and restore() turn the whole core into a CoreState
// and back.
//
// Thread safety: every public member takes the one internal mutex; calls may come from any
// thread. Callbacks (the readdir sink, the change sink) run under that mutex and must not call
// back into the core.
#pragma once

#include "common/result.hpp"
#include "fsops/mount_options.hpp"
#include "fsops/policy.hpp"
#include "fsops/state.hpp"
#include "fsops/types.hpp"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bpffs::fsops {

using Clock = std::function<Timespec()>;
Timespec system_clock_now();

// One directory entry as readdir hands it to a sink.
struct DirEntry {
    std::string_view name;
    Attr attr;               // full attributes (readdirplus); readdir uses ino and the type bits
    std::uint64_t next_off;  // the offset to resume after this entry
};

// Accepts entries until full; returns false (and keeps nothing) when the entry does not fit.
using DirSink = std::function<bool(const DirEntry&)>;

// Receives the changes of one call, in order (see set_change_sink).
using ChangeSink = std::function<void(const std::vector<Change>&)>;

// An object the daemon holds, as the core names it (Filesystem::keep_lost).
struct HeldObject {
    ObjHandle handle = 0;
    ObjType type = ObjType::map;
    std::uint32_t id = 0;  // the kernel's id, for its name
};

// Result of an unlink: the kernel object the name held, to release at once.
struct Unlinked {
    std::optional<ObjHandle> released;
};

// A pin on its way into the tree: the arguments of Filesystem::pin() that the broker hands to
// the MKNOD which publishes it through the VFS (broker/handlers.cpp, daemon/fuse_adapter.cpp).
struct PinRequest {
    Caller caller;
    Ino parent = 0;
    std::string name;
    ObjType type = ObjType::map;
    ObjHandle handle = 0;
    bool read_only = false;
    std::uint32_t umask = 022;  // the caller's (compat=linux: the object's mode is 0600 & ~umask)
    PinAttrs attrs;             // the mode and owner asked (Filesystem::pin)
};

class Filesystem {
public:
    // The rule set is the options' compat= (fsops/policy.hpp).
    explicit Filesystem(MountOptions opts = {}, Clock clock = system_clock_now);
    ~Filesystem();
    Filesystem(const Filesystem&) = delete;
    Filesystem& operator=(const Filesystem&) = delete;

    // --- inode table --------------------------------------------------------------------
    // lookup: ENOENT, ENOTDIR (parent not a dir), ENAMETOOLONG; compat=linux: EPERM for any
    // dotted name but the broker's socket. Success counts one lookup.
    Result<Attr> lookup(Ino parent, std::string_view name);
    // Drops n lookups; a removed node with no lookups left is freed. Unknown inos are ignored.
    void forget(Ino ino, std::uint64_t n);
    Result<Attr> getattr(Ino ino) const;
    // The path of a node from the mount's root ("/" for the root; a hard link: its first name),
    // for logs: "(removed) /a/b" for a removed node the kernel still holds, "(socket)" for the
    // broker's socket node, "ino N" for one the table does not have.
    std::string path_of(Ino ino) const;
    // Lookup count of a live node (tests, status).
    std::uint64_t nlookup(Ino ino) const;
    bool exists(Ino ino) const;  // still in the table (live, or removed but referenced)

    // --- namespace operations (VFS checks done by the kernel) ----------------------------
    // mkdir: ENOTDIR, ENAMETOOLONG, EEXIST (also "." and ".."), EPERM (dotted name, terminal
    // parent), ENOENT (parent removed). Mode: the policy's new_dir_mode (the seed: the parent's
    // full mode; compat=linux: `mode`, the request's after the umask); owner = caller uid; gid =
    // parent's if it is setgid, else caller gid. Counts one lookup (the entry reply).
    Result<Attr> mkdir(const Caller& c, Ino parent, std::string_view name,
                       std::uint32_t mode = 0777);
    // rmdir: ENOENT, ENOTDIR (not a dir), ENOTEMPTY.
    Result<void> rmdir(Ino parent, std::string_view name);
    // unlink: ENOENT, EISDIR. Returns the object's handle, which the caller releases.
    Result<Unlinked> unlink(Ino parent, std::string_view name);
    // rename, link and symlink: the policy's name_ops_refused first (the seed: EPERM, none of
    // these operations). compat=linux, in the kernel's order (do_renameat2, vfs_rename,
    // simple_rename; the VFS has made the permission checks):
    // rename: EINVAL (flags), EROFS, the parents (ENOENT, ENOTDIR), ENAMETOOLONG, EPERM (a dotted
    // name: the lookup), ENOENT (no source; with RENAME_EXCHANGE, no target), EEXIST
    // (RENAME_NOREPLACE and a target), EINVAL (a directory into itself or below it: the trap),
    // ENOTEMPTY (a target that is an ancestor of the source), then nothing when both names are
    // the same node, ENOTDIR / EISDIR (a directory over a non-directory and the reverse; not
    // with RENAME_EXCHANGE), ENOTEMPTY (a target directory with entries). A new cookie for the
    // moved name; a replaced target is unlinked (its object released with its last name, in
    // the result); RENAME_EXCHANGE swaps the two names' nodes.
    Result<Unlinked> rename(Ino parent, std::string_view name, Ino newparent,
                            std::string_view newname, unsigned flags = 0);
    // link (a further name of `ino`): EROFS, the parent, ENAMETOOLONG, EPERM (dotted), EEXIST,
    // EPERM (a directory, the socket node), ENOENT (a removed node). Counts one lookup (the
    // entry reply); ctime now.
    Result<Attr> link(Ino ino, Ino newparent, std::string_view newname);
    // symlink: ENOENT (an empty target), ENAMETOOLONG (a target over kTargetMax), then mkdir's
    // name checks (with EPERM for a dotted name). The node: S_IFLNK 0777, owner the caller, gid by
    // the setgid rule, size 0. Counts one lookup.
    Result<Attr> symlink(const Caller& c, Ino parent, std::string_view name,
                         std::string_view target);
    // readlink: the target; EINVAL for a node that is no symlink, ENOENT for an unknown one.
    Result<std::string> readlink(Ino ino) const;
    // mknod: EEXIST if the name exists; S_IFREG or 0: EACCES; anything else: EPERM.
    Result<void> mknod(Ino parent, std::string_view name, std::uint32_t mode);
    // create (open O_CREAT of a new name): EEXIST if it exists, else EACCES.
    Result<void> create(Ino parent, std::string_view name);

    Result<Attr> setattr(Ino ino, const SetAttr& s);

    // --- files and directories -----------------------------------------------------------
    // open of a non-directory: the permission for the access mode (EACCES), then a map the
    // policy may show as text (Policy::map_text_view) opens and gives its handle, for the caller
    // to render; anything else is the policy's open_object_error (the seed: ENXIO; compat=linux:
    // EIO). A directory opens with nullopt.
    // acc_mode is a MAY_* mask (read/write from O_ACCMODE, write for O_TRUNC).
    Result<std::optional<ObjHandle>> open(const Caller& c, Ino ino, int acc_mode) const;
    // opendir: ENOTDIR on a non-directory.
    Result<void> opendir(Ino ino) const;
    // Lists from `off` (0 = start; "." and ".." first). Offsets are cookies: an entry keeps its
    // offset for life and new entries get larger ones, so a listing that goes on while the
    // directory changes lists no entry twice and skips none that stayed. With plus, each entry
    // the sink accepts (not "." and "..") counts one lookup. ENOTDIR, ENOENT.
    Result<void> readdir(Ino dir, std::uint64_t off, bool plus, const DirSink& sink);
    Statfs statfs() const { return {}; }

    // --- xattrs (seed: only "bpf.type" on objects) ---------------------------------------
    // size 0 asks for the length. Returns the bytes (a value or a length-only query result:
    // `value` empty and `length` set).
    struct XattrReply {
        std::string value;  // filled when size > 0
        std::size_t length = 0;
    };
    // getxattr: EACCES (no MAY_READ), EOPNOTSUPP (directory), the policy's other_xattr_error for
    // other names on an object (the seed: ENODATA; compat=linux: EOPNOTSUPP; names are matched
    // by the 8-byte prefix "bpf.type" as the seed's strncmp does), ERANGE.
    Result<XattrReply> getxattr(const Caller& c, Ino ino, std::string_view name,
                                std::size_t size) const;
    // listxattr: object "bpf.type\0", directory empty; ERANGE on a short buffer.
    Result<XattrReply> listxattr(Ino ino, std::size_t size) const;
    // setxattr, removexattr: EOPNOTSUPP everywhere.
    Result<void> setxattr(Ino ino, std::string_view name) const;
    Result<void> removexattr(Ino ino, std::string_view name) const;

    // --- the bpf(2) commands, for the broker ----------------------------------------------
    // May this caller pin at all, with these bpf(2) file_flags? The first checks of a pin, before
    // its fd and its path: EINVAL for flags the rule set does not take (Policy::
    // pin_flags_refused), then EPERM without CAP_SYS_ADMIN (seed); pin() asks it too.
    Result<void> may_pin(const Caller& c, std::uint32_t file_flags = 0) const;
    // What a get with these bpf(2) file_flags asks (Policy::get_access), or EINVAL: the broker
    // asks it first, since the flags are judged before the path and the read-only superblock.
    Result<GetAccess> get_access(std::uint32_t file_flags) const;
    // The mount's rule set, for the checks the broker makes before the core sees a pin.
    Policy policy() const;
    // pin (BPF_PIN_FD) into directory `parent`, after the broker checked the fd. Order: EPERM
    // (no CAP_SYS_ADMIN), ENOENT (parent removed), ENOTDIR, ENAMETOOLONG, EEXIST, EROFS (when
    // `read_only`: the mount the client walked is read-only), EPERM (dotted name), EBUSY (parent
    // has subdirectories). The node: S_IFREG 0600, owner = caller uid, gid by
    // the setgid rule, nlink 1, size 0. The parent's write permission is not checked (the seed
    // bypasses may_create). Counts one lookup when `counts_lookup` (the MKNOD through which the
    // broker publishes a pin replies with the entry).
    // A link: EINVAL under compat=seed (Policy::object_refused), before the path.
    // compat=linux (the policy): after EROFS, W+X on the parent (EACCES); mode 0600 & ~umask.
    // `attrs` (both rule sets): the node is made with that mode and owner, as if the caller had
    // pinned, then chmod, then chown, at once: after every other check (ENOSPC too), EPERM for
    // another owner without CAP_CHOWN, or another group than the node's unless the caller is in
    // it or has CAP_CHOWN (chown_ok, chgrp_ok); the owner may always chmod.
    Result<Attr> pin(const Caller& c, Ino parent, std::string_view name, ObjType type,
                     ObjHandle handle, bool read_only = false, bool counts_lookup = false,
                     std::uint32_t umask = 022, const PinAttrs& attrs = {});
    // get (BPF_NEW_FD / BPF_OBJ_GET) of node `ino` (resolved by the kernel's path walk) with
    // bpf(2) file_flags: EINVAL (flags, as get_access), ENOENT (removed), EACCES (not the
    // permission the flags ask: the seed's MAY_WRITE, else ACC_MODE), EACCES (not an object).
    // Fetched::mode is the fd's mode the flags ask. Updates atime.
    Result<Fetched> get(const Caller& c, Ino ino, std::uint32_t file_flags = 0);

    // --- the broker's socket node -----------------------------------------------------------
    // Creates (once) the node that lookup(any live dir, kSocketName) returns: S_IFSOCK 0666,
    // owner root, nlink 1, never listed by readdir, never removed (unlink: EPERM, rmdir:
    // ENOTDIR), an existing name to mkdir and pin (EEXIST). Counts one lookup (the mknod reply).
    // Only the daemon's own bind() may create it; the adapter checks who asks.
    // Its ino is kSocketIno, which no other node of a new core gets (a state restored from an
    // older daemon may have given it away: the socket then takes the next ino).
    Result<Attr> make_socket_node();
    Ino socket_ino() const;  // 0 until created

    // --- permissions ----------------------------------------------------------------------
    // generic_permission(): owner/group/other bits, then CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH.
    Result<void> permission(const Caller& c, Ino ino, int mask) const;

    // A read-only filesystem: every change through the namespace operations is EROFS (after
    // EEXIST for the creating ones, as the kernel's filename_create orders them). The kernel does
    // this itself on a read-only superblock; the core does it too for the moments the kernel
    // does not know yet (a -o ro mount is read-write until the broker's socket exists).
    void set_read_only(bool ro);

    // --- mount options ----------------------------------------------------------------------
    MountOptions options() const;
    // Applies already-validated options to the root (remount): mode, uid, gid.
    Attr apply_options(const MountOptions& opts);
    // The bound on the tree (NodeLimits; none until set): mkdir, pin and symlink past it are
    // ENOSPC, after their other checks. Not state: every worker sets it from the mount options.
    void set_node_limits(NodeLimits limits);
    NodeLimits node_limits() const;
    Counts counts() const;
    std::size_t node_count() const;  // nodes in the inode table, removed-but-referenced too

    // --- recovery from a damaged state log (daemon/recovery.hpp) -------------------------------
    // Keeps each object under kLostFoundName in the root (made if missing: a directory 0700 of
    // root) as "<map|prog|link>-<kernel id>" (then "-2", "-3"... while that is taken): a node
    // 0600 of root, as if root had pinned it, past the node limits and the terminal rule, which
    // never count that directory. The kernel learns of it by a lookup. Returns the names made.
    std::vector<std::string> keep_lost(const std::vector<HeldObject>& objects);
    // Objects under kLostFoundName now.
    std::size_t lost_count() const;
    // No new node gets an ino below `ino` (the kernel may know those from changes the log lost).
    void skip_inos(Ino ino);

    // Drops every object and returns their handles (unmount releases everything).
    std::vector<ObjHandle> release_all();

    // --- persistence (state.hpp) -------------------------------------------------------------
    // The sink is called with the core's lock held at the end of every call that changed
    // persisted state, before the call returns, with all the changes of that call: one per node
    // or meta it changed, in the order first changed, each with the value at the end of the
    // call (a put of the node; a lookups when only its count changed; an erase when the node
    // left the table; the meta).
    // Not called by calls that changed nothing (failures, reads). If a call throws (bad_alloc)
    // after changing something, what it changed is still reported before the exception leaves.
    // Must not call back into the core. Replaces any previous sink; an empty one turns it off.
    // Changes before the sink is set are not reported: take snapshot() (to_changes()) first.
    void set_change_sink(ChangeSink sink);
    // The whole persisted state, nodes sorted by ino.
    CoreState snapshot() const;
    // The same state as changes, streamed under the core's lock without a copy of it: `out` gets
    // the meta, then a put per node (in no particular order; to_changes() of the snapshot up to
    // the order), then `done` runs, still under the lock, so that no change can come between
    // the last node and what `done` does (a compaction swaps its new log in there). Memory: one
    // Change, whatever the callbacks allocate. Neither may call back into the core; what they
    // throw leaves the call.
    void stream_state(const std::function<void(const Change&)>& out,
                      const std::function<void()>& done = {}) const;
    // Rebuilds a core from a state (the clock and policy are the new core's). EINVAL unless the
    // state is one the core could be in: root (ino 1, parent 0, no name) present and a live dir;
    // every live node's parent present, live, a dir; names ones mkdir/pin accept (no dot; the
    // root's kLostFoundName directory too),
    // unique per dir; cookies >= 3, unique per dir, below the dir's next_cookie; every ino in
    // [1, next_ino); attr.ino, type bits, is_dir, nlink and handles agreeing; the socket node
    // (if any) the root's kSocketName and the only socket; removed nodes unlinked, referenced
    // (nlookup > 0), without a handle; unless the state's compat= allows it, no dir holding both
    // objects and dirs; unless it allows rename/link/symlink, no symlink and no node with
    // further names (only objects and symlinks may have them, nlink their number); every live
    // name reachable from the root.
    // The same from the state's meta and its nodes one at a time, never all held at once (the
    // state log's reader streams them from the log): what the restore costs beyond the new core
    // is a name and a few numbers per node.
    // `expected`: how many nodes the source has, if known.
    static Result<std::unique_ptr<Filesystem>> restore(const CoreMeta& meta,
                                                       const NodeSource& nodes,
                                                       std::size_t expected = 0,
                                                       Clock clock = system_clock_now);
    static Result<std::unique_ptr<Filesystem>> restore(const CoreState& s,
                                                       Clock clock = system_clock_now);

private:
    // Lets restore() build a core without the constructor's fresh root; only Filesystem can
    // make one.
    class RestoreKey {
        friend class Filesystem;
        RestoreKey() = default;
    };

public:
    Filesystem(Clock clock, RestoreKey);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace bpffs::fsops
