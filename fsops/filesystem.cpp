// SPDX-License-Identifier: GPL-2.0-or-later
// The core's tree. Every node lives in one table keyed by inode number; a directory keeps its
// children twice: by name (lookup) and by cookie (readdir). A cookie is handed out once per
// entry from a per-directory counter, so listing offsets stay valid while the directory changes:
// resuming at a cookie continues with the entries after it, new entries land at the end.
// Cookies 1 and 2 are "." and "..".
#include "fsops/filesystem.hpp"

#include <algorithm>
#include <chrono>

namespace bpffs::fsops {

bool Caller::in_group(std::uint32_t g) const {
    return g == gid || std::find(groups.begin(), groups.end(), g) != groups.end();
}

Caller Caller::root() {
    Caller c;
    c.caps = Caps{true, true, true};
    return c;
}

Timespec system_clock_now() {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    return {ns / 1'000'000'000, ns % 1'000'000'000};
}

namespace {
constexpr std::uint64_t kFirstCookie = 3;

bool is_dotted(std::string_view name) { return name.find('.') != std::string_view::npos; }
bool is_bad_name(std::string_view name) {
    return name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos;
}
}  // namespace

struct Filesystem::Node {
    struct Dir {
        std::map<std::string, Ino, std::less<>> by_name;
        std::map<std::uint64_t, Ino> by_cookie;
        std::uint64_t next_cookie = kFirstCookie;
        std::uint32_t nobjects = 0;
        std::uint32_t nsubdirs = 0;
    };

    Ino ino = 0;
    Ino parent = 0;
    std::uint64_t cookie = 0;  // offset of this entry in its parent's listing
    std::string name;
    Attr attr;
    std::uint64_t nlookup = 0;
    bool removed = false;
    std::unique_ptr<Dir> dir;  // directories only
    ObjType type = ObjType::map;
    std::optional<ObjHandle> handle;  // objects only, until unlink

    bool is_dir() const { return dir != nullptr; }
};

struct Filesystem::Impl {
    // Lock order: this is the core's only mutex; nothing is called with it held except the
    // readdir sink, which must not call back in.
    mutable std::mutex mu;
    std::unordered_map<Ino, Node> nodes;
    Ino next_ino = kRootIno + 1;
    MountOptions opts;
    Clock clock;
    Policy policy;
    Counts counts{1, 0, 0};
    Ino socket_ino = 0;  // the broker's socket node, once bound
    bool read_only = false;

    Node* find(Ino ino) {
        auto it = nodes.find(ino);
        return it == nodes.end() ? nullptr : &it->second;
    }
    const Node* find(Ino ino) const {
        auto it = nodes.find(ino);
        return it == nodes.end() ? nullptr : &it->second;
    }

    // A live directory to work in: ENOENT if gone or removed, ENOTDIR if not a directory.
    Result<Node*> live_dir(Ino ino) {
        Node* n = find(ino);
        if (n == nullptr || n->removed) return fail(ENOENT);
        if (!n->is_dir()) return fail(ENOTDIR);
        return n;
    }

    Node* child(Node& dir, std::string_view name) {
        if (name == kSocketName && socket_ino != 0) return find(socket_ino);
        auto it = dir.dir->by_name.find(name);
        return it == dir.dir->by_name.end() ? nullptr : find(it->second);
    }

    // New node linked into `parent` under `name`: validate first, then allocate, then link.
    Node& link_new(Node& parent, std::string_view name, std::uint32_t mode, const Caller& c) {
        Ino ino = next_ino++;
        Node& n = nodes[ino];
        n.ino = ino;
        n.parent = parent.ino;
        n.name = std::string(name);
        n.cookie = parent.dir->next_cookie++;
        Timespec now = clock();
        n.attr.ino = ino;
        n.attr.mode = mode;
        n.attr.uid = c.uid;
        // inode_init_owner(): a setgid parent passes its group on.
        n.attr.gid = (parent.attr.mode & kIsGid) ? parent.attr.gid : c.gid;
        n.attr.atime = n.attr.mtime = n.attr.ctime = now;
        parent.dir->by_name.emplace(n.name, ino);
        parent.dir->by_cookie.emplace(n.cookie, ino);
        return n;
    }

    // Takes a node out of its parent; it stays in the table while the kernel references it.
    void unlink_node(Node& parent, Node& n) {
        parent.dir->by_name.erase(n.name);
        parent.dir->by_cookie.erase(n.cookie);
        n.removed = true;
        n.attr.nlink = 0;
        n.attr.ctime = clock();
        if (n.nlookup == 0) nodes.erase(n.ino);
    }

    Result<void> permission(const Caller& c, const Node& n, int mask) const {
        std::uint32_t mode = n.attr.mode;
        std::uint32_t bits;
        if (c.uid == n.attr.uid) bits = (mode >> 6) & 7;
        else if (c.in_group(n.attr.gid)) bits = (mode >> 3) & 7;
        else bits = mode & 7;
        if ((static_cast<std::uint32_t>(mask) & ~bits) == 0) return {};
        if (n.is_dir()) {
            if (c.caps.dac_override) return {};
            if (!(mask & kMayWrite) && c.caps.dac_read_search) return {};
        } else {
            if (c.caps.dac_override && (!(mask & kMayExec) || (mode & 0111))) return {};
            if (mask == kMayRead && c.caps.dac_read_search) return {};
        }
        return fail(EACCES);
    }
};

Filesystem::Filesystem(MountOptions opts, Clock clock, Policy policy)
    : impl_(std::make_unique<Impl>()) {
    impl_->opts = opts;
    impl_->clock = std::move(clock);
    impl_->policy = policy;
    Node& root = impl_->nodes[kRootIno];
    root.ino = kRootIno;
    root.parent = kRootIno;
    root.dir = std::make_unique<Node::Dir>();
    root.attr.ino = kRootIno;
    root.attr.mode = kIfDir | (opts.mode & 07777);
    root.attr.uid = opts.uid;
    root.attr.gid = opts.gid;
    root.attr.nlink = 2;
    Timespec now = impl_->clock();
    root.attr.atime = root.attr.mtime = root.attr.ctime = now;
    root.nlookup = 1;  // the kernel holds the root for the life of the mount
}

Filesystem::~Filesystem() = default;

Result<Attr> Filesystem::lookup(Ino parent, std::string_view name) {
    std::lock_guard lock(impl_->mu);
    auto d = impl_->live_dir(parent);
    if (!d) return d.error();
    if (name.size() > kNameMax) return fail(ENAMETOOLONG);
    Node* n = nullptr;
    if (name == ".") n = *d;
    else if (name == "..") n = impl_->find((*d)->parent);
    else n = impl_->child(**d, name);
    if (n == nullptr) return fail(ENOENT);
    ++n->nlookup;
    return n->attr;
}

void Filesystem::forget(Ino ino, std::uint64_t count) {
    std::lock_guard lock(impl_->mu);
    Node* n = impl_->find(ino);
    if (n == nullptr) return;
    n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
    if (n->nlookup == 0 && n->removed) impl_->nodes.erase(ino);
}

Result<Attr> Filesystem::getattr(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    return n->attr;
}

std::uint64_t Filesystem::nlookup(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    return n == nullptr ? 0 : n->nlookup;
}

bool Filesystem::exists(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    return impl_->find(ino) != nullptr;
}

Result<Attr> Filesystem::mkdir(const Caller& c, Ino parent, std::string_view name) {
    std::lock_guard lock(impl_->mu);
    auto d = impl_->live_dir(parent);
    if (!d) return d.error();
    Node& p = **d;
    if (name.size() > kNameMax) return fail(ENAMETOOLONG);
    if (name.empty() || is_bad_name(name)) return fail(EINVAL);
    if (name == "." || name == ".." || impl_->child(p, name) != nullptr) return fail(EEXIST);
    if (impl_->read_only) return fail(EROFS);
    if (is_dotted(name)) return fail(EPERM);
    if (impl_->policy.terminal_dirs && p.dir->nobjects > 0) return fail(EPERM);
    // The seed's bpf_mkdir: the new directory takes the parent's full mode.
    Node& n = impl_->link_new(p, name, kIfDir | (p.attr.mode & 07777), c);
    n.dir = std::make_unique<Node::Dir>();
    n.attr.nlink = 2;
    n.nlookup = 1;
    ++p.attr.nlink;
    ++p.dir->nsubdirs;
    ++impl_->counts.dirs;
    return n.attr;
}

Result<void> Filesystem::rmdir(Ino parent, std::string_view name) {
    std::lock_guard lock(impl_->mu);
    if (impl_->read_only) return fail(EROFS);
    auto d = impl_->live_dir(parent);
    if (!d) return d.error();
    Node& p = **d;
    Node* n = impl_->child(p, name);
    if (n == nullptr) return fail(ENOENT);
    if (!n->is_dir()) return fail(ENOTDIR);
    if (!n->dir->by_name.empty()) return fail(ENOTEMPTY);
    --p.attr.nlink;
    --p.dir->nsubdirs;
    --impl_->counts.dirs;
    p.attr.mtime = p.attr.ctime = impl_->clock();
    impl_->unlink_node(p, *n);
    return {};
}

Result<Unlinked> Filesystem::unlink(Ino parent, std::string_view name) {
    std::lock_guard lock(impl_->mu);
    if (impl_->read_only) return fail(EROFS);
    auto d = impl_->live_dir(parent);
    if (!d) return d.error();
    Node& p = **d;
    Node* n = impl_->child(p, name);
    if (n == nullptr) return fail(ENOENT);
    if (n->is_dir()) return fail(EISDIR);
    if (n->ino == impl_->socket_ino) return fail(EPERM);  // generated, not the user's
    Unlinked out;
    if ((n->attr.mode & kIfMt) == kIfReg) {
        --p.dir->nobjects;  // the parent stops being terminal with its last object
        if (n->handle) {     // (release_all may have taken it already)
            out.released = n->handle;
            n->handle.reset();
            --(n->type == ObjType::map ? impl_->counts.maps : impl_->counts.progs);
        }
    }
    p.attr.mtime = p.attr.ctime = impl_->clock();
    impl_->unlink_node(p, *n);
    return out;
}

Result<void> Filesystem::rename(Ino, std::string_view, Ino, std::string_view) {
    return fail(EPERM);
}
Result<void> Filesystem::link(Ino, Ino, std::string_view) { return fail(EPERM); }
Result<void> Filesystem::symlink(Ino, std::string_view) { return fail(EPERM); }

Result<void> Filesystem::mknod(Ino parent, std::string_view name, std::uint32_t mode) {
    std::lock_guard lock(impl_->mu);
    auto d = impl_->live_dir(parent);
    if (!d) return d.error();
    if (name.size() > kNameMax) return fail(ENAMETOOLONG);
    if (impl_->child(**d, name) != nullptr) return fail(EEXIST);
    if (impl_->read_only) return fail(EROFS);
    std::uint32_t type = mode & kIfMt;
    // vfs_mknod: a regular file goes through ->create (the seed has none: EACCES); every other
    // type through ->mknod (none either: EPERM).
    if (type == 0 || type == kIfReg) return fail(EACCES);
    return fail(EPERM);
}

Result<void> Filesystem::create(Ino parent, std::string_view name) {
    std::lock_guard lock(impl_->mu);
    auto d = impl_->live_dir(parent);
    if (!d) return d.error();
    if (name.size() > kNameMax) return fail(ENAMETOOLONG);
    if (impl_->child(**d, name) != nullptr) return fail(EEXIST);
    if (impl_->read_only) return fail(EROFS);
    return fail(EACCES);
}

Result<Attr> Filesystem::setattr(Ino ino, const SetAttr& s) {
    std::lock_guard lock(impl_->mu);
    Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    if (impl_->read_only) return fail(EROFS);
    if (s.size && n->is_dir()) return fail(EISDIR);
    Timespec now = impl_->clock();
    Attr& a = n->attr;
    if (s.mode) a.mode = (a.mode & kIfMt) | (*s.mode & 07777);
    if (s.uid) a.uid = *s.uid;
    if (s.gid) a.gid = *s.gid;
    if (s.size) {
        a.size = *s.size;
        a.mtime = now;
    }
    if (s.atime) a.atime = s.atime->now ? now : s.atime->at;
    if (s.mtime) a.mtime = s.mtime->now ? now : s.mtime->at;
    a.ctime = s.ctime ? *s.ctime : now;
    return a;
}

Result<void> Filesystem::open(const Caller& c, Ino ino, int acc_mode) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    if (n->is_dir()) return {};
    auto p = impl_->permission(c, *n, acc_mode);
    if (!p) return p.error();
    return fail(ENXIO);
}

Result<void> Filesystem::opendir(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    if (!n->is_dir()) return fail(ENOTDIR);
    return {};
}

Result<void> Filesystem::readdir(Ino ino, std::uint64_t off, bool plus, const DirSink& sink) {
    std::lock_guard lock(impl_->mu);
    Node* d = impl_->find(ino);
    if (d == nullptr || d->removed) return fail(ENOENT);
    if (!d->is_dir()) return fail(ENOTDIR);
    if (off < 1 && !sink(DirEntry{".", d->attr, 1})) return {};
    if (off < 2) {
        const Node* parent = impl_->find(d->parent);
        if (!sink(DirEntry{"..", parent ? parent->attr : d->attr, 2})) return {};
    }
    for (auto it = d->dir->by_cookie.upper_bound(std::max<std::uint64_t>(off, 2));
         it != d->dir->by_cookie.end(); ++it) {
        Node* n = impl_->find(it->second);
        if (!sink(DirEntry{n->name, n->attr, n->cookie})) break;
        if (plus) ++n->nlookup;
    }
    return {};
}

Result<Filesystem::XattrReply> Filesystem::getxattr(const Caller& c, Ino ino,
                                                    std::string_view name,
                                                    std::size_t size) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    // xattr_permission(): reading any xattr needs MAY_READ on the inode.
    auto p = impl_->permission(c, *n, kMayRead);
    if (!p) return p.error();
    if (n->is_dir()) return fail(EOPNOTSUPP);
    if ((n->attr.mode & kIfMt) != kIfReg) return fail(ENODATA);  // the socket node
    // The seed compares with strncmp(name, "bpf.type", 8): a prefix match.
    if (name.substr(0, 8) != "bpf.type") return fail(ENODATA);
    std::string value = n->type == ObjType::map ? std::string("map", 4) : std::string("prog", 5);
    XattrReply r;
    r.length = value.size();
    if (size == 0) return r;
    if (size < value.size()) return fail(ERANGE);
    r.value = std::move(value);
    return r;
}

Result<Filesystem::XattrReply> Filesystem::listxattr(Ino ino, std::size_t size) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    XattrReply r;
    if ((n->attr.mode & kIfMt) != kIfReg) return r;  // directories and the socket node
    static constexpr std::string_view kList{"bpf.type\0", 9};
    r.length = kList.size();
    if (size == 0) return r;
    if (size < kList.size()) return fail(ERANGE);
    r.value = std::string(kList);
    return r;
}

Result<void> Filesystem::setxattr(Ino ino, std::string_view) const {
    std::lock_guard lock(impl_->mu);
    if (impl_->find(ino) == nullptr) return fail(ENOENT);
    return fail(EOPNOTSUPP);
}

Result<void> Filesystem::removexattr(Ino ino, std::string_view) const {
    std::lock_guard lock(impl_->mu);
    if (impl_->find(ino) == nullptr) return fail(ENOENT);
    return fail(EOPNOTSUPP);
}

Result<Attr> Filesystem::pin(const Caller& c, Ino parent, std::string_view name, ObjType type,
                             ObjHandle handle, bool read_only) {
    if (!c.caps.sys_admin) return fail(EPERM);
    std::lock_guard lock(impl_->mu);
    auto d = impl_->live_dir(parent);
    if (!d) return d.error();
    Node& p = **d;
    if (name.size() > kNameMax) return fail(ENAMETOOLONG);
    if (name.empty()) return fail(ENOENT);  // a path ending in '/'
    if (is_bad_name(name)) return fail(EINVAL);
    if (name == "." || name == ".." || impl_->child(p, name) != nullptr) return fail(EEXIST);
    if (read_only) return fail(EROFS);
    if (is_dotted(name)) return fail(EPERM);
    if (impl_->policy.terminal_dirs && p.dir->nsubdirs > 0) return fail(EBUSY);
    Node& n = impl_->link_new(p, name, kIfReg | 0600, c);
    n.attr.nlink = 1;
    n.type = type;
    n.handle = handle;
    ++p.dir->nobjects;
    ++(type == ObjType::map ? impl_->counts.maps : impl_->counts.progs);
    return n.attr;
}

Result<Fetched> Filesystem::get(const Caller& c, Ino ino) {
    std::lock_guard lock(impl_->mu);
    Node* n = impl_->find(ino);
    if (n == nullptr || n->removed) return fail(ENOENT);
    auto p = impl_->permission(c, *n, kMayWrite);
    if (!p) return p.error();
    if (n->is_dir() || !n->handle) return fail(EACCES);
    n->attr.atime = impl_->clock();  // touch_atime()
    return Fetched{*n->handle, n->type};
}

Result<Attr> Filesystem::make_socket_node() {
    std::lock_guard lock(impl_->mu);
    if (impl_->socket_ino == 0) {
        Ino ino = impl_->next_ino++;
        Node& n = impl_->nodes[ino];
        n.ino = ino;
        n.parent = kRootIno;
        n.name = std::string(kSocketName);
        Timespec now = impl_->clock();
        n.attr.ino = ino;
        n.attr.mode = kIfSock | 0666;
        n.attr.nlink = 1;
        n.attr.atime = n.attr.mtime = n.attr.ctime = now;
        impl_->socket_ino = ino;
    }
    Node& n = impl_->nodes.at(impl_->socket_ino);
    ++n.nlookup;
    return n.attr;
}

Ino Filesystem::socket_ino() const {
    std::lock_guard lock(impl_->mu);
    return impl_->socket_ino;
}

Result<void> Filesystem::permission(const Caller& c, Ino ino, int mask) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    return impl_->permission(c, *n, mask);
}

void Filesystem::set_read_only(bool ro) {
    std::lock_guard lock(impl_->mu);
    impl_->read_only = ro;
}

MountOptions Filesystem::options() const {
    std::lock_guard lock(impl_->mu);
    return impl_->opts;
}

Attr Filesystem::apply_options(const MountOptions& opts) {
    std::lock_guard lock(impl_->mu);
    impl_->opts = opts;
    Attr& a = impl_->nodes.at(kRootIno).attr;
    a.mode = kIfDir | (opts.mode & 07777);
    a.uid = opts.uid;
    a.gid = opts.gid;
    a.ctime = impl_->clock();
    return a;
}

Counts Filesystem::counts() const {
    std::lock_guard lock(impl_->mu);
    return impl_->counts;
}

std::size_t Filesystem::node_count() const {
    std::lock_guard lock(impl_->mu);
    return impl_->nodes.size();
}

std::vector<ObjHandle> Filesystem::release_all() {
    std::lock_guard lock(impl_->mu);
    std::vector<ObjHandle> out;
    for (auto& [ino, n] : impl_->nodes) {
        if (n.handle) {
            out.push_back(*n.handle);
            n.handle.reset();
        }
    }
    impl_->counts.maps = impl_->counts.progs = 0;
    return out;
}

}  // namespace bpffs::fsops
