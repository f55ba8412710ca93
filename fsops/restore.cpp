// SPDX-License-Identifier: GPL-2.0-or-later
// Restore: a core rebuilt from a state (the state log, systemd's fd store), with every invariant
// the operations keep checked, since the state comes from outside the process.
#include "fsops/names.hpp"
#include "fsops/node_table.hpp"

#include <algorithm>
#include <vector>

namespace bpffs::fsops::table {

namespace {

// The checks a node's state passes on its own: its ino, type and format, a root, a socket, a
// removed node and a named one each as the operations make them.
bool node_state_valid(const NodeState& ns, Ino next_ino, Ino socket_ino) {
    if (ns.ino == 0 || ns.ino >= next_ino || ns.attr.ino != ns.ino) return false;
    if (ns.type != ObjType::map && ns.type != ObjType::prog && ns.type != ObjType::link)
        return false;
    std::uint32_t fmt = ns.attr.mode & kIfMt;
    if (fmt != kIfDir && fmt != kIfReg && fmt != kIfSock && fmt != kIfLnk) return false;
    if (ns.is_dir != (fmt == kIfDir)) return false;
    if (ns.is_dir ? ns.next_cookie < kFirstCookie : ns.next_cookie != 0) return false;
    if (ns.handle && fmt != kIfReg) return false;
    if ((fmt == kIfLnk) == ns.target.empty() || ns.target.size() > kTargetMax) return false;
    // Only a named object or symlink has further names (hard links).
    if (!ns.more_names.empty() && (ns.removed || (fmt != kIfReg && fmt != kIfLnk))) return false;
    for (const NameState& m : ns.more_names) {
        if (m.parent == 0 || !is_valid_name(m.name)) return false;
    }
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
        return ns.nlookup != 0 && !ns.handle && ns.attr.nlink == 0;
    }
    if (is_root || is_socket) return true;
    bool one_per_name = fmt != kIfReg && fmt != kIfLnk;  // dirs: checked with the tree
    bool lost_found = ns.parent == kRootIno && ns.name == kLostFoundName && ns.is_dir;
    return (is_valid_name(ns.name) || lost_found) &&
           (one_per_name || ns.attr.nlink == 1 + ns.more_names.size());
}

}  // namespace

// A name waiting to be linked into its parent; its bytes are in load()'s arena of names.
struct NodeTable::ToLink {
    Ino parent;
    std::uint64_t cookie;
    std::uint32_t slot;
    std::uint32_t name_len;
    std::size_t name_at;
};

// A live directory's link count as the state has it, checked once the tree is linked.
struct NodeTable::DirLinks {
    Ino ino;
    std::uint32_t nlink;
};

// Fills an empty table from the nodes of a state: each node on its own as it comes (and then
// dropped), then the links into the parents (in cookie order, so each directory's entries come
// out sorted), then the rules that need the whole tree. False on the first inconsistency.
bool NodeTable::load(const CoreMeta& m, const NodeSource& nodes, std::size_t expected,
                     const Policy& policy) {
    if (m.next_ino <= kRootIno) return false;
    opts = m.opts;
    next_ino = m.next_ino;
    socket_ino = m.socket_ino;
    read_only = m.read_only;
    counts = Counts{};

    std::vector<ToLink> to_link;
    to_link.reserve(expected);
    std::string names;  // every name to link, back to back
    std::vector<DirLinks> dir_links;
    bool name_ops = !policy.name_ops_refused();
    bool ok = true;
    nodes([&](NodeState&& ns) {
        // Hard links and symlinks only where the rule set has them.
        ok = (name_ops || (ns.more_names.empty() && ns.target.empty())) &&
             load_node(std::move(ns), to_link, names, dir_links);
        return ok;
    });
    if (!ok) return false;
    std::uint32_t root_slot = slot_of(kRootIno);
    if (root_slot == kNone) return false;
    at(root_slot).parent = root_slot;
    if (socket_ino != 0) {
        Node* sock = find(socket_ino);
        if (sock == nullptr) return false;
        sock->parent = root_slot;
    }
    if (!link_loaded(to_link, names) || !count_loaded(dir_links, policy.mixed_dirs_allowed()))
        return false;
    // Every linked node hangs off the root (no cycle of directories on its own).
    return reachable_from_root() == to_link.size();
}

// One node into the slab, its names queued for link_loaded().
bool NodeTable::load_node(NodeState&& ns, std::vector<ToLink>& to_link, std::string& names,
                          std::vector<DirLinks>& dir_links) {
    if (!node_state_valid(ns, next_ino, socket_ino)) return false;
    if (find(ns.ino) != nullptr) return false;  // the same ino twice
    std::uint32_t slot = new_node(ns.ino);
    Node& n = at(slot);
    set_attr(n, ns.attr);
    set_lookups(n, ns.nlookup);
    n.bits |= Node::type_bits(ns.type);
    if (ns.handle) {
        n.bits |= Node::kHasHandle;
        n.handle = *ns.handle;
        ++counts.of(ns.type);
    }
    if (ns.is_dir) {
        dirs[ns.ino].next_cookie = ns.next_cookie;
        if (!ns.removed) dir_links.push_back(DirLinks{ns.ino, ns.attr.nlink});
    }
    if (ns.removed) {
        n.bits |= Node::kRemoved;
        detached[ns.ino] = Detached{ns.parent, ns.cookie, std::move(ns.name)};
    } else if (ns.ino != kRootIno && ns.ino != socket_ino) {
        auto queue = [&](Ino parent, std::uint64_t cookie, const std::string& name) {
            to_link.push_back(ToLink{parent, cookie, slot, static_cast<std::uint32_t>(name.size()),
                                     names.size()});
            names += name;
        };
        queue(ns.parent, ns.cookie, ns.name);
        for (const NameState& m : ns.more_names) queue(m.parent, m.cookie, m.name);
    }
    if (!ns.target.empty()) targets[ns.ino] = std::move(ns.target);
    return true;
}

// Links the named nodes into live parent directories, each cookie and name once.
bool NodeTable::link_loaded(std::vector<ToLink>& to_link, const std::string& names) {
    std::sort(to_link.begin(), to_link.end(), [](const ToLink& a, const ToLink& b) {
        return a.parent != b.parent ? a.parent < b.parent : a.cookie < b.cookie;
    });
    for (std::size_t i = 0; i < to_link.size(); ++i) {
        const ToLink& l = to_link[i];
        const std::string_view name(names.data() + l.name_at, l.name_len);
        Node* p = find(l.parent);
        if (p == nullptr || p->removed() || !p->is_dir()) return false;
        Dir& d = dir_of(*p);
        if (l.cookie < kFirstCookie || l.cookie >= d.next_cookie) return false;
        if (i > 0 && to_link[i - 1].parent == l.parent && to_link[i - 1].cookie == l.cookie)
            return false;                         // the same cookie twice in a directory
        if (d.find(name) != kNone) return false;  // the same name twice
        d.reserve_entry(name.size());
        if (at(l.slot).has(Node::kLinked)) reserve_name(at(l.slot));
        link(*p, d, l.slot, name, l.cookie);
    }
    return true;
}

// Each live directory's nlink and (unless allowed) the terminal rule; the directory count.
bool NodeTable::count_loaded(const std::vector<DirLinks>& dir_links, bool mixed_dirs) {
    for (const DirLinks& l : dir_links) {
        const Node& n = *find(l.ino);
        const Dir& d = dir_of(n);
        if (l.nlink != 2 + d.nsubdirs) return false;
        if (!mixed_dirs && d.nobjects > 0 && counted_subdirs(n) > 0) return false;
        ++counts.dirs;
    }
    return true;
}

// How many names a walk from the root reaches. Only non-directories have more than one name, so
// each directory is entered once and the walk ends.
std::size_t NodeTable::reachable_from_root() const {
    std::size_t reached = 0;
    std::vector<const Dir*> todo{&dirs.find(kRootIno)->second};
    while (!todo.empty()) {
        const Dir* d = todo.back();
        todo.pop_back();
        for (const Entry& e : d->entries) {
            if (e.slot == kNone) continue;
            ++reached;
            const Node& c = at(e.slot);
            if (c.is_dir()) todo.push_back(&dir_of(c));
        }
    }
    return reached;
}

}  // namespace bpffs::fsops::table
