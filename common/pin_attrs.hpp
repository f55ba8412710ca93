// SPDX-License-Identifier: GPL-2.0-or-later
// What a pin may ask of the node it makes, beyond the mount's defaults: its permission bits and
// its owner (bpffs_opts.pin_set, `bpffsctl pin --mode --owner`). One value from the client's
// options through the protocol to the core, which gives the node these at once, so nobody sees
// the object with other ones, and decides who may ask what (Filesystem::pin).
#pragma once

#include <cstdint>
#include <optional>

namespace bpffs {

struct PinAttrs {
    static constexpr std::uint32_t kModeMax = 0777;  // permission bits only
    // No owner or group can be this: chown(2)'s "leave it".
    static constexpr std::uint32_t kNoId = ~std::uint32_t{0};

    std::optional<std::uint32_t> mode;  // in place of the mount's default (0600, or its umask)
    std::optional<std::uint32_t> uid;   // in place of the caller's
    std::optional<std::uint32_t> gid;   // in place of the caller's (or a setgid parent's)

    bool empty() const { return !mode && !uid && !gid; }
    // Values the protocol carries and the core takes: a mode within kModeMax, ids but kNoId.
    bool valid() const {
        return (!mode || *mode <= kModeMax) && (!uid || *uid != kNoId) && (!gid || *gid != kNoId);
    }
    friend bool operator==(const PinAttrs&, const PinAttrs&) = default;
};

}  // namespace bpffs
