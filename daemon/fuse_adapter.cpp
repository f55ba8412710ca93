// SPDX-License-Identifier: GPL-2.0-or-later
// Callbacks of the low-level API. Two things are subtle:
//  - Negative lookups are answered as cached entries (ino 0 with a timeout), so a name created
//    behind the kernel's back (a pin through the broker) must be invalidated by the creator.
//  - readdirplus entries count as lookups (the core counts the ones that fit the buffer), and
//    forget can arrive long after unlink: the core keeps such nodes until their count is 0.
// Who asks: uid/gid come with every request; supplementary groups and capabilities are read from
// /proc/<tid>/status only for the operations whose answer depends on them at the filesystem
// level (open, getxattr), and only when the uid/gid alone are refused (the read costs more than
// the rest of the request). If the caller's status cannot be read (it exited, or lives in a pid
// namespace the daemon cannot see: pid 0), it gets no groups and no capabilities.
#include "daemon/fuse_adapter.hpp"

#include "common/log_limit.hpp"

#include "common/proc_status.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace bpffs::daemon {
namespace {

using fsops::Attr;
using fsops::Caller;
using fsops::Ino;

FuseState& state(fuse_req_t req) { return *static_cast<FuseState*>(fuse_req_userdata(req)); }

// Errnos that are answers, not faults: logged at debug level. Anything else at error level.
bool is_expected_errno(int e) {
    switch (e) {
        case ENOENT:
        case EEXIST:
        case EPERM:
        case EACCES:
        case ENOTDIR:
        case EISDIR:
        case ENOTEMPTY:
        case ENAMETOOLONG:
        case ENXIO:
        case EOPNOTSUPP:
        case ENODATA:
        case ERANGE:
        case EBUSY:
        case EINVAL:
        case EBADF:
        case EROFS:
            return true;
        default:
            return false;
    }
}

// A node's path (and ino), or a name in a directory, for a log line: formatted only when the line
// is written (Filesystem::path_of walks the tree).
struct PathOf {
    const fsops::Filesystem& fs;
    Ino ino;
};
struct NameIn {
    const fsops::Filesystem& fs;
    Ino parent;
    std::string_view name;
};

}  // namespace
}  // namespace bpffs::daemon

template <>
struct fmt::formatter<bpffs::daemon::PathOf> : fmt::formatter<std::string_view> {
    template <typename Ctx>
    auto format(const bpffs::daemon::PathOf& p, Ctx& ctx) const {
        return fmt::format_to(ctx.out(), "path=\"{}\" ino={}", p.fs.path_of(p.ino), p.ino);
    }
};
template <>
struct fmt::formatter<bpffs::daemon::NameIn> : fmt::formatter<std::string_view> {
    template <typename Ctx>
    auto format(const bpffs::daemon::NameIn& n, Ctx& ctx) const {
        std::string dir = n.fs.path_of(n.parent);
        return fmt::format_to(ctx.out(), "path=\"{}{}{}\" parent={}", dir, dir == "/" ? "" : "/",
                              n.name, n.parent);
    }
};

namespace bpffs::daemon {
namespace {

// The one line a request leaves in the log (`op=mkdir parent=1 name="x" -> 5`): debug level
// for a success and for the errnos that are answers, error level for the rest. `detail` is
// formatted only when the line is written; `result` is what a success shows.
// Error lines are bounded (common/log_limit.hpp): a client can cause them (ENOSPC past its share
// of the tree, EIO when memory runs out), so they come a line per doubling with the count.
// A refusal names the rule that refused (Errno::rule) where the core knows it.
template <class... A>
void log_op(const char* op, Errno error, std::string_view result, fmt::format_string<A...> detail,
            A&&... args) {
    static LogDoubling faults;
    const int e = error.value;
    const bool fault = e != 0 && !is_expected_errno(e);
    if (fault) {
        std::uint64_t n = faults.next();
        if (n == 0 || !spdlog::should_log(spdlog::level::err)) return;
        spdlog::error("op={} {} -> {} ({} request(s) failed so far)", op,
                      fmt::format(detail, std::forward<A>(args)...), strerrorname_np(e), n);
        return;
    }
    if (!spdlog::should_log(spdlog::level::debug)) return;
    spdlog::debug("op={} {} -> {}{}{}{}", op, fmt::format(detail, std::forward<A>(args)...),
                  e != 0 ? std::string_view(strerrorname_np(e)) : result,
                  error.rule != nullptr ? " (" : "", error.rule != nullptr ? error.rule : "",
                  error.rule != nullptr ? ")" : "");
}
template <class... A>
void log_op(const char* op, int error, std::string_view result, fmt::format_string<A...> detail,
            A&&... args) {
    log_op(op, Errno{error}, result, detail, std::forward<A>(args)...);
}

// Every reply that carries only an errno (0: success without data) goes through here.
template <class... A>
void reply_status(fuse_req_t req, const char* op, Errno error, fmt::format_string<A...> detail,
                  A&&... args) {
    log_op(op, error, "ok", detail, std::forward<A>(args)...);
    fuse_reply_err(req, error.value);
}
template <class... A>
void reply_status(fuse_req_t req, const char* op, int error, fmt::format_string<A...> detail,
                  A&&... args) {
    reply_status(req, op, Errno{error}, detail, std::forward<A>(args)...);
}

// The error of a result, 0 for success.
template <class T>
Errno error_of(const Result<T>& r) {
    return r ? Errno{} : r.error();
}

// Runs one callback body; exceptions never cross into libfuse.
template <class F>
void guarded(fuse_req_t req, const char* op, F&& body) {
    try {
        body();
    } catch (const std::bad_alloc&) {
        reply_status(req, op, ENOMEM, "(out of memory)");
    } catch (const std::exception& ex) {
        reply_status(req, op, EIO, "failed: {}", ex.what());
    }
}

// forget and forget_multi have no reply but "none", whatever happens.
template <class F>
void guarded_forget(fuse_req_t req, const char* op, F&& body) {
    try {
        body();
    } catch (const std::exception& ex) {
        log_op(op, EIO, "", "failed: {}", ex.what());
    }
    fuse_reply_none(req);
}

struct stat to_stat(const Attr& a) {
    struct stat st {};
    st.st_ino = a.ino;
    st.st_mode = a.mode;
    st.st_nlink = a.nlink;
    st.st_uid = a.uid;
    st.st_gid = a.gid;
    st.st_size = static_cast<off_t>(a.size);
    st.st_blksize = 4096;
    st.st_atim = {a.atime.sec, a.atime.nsec};
    st.st_mtim = {a.mtime.sec, a.mtime.nsec};
    st.st_ctim = {a.ctime.sec, a.ctime.nsec};
    return st;
}

fuse_entry_param to_entry(const FuseState& st, const Attr& a) {
    fuse_entry_param e{};
    e.ino = a.ino;
    e.generation = 1;  // inode numbers are never reused
    e.attr = to_stat(a);
    e.attr_timeout = st.attr_timeout;
    e.entry_timeout = st.entry_timeout;
    return e;
}

Caller caller_ids(fuse_req_t req) {
    const fuse_ctx* ctx = fuse_req_ctx(req);
    Caller c;
    c.uid = ctx->uid;
    c.gid = ctx->gid;
    return c;
}

// Groups and effective capabilities of the requesting thread, from /proc/<tid>/status.
Caller caller_full(fuse_req_t req) {
    Caller c = caller_ids(req);
    ProcStatus st = read_proc_status(fuse_req_ctx(req)->pid);
    c.groups = std::move(st.groups);
    c.caps = fsops::Caps::from_bits(st.cap_eff);
    return c;
}

template <class... A>
void reply_entry(fuse_req_t req, const char* op, const Result<Attr>& r,
                 fmt::format_string<A...> detail, A&&... args) {
    if (!r) return reply_status(req, op, r.error(), detail, std::forward<A>(args)...);
    log_op(op, 0, std::to_string(r->ino), detail, std::forward<A>(args)...);
    auto e = to_entry(state(req), *r);
    fuse_reply_entry(req, &e);
}

void op_init(void* userdata, fuse_conn_info* conn) {
    (void)userdata;
    // The core answers readdirplus in one pass; let the kernel use it for ls -l style walks.
    if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
    // O_TRUNC on open is an open flag to us (objects cannot be opened anyway).
    conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
    spdlog::info("FUSE session initialised (protocol {}.{})", conn->proto_major, conn->proto_minor);
}

void op_destroy(void* userdata) {
    auto* st = static_cast<FuseState*>(userdata);
    if (!st->release_on_destroy.load()) return;
    // Unmount releases every pinned object (the spec's departure 2).
    auto handles = st->fs.release_all();
    if (st->release_object) {
        for (auto h : handles) st->release_object(h);
    }
    spdlog::info("FUSE session ended; released {} pinned object(s)", handles.size());
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guarded(req, "lookup", [&] {
        auto& st = state(req);
        auto r = st.fs.lookup(parent, name);
        // The socket name is never cached as missing: it appears when the broker binds.
        if (!r && r.error().value == ENOENT && st.negative_timeout > 0 &&
            name != fsops::kSocketName) {
            log_op("lookup", 0, "a negative entry", "{}", NameIn{state(req).fs, parent, name});
            fuse_entry_param e{};
            e.ino = 0;  // a cached negative entry
            e.entry_timeout = st.negative_timeout;
            fuse_reply_entry(req, &e);
            return;
        }
        reply_entry(req, "lookup", r, "{}", NameIn{state(req).fs, parent, name});
    });
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    guarded_forget(req, "forget", [&] { state(req).fs.forget(ino, nlookup); });
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    guarded_forget(req, "forget_multi", [&] {
        auto& fs = state(req).fs;
        for (size_t i = 0; i < count; ++i) fs.forget(forgets[i].ino, forgets[i].nlookup);
    });
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    guarded(req, "getattr", [&] {
        auto& st = state(req);
        auto r = st.fs.getattr(ino);
        if (!r) return reply_status(req, "getattr", r.error(), "{}", PathOf{state(req).fs, ino});
        log_op("getattr", 0, "ok", "{}", PathOf{state(req).fs, ino});
        auto s = to_stat(*r);
        fuse_reply_attr(req, &s, st.attr_timeout);
    });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
    guarded(req, "setattr", [&] {
        auto& st = state(req);
        fsops::SetAttr s;
        if (to_set & FUSE_SET_ATTR_MODE) s.mode = attr->st_mode & 07777;
        if (to_set & FUSE_SET_ATTR_UID) s.uid = attr->st_uid;
        if (to_set & FUSE_SET_ATTR_GID) s.gid = attr->st_gid;
        if (to_set & FUSE_SET_ATTR_SIZE) s.size = static_cast<std::uint64_t>(attr->st_size);
        if (to_set & FUSE_SET_ATTR_ATIME_NOW)
            s.atime = fsops::TimeSet{true, {}};
        else if (to_set & FUSE_SET_ATTR_ATIME)
            s.atime = fsops::TimeSet{false, {attr->st_atim.tv_sec, attr->st_atim.tv_nsec}};
        if (to_set & FUSE_SET_ATTR_MTIME_NOW)
            s.mtime = fsops::TimeSet{true, {}};
        else if (to_set & FUSE_SET_ATTR_MTIME)
            s.mtime = fsops::TimeSet{false, {attr->st_mtim.tv_sec, attr->st_mtim.tv_nsec}};
        if (to_set & FUSE_SET_ATTR_CTIME)
            s.ctime = fsops::Timespec{attr->st_ctim.tv_sec, attr->st_ctim.tv_nsec};
        auto r = st.fs.setattr(ino, s);
        if (!r) {
            return reply_status(req, "setattr", r.error(), "{} to_set={:#x}",
                                PathOf{state(req).fs, ino}, to_set);
        }
        log_op("setattr", 0, "ok", "{} to_set={:#x}", PathOf{state(req).fs, ino}, to_set);
        auto out = to_stat(*r);
        fuse_reply_attr(req, &out, st.attr_timeout);
    });
}

// `mode`: the kernel applied the caller's umask (FUSE_CAP_DONT_MASK is off).
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    guarded(req, "mkdir", [&] {
        // The requested mode and the umask are ignored: the seed copies the parent's mode.
        auto r = state(req).fs.mkdir(caller_ids(req), parent, name, mode);
        if (r) state(req).listed.changed(parent);
        reply_entry(req, "mkdir", r, "{}", NameIn{state(req).fs, parent, name});
    });
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guarded(req, "rmdir", [&] {
        auto r = state(req).fs.rmdir(parent, name);
        if (r) state(req).listed.changed(parent);
        reply_status(req, "rmdir", error_of(r), "{}", NameIn{state(req).fs, parent, name});
    });
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guarded(req, "unlink", [&] {
        auto& st = state(req);
        auto r = st.fs.unlink(parent, name);
        if (r) st.listed.changed(parent);
        if (r && r->released && st.release_object) st.release_object(*r->released);
        reply_status(req, "unlink", error_of(r), "{}", NameIn{state(req).fs, parent, name});
    });
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) {
    guarded(req, "rename", [&] {
        auto& st = state(req);
        auto r = st.fs.rename(parent, name, newparent, newname, flags);
        if (r) {
            st.listed.changed(parent);
            st.listed.changed(newparent);
            if (r->released && st.release_object) st.release_object(*r->released);
        }
        reply_status(req, "rename", error_of(r), "{} -> {} flags={:#x}",
                     NameIn{state(req).fs, parent, name}, NameIn{state(req).fs, newparent, newname},
                     flags);
    });
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
    guarded(req, "link", [&] {
        auto& st = state(req);
        auto r = st.fs.link(ino, newparent, newname);
        if (r) st.listed.changed(newparent);
        reply_entry(req, "link", r, "{} -> {}", PathOf{state(req).fs, ino},
                    NameIn{state(req).fs, newparent, newname});
    });
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
    guarded(req, "symlink", [&] {
        auto& st = state(req);
        auto r = st.fs.symlink(caller_ids(req), parent, name, target);
        if (r) st.listed.changed(parent);
        reply_entry(req, "symlink", r, "{}", NameIn{state(req).fs, parent, name});
    });
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
    guarded(req, "readlink", [&] {
        auto r = state(req).fs.readlink(ino);
        if (!r) return reply_status(req, "readlink", r.error(), "{}", PathOf{state(req).fs, ino});
        log_op("readlink", 0, "ok", "{}", PathOf{state(req).fs, ino});
        fuse_reply_readlink(req, r->c_str());
    });
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
    guarded(req, "mknod", [&] {
        auto& st = state(req);
        if (S_ISSOCK(mode) && name == fsops::kSocketName &&
            fuse_req_ctx(req)->pid == st.socket_creator.load()) {
            // the broker's bind()
            return reply_entry(req, "mknod", st.fs.make_socket_node(), "the broker's socket");
        }
        pid_t tid = fuse_req_ctx(req)->pid;
        if (auto pin = st.pins.take(tid)) {  // a broker thread publishing a pin
            auto r = pin->parent == parent && pin->name == name
                         ? st.fs.pin(pin->caller, parent, name, pin->type, pin->handle,
                                     pin->read_only, true, pin->umask, pin->attrs)
                         : Result<fsops::Attr>(fail(EIO));
            st.pins.done(tid, r.has_value());
            if (r) st.listed.changed(parent);
            return reply_entry(req, "pin", r, "{} uid={}", NameIn{state(req).fs, parent, name},
                               pin->caller.uid);
        }
        auto r = st.fs.mknod(parent, name, mode);
        reply_status(req, "mknod", error_of(r), "{} mode={:o}", NameIn{state(req).fs, parent, name},
                     mode);
    });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t, fuse_file_info*) {
    guarded(req, "create", [&] {
        auto r = state(req).fs.create(parent, name);
        // create never succeeds in the seed
        reply_status(req, "create", r ? EIO : r.error().value, "{}",
                     NameIn{state(req).fs, parent, name});
    });
}

int acc_mode(int flags) {
    int mask = 0;
    switch (flags & O_ACCMODE) {
        case O_RDONLY:
            mask = fsops::kMayRead;
            break;
        case O_WRONLY:
            mask = fsops::kMayWrite;
            break;
        default:
            mask = fsops::kMayRead | fsops::kMayWrite;
            break;
    }
    if (flags & O_TRUNC) mask |= fsops::kMayWrite;
    return mask;
}

// The text view of the map `handle` (compat=linux), or the errno the open answers: the
// policy's open error for a map without one.
Result<TextViews::Text> render(FuseState& st, fsops::ObjHandle handle) {
    auto text = st.map_text ? st.map_text(handle) : std::optional<std::string>();
    if (!text) return text.error();
    if (!*text) return fail(st.fs.policy().open_object_error());
    return std::make_shared<const std::string>(std::move(**text));
}

// A map's text is taken whole at open and read from there: every read of one open file sees the
// map as it was at open (the kernel's seq_file looks elements up as it reads; docs/semantics.md).
// Reads bypass the page cache (direct_io): the file's size says 0, as the kernel's does.
void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, "open", [&] {
        // Groups and capabilities (a /proc read) only when the ids alone are refused.
        auto& st = state(req);
        auto r = st.fs.open(caller_ids(req), ino, acc_mode(fi->flags));
        if (!r && r.error().value == EACCES) {
            r = st.fs.open(caller_full(req), ino, acc_mode(fi->flags));
        }
        Result<TextViews::Text> text = TextViews::Text();
        if (r && r->has_value()) text = render(st, **r);
        const int e = !r ? r.error().value : !text ? text.error().value : 0;
        if (e != 0)
            return reply_status(req, "open", e, "{} flags={:#o}", PathOf{state(req).fs, ino},
                                fi->flags);
        if (*text) {
            fi->fh = st.texts.add(*text);
            fi->direct_io = 1;
        }
        log_op("open", 0, "ok", "{} flags={:#o} fh={:#x}", PathOf{state(req).fs, ino}, fi->flags,
               fi->fh);
        // An open interrupted before the reply is never released: drop its view now.
        if (fuse_reply_open(req, fi) == -ENOENT) st.texts.erase(fi->fh);
    });
}

// Only a map's text view opens. A view a previous worker rendered (the kernel kept the open file
// across a restart) is rendered again under the same handle.
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    guarded(req, "read", [&] {
        auto& st = state(req);
        TextViews::Text text = st.texts.find(fi->fh);
        if (!text) {
            auto r = st.fs.open(fsops::Caller::root(), ino, fsops::kMayRead);
            Result<TextViews::Text> again = fail(EBADF);
            if (r && r->has_value()) again = render(st, **r);
            if (!again)
                return reply_status(req, "read", again.error().value, "{}",
                                    PathOf{state(req).fs, ino});
            st.texts.put(fi->fh, *again);
            text = *again;
        }
        const size_t start = std::min(static_cast<size_t>(off), text->size());
        const size_t n = std::min(size, text->size() - start);
        log_op("read", 0, std::to_string(n) + " bytes", "{} off={} size={}",
               PathOf{state(req).fs, ino}, off, size);
        fuse_reply_buf(req, text->data() + start, n);
    });
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    state(req).texts.erase(fi->fh);
    reply_status(req, "release", 0, "{} fh={:#x}", PathOf{state(req).fs, ino}, fi->fh);
}

// Only a map's text view opens (compat=linux), and it has no write, as the kernel's (EINVAL).
void op_write(fuse_req_t req, fuse_ino_t ino, const char*, size_t, off_t, fuse_file_info*) {
    reply_status(req, "write", EINVAL, "{}", PathOf{state(req).fs, ino});
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, "opendir", [&] {
        auto r = state(req).fs.opendir(ino);
        if (!r) return reply_status(req, "opendir", r.error(), "{}", PathOf{state(req).fs, ino});
        log_op("opendir", 0, "ok", "{}", PathOf{state(req).fs, ino});
        // The kernel may keep a listing (FOPEN_CACHE_DIR) and reuse it across opens
        // (FOPEN_KEEP_CACHE): its own mkdir/rmdir/unlink/create change the directory's version
        // and reset it, and so does a pin (a MKNOD, publish_pin()).
        // Asked for only where it pays (ListedDirs); an open without it also drops what the
        // kernel kept.
        if (state(req).listed.contains(ino)) {
            fi->cache_readdir = 1;
            fi->keep_cache = 1;
        }
        fuse_reply_open(req, fi);
    });
}

void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
    const char* op = plus ? "readdirplus" : "readdir";
    guarded(req, op, [&] {
        auto& st = state(req);
        std::vector<char> buf(size);
        size_t used = 0;
        auto r = st.fs.readdir(
            ino, static_cast<std::uint64_t>(off), plus, [&](const fsops::DirEntry& de) {
                std::string name(de.name);
                size_t left = size - used;
                size_t need;
                if (plus) {
                    auto e = to_entry(st, de.attr);
                    need = fuse_add_direntry_plus(req, buf.data() + used, left, name.c_str(), &e,
                                                  static_cast<off_t>(de.next_off));
                } else {
                    struct stat s {};
                    s.st_ino = de.attr.ino;
                    s.st_mode = de.attr.mode;
                    need = fuse_add_direntry(req, buf.data() + used, left, name.c_str(), &s,
                                             static_cast<off_t>(de.next_off));
                }
                if (need > left) return false;
                used += need;
                return true;
            });
        if (!r)
            return reply_status(req, op, r.error(), "{} off={}", PathOf{state(req).fs, ino}, off);
        log_op(op, 0, std::to_string(used) + " bytes", "{} off={}", PathOf{state(req).fs, ino},
               off);
        if (used == 0) st.listed.listed(ino);  // the end of the listing
        fuse_reply_buf(req, buf.data(), used);
    });
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    readdir_common(req, ino, size, off, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    readdir_common(req, ino, size, off, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    reply_status(req, "releasedir", 0, "{}", PathOf{state(req).fs, ino});
}

void op_statfs(fuse_req_t req, fuse_ino_t ino) {
    log_op("statfs", 0, "ok", "{}", PathOf{state(req).fs, ino});
    auto s = state(req).fs.statfs();
    struct statvfs v {};
    v.f_bsize = s.bsize;
    v.f_frsize = s.bsize;
    v.f_namemax = s.namelen;
    fuse_reply_statfs(req, &v);  // f_type is the kernel's (FUSE_SUPER_MAGIC), whatever we say
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    guarded(req, "getxattr", [&] {
        auto& fs = state(req).fs;
        auto r = fs.getxattr(caller_ids(req), ino, name, size);
        if (!r && r.error().value == EACCES) r = fs.getxattr(caller_full(req), ino, name, size);
        if (!r) {
            return reply_status(req, "getxattr", r.error(), "{} name=\"{}\" size={}",
                                PathOf{state(req).fs, ino}, name, size);
        }
        log_op("getxattr", 0, "ok", "{} name=\"{}\" size={}", PathOf{state(req).fs, ino}, name,
               size);
        if (size == 0) return (void)fuse_reply_xattr(req, r->length);
        fuse_reply_buf(req, r->value.data(), r->value.size());
    });
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    guarded(req, "listxattr", [&] {
        auto r = state(req).fs.listxattr(ino, size);
        if (!r)
            return reply_status(req, "listxattr", r.error(), "{} size={}",
                                PathOf{state(req).fs, ino}, size);
        log_op("listxattr", 0, "ok", "{} size={}", PathOf{state(req).fs, ino}, size);
        if (size == 0) return (void)fuse_reply_xattr(req, r->length);
        fuse_reply_buf(req, r->value.data(), r->value.size());
    });
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char*, size_t, int) {
    guarded(req, "setxattr", [&] {
        auto r = state(req).fs.setxattr(ino, name);
        reply_status(req, "setxattr", error_of(r), "{} name=\"{}\"", PathOf{state(req).fs, ino},
                     name);
    });
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    guarded(req, "removexattr", [&] {
        auto r = state(req).fs.removexattr(ino, name);
        reply_status(req, "removexattr", error_of(r), "{} name=\"{}\"", PathOf{state(req).fs, ino},
                     name);
    });
}

constexpr fuse_lowlevel_ops kOps = {
    .init = op_init,
    .destroy = op_destroy,
    .lookup = op_lookup,
    .forget = op_forget,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .release = op_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .create = op_create,
    .forget_multi = op_forget_multi,
    .readdirplus = op_readdirplus,
};

}  // namespace

const fuse_lowlevel_ops& fuse_ops() { return kOps; }

void PendingPins::put(pid_t tid, fsops::PinRequest req) {
    std::lock_guard l(mu_);
    slots_[tid] = Slot{std::move(req), Outcome::not_reached};
}

std::optional<fsops::PinRequest> PendingPins::take(pid_t tid) {
    std::lock_guard l(mu_);
    auto it = slots_.find(tid);
    if (it == slots_.end() || !it->second.req) return std::nullopt;
    return std::exchange(it->second.req, std::nullopt);
}

void PendingPins::done(pid_t tid, bool linked) {
    std::lock_guard l(mu_);
    auto it = slots_.find(tid);
    if (it != slots_.end()) it->second.outcome = linked ? Outcome::linked : Outcome::refused;
}

bool PendingPins::waiting(pid_t tid) {
    std::lock_guard l(mu_);
    auto it = slots_.find(tid);
    return it != slots_.end() && it->second.req.has_value();
}

PendingPins::Outcome PendingPins::finish(pid_t tid) {
    std::lock_guard l(mu_);
    auto it = slots_.find(tid);
    if (it == slots_.end()) return Outcome::not_reached;
    Outcome o = it->second.outcome;
    slots_.erase(it);
    return o;
}

int publish_pin(FuseState& st, int dirfd, const std::string& name, fsops::PinRequest req) {
    auto tid = static_cast<pid_t>(syscall(SYS_gettid));
    st.pins.put(tid, std::move(req));
    int e = 0;
    do {  // mknod(2) of a regular file needs no privilege; the core sets the node's mode
        e = mknodat(dirfd, name.c_str(), S_IFREG | 0600, 0) == 0 ? 0 : errno;
    } while (e == EINTR && st.pins.waiting(tid));
    switch (st.pins.finish(tid)) {
        case PendingPins::Outcome::linked:
            return 0;  // in the tree, whatever reached this thread (an interrupted reply)
        case PendingPins::Outcome::refused:
            return e != 0 ? e : EIO;
        case PendingPins::Outcome::not_reached:
            break;
    }
    return e != 0 ? e : EIO;  // the kernel refused before asking (EEXIST, EROFS, ...)
}

void invalidate_inode(FuseState& st, fsops::Ino ino) {
    fuse_session* se = st.session.load();
    if (se == nullptr) return;
    int rc = fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
    if (rc != 0 && rc != -ENOENT) {
        spdlog::warn("invalidate inode {}: {}", ino, std::strerror(-rc));
    }
}

}  // namespace bpffs::daemon
