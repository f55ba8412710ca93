// SPDX-License-Identifier: GPL-2.0-or-later
// The mount option parser (fsops/mount_options.hpp) on arbitrary -o lists, for a mount and for
// a remount. Invariants (each an abort when it fails):
//  - an error names the element and says why (neither is empty);
//  - what parses has a mode within 07777 (with the sticky bit under compat=linux), and each
//    passthrough element is one is_passthrough_option() accepts, as given in the list;
//  - formatting round trips: full_options() of what parsed (the service limits too) parses back
//    to exactly it whoever
//    mounts, with nothing passed through; show_options() too, for the mounter it assumes (uid
//    and gid 0) and ids that fit an int (above that the kernel's show prints "%u", which its
//    own match_int refuses; full_options is the form handed to another process);
//  - a remount is all or nothing: on success compat= is unchanged, compat=linux changes
//    nothing, the seed's mode is the list's or 0700 and uid/gid the list's or the current ones;
//    full_options() of the current options without the service limits (which no remount
//    takes) remounts to them unchanged.
#include "fsops/mount_options.hpp"
#include "fuzz/fuzz_check.hpp"

#include <array>
#include <climits>
#include <string_view>

using namespace bpffs;
using namespace bpffs::fsops;

namespace {

// The mounters and current options a list is tried against.
constexpr std::array<Mounter, 2> kMounters{Mounter{0, 0}, Mounter{1000, 1001}};
const std::array<MountOptions, 3> kCurrent{
    MountOptions{},
    MountOptions{1000, 100, 0750, Compat::seed},
    MountOptions{0, 0, kLinuxRootMode, Compat::linux},
};

void check_error(const OptionError& e) { FUZZ_CHECK(!e.option.empty() && !e.message.empty()); }

void check_formats(const MountOptions& o, const ServiceLimits& limits) {
    for (Mounter m : kMounters) {
        auto full = parse_mount_options(full_options(o, limits), {}, m);
        FUZZ_CHECK(full.has_value());
        FUZZ_CHECK(full->ours == o && full->passthrough.empty() && full->limits == limits);
    }
    if (o.uid > INT_MAX || o.gid > INT_MAX) return;
    auto shown = parse_mount_options(show_options(o));
    FUZZ_CHECK(shown.has_value());
    FUZZ_CHECK(shown->ours == o);
}

void check_mount(std::string_view list, Mounter m) {
    auto p = parse_mount_options(list, {}, m);
    if (!p) return check_error(p.error());
    const MountOptions& o = p->ours;
    FUZZ_CHECK((o.mode & ~07777u) == 0);
    FUZZ_CHECK(o.compat != Compat::linux || (o.mode & 01000) != 0);
    for (const std::string& el : p->passthrough) {
        FUZZ_CHECK(is_passthrough_option(el));
        FUZZ_CHECK(list.find(el) != std::string_view::npos);
    }
    FUZZ_CHECK(p->limits.max_conns >= 1 && p->limits.max_conns_per_uid >= 1);
    check_formats(o, p->limits);
}

void check_remount(std::string_view list, const MountOptions& cur) {
    std::string core = full_options(cur);
    core.erase(core.find(",max_conns="));
    auto same = parse_remount_options(core, cur);
    FUZZ_CHECK(same.has_value() && *same == cur);
    auto r = parse_remount_options(list, cur);
    if (!r) return check_error(r.error());
    FUZZ_CHECK(r->compat == cur.compat);
    if (cur.compat == Compat::linux) {
        FUZZ_CHECK(*r == cur);
        return;
    }
    // What the list says, read as a mount's list (which must then parse too).
    auto asked = parse_mount_options(list, MountOptions{0, 0, kDefaultRootMode, cur.compat});
    FUZZ_CHECK(asked.has_value() && asked->passthrough.empty());
    FUZZ_CHECK(r->mode == asked->ours.mode);
    FUZZ_CHECK(r->uid == (list.find("uid=") == std::string_view::npos ? cur.uid : asked->ours.uid));
    FUZZ_CHECK(r->gid == (list.find("gid=") == std::string_view::npos ? cur.gid : asked->ours.gid));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view list(reinterpret_cast<const char*>(data), size);
    for (Mounter m : kMounters) check_mount(list, m);
    for (const MountOptions& cur : kCurrent) check_remount(list, cur);
    return 0;
}
