// SPDX-License-Identifier: GPL-2.0-or-later
// The registry: the only owner of the kernel fds of pinned objects. One entry per distinct kernel
// object (keyed by type and kernel id), reference-counted by the names that pin it, so a million
// names of a few objects hold a few fds. Handles are what the fsops core stores.
// Thread safety: all members lock the registry's mutex (a leaf lock: nothing is called with it
// held; shared for reads), so FUSE workers (unlink) and the broker threads (pin, get) may call
// concurrently; a get's open by id is made without it.
#pragma once

#include "broker/kernel.hpp"
#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "fsops/types.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <utility>

namespace bpffs::broker {

// Told of every object the registry starts or stops holding, so another process (the
// supervisor) can hold it too. Called with the registry's lock held; must not call back in.
struct RegistryHooks {
    std::function<void(fsops::ObjHandle, int fd)> added;
    std::function<void(fsops::ObjHandle)> dropped;
};

class Registry {
public:
    Registry() = default;
    explicit Registry(RegistryHooks hooks) : hooks_(std::move(hooks)) {}
    // Restart: takes over an object another worker held under `handle` (no hook is called).
    // EBADF/EINVAL as identify(); EEXIST: the handle or the object is already held.
    Result<void> adopt(fsops::ObjHandle handle, UniqueFd fd);
    // Restart: sets the references of adopted objects from the restored core's names, dropping
    // (with the `dropped` hook) those no name uses any more.
    void set_refs(const std::map<fsops::ObjHandle, std::uint64_t>& refs);
    // Takes one more reference on `obj`, keeping a duplicate of `fd` (borrowed) the first time.
    Result<fsops::ObjHandle> add(int fd, const KernelObject& obj);
    // Drops one reference; the last one closes the broker's fd (the kernel may then free it).
    void release(fsops::ObjHandle h);
    // A new fd for the object: a fresh open file by id (a map's opened with `mode`), or a
    // duplicate of the held fd when the daemon may not open by id (no CAP_SYS_ADMIN in the
    // initial namespace). A duplicate is read-write, so a read-only or write-only map fd that
    // cannot be opened by id fails with open_by_id's errno (EPERM) instead. ENOENT: released.
    // *obj (optional): which object it is.
    Result<UniqueFd> open(fsops::ObjHandle h, fsops::FdMode mode = fsops::FdMode::read_write,
                          KernelObject* obj = nullptr) const;
    Result<KernelObject> object(fsops::ObjHandle h) const;
    std::size_t size() const;  // distinct objects held

private:
    struct Entry {
        UniqueFd fd;
        KernelObject obj;
        std::uint64_t refs = 0;
    };
    RegistryHooks hooks_;
    mutable std::shared_mutex mu_;
    std::unordered_map<fsops::ObjHandle, Entry> entries_;
    std::map<std::pair<int, std::uint32_t>, fsops::ObjHandle> by_id_;
    fsops::ObjHandle next_ = 1;
};

}  // namespace bpffs::broker
