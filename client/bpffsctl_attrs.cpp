// SPDX-License-Identifier: GPL-2.0-or-later
// bpffsctl's --mode and --owner (bpffsctl_attrs.hpp).
#include "client/bpffsctl_attrs.hpp"

#include <grp.h>
#include <pwd.h>

#include <charconv>
#include <optional>
#include <string_view>
#include <vector>

namespace bpffs::ctl {
namespace {

std::optional<std::uint32_t> number(std::string_view s, int base) {
    std::uint32_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

struct User {
    bool found = false;
    std::uint32_t uid = 0;
    bool has_group = false;  // a user of the database has a login group; a bare number none
    std::uint32_t gid = 0;
};

// A user's uid and login group, by name (getpwnam_r), else a uid by number.
User user_of(const std::string& name) {
    passwd entry{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (getpwnam_r(name.c_str(), &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr)
        return User{true, found->pw_uid, true, found->pw_gid};
    auto n = number(name, 10);
    if (!n || *n == PinAttrs::kNoId) return User{};
    return User{true, *n, false, 0};
}

// A group's gid by name (getgrnam_r), else by number.
std::optional<std::uint32_t> group_of(const std::string& name) {
    struct group entry {};
    struct group* found = nullptr;
    std::vector<char> buf(16384);
    if (getgrnam_r(name.c_str(), &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr)
        return found->gr_gid;
    auto n = number(name, 10);
    if (!n || *n == PinAttrs::kNoId) return std::nullopt;
    return n;
}

}  // namespace

Result<PinAttrs, std::string> parse_attrs(const std::string& mode, const std::string& owner) {
    PinAttrs a;
    if (!mode.empty()) {
        a.mode = number(mode, 8);
        if (!a.mode || *a.mode > PinAttrs::kModeMax)
            return Unexpected<std::string>{"--mode " + mode +
                                           ": expected octal permission bits, 0 to 0777"};
    }
    if (owner.empty()) return a;
    auto colon = owner.find(':');
    std::string user = owner.substr(0, colon);
    std::string group = colon == std::string::npos ? "" : owner.substr(colon + 1);
    if (user.empty() && group.empty())
        return Unexpected<std::string>{"--owner " + owner +
                                       ": expected USER, USER:GROUP or :GROUP"};
    if (!user.empty()) {
        User u = user_of(user);
        if (!u.found) return Unexpected<std::string>{"--owner " + owner + ": no user " + user};
        a.uid = u.uid;
        // chown(1)'s USER: is the user's login group.
        if (colon != std::string::npos && group.empty()) {
            if (!u.has_group)
                return Unexpected<std::string>{"--owner " + owner + ": uid " + user +
                                               " has no login group here: name the group"};
            a.gid = u.gid;
        }
    }
    if (!group.empty()) {
        a.gid = group_of(group);
        if (!a.gid) return Unexpected<std::string>{"--owner " + owner + ": no group " + group};
    }
    return a;
}

}  // namespace bpffs::ctl
