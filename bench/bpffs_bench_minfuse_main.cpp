// SPDX-License-Identifier: GPL-2.0-or-later
// bpffs-bench-minfuse: the smallest libfuse3 low-level filesystem that answers what the benchmark
// asks of a FUSE daemon, from memory, with the same long timeouts and session options as
// bpffs-fuse (default_permissions, allow_other, the multi-threaded loop with 4 idle threads).
// It is the benchmark's price of "one FUSE round trip": mkdir, rmdir, mknod (the baseline of a
// pin), unlink, rename (of a name that is not a directory over another, or RENAME_NOREPLACE),
// lookup, getattr, getxattr (any name: "map") and plain readdir (no readdirplus).
// Nothing else: no permissions of its own, no persistence, no error paths beyond ENOENT,
// EEXIST, ENOTEMPTY, ENOTDIR, EISDIR and EINVAL.
//
//   bpffs-bench-minfuse MOUNTPOINT [-d]   (foreground; SIGTERM/SIGINT unmount and exit;
//                                          -d: libfuse's request trace on stderr)
#define FUSE_USE_VERSION 314
#include <fuse3/fuse_lowlevel.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

constexpr double kTimeout = 3600.0;

struct Node {
    fuse_ino_t ino = 0;
    fuse_ino_t parent = 0;
    std::uint32_t mode = 0;
    std::uint64_t nlookup = 0;
    bool removed = false;
    std::string name;
    std::uint64_t cookie = 0;  // this entry's offset in its parent's listing
    // Directories only: children by name (lookup) and by cookie (readdir resumes in O(log n)).
    std::map<std::string, fuse_ino_t, std::less<>> children;
    std::map<std::uint64_t, fuse_ino_t> by_cookie;
    std::uint64_t next_cookie = 3;  // 1 and 2 are "." and ".."
};

// The whole filesystem; one mutex (nothing is called with it held).
struct State {
    std::mutex mu;
    std::unordered_map<fuse_ino_t, Node> nodes;
    fuse_ino_t next_ino = FUSE_ROOT_ID + 1;
    uid_t uid = getuid();
    gid_t gid = getgid();
    timespec start{};

    State() {
        clock_gettime(CLOCK_REALTIME, &start);
        Node& root = nodes[FUSE_ROOT_ID];
        root.ino = FUSE_ROOT_ID;
        root.parent = FUSE_ROOT_ID;
        root.mode = S_IFDIR | 0755;
        root.nlookup = 1;
    }

    struct stat attr(const Node& n) const {
        struct stat st {};
        st.st_ino = n.ino;
        st.st_mode = n.mode;
        st.st_nlink = S_ISDIR(n.mode) ? 2 : 1;
        st.st_uid = uid;
        st.st_gid = gid;
        st.st_blksize = 4096;
        st.st_atim = st.st_mtim = st.st_ctim = start;
        return st;
    }

    fuse_entry_param entry(Node& n) {
        ++n.nlookup;
        fuse_entry_param e{};
        e.ino = n.ino;
        e.generation = 1;
        e.attr = attr(n);
        e.attr_timeout = kTimeout;
        e.entry_timeout = kTimeout;
        return e;
    }

    void drop(Node& n) {
        if (n.removed && n.nlookup == 0) nodes.erase(n.ino);
    }

    // Takes `n` out of its parent's listing (not out of the table: lookups may hold it).
    void detach(Node& n) {
        Node& p = nodes.at(n.parent);
        p.children.erase(n.name);
        p.by_cookie.erase(n.cookie);
    }

    // rename(2) of parent/name to newparent/newname, replacing a name that is not a directory
    // there (RENAME_NOREPLACE: EEXIST instead). 0 or an errno.
    int rename(fuse_ino_t parent, std::string_view name, fuse_ino_t newparent,
               const std::string& newname, unsigned flags) {
        if ((flags & ~RENAME_NOREPLACE) != 0) return EINVAL;
        auto& from = nodes.at(parent).children;
        auto it = from.find(name);
        if (it == from.end()) return ENOENT;
        Node& n = nodes.at(it->second);
        auto& to = nodes.at(newparent);
        if (auto old = to.children.find(newname); old != to.children.end()) {
            if (old->second == n.ino) return 0;
            if ((flags & RENAME_NOREPLACE) != 0) return EEXIST;
            Node& victim = nodes.at(old->second);
            if (S_ISDIR(victim.mode)) return EISDIR;
            detach(victim);
            victim.removed = true;
            drop(victim);
        }
        detach(n);
        n.parent = newparent;
        n.name = newname;
        n.cookie = to.next_cookie++;
        to.children.emplace(newname, n.ino);
        to.by_cookie.emplace(n.cookie, n.ino);
        return 0;
    }
};

State& state(fuse_req_t req) { return *static_cast<State*>(fuse_req_userdata(req)); }

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    auto& s = state(req);
    std::unique_lock lock(s.mu);
    auto& dir = s.nodes.at(parent);
    auto it = dir.children.find(std::string_view(name));
    fuse_entry_param e{};
    if (it == dir.children.end()) {
        e.entry_timeout = kTimeout;  // a cached negative entry
    } else {
        e = s.entry(s.nodes.at(it->second));
    }
    lock.unlock();
    fuse_reply_entry(req, &e);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
    auto& s = state(req);
    {
        std::lock_guard lock(s.mu);
        auto it = s.nodes.find(ino);
        if (it != s.nodes.end()) {
            it->second.nlookup -= std::min(n, it->second.nlookup);
            s.drop(it->second);
        }
    }
    fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* f) {
    auto& s = state(req);
    {
        std::lock_guard lock(s.mu);
        for (size_t i = 0; i < count; ++i) {
            auto it = s.nodes.find(f[i].ino);
            if (it == s.nodes.end()) continue;
            it->second.nlookup -= std::min(f[i].nlookup, it->second.nlookup);
            s.drop(it->second);
        }
    }
    fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    auto& s = state(req);
    std::unique_lock lock(s.mu);
    auto it = s.nodes.find(ino);
    if (it == s.nodes.end()) {
        lock.unlock();
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct stat st = s.attr(it->second);
    lock.unlock();
    fuse_reply_attr(req, &st, kTimeout);
}

// mkdir and mknod: a new node named `name` in `parent`.
void make(fuse_req_t req, fuse_ino_t parent, const char* name, std::uint32_t mode) {
    auto& s = state(req);
    std::unique_lock lock(s.mu);
    auto& dir = s.nodes.at(parent);
    if (dir.children.count(std::string_view(name)) != 0) {
        lock.unlock();
        fuse_reply_err(req, EEXIST);
        return;
    }
    fuse_ino_t ino = s.next_ino++;
    Node& n = s.nodes[ino];
    n.ino = ino;
    n.parent = parent;
    n.mode = mode;
    n.name = name;
    Node& p = s.nodes.at(parent);
    n.cookie = p.next_cookie++;
    p.children.emplace(name, ino);
    p.by_cookie.emplace(n.cookie, ino);
    fuse_entry_param e = s.entry(n);
    lock.unlock();
    fuse_reply_entry(req, &e);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    make(req, parent, name, S_IFDIR | (mode & 07777));
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
    make(req, parent, name, mode);
}

// rmdir and unlink.
void remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool dir_wanted) {
    auto& s = state(req);
    int err = 0;
    {
        std::lock_guard lock(s.mu);
        auto& dir = s.nodes.at(parent);
        auto it = dir.children.find(std::string_view(name));
        if (it == dir.children.end()) {
            err = ENOENT;
        } else {
            Node& n = s.nodes.at(it->second);
            if (S_ISDIR(n.mode) != dir_wanted)
                err = dir_wanted ? ENOTDIR : EISDIR;
            else if (!n.children.empty())
                err = ENOTEMPTY;
            else {
                s.detach(n);
                n.removed = true;
                s.drop(n);
            }
        }
    }
    fuse_reply_err(req, err);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    remove(req, parent, name, true);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    remove(req, parent, name, false);
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) {
    auto& s = state(req);
    int err = 0;
    {
        std::lock_guard lock(s.mu);
        err = s.rename(parent, name, newparent, newname, flags);
    }
    fuse_reply_err(req, err);
}

void op_getxattr(fuse_req_t req, fuse_ino_t, const char*, size_t size) {
    static constexpr char kValue[] = "map";
    if (size == 0)
        fuse_reply_xattr(req, sizeof kValue);
    else if (size < sizeof kValue)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, kValue, sizeof kValue);
}

void op_opendir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) { fuse_reply_open(req, fi); }

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    // Offsets: 0 start, 1 after ".", 2 after "..", then each child's cookie.
    auto& s = state(req);
    std::vector<char> buf(size);
    size_t used = 0;
    auto add = [&](const char* name, fuse_ino_t child, std::uint32_t mode, off_t next) {
        struct stat st {};
        st.st_ino = child;
        st.st_mode = mode;
        size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, next);
        if (need > size - used) return false;
        used += need;
        return true;
    };
    {
        std::lock_guard lock(s.mu);
        auto& dir = s.nodes.at(ino);
        bool full = false;
        if (off < 1) full = !add(".", ino, S_IFDIR, 1);
        if (!full && off < 2) full = !add("..", dir.parent, S_IFDIR, 2);
        auto from = static_cast<std::uint64_t>(std::max<off_t>(off, 2));
        for (auto it = dir.by_cookie.upper_bound(from); !full && it != dir.by_cookie.end(); ++it) {
            const Node& c = s.nodes.at(it->second);
            full = !add(c.name.c_str(), c.ino, c.mode, static_cast<off_t>(it->first));
        }
    }
    fuse_reply_buf(req, buf.data(), used);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

constexpr fuse_lowlevel_ops kOps = {
    .lookup = op_lookup,
    .forget = op_forget,
    .getattr = op_getattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .rename = op_rename,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .getxattr = op_getxattr,
    .forget_multi = op_forget_multi,
};

}  // namespace

int main(int argc, char** argv) {
    bool debug = argc == 3 && std::strcmp(argv[2], "-d") == 0;
    if (argc != 2 && !debug) {
        std::fprintf(stderr, "usage: %s MOUNTPOINT [-d]\n", argv[0]);
        return 2;
    }
    const char* fuse_argv[] = {
        argv[0], "-o", "default_permissions,allow_other,fsname=minfuse,subtype=minfuse", "-d"};
    fuse_args args = FUSE_ARGS_INIT(debug ? 4 : 3, const_cast<char**>(fuse_argv));
    State st;
    fuse_session* se = fuse_session_new(&args, &kOps, sizeof kOps, &st);
    if (se == nullptr) {
        fuse_opt_free_args(&args);
        return 1;
    }
    int rc = 1;
    if (fuse_set_signal_handlers(se) == 0) {
        if (fuse_session_mount(se, argv[1]) == 0) {
            fuse_loop_config* cfg = fuse_loop_cfg_create();
            fuse_loop_cfg_set_clone_fd(cfg, 0);
            fuse_loop_cfg_set_idle_threads(cfg, 4);
            rc = fuse_session_loop_mt(se, cfg);
            fuse_loop_cfg_destroy(cfg);
            fuse_session_unmount(se);
        }
        fuse_remove_signal_handlers(se);
    }
    fuse_session_destroy(se);
    fuse_opt_free_args(&args);  // libfuse may have copied and extended them
    return rc == 0 || rc == SIGTERM || rc == SIGINT ? 0 : 1;
}
