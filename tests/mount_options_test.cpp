// SPDX-License-Identifier: GPL-2.0-or-later
// Tests of the mount-option rules (spec section 2): parse_mount_options, parse_remount_options,
// show_options and is_passthrough_option. uid=/gid= read as C base 0 and must be a valid id;
// mode= is octal masked with 07777; unknown options are errors naming the element; standard
// FUSE/mount options pass through to libfuse in order; remount is all or nothing.

#include "fsops/mount_options.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace bpffs::fsops;

namespace {

MountOptions parse_ok(std::string_view list, const MountOptions& base = {}) {
    auto r = parse_mount_options(list, base);
    INFO("options '" << std::string(list) << "'"
                     << (r.has_value() ? std::string() : " error: " + r.error().message));
    REQUIRE(r.has_value());
    return r->ours;
}

// The error for `list`; fails the test if it parses.
OptionError parse_error(std::string_view list) {
    auto r = parse_mount_options(list);
    INFO("options '" << std::string(list) << "' should fail");
    REQUIRE_FALSE(r.has_value());
    return r.error();
}

void check_rejected(const std::string& element) {
    INFO("element '" << element << "'");
    const auto e = parse_error(element);
    CHECK(e.option == element);
    CHECK_FALSE(e.message.empty());
    CHECK(e.message.find('\n') == std::string::npos);  // one line for the operator
    // Also when it is not the first element: the error names the bad one.
    auto r = parse_mount_options("uid=1,rw," + element + ",gid=2");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().option == element);
}

}  // namespace

TEST_CASE("options: defaults are mode 0700, uid 0, gid 0", "[options]") {
    CHECK(kDefaultRootMode == 0700);
    CHECK(MountOptions{} == MountOptions{0, 0, 0700});
    auto r = parse_mount_options("");
    REQUIRE(r.has_value());
    CHECK(r->ours == MountOptions{0, 0, 0700});
    CHECK(r->passthrough.empty());
}

TEST_CASE("options: uid= and gid= read integers in C base 0", "[options]") {
    CHECK(parse_ok("uid=1001").uid == 1001);
    CHECK(parse_ok("uid=0x3e9").uid == 1001);
    CHECK(parse_ok("uid=0X3E9").uid == 1001);
    CHECK(parse_ok("uid=010").uid == 8);
    CHECK(parse_ok("uid=0").uid == 0);
    CHECK(parse_ok("uid=+5").uid == 5);  // match_int takes a sign
    CHECK(parse_ok("gid=1001").gid == 1001);
    CHECK(parse_ok("gid=0x3e9").gid == 1001);
    CHECK(parse_ok("gid=010").gid == 8);
    const auto both = parse_ok("uid=5,gid=6");
    CHECK(both == MountOptions{5, 6, 0700});
    // The largest value that fits an int is a valid id.
    CHECK(parse_ok("uid=2147483647").uid == 2147483647u);
}

TEST_CASE("options: uid= and gid= must be a valid id", "[options]") {
    for (const std::string key : {"uid", "gid"}) {
        for (const std::string value : {"-1", "4294967295", "abc", "12x", "", "0x", "1 2"}) {
            check_rejected(key + "=" + value);
        }
        check_rejected(key);  // no '='
    }
    // Does not fit an int (the kernel's match_int).
    check_rejected("uid=2147483648");
}

TEST_CASE("options: mode= is octal, masked with 07777", "[options]") {
    CHECK(parse_ok("mode=0750").mode == 0750);
    CHECK(parse_ok("mode=750").mode == 0750);
    CHECK(parse_ok("mode=1777").mode == 01777);  // sticky kept
    CHECK(parse_ok("mode=2775").mode == 02775);
    CHECK(parse_ok("mode=0").mode == 0);
    CHECK(parse_ok("mode=17777").mode == 07777);
    CHECK(parse_ok("mode=100755").mode == 0755);
    CHECK(parse_ok("mode=010").mode == 010);  // octal, never decimal or hex
}

TEST_CASE("options: bad mode= values are errors", "[options]") {
    for (const std::string value : {"8", "9", "abc", "", "0x1ff", "78", "7a"})
        check_rejected("mode=" + value);
    check_rejected("mode");
}

TEST_CASE("options: an unknown option is an error naming it", "[options]") {
    check_rejected("foo");
    check_rejected("foo=1");
    check_rejected("uidx=1");
    check_rejected("UID=1");
    const auto e = parse_error("foo=1");
    CHECK(e.message.size() > 0);
}

TEST_CASE("options: empty list elements are skipped", "[options]") {
    CHECK(parse_ok(",,") == MountOptions{});
    CHECK(parse_ok(",") == MountOptions{});
    CHECK(parse_ok(",,uid=5,,") == MountOptions{5, 0, 0700});
    CHECK(parse_ok("uid=5,,gid=6") == MountOptions{5, 6, 0700});
    auto r = parse_mount_options(",rw,,nodev,");
    REQUIRE(r.has_value());
    CHECK(r->passthrough == std::vector<std::string>{"rw", "nodev"});
}

TEST_CASE("options: the last value of a repeated key wins", "[options]") {
    CHECK(parse_ok("uid=1,uid=2").uid == 2);
    CHECK(parse_ok("gid=3,gid=0x10").gid == 16);
    CHECK(parse_ok("mode=0755,mode=0700").mode == 0700);
    CHECK(parse_ok("mode=0700,mode=1777").mode == 01777);
}

TEST_CASE("options: standard FUSE and mount options pass through in order", "[options]") {
    auto r = parse_mount_options(
        "rw,nosuid,uid=5,nodev,noatime,allow_other,mode=0750,default_permissions,fsname=x,"
        "subtype=y");
    REQUIRE(r.has_value());
    CHECK(r->ours == MountOptions{5, 0, 0750});
    CHECK(r->passthrough == std::vector<std::string>{"rw", "nosuid", "nodev", "noatime",
                                                     "allow_other", "default_permissions",
                                                     "fsname=x", "subtype=y"});
    // Our own options are never passed through.
    auto o = parse_mount_options("uid=1,gid=2,mode=0700");
    REQUIRE(o.has_value());
    CHECK(o->passthrough.empty());
}

TEST_CASE("options: is_passthrough_option tells libfuse's options from ours", "[options]") {
    for (const char* e : {"rw", "nosuid", "nodev", "noatime", "allow_other", "default_permissions",
                          "fsname=x", "subtype=y"}) {
        INFO(e);
        CHECK(is_passthrough_option(e));
    }
    for (const char* e : {"uid=1", "gid=1", "mode=0700", "uid", "mode", "foo", "foo=1"}) {
        INFO(e);
        CHECK_FALSE(is_passthrough_option(e));
    }
}

TEST_CASE("options: parsing starts from the given base", "[options]") {
    const MountOptions base{1, 2, 0755};
    CHECK(parse_ok("", base) == base);
    CHECK(parse_ok("gid=3", base) == MountOptions{1, 3, 0755});
    CHECK(parse_ok("mode=0700", base) == MountOptions{1, 2, 0700});
}

TEST_CASE("remount: mode resets to 0700 unless given, uid and gid keep their values", "[options]") {
    const MountOptions current{1000, 1001, 0750};
    auto r = parse_remount_options("", current);
    REQUIRE(r.has_value());
    CHECK(*r == MountOptions{1000, 1001, 0700});
    r = parse_remount_options("mode=0755", current);
    REQUIRE(r.has_value());
    CHECK(*r == MountOptions{1000, 1001, 0755});
    r = parse_remount_options("uid=5", current);
    REQUIRE(r.has_value());
    CHECK(*r == MountOptions{5, 1001, 0700});
    r = parse_remount_options("gid=0,mode=1777", current);
    REQUIRE(r.has_value());
    CHECK(*r == MountOptions{1000, 0, 01777});
    r = parse_remount_options(",,", current);
    REQUIRE(r.has_value());
    CHECK(*r == MountOptions{1000, 1001, 0700});
}

TEST_CASE("remount: a bad option is an error and nothing is applied", "[options]") {
    const MountOptions current{1000, 1001, 0750};
    for (const std::string list : {"uid=5,mode=9", "mode=0755,foo", "uid=5,gid=abc", "gid=7,uid=-1",
                                   "uid=1,uid=4294967295"}) {
        INFO(list);
        auto r = parse_remount_options(list, current);
        REQUIRE_FALSE(r.has_value());
        CHECK_FALSE(r.error().option.empty());
        CHECK_FALSE(r.error().message.empty());
        CHECK(list.find(r.error().option) != std::string::npos);
    }
    auto r = parse_remount_options("uid=5,mode=9", current);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().option == "mode=9");
}

TEST_CASE("show_options: empty for the defaults", "[options]") {
    CHECK(show_options(MountOptions{}) == "");
    CHECK(show_options(MountOptions{0, 0, 0700}) == "");
}

TEST_CASE("show_options: uid, gid and mode when they differ from the defaults", "[options]") {
    CHECK(show_options(MountOptions{5, 0, 0700}) == "uid=5");
    CHECK(show_options(MountOptions{0, 7, 0700}) == "gid=7");
    CHECK(show_options(MountOptions{1000, 1000, 0700}) == "uid=1000,gid=1000");
    const std::string s = show_options(MountOptions{1000, 1000, 0750});
    CHECK(s.rfind("uid=1000,gid=1000,mode=", 0) == 0);
    const std::string m = show_options(MountOptions{0, 0, 0755});
    CHECK(m.rfind("mode=", 0) == 0);
    CHECK(m.find(',') == std::string::npos);
    // The mode is written in octal: either "755" or "0755".
    CHECK((m == "mode=755" || m == "mode=0755"));
}

TEST_CASE("show_options: what it prints parses back to the same options", "[options]") {
    const std::vector<MountOptions> cases = {
        {0, 0, 0700},          {1000, 1000, 0750}, {0, 0, 01777}, {5, 0, 0700},
        {0, 7, 0700},          {0, 0, 0},          {0, 0, 07777}, {65534, 1, 02775},
        {2147483647, 0, 0644}, {1, 1, 0600},       {0, 0, 0070},
    };
    for (const auto& o : cases) {
        const std::string shown = show_options(o);
        INFO("uid " << o.uid << " gid " << o.gid << " mode " << o.mode << " -> '" << shown << "'");
        auto back = parse_mount_options(shown);
        REQUIRE(back.has_value());
        CHECK(back->ours == o);
        CHECK(back->passthrough.empty());
    }
}

// --- compat=linux (spec section 7: today's kernel bpffs, observed on 6.18) -------------------

TEST_CASE("options: compat=linux gives the mounter a 01777 root, and always adds the sticky bit",
          "[options][linux]") {
    Mounter alice{1000, 1001};
    auto r = parse_mount_options("compat=linux", {}, alice);
    REQUIRE(r.has_value());
    CHECK(r->ours == MountOptions{1000, 1001, 01777, Compat::linux});
    // mode= keeps the sticky bit; uid= and gid= replace the mounter.
    r = parse_mount_options("mode=0750,uid=5,compat=linux", {}, alice);
    REQUIRE(r.has_value());
    CHECK(r->ours == MountOptions{5, 1001, 01750, Compat::linux});
    // The seed ignores who mounts.
    r = parse_mount_options("compat=seed", {}, alice);
    REQUIRE(r.has_value());
    CHECK(r->ours == MountOptions{0, 0, 0700, Compat::seed});
}

TEST_CASE("options: compat=linux ignores unknown options but not bad values of its own",
          "[options][linux]") {
    auto r = parse_mount_options("foo,bar=1,compat=linux,rw");
    REQUIRE(r.has_value());
    CHECK(r->passthrough == std::vector<std::string>{"rw"});
    CHECK(parse_error("compat=linux,uid=abc").option == "uid=abc");
    CHECK(parse_error("mode=9,compat=linux").option == "mode=9");
    // Unknown in the seed, whatever comes after.
    CHECK(parse_error("foo,compat=seed").option == "foo");
    const auto e = parse_error("compat=bsd");
    CHECK(e.option == "compat=bsd");
    CHECK(e.message.find("seed or linux") != std::string::npos);
}

TEST_CASE("options: a compat=linux remount validates and changes nothing, and compat cannot change",
          "[options][linux]") {
    const MountOptions now{1000, 1000, 01750, Compat::linux};
    auto r = parse_remount_options("mode=0700,uid=5,unknown", now);
    REQUIRE(r.has_value());
    CHECK(*r == now);
    CHECK_FALSE(parse_remount_options("uid=abc", now).has_value());
    auto e = parse_remount_options("compat=seed", now);
    REQUIRE_FALSE(e.has_value());
    CHECK(e.error().message.find("cannot be changed by remount") != std::string::npos);
    CHECK_FALSE(parse_remount_options("compat=linux", MountOptions{}).has_value());
    CHECK(parse_remount_options("compat=linux", now).has_value());  // the same: fine
}

TEST_CASE("options: compat=linux shows options as today's kernel, and full_options reads back",
          "[options][linux]") {
    CHECK(show_options(MountOptions{0, 0, 01777, Compat::linux}) == "compat=linux");
    CHECK(show_options(MountOptions{1000, 0, 01750, Compat::linux}) ==
          "compat=linux,uid=1000,mode=750");
    CHECK(show_options(MountOptions{0, 5, 0777, Compat::linux}) == "compat=linux,gid=5");
    CHECK(show_options(MountOptions{0, 0, 02777, Compat::linux}) == "compat=linux,mode=2777");
    for (const MountOptions& o :
         {MountOptions{}, MountOptions{0, 0, 0, Compat::seed}, MountOptions{7, 8, 01777},
          MountOptions{1000, 1001, 01750, Compat::linux}, MountOptions{0, 0, 01000, Compat::linux},
          // ids above INT_MAX, given as negative numbers (fuzz/corpus/mount_options/crash-*)
          MountOptions{4294956717u, 2147483648u, 0700}}) {
        INFO(full_options(o));
        auto back = parse_mount_options(full_options(o), {}, Mounter{4242, 4242});
        REQUIRE(back.has_value());
        CHECK(back->ours == o);
    }
}

TEST_CASE("options: the service limits are positive integers in both rule sets, fixed at mount",
          "[options][limits]") {
    auto p = parse_mount_options("max_conns=64,max_conns_per_uid=0x8");
    REQUIRE(p.has_value());
    CHECK(p->limits == ServiceLimits{64, 8});
    CHECK(p->limits.reserved_conns() == 4);
    CHECK(ServiceLimits{}.reserved_conns() == 256);  // 4096 / 16
    CHECK(ServiceLimits{1, 1}.reserved_conns() == 0);
    auto linux = parse_mount_options("compat=linux,max_conns_per_uid=3");
    REQUIRE(linux.has_value());
    CHECK(linux->limits == ServiceLimits{4096, 3});
    CHECK(parse_mount_options("mode=0700")->limits == ServiceLimits{});
    for (const char* bad : {"max_conns=0", "max_conns=-1", "max_conns=abc", "max_conns=",
                            "compat=linux,max_conns_per_uid=0", "max_conns=4294967296"}) {
        INFO(bad);
        auto e = parse_mount_options(bad);
        REQUIRE_FALSE(e.has_value());
        CHECK(e.error().message.find("must be a positive integer") != std::string::npos);
    }
    // They cannot change at remount, in either rule set.
    for (const MountOptions& now : {MountOptions{}, MountOptions{0, 0, 01777, Compat::linux}}) {
        auto e = parse_remount_options("max_conns=10", now);
        REQUIRE_FALSE(e.has_value());
        CHECK(e.error().message == "mount option 'max_conns=10' cannot be changed by remount");
    }
    auto nodes = parse_mount_options("nr_inodes=1000,nr_inodes_per_uid=10");
    REQUIRE(nodes.has_value());
    CHECK(nodes->limits.nr_inodes == 1000);
    CHECK(nodes->limits.nr_inodes_per_uid == 10);
    CHECK_FALSE(parse_mount_options("nr_inodes=0").has_value());
    // full_options carries them to the worker.
    ServiceLimits l{100, 7, 5000, 50};
    auto back = parse_mount_options(full_options(MountOptions{}, l));
    REQUIRE(back.has_value());
    CHECK(back->limits == l);
}
