// SPDX-License-Identifier: GPL-2.0-or-later
// Mount option parsing with the kernel's number rules (match_int / match_octal use kstrtoll:
// optional sign, base 0 or 8, the whole value must be digits, the result must fit an int).
#include "fsops/mount_options.hpp"

#include <array>
#include <climits>
#include <optional>

namespace bpffs::fsops {
namespace {

// kstrtoll-like: optional '+' or '-', then digits of `base` (0: "0x" hex, "0" octal, else
// decimal). Nothing else is accepted; the value must fit an int.
std::optional<long long> parse_int(std::string_view s, int base) {
    if (s.empty()) return std::nullopt;
    bool neg = false;
    if (s.front() == '+' || s.front() == '-') {
        neg = s.front() == '-';
        s.remove_prefix(1);
    }
    if (base == 0) {
        if (s.size() > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
            base = 16;
            s.remove_prefix(2);
        } else if (s.size() > 1 && s[0] == '0') {
            base = 8;
        } else {
            base = 10;
        }
    }
    if (s.empty()) return std::nullopt;
    unsigned long long v = 0;
    for (char ch : s) {
        int d;
        if (ch >= '0' && ch <= '9')
            d = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            d = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
            d = ch - 'A' + 10;
        else
            return std::nullopt;
        if (d >= base) return std::nullopt;
        v = v * static_cast<unsigned>(base) + static_cast<unsigned>(d);
        if (v > static_cast<unsigned long long>(INT_MAX) + 1) return std::nullopt;
    }
    long long r = neg ? -static_cast<long long>(v) : static_cast<long long>(v);
    if (r < INT_MIN || r > INT_MAX) return std::nullopt;
    return r;
}

// An id as make_kuid() in the initial user namespace takes it: (uid_t)-1 is invalid.
std::optional<std::uint32_t> parse_id(std::string_view s) {
    auto v = parse_int(s, 0);
    if (!v) return std::nullopt;
    auto id = static_cast<std::uint32_t>(static_cast<int>(*v));
    if (id == UINT32_MAX) return std::nullopt;
    return id;
}

std::optional<std::uint32_t> parse_mode(std::string_view s) {
    auto v = parse_int(s, 8);
    if (!v) return std::nullopt;
    return static_cast<std::uint32_t>(static_cast<int>(*v)) & 07777u;
}

// Options that belong to libfuse or mount(8), not to us. Keys end with '=' when they take a
// value. This is the set libfuse 3.14's fuse_session_new accepts, plus the generic mount flags
// mount(8) and mount.fuse3 pass on for fstab lines.
constexpr std::array<std::string_view, 37> kPassthrough = {
    "rw",
    "ro",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "async",
    "sync",
    "dirsync",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "lazytime",
    "nolazytime",
    "default_permissions",
    "allow_other",
    "allow_root",
    "auto_unmount",
    "blkdev",
    "debug",
    "fsname=",
    "subtype=",
    "max_read=",
    "blksize=",
    "context=",
    "fscontext=",
    "defcontext=",
    "rootcontext=",
    "max_idle_threads=",
    "clone_fd",
};

// A limit: a positive int.
std::optional<std::uint32_t> parse_limit(std::string_view s) {
    auto v = parse_int(s, 0);
    if (!v || *v < 1) return std::nullopt;
    return static_cast<std::uint32_t>(*v);
}

bool is_limit(std::string_view key) {
    return key == "max_conns" || key == "max_conns_per_uid" || key == "nr_inodes" ||
           key == "nr_inodes_per_uid";
}

OptionError bad_value(std::string_view element, std::string_view key) {
    std::string why = key == "mode"   ? "mode must be an octal number"
                      : is_limit(key) ? std::string(key) + " must be a positive integer"
                                      : std::string(key) + " must be an integer id other than -1";
    return {std::string(element), "invalid mount option '" + std::string(element) + "': " + why};
}

struct Parsed {
    std::optional<std::uint32_t> uid, gid, mode;
    std::optional<Compat> compat;
    std::vector<std::string> passthrough;
    std::optional<std::uint32_t> max_conns, max_conns_per_uid, nr_inodes, nr_inodes_per_uid;
    std::string first_limit;  // the first limit element given (remount refuses it)
};

// Calls `each(element, key, value, has_value)` for each non-empty element of `list`; stops at
// the first error it returns.
template <typename Each>
std::optional<OptionError> for_each_option(std::string_view list, Each&& each) {
    while (!list.empty()) {
        auto comma = list.find(',');
        std::string_view el = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        if (el.empty()) continue;
        auto eq = el.find('=');
        std::string_view val =
            eq == std::string_view::npos ? std::string_view{} : el.substr(eq + 1);
        if (auto e = each(el, el.substr(0, eq), val, eq != std::string_view::npos)) return e;
    }
    return std::nullopt;
}

// The rule set the list asks for (the last compat= wins), read before anything else: it decides
// what an unknown option is.
Result<std::optional<Compat>, OptionError> find_compat(std::string_view list) {
    std::optional<Compat> compat;
    auto err = for_each_option(
        list,
        [&](std::string_view el, std::string_view key, std::string_view val,
            bool has_val) -> std::optional<OptionError> {
            if (!has_val || key != "compat") return std::nullopt;
            if (val == "seed") {
                compat = Compat::seed;
            } else if (val == "linux") {
                compat = Compat::linux;
            } else {
                return OptionError{std::string(el), "invalid mount option '" + std::string(el) +
                                                        "': compat must be seed or linux"};
            }
            return std::nullopt;
        });
    if (err) return Unexpected{*err};
    return compat;
}

// `compat`: the rule set in force, which decides whether an unknown option is an error.
Result<Parsed, OptionError> parse_list(std::string_view list, Compat compat) {
    Parsed p;
    auto found = find_compat(list);
    if (!found) return Unexpected{found.error()};
    p.compat = *found;
    Compat rules = p.compat.value_or(compat);
    auto err = for_each_option(
        list,
        [&](std::string_view el, std::string_view key, std::string_view val,
            bool has_val) -> std::optional<OptionError> {
            if (has_val && (key == "uid" || key == "gid")) {
                auto id = parse_id(val);
                if (!id) return bad_value(el, key);
                (key == "uid" ? p.uid : p.gid) = *id;
            } else if (has_val && key == "mode") {
                auto m = parse_mode(val);
                if (!m) return bad_value(el, key);
                p.mode = *m;
            } else if (has_val && is_limit(key)) {
                auto v = parse_limit(val);
                if (!v) return bad_value(el, key);
                (key == "max_conns"           ? p.max_conns
                 : key == "max_conns_per_uid" ? p.max_conns_per_uid
                 : key == "nr_inodes"         ? p.nr_inodes
                                              : p.nr_inodes_per_uid) = *v;
                if (p.first_limit.empty()) p.first_limit = std::string(el);
            } else if (has_val && key == "compat") {
                // read by find_compat()
            } else if (is_passthrough_option(el)) {
                p.passthrough.emplace_back(el);
            } else if (rules == Compat::seed) {
                return OptionError{std::string(el),
                                   "unknown mount option '" + std::string(el) + "'"};
            }
            return std::nullopt;  // compat=linux ignores what it does not know, as the kernel does
        });
    if (err) return Unexpected{*err};
    return p;
}

std::string octal(std::uint32_t m) {
    std::string oct;  // "%o", as the kernel's show_options prints it
    do {
        oct.insert(oct.begin(), static_cast<char>('0' + (m & 7)));
        m >>= 3;
    } while (m != 0);
    return oct;
}

// An id as parse_id() reads it back: the int it was given as. match_int reads an int, so an id
// above INT_MAX (uid=-2 is 4294967294) was given as a negative number, and only that form
// parses again.
std::string id_string(std::uint32_t id) { return std::to_string(static_cast<int>(id)); }

}  // namespace

bool is_passthrough_option(std::string_view element) {
    auto eq = element.find('=');
    for (std::string_view k : kPassthrough) {
        if (k.back() == '=') {
            if (eq != std::string_view::npos && element.substr(0, eq + 1) == k) return true;
        } else if (element == k) {
            return true;
        }
    }
    return false;
}

Result<ParsedOptions, OptionError> parse_mount_options(std::string_view list,
                                                       const MountOptions& base, Mounter mounter) {
    auto p = parse_list(list, Compat::seed);
    if (!p) return Unexpected{p.error()};
    ParsedOptions out{base, std::move(p->passthrough)};
    out.ours.compat = p->compat.value_or(base.compat);
    bool linux = out.ours.compat == Compat::linux;
    if (linux) out.ours = MountOptions{mounter.uid, mounter.gid, kLinuxRootMode, Compat::linux};
    if (p->uid) out.ours.uid = *p->uid;
    if (p->gid) out.ours.gid = *p->gid;
    if (p->mode) out.ours.mode = *p->mode;
    if (linux) out.ours.mode |= 01000;  // sticky, always
    if (p->max_conns) out.limits.max_conns = *p->max_conns;
    if (p->max_conns_per_uid) out.limits.max_conns_per_uid = *p->max_conns_per_uid;
    if (p->nr_inodes) out.limits.nr_inodes = *p->nr_inodes;
    if (p->nr_inodes_per_uid) out.limits.nr_inodes_per_uid = *p->nr_inodes_per_uid;
    return out;
}

Result<MountOptions, OptionError> parse_remount_options(std::string_view list,
                                                        const MountOptions& current) {
    auto p = parse_list(list, current.compat);
    if (!p) return Unexpected{p.error()};
    if (p->compat && *p->compat != current.compat) {
        return Unexpected{
            OptionError{"compat", "mount option 'compat' cannot be changed by remount"}};
    }
    if (!p->passthrough.empty() || !p->first_limit.empty()) {
        const auto& el = p->passthrough.empty() ? p->first_limit : p->passthrough.front();
        return Unexpected{
            OptionError{el, "mount option '" + el + "' cannot be changed by remount"}};
    }
    if (current.compat == Compat::linux) return current;  // validated, nothing changes
    MountOptions out = current;
    out.mode = p->mode.value_or(kDefaultRootMode);
    if (p->uid) out.uid = *p->uid;
    if (p->gid) out.gid = *p->gid;
    return out;
}

std::string show_options(const MountOptions& opts) {
    std::string s;
    auto add = [&s](const std::string& item) {
        if (!s.empty()) s += ',';
        s += item;
    };
    bool linux = opts.compat == Compat::linux;
    if (linux) add("compat=linux");
    if (opts.uid != 0) add("uid=" + std::to_string(opts.uid));
    if (opts.gid != 0) add("gid=" + std::to_string(opts.gid));
    std::uint32_t shown = linux ? opts.mode & 07777 & ~01000u : opts.mode;
    if (shown != (linux ? 0777 : kDefaultRootMode)) add("mode=" + octal(shown));
    return s;
}

std::string full_options(const MountOptions& opts, const ServiceLimits& limits) {
    return std::string("compat=") + (opts.compat == Compat::linux ? "linux" : "seed") +
           ",uid=" + id_string(opts.uid) + ",gid=" + id_string(opts.gid) +
           ",mode=" + octal(opts.mode) + ",max_conns=" + std::to_string(limits.max_conns) +
           ",max_conns_per_uid=" + std::to_string(limits.max_conns_per_uid) +
           ",nr_inodes=" + std::to_string(limits.nr_inodes) +
           ",nr_inodes_per_uid=" + std::to_string(limits.nr_inodes_per_uid);
}

}  // namespace bpffs::fsops
