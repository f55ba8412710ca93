// SPDX-License-Identifier: GPL-2.0-or-later
// The registry: the only owner of the kernel objects' fds, by handle.
#include "broker/registry.hpp"

#include <shared_mutex>

#include <spdlog/spdlog.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>

namespace bpffs::broker {
namespace {
std::pair<int, std::uint32_t> key(const KernelObject& o) {
    return {static_cast<int>(o.type), o.id};
}
}  // namespace

Result<fsops::ObjHandle> Registry::add(int fd, const KernelObject& obj) {
    std::lock_guard lock(mu_);
    if (auto it = by_id_.find(key(obj)); it != by_id_.end()) {
        ++entries_.at(it->second).refs;
        return it->second;
    }
    UniqueFd dup(fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!dup) return fail(errno);
    fsops::ObjHandle h = next_++;
    if (hooks_.added) hooks_.added(h, dup.get());
    entries_.emplace(h, Entry{std::move(dup), obj, 1});
    by_id_.emplace(key(obj), h);
    return h;
}

Result<void> Registry::adopt(fsops::ObjHandle handle, UniqueFd fd) {
    auto obj = identify(fd.get());
    if (!obj) return fail(obj.error().value);
    std::lock_guard lock(mu_);
    if (entries_.count(handle) != 0 || by_id_.count(key(*obj)) != 0) return fail(EEXIST);
    entries_.emplace(handle, Entry{std::move(fd), *obj, 0});
    by_id_.emplace(key(*obj), handle);
    next_ = std::max(next_, handle + 1);
    return {};
}

void Registry::set_refs(const std::map<fsops::ObjHandle, std::uint64_t>& refs) {
    std::lock_guard lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
        auto r = refs.find(it->first);
        if (r != refs.end() && r->second > 0) {
            it->second.refs = r->second;
            ++it;
            continue;
        }
        // Never silently: a restart releases an object only when no restored name holds it
        // and the log ended cleanly (daemon/recovery.hpp): a pin that was never answered.
        spdlog::warn("released {} id {}: its pin was not logged before the worker stopped",
                     it->second.obj.type == fsops::ObjType::map    ? "map"
                     : it->second.obj.type == fsops::ObjType::prog ? "program"
                                                                   : "link",
                     it->second.obj.id);
        if (hooks_.dropped) hooks_.dropped(it->first);
        by_id_.erase(key(it->second.obj));
        it = entries_.erase(it);
    }
    for (const auto& [h, n] : refs) next_ = std::max(next_, h + 1);
}

void Registry::release(fsops::ObjHandle h) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(h);
    if (it == entries_.end()) return;
    if (--it->second.refs > 0) return;
    if (hooks_.dropped) hooks_.dropped(h);
    by_id_.erase(key(it->second.obj));
    entries_.erase(it);  // closes the fd
}

Result<UniqueFd> Registry::open(fsops::ObjHandle h, fsops::FdMode mode, KernelObject* obj) const {
    KernelObject o;
    {
        std::shared_lock lock(mu_);
        auto it = entries_.find(h);
        if (it == entries_.end()) return fail(ENOENT);
        o = it->second.obj;
    }
    if (obj != nullptr) *obj = o;
    // By id, without the lock (other gets go on meanwhile): an object released meanwhile is
    // ENOENT, as the get would have been a moment later.
    auto fresh = open_by_id(o, mode);
    if (fresh) return std::move(*fresh);
    bool narrowed = mode != fsops::FdMode::read_write && o.type == fsops::ObjType::map;
    if (narrowed) return fresh.error();  // a duplicate would be read-write
    std::shared_lock lock(mu_);
    auto it = entries_.find(h);
    if (it == entries_.end()) return fail(ENOENT);
    UniqueFd dup(fcntl(it->second.fd.get(), F_DUPFD_CLOEXEC, 3));
    if (!dup) return fail(errno);
    return dup;
}

Result<KernelObject> Registry::object(fsops::ObjHandle h) const {
    std::shared_lock lock(mu_);
    auto it = entries_.find(h);
    if (it == entries_.end()) return fail(ENOENT);
    return it->second.obj;
}

std::size_t Registry::size() const {
    std::shared_lock lock(mu_);
    return entries_.size();
}

}  // namespace bpffs::broker
