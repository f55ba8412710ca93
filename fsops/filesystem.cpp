// SPDX-License-Identifier: GPL-2.0-or-later
// The filesystem's rules, one function per operation in the kernel's order (the seed's
// kernel/bpf/inode.c and the VFS checks it relies on); the storage they work on is
// fsops/node_table.hpp, restore's checks are fsops/restore.cpp.
//
// Change reporting: a call that may change state runs its body through Impl::change(), which
// holds the lock and, at the end, hands the change sink what the body marked (node_table.hpp).
#include "fsops/filesystem.hpp"

#include "fsops/names.hpp"
#include "fsops/node_table.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <type_traits>

namespace bpffs::fsops {

using table::Detached;
using table::Dir;
using table::Entry;
using table::kNone;
using table::Node;

bool Caller::in_group(std::uint32_t g) const {
    return g == gid || std::find(groups.begin(), groups.end(), g) != groups.end();
}

Caller Caller::root() {
    Caller c;
    c.caps = Caps{true, true, true, true};
    return c;
}

Timespec system_clock_now() {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    return {ns / 1'000'000'000, ns % 1'000'000'000};
}

struct Filesystem::Impl : table::NodeTable {
    // Lock order: this is the core's only mutex; nothing is called with it held except the
    // readdir sink and the change sink, which must not call back in. Shared only where a get
    // finds it has nothing to change (Filesystem::get).
    mutable std::shared_mutex mu;
    Clock clock;
    // The mount's rule set: opts.compat, kept apart so that the checks made before the lock
    // (may_pin, get_access, policy()) read it without racing a remount's write of opts.
    // Set with opts; compat= never changes after the mount.
    std::atomic<Compat> compat{Compat::seed};
    Policy policy() const { return Policy(compat.load(std::memory_order_relaxed)); }

    // A new name in `parent`, in filename_create()'s order: its length, a name no path
    // component can be (empty: `empty_errno`), an existing one ('.' and '..' too), a read-only
    // mount. Shared by mkdir, pin, mknod and create; the dot and terminal rules follow in each.
    Result<void> check_new_name(const Node& parent, std::string_view name, bool read_only_mount,
                                int empty_errno) {
        if (name.size() > kNameMax) return fail(ENAMETOOLONG);
        if (name.empty()) return fail(empty_errno);
        if (is_bad_name(name)) return fail(EINVAL);
        if (name == "." || name == ".." || child(parent, name) != nullptr) return fail(EEXIST);
        if (read_only_mount) return refuse(EROFS, "the mount is read-only");
        return {};
    }

    Result<Fetched> fetch(const Caller& c, Ino ino, const GetAccess& access, const Timespec& now,
                          bool* touch) const;

    // Room for a new node of `c` (NodeLimits): ENOSPC past the bound in all, or past c's share
    // unless c is root or owns the root directory (the mount's owner).
    Result<void> room_for(const Caller& c) const {
        if (limits.max_nodes != 0 && live_nodes >= limits.max_nodes)
            return refuse(ENOSPC, "the mount holds nr_inodes nodes");
        if (limits.max_nodes_per_uid == 0 || c.uid == 0 || c.uid == find(kRootIno)->uid) return {};
        auto it = owned.find(c.uid);
        if (it != owned.end() && it->second >= limits.max_nodes_per_uid)
            return refuse(ENOSPC, "the caller's uid holds nr_inodes_per_uid nodes");
        return {};
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

    // A live directory to work in: ENOENT if gone or removed, ENOTDIR if not a directory.
    Result<Node*> live_dir(Ino ino) {
        Node* n = find(ino);
        if (n == nullptr || n->removed()) return fail(ENOENT);
        if (!n->is_dir()) return fail(ENOTDIR);
        return n;
    }

    // The name an rmdir, unlink or rename removes, in their order: a read-only mount (EROFS),
    // the parent (live_dir), the name (ENOENT).
    struct Victim {
        Node* parent;
        Node* node;
        std::uint32_t pos;  // its entry in the parent (kNone: the socket node, which has none)
    };
    Result<Victim> victim(Ino parent, std::string_view name) {
        if (read_only) return fail(EROFS);
        auto d = live_dir(parent);
        if (!d) return d.error();
        return entry(**d, name);
    }
    // The name `name` of directory `parent`: ENOENT when there is none.
    Result<Victim> entry(Node& parent, std::string_view name) {
        Node* n = child(parent, name);
        if (n == nullptr) return fail(ENOENT);
        std::uint32_t pos = n->ino == socket_ino ? kNone : dir_of(parent).find(name);
        return Victim{&parent, n, pos};
    }

    // New node linked into `parent` under `name`: validate first (the caller), then allocate,
    // then link.
    // The group of a node `c` makes in `parent`: inode_init_owner(), where a setgid parent
    // passes its group on.
    static std::uint32_t new_gid(const Node& parent, const Caller& c) {
        return (parent.bits & kIsGid) ? parent.gid : c.gid;
    }

    Node& link_new(Node& parent, std::string_view name, std::uint32_t mode, const Caller& c) {
        Dir& d = dir_of(parent);
        d.reserve_entry(name.size());
        Ino ino = next_ino;
        std::uint32_t slot = new_node(ino);
        if ((mode & kIfMt) == kIfDir) {
            try {
                dirs.try_emplace(ino);
            } catch (...) {
                erase_node(at(slot));
                throw;
            }
        }
        ++next_ino;
        Node& n = at(slot);
        Timespec now = clock();
        Attr a;
        a.mode = mode;
        a.uid = c.uid;
        a.gid = new_gid(parent, c);
        a.atime = a.mtime = a.ctime = now;
        set_attr(n, a);
        link(parent, d, slot, name, d.next_cookie++);
        touch(n);
        touch_times(parent);  // next_cookie, and nlink for a directory
        touch_meta();         // next_ino
        return n;
    }

    // Takes the name at `pos` of `parent` away from its node: the parent's mtime and ctime and
    // the node's ctime move to now. With its last name the node is removed, and stays in the
    // table while the kernel references it; the handle an object held is returned (release_all
    // may have taken it already), which the caller releases.
    std::optional<ObjHandle> unlink_node(Node& parent, Node& n, std::uint32_t pos) {
        std::uint32_t dir = slot_of(parent.ino);
        Dir& d = dir_of(parent);
        const Entry e = d.entries[pos];
        bool last = !n.has(Node::kMoreNames);
        bool referenced = lookups(n) > 0;
        if (last && referenced)  // the only allocation: first
            detached.insert_or_assign(n.ino,
                                      Detached{parent.ino, e.cookie, std::string(d.name_of(e))});
        std::optional<ObjHandle> released;
        if (last && n.has(Node::kHasHandle)) {
            released = n.handle;
            n.handle = 0;
            n.bits &= ~Node::kHasHandle;
            --counts.of(n.type());
        }
        if (n.is_dir()) {
            --d.nsubdirs;  // the parent's nlink
            --counts.dirs;
        } else {
            --d.nobjects;  // the parent stops being terminal with its last object
        }
        update_attr(parent, [&](Attr& a) { a.mtime = a.ctime = clock(); });
        if (!last) drop_name(n, dir, pos);
        remove_entry(dir, pos);
        if (last) n.bits = (n.bits & ~Node::kLinked) | Node::kRemoved;  // nlink is 0 now
        update_attr(n, [&](Attr& a) { a.ctime = clock(); });
        touch_times(parent);  // mtime, ctime, nlink
        touch(n);
        if (last && !referenced) erase_node(n);
        return released;
    }

    // Is directory `dir` `n` or below it?
    bool within(const Node& dir, const Node& n) const {
        for (const Node* p = &dir;; p = &at(p->parent)) {
            if (p->ino == n.ino) return true;
            if (p->ino == kRootIno) return false;
        }
    }

    // The checks of a rename once both names are found (do_renameat2's traps, then
    // vfs_rename's may_delete and simple_rename's emptiness). `to.node` may be null.
    Result<void> rename_allowed(const Victim& from, const Victim& to, unsigned flags) const {
        const Node& src = *from.node;
        if (src.is_dir() && within(*to.parent, src)) return fail(EINVAL);
        if (to.node == nullptr) return {};
        const Node& dst = *to.node;
        if (dst.is_dir() && within(*from.parent, dst))
            return fail(flags & kRenameExchange ? EINVAL : ENOTEMPTY);
        if (flags & kRenameExchange) return {};
        if (src.is_dir() && !dst.is_dir()) return fail(ENOTDIR);
        if (!src.is_dir() && dst.is_dir()) return fail(EISDIR);
        if (dst.is_dir() && dir_of(dst).live() != 0) return fail(ENOTEMPTY);
        return {};
    }

    // Moves the name at `from.pos` to `to.parent` under `name`, with a new cookie there; its
    // node's name record follows. After reserve_entry() in `to.parent`.
    void move_name(const Victim& from, Node& to, std::string_view name) {
        Dir& fd = dir_of(*from.parent);
        Dir& td = dir_of(to);
        std::uint32_t slot = fd.entries[from.pos].slot;
        Node& n = at(slot);
        std::uint32_t pos = td.append(td.next_cookie++, slot, name);
        retarget(n, slot_of(from.parent->ino), from.pos, slot_of(to.ino), pos);
        --(n.is_dir() ? fd.nsubdirs : fd.nobjects);
        ++(n.is_dir() ? td.nsubdirs : td.nobjects);
        remove_entry(slot_of(from.parent->ino), from.pos);
    }

    // RENAME_EXCHANGE: the two entries trade nodes (names and cookies stay where they are).
    void exchange(const Victim& a, const Victim& b) {
        Dir& ad = dir_of(*a.parent);
        Dir& bd = dir_of(*b.parent);
        std::uint32_t as = ad.entries[a.pos].slot, bs = bd.entries[b.pos].slot;
        std::uint32_t adir = slot_of(a.parent->ino), bdir = slot_of(b.parent->ino);
        retarget(at(as), adir, a.pos, bdir, b.pos);
        retarget(at(bs), bdir, b.pos, adir, a.pos);
        ad.entries[a.pos].slot = bs;
        bd.entries[b.pos].slot = as;
        if (at(as).is_dir() && !at(bs).is_dir()) {  // a directory for an object, and back
            --ad.nsubdirs, ++ad.nobjects, ++bd.nsubdirs, --bd.nobjects;
        } else if (!at(as).is_dir() && at(bs).is_dir()) {
            ++ad.nsubdirs, --ad.nobjects, --bd.nsubdirs, ++bd.nobjects;
        }
    }

    Result<void> permission(const Caller& c, const Node& n, int mask) const {
        std::uint32_t mode = n.bits & Node::kModeMask;
        std::uint32_t bits;
        if (c.uid == n.uid)
            bits = (mode >> 6) & 7;
        else if (c.in_group(n.gid))
            bits = (mode >> 3) & 7;
        else
            bits = mode & 7;
        if ((static_cast<std::uint32_t>(mask) & ~bits) == 0) return {};
        if (n.is_dir()) {
            if (c.caps.dac_override) return {};
            if (!(mask & kMayWrite) && c.caps.dac_read_search) return {};
        } else {
            if (c.caps.dac_override && (!(mask & kMayExec) || (mode & 0111))) return {};
            if (mask == kMayRead && c.caps.dac_read_search) return {};
        }
        return refuse(EACCES, "the mode's owner, group and other bits refuse this access");
    }
};

Filesystem::Filesystem(MountOptions opts, Clock clock) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.opts = opts;
    m.compat.store(opts.compat, std::memory_order_relaxed);
    m.clock = std::move(clock);
    Node& root = m.at(m.new_node(kRootIno));
    m.dirs.try_emplace(kRootIno);
    root.parent = m.slot_of(kRootIno);
    Attr a;
    a.mode = kIfDir | (opts.mode & 07777);
    a.uid = opts.uid;
    a.gid = opts.gid;
    Timespec now = m.clock();
    a.atime = a.mtime = a.ctime = now;
    m.set_attr(root, a);
    root.nlookup = 1;  // the kernel holds the root for the life of the mount
}

Filesystem::~Filesystem() = default;

Result<Attr> Filesystem::lookup(Ino parent, std::string_view name) {
    return impl_->change([&]() -> Result<Attr> {
        auto d = impl_->live_dir(parent);
        if (!d) return d.error();
        if (name.size() > kNameMax) return fail(ENAMETOOLONG);
        if (!is_generated(parent, name)) {  // this product's names are found in both modes
            if (Errno e = impl_->policy().lookup_refused(name)) return fail(e);
        }
        Node* n = nullptr;
        if (name == ".")
            n = *d;
        else if (name == "..")
            n = &impl_->at((*d)->parent);
        else
            n = impl_->child(**d, name);
        if (n == nullptr) return fail(ENOENT);
        impl_->set_lookups(*n, impl_->lookups(*n) + 1);
        impl_->touch_lookups(*n);
        return impl_->attr_of(*n);
    });
}

void Filesystem::forget(Ino ino, std::uint64_t count) {
    impl_->change([&] {
        Node* n = impl_->find(ino);
        if (n == nullptr || count == 0) return;
        std::uint64_t have = impl_->lookups(*n);
        if (have == 0) return;
        impl_->set_lookups(*n, count >= have ? 0 : have - count);
        impl_->touch_lookups(*n);  // an erase once it leaves the table
        if (n->nlookup == 0 && n->removed()) impl_->erase_node(*n);
    });
}

Result<Attr> Filesystem::getattr(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    return impl_->attr_of(*n);
}

std::string Filesystem::path_of(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    const Impl& m = *impl_;
    if (ino == kRootIno) return "/";
    if (ino == m.socket_ino && ino != 0) return "(socket)";
    const Node* n = m.find(ino);
    if (n == nullptr) return "ino " + std::to_string(ino);
    std::string prefix, path;
    if (n->removed()) {  // its last place, and the path of the directory it was in
        auto d = m.detached.find(ino);
        if (d == m.detached.end()) return "ino " + std::to_string(ino);
        prefix = "(removed) ";
        path = "/" + d->second.name;
        n = m.find(d->second.parent);
        if (n == nullptr) return prefix + "ino " + std::to_string(d->second.parent) + path;
    }
    for (int depth = 0; n->ino != kRootIno && n->has(Node::kLinked) && depth < 4096; ++depth) {
        const Node& p = m.at(n->parent);
        path = "/" + std::string(m.dir_of(p).name_of(m.dir_of(p).entries[n->pos])) + path;
        n = &p;
    }
    return prefix + (path.empty() ? "/" : path);
}

std::uint64_t Filesystem::nlookup(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    return n == nullptr ? 0 : impl_->lookups(*n);
}

bool Filesystem::exists(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    return impl_->find(ino) != nullptr;
}

Result<Attr> Filesystem::mkdir(const Caller& c, Ino parent, std::string_view name,
                               std::uint32_t mode) {
    return impl_->change([&]() -> Result<Attr> {
        auto d = impl_->live_dir(parent);
        if (!d) return d.error();
        Node& p = **d;
        auto ok = impl_->check_new_name(p, name, impl_->read_only, EINVAL);
        if (!ok) return ok.error();
        if (is_dotted(name)) return refuse(EPERM, kDottedRule);
        if (Errno e = impl_->policy().mkdir_refused(impl_->dir_of(p).nobjects)) return fail(e);
        if (auto room = impl_->room_for(c); !room) return room.error();
        std::uint32_t perm = impl_->policy().new_dir_mode(impl_->attr_of(p).mode, mode);
        Node& n = impl_->link_new(p, name, kIfDir | perm, c);
        n.nlookup = 1;  // (link_new touched n and p; the parent's nlink counts the new subdir)
        ++impl_->counts.dirs;
        return impl_->attr_of(n);
    });
}

Result<void> Filesystem::rmdir(Ino parent, std::string_view name) {
    return impl_->change([&]() -> Result<void> {
        auto v = impl_->victim(parent, name);
        if (!v) return v.error();
        Node& n = *v->node;
        if (!n.is_dir()) return fail(ENOTDIR);
        if (impl_->dir_of(n).live() != 0) return fail(ENOTEMPTY);
        impl_->unlink_node(*v->parent, n, v->pos);  // touches both
        return {};
    });
}

Result<Unlinked> Filesystem::unlink(Ino parent, std::string_view name) {
    return impl_->change([&]() -> Result<Unlinked> {
        auto v = impl_->victim(parent, name);
        if (!v) return v.error();
        Node& n = *v->node;
        if (n.is_dir()) return fail(EISDIR);
        if (n.ino == impl_->socket_ino) return fail(EPERM);  // generated, not the user's
        Unlinked out;
        out.released = impl_->unlink_node(*v->parent, n, v->pos);  // touches both
        return out;
    });
}

Result<Unlinked> Filesystem::rename(Ino parent, std::string_view name, Ino newparent,
                                    std::string_view newname, unsigned flags) {
    return impl_->change([&]() -> Result<Unlinked> {
        Impl& m = *impl_;
        if (Errno e = m.policy().name_ops_refused()) return fail(e);
        if ((flags & ~(kRenameNoreplace | kRenameExchange)) != 0 ||
            flags == (kRenameNoreplace | kRenameExchange))
            return fail(EINVAL);
        if (m.read_only) return fail(EROFS);
        auto from_dir = m.live_dir(parent);
        if (!from_dir) return from_dir.error();
        auto to_dir = m.live_dir(newparent);
        if (!to_dir) return to_dir.error();
        if (name.size() > kNameMax || newname.size() > kNameMax) return fail(ENAMETOOLONG);
        if (is_dotted(name)) return refuse(EPERM, kDottedRule);  // the lookups refuse dotted names
        auto from = m.entry(**from_dir, name);
        if (!from) return from.error();
        if (is_dotted(newname)) return refuse(EPERM, kDottedRule);
        auto found = m.entry(**to_dir, newname);
        Impl::Victim to = found ? *found : Impl::Victim{*to_dir, nullptr, kNone};
        if ((flags & kRenameExchange) && to.node == nullptr) return fail(ENOENT);
        if ((flags & kRenameNoreplace) && to.node != nullptr) return fail(EEXIST);
        if (auto ok = m.rename_allowed(*from, to, flags); !ok) return ok.error();
        Unlinked out;
        if (to.node == from->node) return out;  // two names of one node: nothing to do
        // simple_rename_timestamp(): both parents' mtime and ctime, both nodes' ctime.
        Timespec now = m.clock();
        for (Node* p : {from->parent, to.parent}) {
            m.update_attr(*p, [&](Attr& a) { a.mtime = a.ctime = now; });
            m.touch_times(*p);  // nlink too, when a directory moves
        }
        m.update_attr(*from->node, [&](Attr& a) { a.ctime = now; });
        m.touch(*from->node);  // its name
        if (flags & kRenameExchange) {
            m.update_attr(*to.node, [&](Attr& a) { a.ctime = now; });
            m.touch(*to.node);
            m.exchange(*from, to);
            return out;
        }
        m.dir_of(*to.parent).reserve_entry(newname.size());
        if (to.node != nullptr) {
            out.released = m.unlink_node(*to.parent, *to.node, to.pos);
            m.dir_of(*to.parent).reserve_entry(newname.size());  // the unlink may have shrunk it
            from = m.entry(**from_dir, name);                    // and moved the source's entry
        }
        m.move_name(*from, *to.parent, newname);
        return out;
    });
}

Result<Attr> Filesystem::link(Ino ino, Ino newparent, std::string_view newname) {
    return impl_->change([&]() -> Result<Attr> {
        Impl& m = *impl_;
        if (Errno e = m.policy().name_ops_refused()) return fail(e);
        auto d = m.live_dir(newparent);
        if (!d) return d.error();
        if (auto ok = m.check_new_name(**d, newname, m.read_only, EINVAL); !ok) return ok.error();
        if (is_dotted(newname)) return refuse(EPERM, kDottedRule);
        Node* n = m.find(ino);
        if (n == nullptr || n->removed()) return fail(ENOENT);
        if (n->is_dir() || n->ino == m.socket_ino) return fail(EPERM);
        Dir& dir = m.dir_of(**d);
        dir.reserve_entry(newname.size());
        m.reserve_name(*n);
        m.link(**d, dir, m.slot_of(ino), newname, dir.next_cookie++);
        Timespec now = m.clock();
        m.update_attr(**d, [&](Attr& a) { a.mtime = a.ctime = now; });
        m.update_attr(*n, [&](Attr& a) { a.ctime = now; });
        m.set_lookups(*n, m.lookups(*n) + 1);  // the entry reply
        m.touch_times(**d);
        m.touch(*n);
        return m.attr_of(*n);
    });
}

Result<Attr> Filesystem::symlink(const Caller& c, Ino parent, std::string_view name,
                                 std::string_view target) {
    return impl_->change([&]() -> Result<Attr> {
        Impl& m = *impl_;
        if (Errno e = m.policy().name_ops_refused()) return fail(e);
        if (target.empty()) return fail(ENOENT);
        if (target.size() > kTargetMax) return fail(ENAMETOOLONG);
        auto d = m.live_dir(parent);
        if (!d) return d.error();
        if (auto ok = m.check_new_name(**d, name, m.read_only, EINVAL); !ok) return ok.error();
        if (is_dotted(name)) return refuse(EPERM, kDottedRule);
        if (auto room = m.room_for(c); !room) return room.error();
        Ino ino = m.next_ino;  // the node link_new makes
        m.targets.insert_or_assign(ino, std::string(target));
        try {
            m.link_new(**d, name, kIfLnk | 0777, c);
        } catch (...) {
            m.targets.erase(ino);
            throw;
        }
        Node& n = *m.find(ino);
        n.nlookup = 1;  // (link_new touched n and the parent)
        return m.attr_of(n);
    });
}

Result<std::string> Filesystem::readlink(Ino ino) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    if (!n->is_symlink()) return fail(EINVAL);
    return impl_->targets.find(ino)->second;
}

Result<void> Filesystem::mknod(Ino parent, std::string_view name, std::uint32_t mode) {
    std::lock_guard lock(impl_->mu);
    auto d = impl_->live_dir(parent);
    if (!d) return d.error();
    if (auto ok = impl_->check_new_name(**d, name, impl_->read_only, EINVAL); !ok) return ok;
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
    if (auto ok = impl_->check_new_name(**d, name, impl_->read_only, EINVAL); !ok) return ok;
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
        Attr a = impl_->attr_of(*n);
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
        impl_->set_attr(*n, a);
        return a;
    });
}

Result<std::optional<ObjHandle>> Filesystem::open(const Caller& c, Ino ino, int acc_mode) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    if (n->is_dir()) return std::optional<ObjHandle>();
    auto p = impl_->permission(c, *n, acc_mode);
    if (!p) return p.error();
    if (n->is_object() && n->has(Node::kHasHandle) && impl_->policy().map_text_view(n->type())) {
        return std::optional<ObjHandle>(n->handle);
    }
    return fail(impl_->policy().open_object_error());
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
        if (d == nullptr || d->removed()) return fail(ENOENT);
        if (!d->is_dir()) return fail(ENOTDIR);
        if (off < 1 && !sink(DirEntry{".", impl_->attr_of(*d), 1})) return {};
        if (off < 2 && !sink(DirEntry{"..", impl_->attr_of(impl_->at(d->parent)), 2})) return {};
        const Dir& dir = impl_->dir_of(*d);
        std::uint64_t after = std::max<std::uint64_t>(off, 2);
        auto it = std::upper_bound(dir.entries.begin(), dir.entries.end(), after,
                                   [](std::uint64_t c, const Entry& e) { return c < e.cookie; });
        for (auto i = static_cast<std::size_t>(it - dir.entries.begin()); i < dir.entries.size();
             ++i) {
            const Entry e = dir.entries[i];
            if (e.slot == kNone) continue;  // a tombstone
            Node& n = impl_->at(e.slot);
            if (!sink(DirEntry{dir.name_of(e), impl_->attr_of(n), e.cookie})) break;
            if (plus) {
                impl_->set_lookups(n, impl_->lookups(n) + 1);
                impl_->touch_lookups(n);
            }
        }
        return {};
    });
}

Result<Filesystem::XattrReply> Filesystem::getxattr(const Caller& c, Ino ino, std::string_view name,
                                                    std::size_t size) const {
    std::lock_guard lock(impl_->mu);
    const Node* n = impl_->find(ino);
    if (n == nullptr) return fail(ENOENT);
    // xattr_permission(): reading any xattr needs MAY_READ on the inode.
    auto p = impl_->permission(c, *n, kMayRead);
    if (!p) return p.error();
    if (n->is_dir()) return fail(EOPNOTSUPP);
    if (!n->is_object()) return fail(ENODATA);  // the socket node
    // The seed compares with strncmp(name, "bpf.type", 8): a prefix match.
    if (name.substr(0, 8) != "bpf.type") return fail(impl_->policy().other_xattr_error());
    // The value holds the terminating NUL, as the seed's strlen() + 1.
    static constexpr std::string_view kValues[] = {{"map", 4}, {"prog", 5}, {"link", 5}};
    std::string value(kValues[static_cast<std::size_t>(n->type())]);
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
    if (!n->is_object()) return r;  // directories and the socket node
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

Result<void> Filesystem::may_pin(const Caller& c, std::uint32_t file_flags) const {
    if (int e = impl_->policy().pin_flags_refused(file_flags)) return fail(e);
    if (Errno e = impl_->policy().pin_denied(c.caps.sys_admin)) return fail(e);
    return {};
}

Policy Filesystem::policy() const { return impl_->policy(); }

Result<GetAccess> Filesystem::get_access(std::uint32_t file_flags) const {
    return impl_->policy().get_access(file_flags);
}

namespace {

// May `c`, owner of a node it has just made with group `gid`, give it `attrs`? chown(2)'s rules
// (chown_ok, chgrp_ok): another owner needs CAP_CHOWN; another group, membership or CAP_CHOWN.
// The owner's chmod needs nothing.
bool may_give(const Caller& c, std::uint32_t gid, const PinAttrs& attrs) {
    if (c.caps.chown) return true;
    if (attrs.uid && *attrs.uid != c.uid) return false;
    return !attrs.gid || *attrs.gid == gid || c.in_group(*attrs.gid);
}

}  // namespace

Result<Attr> Filesystem::pin(const Caller& c, Ino parent, std::string_view name, ObjType type,
                             ObjHandle handle, bool read_only, bool counts_lookup,
                             std::uint32_t umask, const PinAttrs& attrs) {
    if (auto ok = may_pin(c); !ok) return ok.error();
    if (Errno e = impl_->policy().object_refused(type)) return fail(e);  // the fd, before the path
    return impl_->change([&]() -> Result<Attr> {
        auto d = impl_->live_dir(parent);
        if (!d) return d.error();
        Node& p = **d;
        // An empty name: the path ended in '/'.
        if (auto ok = impl_->check_new_name(p, name, read_only, ENOENT); !ok) return ok.error();
        const Policy policy = impl_->policy();
        if (int mask = policy.pin_parent_access()) {
            if (auto ok = impl_->permission(c, p, mask); !ok) return ok.error();
        }
        if (is_dotted(name)) return refuse(EPERM, kDottedRule);
        if (Errno e = policy.pin_refused(impl_->counted_subdirs(p))) return fail(e);
        if (auto room = impl_->room_for(c); !room) return room.error();
        if (!attrs.valid()) return fail(EINVAL);
        if (!may_give(c, Impl::new_gid(p, c), attrs))
            return refuse(EPERM,
                          "another owner needs CAP_CHOWN; another group, membership or CAP_CHOWN");
        Node& n = impl_->link_new(p, name, kIfReg | policy.new_object_mode(umask), c);
        if (!attrs.empty()) {
            impl_->update_attr(n, [&](Attr& a) {
                a.mode = kIfReg | attrs.mode.value_or(a.mode & 07777);
                a.uid = attrs.uid.value_or(a.uid);
                a.gid = attrs.gid.value_or(a.gid);
            });
        }
        n.bits |= Node::type_bits(type);
        n.bits |= Node::kHasHandle;
        n.handle = handle;  // (link_new touched n and p)
        if (counts_lookup) n.nlookup = 1;
        ++impl_->counts.of(type);
        return impl_->attr_of(n);
    });
}

namespace {

// touch_atime() on a relatime mount (the kernel's default, and the bpf filesystem's): atime moves
// only when it is not after mtime or ctime, or is a day old (relatime_need_update()).
bool relatime_needs_update(const Attr& a, const Timespec& now) {
    constexpr std::int64_t kDay = 24 * 60 * 60;
    return a.mtime >= a.atime || a.ctime >= a.atime || now.sec - a.atime.sec >= kDay;
}

}  // namespace

// The checks of a get on `n`, then what it fetches. `now` given: whether atime is to move.
Result<Fetched> Filesystem::Impl::fetch(const Caller& c, Ino ino, const GetAccess& access,
                                        const Timespec& now, bool* touch) const {
    const Node* n = find(ino);
    if (n == nullptr || n->removed()) return fail(ENOENT);
    auto p = permission(c, *n, access.may);
    if (!p) return p.error();
    if (n->is_dir() || !n->has(Node::kHasHandle)) return fail(EACCES);
    *touch = relatime_needs_update(attr_of(*n), now);
    return Fetched{n->handle, n->type(), access.mode};
}

Result<Fetched> Filesystem::get(const Caller& c, Ino ino, std::uint32_t file_flags) {
    auto access = impl_->policy().get_access(file_flags);
    if (!access) return access.error();
    {
        // Most gets change nothing (relatime): those share the lock with each other.
        std::shared_lock lock(impl_->mu);
        bool touch = false;
        auto got = impl_->fetch(c, ino, *access, impl_->clock(), &touch);
        if (!got || !touch) return got;
    }
    return impl_->change([&]() -> Result<Fetched> {
        Timespec now = impl_->clock();
        bool touch = false;
        auto got = impl_->fetch(c, ino, *access, now, &touch);
        if (!got || !touch) return got;
        Node& n = *impl_->find(ino);
        impl_->update_attr(n, [&](Attr& a) { a.atime = now; });  // touch_atime()
        impl_->touch_times(n);
        return got;
    });
}

Result<Attr> Filesystem::make_socket_node() {
    return impl_->change([&]() -> Result<Attr> {
        Impl& m = *impl_;
        if (m.socket_ino == 0) {
            bool reserved = m.find(kSocketIno) == nullptr && kSocketIno < m.next_ino;
            Ino ino = reserved ? kSocketIno : m.next_ino++;
            std::uint32_t slot = m.new_node(ino);
            Node& n = m.at(slot);
            n.parent = m.slot_of(kRootIno);
            Timespec now = m.clock();
            Attr a;
            a.mode = kIfSock | 0666;
            a.atime = a.mtime = a.ctime = now;
            m.set_attr(n, a);
            m.socket_ino = ino;
            m.touch(n);
            m.touch_meta();
        }
        Node& n = *m.find(m.socket_ino);
        m.set_lookups(n, m.lookups(n) + 1);
        m.touch_lookups(n);
        return m.attr_of(n);
    });
}

std::vector<std::string> Filesystem::keep_lost(const std::vector<HeldObject>& objects) {
    return impl_->change([&] {
        Impl& m = *impl_;
        std::vector<std::string> names;
        if (objects.empty()) return names;
        const Caller root = Caller::root();
        Node* dir = m.child(*m.find(kRootIno), kLostFoundName);
        if (dir == nullptr) {
            dir = &m.link_new(*m.find(kRootIno), kLostFoundName, kIfDir | 0700, root);
            ++m.counts.dirs;
        }
        for (const HeldObject& o : objects) {
            const char* kind = o.type == ObjType::map    ? "map"
                               : o.type == ObjType::prog ? "prog"
                                                         : "link";
            std::string name = std::string(kind) + "-" + std::to_string(o.id);
            for (int i = 2; m.child(*dir, name) != nullptr; ++i)
                name = std::string(kind) + "-" + std::to_string(o.id) + "-" + std::to_string(i);
            Node& n = m.link_new(*dir, name, kIfReg | 0600, root);
            n.bits |= Node::type_bits(o.type) | Node::kHasHandle;
            n.handle = o.handle;
            ++m.counts.of(o.type);
            names.push_back(std::move(name));
        }
        return names;
    });
}

std::size_t Filesystem::lost_count() const {
    std::lock_guard lock(impl_->mu);
    const Node* dir = impl_->child(*impl_->find(kRootIno), kLostFoundName);
    return dir == nullptr ? 0 : impl_->dir_of(*dir).nobjects;
}

void Filesystem::skip_inos(Ino ino) {
    impl_->change([&] {
        if (ino <= impl_->next_ino) return;
        impl_->next_ino = ino;
        impl_->touch_meta();
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
    MountOptions o = impl_->opts;
    if (impl_->policy().options_from_root()) {
        const Attr a = impl_->attr_of(*impl_->find(kRootIno));
        o.uid = a.uid;
        o.gid = a.gid;
        o.mode = a.mode & 07777;
    }
    return o;
}

Attr Filesystem::apply_options(const MountOptions& opts) {
    return impl_->change([&]() -> Attr {
        impl_->opts = opts;
        impl_->compat.store(opts.compat, std::memory_order_relaxed);
        impl_->touch_meta();
        Node& root = *impl_->find(kRootIno);
        impl_->touch(root);
        Attr a = impl_->attr_of(root);
        a.mode = kIfDir | (opts.mode & 07777);
        a.uid = opts.uid;
        a.gid = opts.gid;
        a.ctime = impl_->clock();
        impl_->set_attr(root, a);
        return a;
    });
}

void Filesystem::set_node_limits(NodeLimits limits) {
    std::lock_guard lock(impl_->mu);
    impl_->limits = limits;
}

NodeLimits Filesystem::node_limits() const {
    std::lock_guard lock(impl_->mu);
    return impl_->limits;
}

Counts Filesystem::counts() const {
    std::lock_guard lock(impl_->mu);
    return impl_->counts;
}

std::size_t Filesystem::node_count() const {
    std::lock_guard lock(impl_->mu);
    return impl_->live_nodes;
}

std::vector<ObjHandle> Filesystem::release_all() {
    return impl_->change([&]() -> std::vector<ObjHandle> {
        std::vector<ObjHandle> out;
        for (std::uint32_t slot = 0; slot < impl_->slots_used; ++slot) {
            Node& n = impl_->at(slot);
            if (n.ino != 0 && n.has(Node::kHasHandle)) {
                out.push_back(n.handle);
                n.handle = 0;
                n.bits &= ~Node::kHasHandle;
                impl_->touch(n);
            }
        }
        impl_->counts.maps = impl_->counts.progs = impl_->counts.links = 0;
        return out;
    });
}

void Filesystem::set_change_sink(ChangeSink sink) {
    std::lock_guard lock(impl_->mu);
    impl_->sink = std::move(sink);
    impl_->pending.clear();
    impl_->pending_at.clear();
}

void Filesystem::stream_state(const std::function<void(const Change&)>& out,
                              const std::function<void()>& done) const {
    std::lock_guard lock(impl_->mu);
    Change c;
    c.kind = Change::Kind::meta;
    c.meta = impl_->meta();
    out(c);
    c.kind = Change::Kind::put;
    for (std::uint32_t slot = 0; slot < impl_->slots_used; ++slot) {
        const Node& n = impl_->at(slot);
        if (n.ino == 0) continue;
        c.node = impl_->state_of(n);
        out(c);
    }
    if (done) done();
}

CoreState Filesystem::snapshot() const {
    std::lock_guard lock(impl_->mu);
    CoreState s;
    s.meta = impl_->meta();
    s.nodes.reserve(impl_->live_nodes);
    for (std::uint32_t slot = 0; slot < impl_->slots_used; ++slot) {
        const Node& n = impl_->at(slot);
        if (n.ino != 0) s.nodes.push_back(impl_->state_of(n));
    }
    std::sort(s.nodes.begin(), s.nodes.end(),
              [](const NodeState& a, const NodeState& b) { return a.ino < b.ino; });
    return s;
}

Filesystem::Filesystem(Clock clock, RestoreKey) : impl_(std::make_unique<Impl>()) {
    impl_->clock = std::move(clock);
}

Result<std::unique_ptr<Filesystem>> Filesystem::restore(const CoreMeta& meta,
                                                        const NodeSource& nodes,
                                                        std::size_t expected, Clock clock) {
    auto fs = std::make_unique<Filesystem>(std::move(clock), RestoreKey{});
    if (!fs->impl_->load(meta, nodes, expected, Policy(meta.opts.compat))) return fail(EINVAL);
    fs->impl_->compat.store(meta.opts.compat, std::memory_order_relaxed);
    return fs;
}

Result<std::unique_ptr<Filesystem>> Filesystem::restore(const CoreState& s, Clock clock) {
    return restore(
        s.meta,
        [&s](const std::function<bool(NodeState &&)>& each) {
            for (const NodeState& n : s.nodes) {
                if (!each(NodeState(n))) return;
            }
        },
        s.nodes.size(), std::move(clock));
}

}  // namespace bpffs::fsops
