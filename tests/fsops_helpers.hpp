// SPDX-License-Identifier: GPL-2.0-or-later
// What the core's unit tests share: a clock the test moves by hand and the callers they make
// requests as (no Catch2, no kernel).
#pragma once

#include "fsops/filesystem.hpp"  // Clock
#include "fsops/types.hpp"

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace bpffs::test {

// A clock the test moves by hand; the Filesystem reads it through clock().
struct FakeClock {
    std::shared_ptr<fsops::Timespec> now =
        std::make_shared<fsops::Timespec>(fsops::Timespec{1000, 500});
    fsops::Clock clock() const {
        auto p = now;
        return [p] { return *p; };
    }
    void advance(std::int64_t sec, std::int64_t nsec = 0) {
        now->sec += sec;
        now->nsec += nsec;
    }
    fsops::Timespec get() const { return *now; }
};

inline fsops::Caller user(std::uint32_t uid, std::uint32_t gid,
                          std::vector<std::uint32_t> groups = {}, fsops::Caps caps = {}) {
    fsops::Caller c;
    c.uid = uid;
    c.gid = gid;
    c.groups = std::move(groups);
    c.caps = caps;
    return c;
}

// A caller with CAP_SYS_ADMIN only (what pin needs), no DAC overrides.
inline fsops::Caller admin(std::uint32_t uid = 0, std::uint32_t gid = 0) {
    fsops::Caps caps;
    caps.sys_admin = true;
    return user(uid, gid, {}, caps);
}

}  // namespace bpffs::test
