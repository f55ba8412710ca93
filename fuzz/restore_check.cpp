// SPDX-License-Identifier: GPL-2.0-or-later
// check_restore(): restore, compare, list, then change the core and restore after each change.
#include "fuzz/restore_check.hpp"

#include "fuzz/fuzz_check.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace bpffs::fuzz {

using namespace fsops;

namespace {

Timespec fixed_now() { return Timespec{1'700'000'000, 0}; }

// `s` with each node's names ordered as snapshot() orders them: by parent and cookie, the
// first of them the node's first name.
CoreState names_ordered(CoreState s) {
    for (NodeState& n : s.nodes) {
        if (n.more_names.empty()) continue;
        n.more_names.push_back(NameState{n.parent, n.cookie, n.name});
        std::sort(n.more_names.begin(), n.more_names.end(), [](const auto& a, const auto& b) {
            return std::tie(a.parent, a.cookie) < std::tie(b.parent, b.cookie);
        });
        n.parent = n.more_names.front().parent;
        n.cookie = n.more_names.front().cookie;
        n.name = std::move(n.more_names.front().name);
        n.more_names.erase(n.more_names.begin());
    }
    return s;
}

// One listed entry: its cookie, name and node.
using Listed = std::tuple<std::uint64_t, std::string, Ino>;

// Each live directory's entries as the state names them, by directory.
std::map<Ino, std::vector<Listed>> entries_of(const CoreState& s) {
    std::map<Ino, std::vector<Listed>> out;
    for (const NodeState& n : s.nodes) {
        if (n.is_dir && !n.removed) out[n.ino];
        if (n.removed || n.ino == kRootIno || n.ino == s.meta.socket_ino) continue;
        out[n.parent].emplace_back(n.cookie, n.name, n.ino);
        for (const NameState& m : n.more_names) out[m.parent].emplace_back(m.cookie, m.name, n.ino);
    }
    for (auto& [dir, v] : out) std::sort(v.begin(), v.end());
    return out;
}

void check_listing(Filesystem& fs, const CoreState& s) {
    std::map<Ino, const NodeState*> by_ino;
    for (const NodeState& n : s.nodes) by_ino[n.ino] = &n;
    for (const auto& [dir, want] : entries_of(s)) {
        std::vector<Listed> got;
        auto r = fs.readdir(dir, 0, false, [&](const DirEntry& e) {
            FUZZ_CHECK(by_ino.count(e.attr.ino) == 1);
            FUZZ_CHECK(same_attr(e.attr, by_ino[e.attr.ino]->attr));
            got.emplace_back(e.next_off, std::string(e.name), e.attr.ino);
            return true;
        });
        FUZZ_CHECK(r.has_value());
        FUZZ_CHECK(got.size() >= 2);
        FUZZ_CHECK(got[0] == Listed(1, ".", dir));
        FUZZ_CHECK(std::get<1>(got[1]) == ".." && std::get<0>(got[1]) == 2);
        got.erase(got.begin(), got.begin() + 2);
        FUZZ_CHECK(got == want);
    }
}

// The core's own state restores to itself.
void check_restorable(const Filesystem& fs) {
    CoreState snap = fs.snapshot();
    auto again = Filesystem::restore(snap, fixed_now);
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK((*again)->snapshot() == snap);
}

// Takes every name away (directories once they are empty) and forgets every lookup, checking
// after each change that the core's state still restores.
void check_teardown(Filesystem& fs) {
    for (bool progress = true; progress;) {
        progress = false;
        for (const auto& [dir, entries] : entries_of(fs.snapshot())) {
            for (const auto& [cookie, name, ino] : entries) {
                bool gone = fs.unlink(dir, name).has_value() || fs.rmdir(dir, name).has_value();
                if (gone) check_restorable(fs);
                progress = progress || gone;
            }
        }
    }
    for (const NodeState& n : fs.snapshot().nodes) fs.forget(n.ino, n.nlookup);
    check_restorable(fs);
    CoreState end = fs.snapshot();
    for (const NodeState& n : end.nodes) {
        FUZZ_CHECK(n.ino == kRootIno || n.ino == end.meta.socket_ino);
    }
}

}  // namespace

std::unique_ptr<Filesystem> check_restore(const CoreState& s) {
    auto r = Filesystem::restore(s, fixed_now);
    if (!r) {
        FUZZ_CHECK(r.error().value == EINVAL);
        return nullptr;
    }
    CoreState snap = (*r)->snapshot();
    FUZZ_CHECK(snap == names_ordered(s));
    auto copy = Filesystem::restore(snap, fixed_now);
    FUZZ_CHECK(copy.has_value());
    FUZZ_CHECK((*copy)->snapshot() == snap);
    Filesystem& fs = **copy;
    check_listing(fs, snap);
    Caller root = Caller::root();
    if (fs.snapshot().meta.read_only) {
        fs.set_read_only(false);
        check_restorable(fs);
    }
    if (fs.mkdir(root, kRootIno, "fuzz-dir")) check_restorable(fs);
    if (fs.pin(root, kRootIno, "fuzz-obj", ObjType::prog, 1)) check_restorable(fs);
    check_teardown(fs);
    return std::move(*r);
}

}  // namespace bpffs::fuzz
