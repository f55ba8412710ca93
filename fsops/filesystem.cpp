// SPDX-License-Identifier: GPL-2.0-or-later
// The core's tree. Every node lives in one table keyed by inode number; a directory keeps its
// children twice: by name (lookup) and by cookie (readdir). A cookie is handed out once per
// entry from a per-directory counter, so listing offsets stay valid while the directory changes:
// resuming at a cookie continues with the entries after it, new entries land at the end.
// Cookies 1 and 2 are "." and "..".
//
// Change reporting: a call that may change state runs its body through Impl::change(), which
// holds the lock and, at the end, hands the change sink what the body marked with touch()
// (the node changed), touch_lookups() (only its lookup count) or touch_meta(). The records are
// built from the values at the end of the call, so a node is marked once, wherever it is
// changed, and a marked node no longer in the table becomes an erase.
#include "fsops/filesystem.hpp"

#include <algorithm>
#include <chrono>
#include <type_traits>

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
// A name mkdir or pin could have created.
bool is_valid_name(std::string_view name) {
    return !name.empty() && name.size() <= kNameMax && !is_bad_name(name) && !is_dotted(name);
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

    // Changes of the call in progress, each ino once in the order first changed (kMetaMark: the
    // meta); `whole` unless only the lookup count changed. Empty while no sink is set.
    static constexpr Ino kMetaMark = 0;
    struct Pending {
        Ino ino;
        bool whole;
    };
    ChangeSink sink;
    std::vector<Pending> pending;
    std::unordered_map<Ino, std::size_t> pending_at;

    void mark(Ino ino, bool whole) {
        if (!sink) return;
        auto [it, fresh] = pending_at.try_emplace(ino, pending.size());
        if (fresh) pending.push_back(Pending{ino, whole});
        else pending[it->second].whole = pending[it->second].whole || whole;
    }
    void touch(const Node& n) { mark(n.ino, true); }
    void touch_lookups(const Node& n) { mark(n.ino, false); }
    void touch_meta() { mark(kMetaMark, true); }

    NodeState state_of(const Node& n) const {
        NodeState s;
        s.ino = n.ino;
        s.parent = n.ino == kRootIno ? 0 : n.parent;
        s.cookie = n.cookie;
        s.name = n.name;
        s.attr = n.attr;
        s.nlookup = n.nlookup;
        s.removed = n.removed;
        s.is_dir = n.is_dir();
        s.next_cookie = n.is_dir() ? n.dir->next_cookie : 0;
        s.type = n.type;
        s.handle = n.handle;
        return s;
    }
    CoreMeta meta() const { return CoreMeta{opts, next_ino, socket_ino, read_only}; }

    // Hands the marked changes to the sink. The marks are dropped before the sink runs, so a
    // sink that throws is not called again with the same changes.
    void flush() {
        if (pending.empty()) return;
        std::vector<Change> out;
        out.reserve(pending.size());
        for (const Pending& p : pending) {
            Change c;
            const Node* n = p.ino == kMetaMark ? nullptr : find(p.ino);
            if (p.ino == kMetaMark) {
                c.kind = Change::Kind::meta;
                c.meta = meta();
            } else if (n == nullptr) {
                c.kind = Change::Kind::erase;
                c.ino = p.ino;
            } else if (!p.whole) {
                c.kind = Change::Kind::lookups;
                c.ino = p.ino;
                c.nlookup = n->nlookup;
            } else {
                c.kind = Change::Kind::put;
                c.node = state_of(*n);
            }
            out.push_back(std::move(c));
        }
        pending.clear();
        pending_at.clear();
        sink(out);
    }

    // Runs the body of a call that may change state: under the lock, then reports what it
    // changed, also when it throws after changing something.
    template <class F>
    auto change(F&& body) -> decltype(body()) {
        std::lock_guard lock(mu);
        try {
            if constexpr (std::is_void_v<decltype(body())>) {
                body();
                flush();
            } else {
                auto r = body();
                flush();
                return r;
            }
        } catch (...) {
            flush();
            throw;
        }
    }

    bool load(const CoreState& s);

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
        touch(n);
        touch(parent);  // next_cookie
        touch_meta();   // next_ino
        return n;
    }

    // Takes a node out of its parent; it stays in the table while the kernel references it.
    void unlink_node(Node& parent, Node& n) {
        parent.dir->by_name.erase(n.name);
        parent.dir->by_cookie.erase(n.cookie);
        n.removed = true;
        n.attr.nlink = 0;
        n.attr.ctime = clock();
        touch(parent);
        touch(n);
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
    return impl_->change([&]() -> Result<Attr> {
        auto d = impl_->live_dir(parent);
        if (!d) return d.error();
        if (name.size() > kNameMax) return fail(ENAMETOOLONG);
        Node* n = nullptr;
        if (name == ".") n = *d;
        else if (name == "..") n = impl_->find((*d)->parent);
        else n = impl_->child(**d, name);
        if (n == nullptr) return fail(ENOENT);
        ++n->nlookup;
        impl_->touch_lookups(*n);
        return n->attr;
    });
}

void Filesystem::forget(Ino ino, std::uint64_t count) {
    impl_->change([&] {
        Node* n = impl_->find(ino);
        if (n == nullptr || count == 0 || n->nlookup == 0) return;
        n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
        impl_->touch_lookups(*n);  // an erase once it leaves the table
        if (n->nlookup == 0 && n->removed) impl_->nodes.erase(ino);
    });
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
    return impl_->change([&]() -> Result<Attr> {
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
        ++p.attr.nlink;  // (link_new touched n and p)
        ++p.dir->nsubdirs;
        ++impl_->counts.dirs;
        return n.attr;
    });
}

Result<void> Filesystem::rmdir(Ino parent, std::string_view name) {
    return impl_->change([&]() -> Result<void> {
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
        impl_->unlink_node(p, *n);  // touches p and n
        return {};
    });
}

Result<Unlinked> Filesystem::unlink(Ino parent, std::string_view name) {
    return impl_->change([&]() -> Result<Unlinked> {
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
        impl_->unlink_node(p, *n);  // touches p and n
        return out;
    });
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
    return impl_->change([&]() -> Result<Attr> {
        Node* n = impl_->find(ino);
        if (n == nullptr) return fail(ENOENT);
        if (impl_->read_only) return fail(EROFS);
        if (s.size && n->is_dir()) return fail(EISDIR);
        Timespec now = impl_->clock();
        impl_->touch(*n);
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
    });
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
    return impl_->change([&]() -> Result<void> {
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
            if (plus) {
                ++n->nlookup;
                impl_->touch_lookups(*n);
            }
        }
        return {};
    });
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
    return impl_->change([&]() -> Result<Attr> {
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
        n.handle = handle;  // (link_new touched n and p)
        ++p.dir->nobjects;
        ++(type == ObjType::map ? impl_->counts.maps : impl_->counts.progs);
        return n.attr;
    });
}

Result<Fetched> Filesystem::get(const Caller& c, Ino ino) {
    return impl_->change([&]() -> Result<Fetched> {
        Node* n = impl_->find(ino);
        if (n == nullptr || n->removed) return fail(ENOENT);
        auto p = impl_->permission(c, *n, kMayWrite);
        if (!p) return p.error();
        if (n->is_dir() || !n->handle) return fail(EACCES);
        n->attr.atime = impl_->clock();  // touch_atime()
        impl_->touch(*n);
        return Fetched{*n->handle, n->type};
    });
}

Result<Attr> Filesystem::make_socket_node() {
    return impl_->change([&]() -> Result<Attr> {
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
            impl_->touch(n);
            impl_->touch_meta();
        }
        Node& n = impl_->nodes.at(impl_->socket_ino);
        ++n.nlookup;
        impl_->touch_lookups(n);
        return n.attr;
    });
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
    impl_->change([&] {
        if (impl_->read_only == ro) return;
        impl_->read_only = ro;
        impl_->touch_meta();
    });
}

MountOptions Filesystem::options() const {
    std::lock_guard lock(impl_->mu);
    return impl_->opts;
}

Attr Filesystem::apply_options(const MountOptions& opts) {
    return impl_->change([&]() -> Attr {
        impl_->opts = opts;
        impl_->touch_meta();
        Node& root = impl_->nodes.at(kRootIno);
        impl_->touch(root);
        Attr& a = root.attr;
        a.mode = kIfDir | (opts.mode & 07777);
        a.uid = opts.uid;
        a.gid = opts.gid;
        a.ctime = impl_->clock();
        return a;
    });
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
    return impl_->change([&]() -> std::vector<ObjHandle> {
        std::vector<ObjHandle> out;
        for (auto& [ino, n] : impl_->nodes) {
            if (n.handle) {
                out.push_back(*n.handle);
                n.handle.reset();
                impl_->touch(n);
            }
        }
        impl_->counts.maps = impl_->counts.progs = 0;
        return out;
    });
}

void Filesystem::set_change_sink(ChangeSink sink) {
    std::lock_guard lock(impl_->mu);
    impl_->sink = std::move(sink);
    impl_->pending.clear();
    impl_->pending_at.clear();
}

CoreState Filesystem::snapshot() const {
    std::lock_guard lock(impl_->mu);
    CoreState s;
    s.meta = impl_->meta();
    s.nodes.reserve(impl_->nodes.size());
    for (const auto& [ino, n] : impl_->nodes) s.nodes.push_back(impl_->state_of(n));
    std::sort(s.nodes.begin(), s.nodes.end(),
              [](const NodeState& a, const NodeState& b) { return a.ino < b.ino; });
    return s;
}

Filesystem::Filesystem(RestoreKey, Clock clock, Policy policy)
    : impl_(std::make_unique<Impl>()) {
    impl_->clock = std::move(clock);
    impl_->policy = policy;
}

Result<std::unique_ptr<Filesystem>> Filesystem::restore(const CoreState& s, Clock clock,
                                                        Policy policy) {
    auto fs = std::make_unique<Filesystem>(RestoreKey{}, std::move(clock), policy);
    if (!fs->impl_->load(s)) return fail(EINVAL);
    return fs;
}

// Fills an empty Impl from `s`: each node on its own, then the links into the parents, then
// the rules that need the whole tree. False on the first inconsistency.
bool Filesystem::Impl::load(const CoreState& s) {
    const CoreMeta& m = s.meta;
    if (m.next_ino <= kRootIno) return false;
    opts = m.opts;
    next_ino = m.next_ino;
    socket_ino = m.socket_ino;
    read_only = m.read_only;

    for (const NodeState& ns : s.nodes) {
        if (ns.ino == 0 || ns.ino >= next_ino || ns.attr.ino != ns.ino) return false;
        if (ns.type != ObjType::map && ns.type != ObjType::prog) return false;
        std::uint32_t fmt = ns.attr.mode & kIfMt;
        if (fmt != kIfDir && fmt != kIfReg && fmt != kIfSock) return false;
        if (ns.is_dir != (fmt == kIfDir)) return false;
        if (ns.is_dir ? ns.next_cookie < kFirstCookie : ns.next_cookie != 0) return false;
        if (ns.handle && fmt != kIfReg) return false;
        bool is_root = ns.ino == kRootIno;
        bool is_socket = ns.ino == socket_ino;
        if ((fmt == kIfSock) != is_socket) return false;
        if (is_root) {
            if (ns.parent != 0 || !ns.name.empty() || ns.cookie != 0 || !ns.is_dir || ns.removed)
                return false;
        } else if (ns.parent == 0) {
            return false;
        }
        if (is_socket && (ns.parent != kRootIno || ns.name != kSocketName || ns.cookie != 0 ||
                          ns.removed || ns.attr.nlink != 1))
            return false;
        if (ns.removed) {
            // Unlinked: no nlink, no object; in the table only while the kernel holds it.
            if (ns.nlookup == 0 || ns.handle || ns.attr.nlink != 0) return false;
        } else if (!is_root && !is_socket) {
            if (!is_valid_name(ns.name)) return false;
            if (fmt == kIfReg && ns.attr.nlink != 1) return false;
        }
        auto [it, fresh] = nodes.try_emplace(ns.ino);
        if (!fresh) return false;  // the same ino twice
        Node& n = it->second;
        n.ino = ns.ino;
        n.parent = is_root ? kRootIno : ns.parent;
        n.cookie = ns.cookie;
        n.name = ns.name;
        n.attr = ns.attr;
        n.nlookup = ns.nlookup;
        n.removed = ns.removed;
        n.type = ns.type;
        n.handle = ns.handle;
        if (ns.is_dir) {
            n.dir = std::make_unique<Node::Dir>();
            n.dir->next_cookie = ns.next_cookie;
        }
    }
    if (find(kRootIno) == nullptr) return false;
    if (socket_ino != 0 && find(socket_ino) == nullptr) return false;

    std::size_t linked = 0;  // live nodes that belong in a directory
    for (auto& [ino, n] : nodes) {
        if (ino == kRootIno || ino == socket_ino || n.removed) continue;
        Node* p = find(n.parent);
        if (p == nullptr || p->removed || !p->is_dir()) return false;
        if (n.cookie < kFirstCookie || n.cookie >= p->dir->next_cookie) return false;
        if (!p->dir->by_name.emplace(n.name, ino).second) return false;
        if (!p->dir->by_cookie.emplace(n.cookie, ino).second) return false;
        ++(n.is_dir() ? p->dir->nsubdirs : p->dir->nobjects);
        ++linked;
    }

    counts = Counts{0, 0, 0};
    for (const auto& [ino, n] : nodes) {
        if (n.handle) ++(n.type == ObjType::map ? counts.maps : counts.progs);
        if (n.removed || !n.is_dir()) continue;
        if (n.attr.nlink != 2 + n.dir->nsubdirs) return false;
        if (policy.terminal_dirs && n.dir->nobjects > 0 && n.dir->nsubdirs > 0) return false;
        ++counts.dirs;
    }

    // Every linked node hangs off the root (no cycle of directories on its own). Each node is
    // linked once, so the walk from the root ends.
    std::size_t reached = 0;
    std::vector<const Node*> todo{find(kRootIno)};
    while (!todo.empty()) {
        const Node* d = todo.back();
        todo.pop_back();
        for (const auto& [name, ino] : d->dir->by_name) {
            ++reached;
            const Node* c = find(ino);
            if (c->is_dir()) todo.push_back(c);
        }
    }
    return reached == linked;
}

}  // namespace bpffs::fsops
