// SPDX-License-Identifier: GPL-2.0-or-later
// A pinned map with BTF read as text under compat=linux (issue 18), beside a kernel bpffs: maps
// whose BTF the test builds with libbpf are pinned on both, read back, and compared byte for
// byte; the kernel's text is also checked against the format written out here, quirks and all
// (broker/btf_text.cpp lists them). Needs root (mounting, BTF and maps, setresuid).
#include "tests/bpf_test_util.hpp"
#include "tests/compat_helpers.hpp"
#include "tests/kernel_helpers.hpp"
#include "tests/mount_fixture.hpp"
#include "tests/result_helpers.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/btf.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace bpffs::test;
using bpffs::UniqueFd;

namespace {

constexpr uid_t kAlice = 1000;
const std::string kWarnings =
    "# WARNING!! The output is for debug purpose only\n"
    "# WARNING!! The output format will change\n";

// Adds the map's types to `b`; returns the ids of its key type (0: none) and value type.
using BuildTypes = std::function<std::pair<int, int>(btf* b)>;

// A map of `type` with the BTF `build` makes (loaded into the kernel, which the map keeps), or
// the test stops here with the kernel's errno.
UniqueFd must_btf_map(bpf_map_type type, std::uint32_t key_size, std::uint32_t value_size,
                      std::uint32_t max_entries, const BuildTypes& build,
                      std::uint32_t map_flags = 0) {
    std::unique_ptr<btf, void (*)(btf*)> b(btf__new_empty(), btf__free);
    REQUIRE(b);
    auto [key, value] = build(b.get());
    REQUIRE(key >= 0);
    REQUIRE(value > 0);
    INFO("btf__load_into_kernel: " << ename(errno));
    REQUIRE(btf__load_into_kernel(b.get()) == 0);
    LIBBPF_OPTS(bpf_map_create_opts, opts, .btf_fd = static_cast<std::uint32_t>(btf__fd(b.get())),
                .btf_key_type_id = static_cast<std::uint32_t>(key),
                .btf_value_type_id = static_cast<std::uint32_t>(value), .map_flags = map_flags);
    UniqueFd fd(bpf_map_create(type, "bpffs_btf", key_size, value_size, max_entries, &opts));
    INFO("bpf_map_create: " << ename(errno));
    REQUIRE(fd);
    return fd;
}

// BPF_ANY update of one element (the bytes at `key` and `value`), or the test stops.
constexpr std::uint32_t kZero = 0;
void must_update_at(int fd, const void* key, const void* value) {
    INFO("bpf_map_update_elem: " << ename(errno));
    REQUIRE(bpf_map_update_elem(fd, key, value, BPF_ANY) == 0);
}
// The same for a scalar key and value (arrays go through must_update_at).
template <class K, class V>
void must_update(int fd, K key, V value) {
    static_assert(!std::is_pointer_v<V> && !std::is_array_v<V>);
    must_update_at(fd, &key, &value);
}

// The bytes a read of `path` gives to its end, `chunk` bytes per read(2); or the errno name of
// the open or of a read.
std::string read_text(const std::string& path, std::size_t chunk = 1 << 16, int flags = O_RDONLY) {
    UniqueFd fd(open(path.c_str(), flags | O_CLOEXEC));
    if (!fd) return ename(errno);
    std::string out;
    std::vector<char> buf(chunk);
    for (;;) {
        ssize_t n = read(fd.get(), buf.data(), buf.size());
        if (n < 0) return ename(errno);
        if (n == 0) return out;
        out.append(buf.data(), static_cast<std::size_t>(n));
    }
}

// Pins each map on each side under its name and reads it back; returns the kernel's texts.
std::vector<std::string> texts(const std::vector<std::pair<std::string, int>>& maps) {
    auto want = compare("", [&](const Side& s) {
        std::vector<std::string> out;
        for (const auto& [name, fd] : maps) out.push_back(pin_at(s, fd, s.p(name)));
        for (const auto& [name, fd] : maps) out.push_back(name + ":\n" + read_text(s.p(name)));
        return out;
    });
    return std::vector<std::string>(want.begin() + static_cast<long>(maps.size()), want.end());
}

int add_u32(btf* b) { return btf__add_int(b, "unsigned int", 4, 0); }
int add_s32(btf* b) { return btf__add_int(b, "int", 4, BTF_INT_SIGNED); }

// A member: name, type, offset in bits, and its size in bits if it is a bitfield.
struct Field {
    const char* name;
    int type;
    std::uint32_t bit_offset;
    std::uint32_t bit_size = 0;
};
// A struct (union) of `size` bytes with these members; its id. (Its member types are made
// before it: libbpf adds a member to the type made last.)
int add_struct(btf* b, const char* name, std::uint32_t size, std::initializer_list<Field> fields,
               bool is_union = false) {
    int id = is_union ? btf__add_union(b, name, size) : btf__add_struct(b, name, size);
    for (const Field& f : fields) {
        REQUIRE(btf__add_field(b, f.name, f.type, f.bit_offset, f.bit_size) == 0);
    }
    return id;
}
int add_union(btf* b, const char* name, std::uint32_t size, std::initializer_list<Field> fields) {
    return add_struct(b, name, size, fields, true);
}

}  // namespace

TEST_CASE("linux: a map with BTF reads as the kernel's text: int keys and values",
          "[linux][kernel][btf]") {
    auto array = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 4, 3, [](btf* b) {
        return std::pair{add_u32(b), add_s32(b)};
    });
    must_update(array.get(), 0u, -5);
    must_update(array.get(), 1u, 7);
    auto hash = must_btf_map(BPF_MAP_TYPE_HASH, 8, 8, 4, [](btf* b) {
        return std::pair{btf__add_int(b, "long", 8, BTF_INT_SIGNED),
                         btf__add_int(b, "unsigned long", 8, 0)};
    });
    must_update(hash.get(), std::int64_t{-9000000000}, std::uint64_t{18000000000000000000u});
    auto chars = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 1, 2, [](btf* b) {
        return std::pair{add_u32(b), btf__add_int(b, "char", 1, BTF_INT_CHAR)};
    });
    must_update(chars.get(), 1u, 'z');  // a char outside an array: a number
    auto progs = must_btf_map(BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 2, [](btf* b) {
        int u32 = add_u32(b);
        return std::pair{u32, u32};
    });
    auto prog = must_prog();
    must_update(progs.get(), 1u, prog.get());  // shown: the program's id; slot 0 is empty
    const auto id = std::to_string(kernel_id(prog.get()));
    auto got =
        texts({{"a", array.get()}, {"h", hash.get()}, {"c", chars.get()}, {"p", progs.get()}});
    CHECK(got[0] == "a:\n" + kWarnings + "0: -5\n1: 7\n2: 0\n");
    CHECK(got[1] == "h:\n" + kWarnings + "-9000000000: 18000000000000000000\n");
    CHECK(got[2] == "c:\n" + kWarnings + "0: 0\n1: 122\n");
    CHECK(got[3] == "p:\n" + kWarnings + "1: " + id + "\n");
}

TEST_CASE("linux: a map with BTF reads as the kernel's text: struct values",
          "[linux][kernel][btf]") {
    // Every int width, a char and a bool outside arrays, a nested struct, an int array, a char
    // array ending at its NUL, a typedef'd, a const and a volatile struct, a NULL pointer.
    auto plain = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 64, 2, [](btf* b) {
        int u32 = add_u32(b), s32 = add_s32(b);
        int s64 = btf__add_int(b, "long", 8, BTF_INT_SIGNED);
        int s16 = btf__add_int(b, "short", 2, BTF_INT_SIGNED);
        int u16 = btf__add_int(b, "unsigned short", 2, 0);
        int s8 = btf__add_int(b, "signed char", 1, BTF_INT_SIGNED);
        int ch = btf__add_int(b, "char", 1, BTF_INT_CHAR);
        int bo = btf__add_int(b, "_Bool", 1, BTF_INT_BOOL);
        int in = add_struct(b, "in", 4, {{"x", s32, 0}});
        int ints = btf__add_array(b, u32, s32, 2);
        int name = btf__add_array(b, u32, btf__add_int(b, "char", 1, BTF_INT_SIGNED), 4);
        int td = btf__add_typedef(b, "in_t", in);
        int cst = btf__add_const(b, in);
        int vol = btf__add_volatile(b, in);
        int ptr = btf__add_ptr(b, s32);
        int v = add_struct(b, "all", 64,
                           {{"a", s64, 0},
                            {"b", s16, 64},
                            {"c", u16, 80},
                            {"d", s8, 96},
                            {"e", ch, 104},
                            {"f", bo, 112},
                            {"g", in, 128},
                            {"h", ints, 160},
                            {"i", name, 224},
                            {"j", td, 256},
                            {"k", cst, 288},
                            {"l", vol, 320},
                            {"p", ptr, 384}});
        return std::pair{u32, v};
    });
    std::uint8_t v[64] = {};
    const std::int64_t a = -9000000000;
    const std::int16_t bs = -3;
    const std::uint16_t c = 65535;
    const std::int32_t rest[] = {1, 2, -3};
    std::memcpy(v, &a, 8);
    std::memcpy(v + 8, &bs, 2);
    std::memcpy(v + 10, &c, 2);
    v[12] = 0x80, v[13] = 'x', v[14] = 1;
    std::memcpy(v + 16, rest, sizeof rest);
    std::memcpy(v + 28, "ab\0c", 4);
    v[32] = 4, v[36] = 5, v[40] = 6;
    must_update_at(plain.get(), &kZero, v);
    // Bitfields (kflag: hex, never signed), a union, a float (the kernel has no printer for it).
    auto bits = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 16, 1, [](btf* b) {
        int u32 = add_u32(b), s32 = add_s32(b);
        int u8 = btf__add_int(b, "unsigned char", 1, 0);
        int u = add_union(b, "u", 4, {{"i", s32, 0}, {"c", u8, 0}});
        int f = btf__add_float(b, "float", 4);
        int v = add_struct(
            b, "bf", 16,
            {{"a", u32, 0, 3}, {"b", s32, 3, 5}, {"c", u32, 32, 20}, {"u", u, 64}, {"f", f, 96}});
        return std::pair{u32, v};
    });
    const std::uint32_t w[4] = {5u | (31u << 3), 0xabcde, 65, 0x3f800000};
    must_update_at(bits.get(), &kZero, w);
    auto got = texts({{"s", plain.get()}, {"b", bits.get()}});
    CHECK(got[0] == "s:\n" + kWarnings +
                        "0: {-9000000000,-3,65535,-128,120,1,{1,},[2,-3,],['a','b',],{4,},5,},6,},"
                        "0x0000000000000000,}\n"
                        "1: {0,0,0,0,0,0,{0,},[0,0,],[],{0,},0,},0,},0x0000000000000000,}\n");
    CHECK(got[1] == "b:\n" + kWarnings + "0: {0x5,0x1f,0xabcde,{65,65,},<unsupported kind:16>}\n");
}

TEST_CASE("linux: a map with BTF reads as the kernel's text: array values",
          "[linux][kernel][btf]") {
    // An array of structs (its elements print no "{"), an array of arrays and an array of
    // pointers (elements of no size of their own: the first one, again and again), chars the
    // kernel's isprint() takes (Latin-1 too) or not.
    auto arrays = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 48, 1, [](btf* b) {
        int u32 = add_u32(b), s32 = add_s32(b);
        int in = add_struct(b, "in", 8, {{"x", s32, 0}, {"y", s32, 32}});
        int structs = btf__add_array(b, u32, in, 2);
        int grid = btf__add_array(b, u32, btf__add_array(b, u32, s32, 2), 2);
        int ptrs = btf__add_array(b, u32, btf__add_ptr(b, s32), 1);
        int v = add_struct(b, "o", 48,
                           {{"s", structs, 0}, {"g", grid, 128}, {"p", ptrs, 256}, {"t", in, 320}});
        return std::pair{u32, v};
    });
    const std::int32_t a[12] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 9, 10};
    must_update_at(arrays.get(), &kZero, a);
    auto chars = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 16, 1, [](btf* b) {
        int u32 = add_u32(b);
        int c = btf__add_array(b, u32, btf__add_int(b, "char", 1, BTF_INT_SIGNED), 8);
        int uc = btf__add_array(b, u32, btf__add_int(b, "unsigned char", 1, 0), 8);
        int v = add_struct(b, "o", 16, {{"c", c, 0}, {"u", uc, 64}});
        return std::pair{u32, v};
    });
    const std::uint8_t c[16] = {0x7f, 0xa0, 0xff, 0x80, '\'', ' ', 0x1f, 0,
                                '~',  0x9f, 0xa1, 0,    5,    6,   7,    8};
    must_update_at(chars.get(), &kZero, c);
    auto top = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 8, 1, [](btf* b) {
        int u32 = add_u32(b);
        return std::pair{u32, btf__add_array(b, u32, add_s32(b), 2)};
    });
    must_update(top.get(), 0u, std::pair<std::int32_t, std::int32_t>{-1, 2});
    auto got = texts({{"a", arrays.get()}, {"c", chars.get()}, {"t", top.get()}});
    CHECK(got[0] == "a:\n" + kWarnings +
                        "0: {[1,2,},3,4,},],[5,6,],5,6,],],0x0000000000000000,],{9,10,},}\n");
    CHECK(got[1] ==
          "c:\n" + kWarnings + "0: {[127,'\xa0','\xff',-128,''',' ',31,],['~',159,'\xa1',],}\n");
    CHECK(got[2] == "t:\n" + kWarnings + "0: [-1,2,]\n");
}

TEST_CASE("linux: a map with BTF reads as the kernel's text: enum keys and values",
          "[linux][kernel][btf]") {
    // A signed enum (libbpf sets kflag for a negative value), an unsigned one, values with and
    // without a name; a 1-byte enum (the kernel reads 4 bytes anyway) and enum64 members.
    auto hash = must_btf_map(BPF_MAP_TYPE_HASH, 4, 4, 8, [](btf* b) {
        int k = btf__add_enum(b, "color", 4);
        btf__add_enum_value(b, "RED", 0);
        btf__add_enum_value(b, "GREEN", 1);
        btf__add_enum_value(b, "NEG", -2);
        int v = btf__add_enum(b, "level", 4);
        btf__add_enum_value(b, "HIGH", 5);
        return std::pair{k, v};
    });
    must_update(hash.get(), 1, 5);
    must_update(hash.get(), -2, -1);
    must_update(hash.get(), -7, 0);
    auto sized = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 24, 1, [](btf* b) {
        int u32 = add_u32(b);
        int e1 = btf__add_enum(b, "small", 1);
        btf__add_enum_value(b, "ONE", 1);
        int e64 = btf__add_enum64(b, "big", 8, true);
        btf__add_enum64_value(b, "X", static_cast<std::uint64_t>(-5));
        btf__add_enum64_value(b, "Y", 1ULL << 40);
        int v =
            add_struct(b, "o", 24, {{"a", e1, 0}, {"b", e1, 8}, {"g", e64, 64}, {"h", e64, 128}});
        return std::pair{u32, v};
    });
    std::uint8_t v[24] = {1, 0, 0, 0, 0, 0, 0, 0};
    const std::int64_t x = -5, y = 6;
    std::memcpy(v + 8, &x, 8);
    std::memcpy(v + 16, &y, 8);
    v[1] = 1;  // a's 4-byte read takes b: 0x0101, no name; b alone is ONE
    must_update_at(sized.get(), &kZero, v);
    auto got = texts({{"h", hash.get()}, {"s", sized.get()}});
    CHECK(got[0].size() > kWarnings.size() + 3);  // three entries, in the hash's own order
    for (const char* line : {"GREEN: HIGH\n", "NEG: 4294967295\n", "-7: 0\n"}) {
        CHECK(got[0].find(line) != std::string::npos);
    }
    CHECK(got[1] == "s:\n" + kWarnings + "0: {257,ONE,X,6,}\n");
}

TEST_CASE("linux: a map with BTF reads as the kernel's text: hash maps with struct keys",
          "[linux][kernel][btf]") {
    auto lru = must_btf_map(BPF_MAP_TYPE_LRU_HASH, 8, 4, 4, [](btf* b) {
        int s32 = add_s32(b);
        int k = add_struct(b, "k", 8, {{"a", s32, 0}, {"b", s32, 32}});
        return std::pair{k, s32};
    });
    must_update(lru.get(), std::pair<std::int32_t, std::int32_t>{1, -2}, 3);
    auto empty = must_btf_map(BPF_MAP_TYPE_HASH, 4, 4, 4, [](btf* b) {
        int s32 = add_s32(b);
        return std::pair{s32, s32};
    });
    auto got = texts({{"l", lru.get()}, {"e", empty.get()}});
    CHECK(got[0] == "l:\n" + kWarnings + "{1,-2,}: 3\n");
    CHECK(got[1] == "e:\n" + kWarnings);
}

TEST_CASE("linux: a map with BTF reads as the kernel's text: per-CPU maps",
          "[linux][kernel][btf]") {
    auto array = must_btf_map(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 2, [](btf* b) {
        return std::pair{add_u32(b), add_s32(b)};
    });
    const int ncpus = libbpf_num_possible_cpus();
    REQUIRE(ncpus > 0);
    std::vector<std::int64_t> per_cpu(static_cast<std::size_t>(ncpus));  // 8 bytes per CPU
    for (int i = 0; i < ncpus; ++i) per_cpu[static_cast<std::size_t>(i)] = i % 2 ? i : -i - 1;
    std::uint32_t key = 1;
    must_update_at(array.get(), &key, per_cpu.data());
    auto hash = must_btf_map(BPF_MAP_TYPE_LRU_PERCPU_HASH, 4, 12, 4, [](btf* b) {
        int s32 = add_s32(b);
        int v = add_struct(b, "s", 12, {{"a", s32, 0}, {"b", s32, 32}, {"c", s32, 64}});
        return std::pair{s32, v};
    });
    std::vector<std::int32_t> values(static_cast<std::size_t>(ncpus) * 4);  // 16 bytes per CPU
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = i % 4 == 3 ? 0 : int(i);
    std::int32_t hkey = -3;
    must_update_at(hash.get(), &hkey, values.data());
    auto got = texts({{"a", array.get()}, {"h", hash.get()}});
    std::string want_a = "a:\n" + kWarnings + "0: {\n", want_h = "h:\n" + kWarnings + "-3: {\n";
    for (int i = 0; i < ncpus; ++i) want_a += "\tcpu" + std::to_string(i) + ": 0\n";
    want_a += "}\n1: {\n";
    for (int i = 0; i < ncpus; ++i) {
        want_a += "\tcpu" + std::to_string(i) + ": " + std::to_string(i % 2 ? i : -i - 1) + "\n";
        want_h += "\tcpu" + std::to_string(i) + ": {" + std::to_string(4 * i) + "," +
                  std::to_string(4 * i + 1) + "," + std::to_string(4 * i + 2) + ",}\n";
    }
    CHECK(got[0] == want_a + "}\n");
    CHECK(got[1] == want_h + "}\n");
}

TEST_CASE("linux: a map with BTF reads as the kernel's text: a .bss map without a key type",
          "[linux][kernel][btf]") {
    auto bss = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 12, 1, [](btf* b) {
        int s32 = add_s32(b);
        int in = add_struct(b, "in", 8, {{"x", s32, 0}, {"y", s32, 32}});
        int a = btf__add_var(b, "a", BTF_VAR_GLOBAL_ALLOCATED, s32);
        int s = btf__add_var(b, "s", BTF_VAR_STATIC, in);
        int sec = btf__add_datasec(b, ".bss", 12);
        btf__add_datasec_var_info(b, a, 0, 4);
        btf__add_datasec_var_info(b, s, 4, 8);
        return std::pair{0, sec};
    });
    const std::int32_t v[3] = {1, 2, -3};
    must_update_at(bss.get(), &kZero, v);
    auto got = texts({{"bss", bss.get()}});
    CHECK(got[0] == "bss:\n" + kWarnings + "section (\".bss\") = {1,{2,-3,}\n");
}

TEST_CASE("linux: a map's text read 7 bytes at a time, or from an offset, is the same bytes",
          "[linux][kernel][btf]") {
    auto array = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 4, 40, [](btf* b) {
        return std::pair{add_u32(b), add_s32(b)};
    });
    for (std::uint32_t i = 0; i < 40; ++i) must_update(array.get(), i, -static_cast<int>(i * i));
    compare("", [&](const Side& s) {
        std::vector<std::string> out{pin_at(s, array.get(), s.p("m"))};
        const std::string whole = read_text(s.p("m"));
        out.push_back(whole);
        out.push_back(read_text(s.p("m"), 7) == whole ? "same in 7-byte reads" : "differs");
        UniqueFd fd(open(s.p("m").c_str(), O_RDONLY | O_CLOEXEC));
        char buf[32] = {};
        ssize_t n = fd ? pread(fd.get(), buf, sizeof buf, 100) : -1;
        out.push_back(n < 0 ? ename(errno) : std::string(buf, static_cast<std::size_t>(n)));
        out.push_back(n == 32 && whole.compare(100, 32, buf, 32) == 0 ? "pread agrees" : "not");
        return out;
    });
}

TEST_CASE("linux: no text without BTF, for a program or an LPM trie, and EACCES comes first",
          "[linux][kernel][btf]") {
    auto plain = must_map();  // a hash map without BTF
    auto prog = must_prog();
    auto trie = must_btf_map(
        BPF_MAP_TYPE_LPM_TRIE, 8, 4, 4,
        [](btf* b) {
            int u32 = add_u32(b);
            int k = add_struct(b, "k", 8, {{"prefixlen", u32, 0}, {"data", u32, 32}});
            return std::pair{k, u32};
        },
        BPF_F_NO_PREALLOC);
    auto with_btf = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1, [](btf* b) {
        return std::pair{add_u32(b), add_s32(b)};
    });
    compare("", [&](const Side& s) {
        std::vector<std::string> out;
        for (auto [name, fd] : {std::pair{"plain", plain.get()},
                                {"prog", prog.get()},
                                {"trie", trie.get()},
                                {"btf", with_btf.get()}}) {
            out.push_back(pin_at(s, fd, s.p(name)));
            out.push_back(read_text(s.p(name)).substr(0, 9));
            out.push_back(std::string("as alice: ") + ename(run_as(kAlice, kAlice, [&] {
                              UniqueFd f(open(s.p(name).c_str(), O_RDONLY | O_CLOEXEC));
                              return f ? 0 : errno;
                          })));
        }
        // A map with a text view opens for writing too; the VFS refuses a read through it.
        out.push_back("write-only: " + read_text(s.p("btf"), 16, O_WRONLY));
        out.push_back("read-write: " + read_text(s.p("btf"), 16, O_RDWR).substr(0, 9));
        return out;
    });
}

TEST_CASE("seed: open of a map with BTF stays ENXIO", "[seed][kernel][btf]") {
    auto map = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1, [](btf* b) {
        return std::pair{add_u32(b), add_s32(b)};
    });
    Mount seed;
    must_pin(map.get(), seed.p("m"));
    CHECK(read_text(seed.p("m")) == "ENXIO");
}

TEST_CASE(
    "linux: a map's text is taken at open, and differences kept: pointers, lseek, "
    "a write-only map",
    "[linux][kernel][btf]") {
    auto map = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 8, 1, [](btf* b) {
        return std::pair{add_u32(b), btf__add_ptr(b, add_s32(b))};
    });
    must_update(map.get(), 0u, std::uint64_t{0x1234});
    KernelBpffs kernel;
    Mount ours("compat=linux");
    must_pin(map.get(), ours.p("m"));
    REQUIRE(bpf_obj_pin(map.get(), kernel.p("m").c_str()) == 0);
    // The kernel hashes pointers ("0x%p"); ours shows the value, as no_hash_pointers does.
    const std::string text = read_text(ours.p("m"));
    CHECK(text == kWarnings + "0: 0x0000000000001234\n");
    CHECK(read_text(kernel.p("m")) != text);
    // One open reads one snapshot; the next open sees the update.
    UniqueFd fd(open(ours.p("m").c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(fd);
    must_update(map.get(), 0u, std::uint64_t{0});
    char buf[256];
    const ssize_t n = read(fd.get(), buf, sizeof buf);
    REQUIRE(n >= 0);
    CHECK(std::string(buf, static_cast<std::size_t>(n)) == text);
    CHECK(read_text(ours.p("m")) == kWarnings + "0: 0x0000000000000000\n");
    // The kernel's file has no write (EINVAL), and neither has ours; it has no llseek (ESPIPE)
    // where ours seeks.
    UniqueFd kfd(open(kernel.p("m").c_str(), O_RDWR | O_CLOEXEC));
    REQUIRE(kfd);
    CHECK(ename(errno_of(write(kfd.get(), "x", 1) < 0 ? -1 : 0)) == ename(EINVAL));
    CHECK(ename(errno_of(write(fd.get(), "x", 1) < 0 ? -1 : 0)) == ename(EINVAL));
    CHECK(ename(errno_of(lseek(kfd.get(), 0, SEEK_SET) < 0 ? -1 : 0)) == ename(ESPIPE));
    CHECK(lseek(fd.get(), 0, SEEK_SET) == 0);
    // A map made BPF_F_WRONLY (its creator's fd may not look up) prints on both: the kernel
    // walks the map itself, the broker looks up through an fd of its own.
    auto wronly = must_btf_map(
        BPF_MAP_TYPE_ARRAY, 4, 4, 1,
        [](btf* b) {
            return std::pair{add_u32(b), add_s32(b)};
        },
        BPF_F_WRONLY);
    must_pin(wronly.get(), ours.p("w"));
    REQUIRE(bpf_obj_pin(wronly.get(), kernel.p("w").c_str()) == 0);
    CHECK(read_text(kernel.p("w")) == kWarnings + "0: 0\n");
    CHECK(read_text(ours.p("w")) == kWarnings + "0: 0\n");
}

TEST_CASE("linux: a map's text view open across a worker's crash reads on", "[linux][btf]") {
    auto map = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 4, 8, [](btf* b) {
        return std::pair{add_u32(b), add_s32(b)};
    });
    for (std::uint32_t i = 0; i < 8; ++i) must_update(map.get(), i, static_cast<int>(i) - 4);
    Mount ours("compat=linux");
    ours.allow_restarts();
    must_pin(map.get(), ours.p("m"));
    const std::string whole = read_text(ours.p("m"));
    UniqueFd fd(open(ours.p("m").c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    char buf[256];
    REQUIRE(read(fd.get(), buf, 20) == 20);
    // The kernel keeps the open file; the new worker has no view under its handle and renders
    // the map again.
    const pid_t old = worker_of(ours.pid());
    REQUIRE(old > 0);
    REQUIRE(kill(old, SIGKILL) == 0);
    int n = 0;
    INFO("daemon log:\n" << ours.log());
    REQUIRE(wait_for([&] {
        const pid_t now = worker_of(ours.pid());
        struct stat st {};
        const std::string fresh = ours.p("never_" + std::to_string(n++));  // not cached
        return now > 0 && now != old && lstat(fresh.c_str(), &st) != 0 && errno == ENOENT;
    }));
    const ssize_t rest = read(fd.get(), buf + 20, sizeof buf - 20);
    REQUIRE(rest >= 0);
    CHECK(std::string(buf, 20 + static_cast<std::size_t>(rest)) == whole);
}

TEST_CASE("linux: a map whose text would pass 64 MiB is EFBIG, and the mount serves on",
          "[linux][btf]") {
    // An int and four billion empty structs: a 4-byte value whose text is 8 GB ("}," each).
    auto huge = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1, [](btf* b) {
        int u32 = add_u32(b), s32 = add_s32(b);
        int many = btf__add_array(b, u32, add_struct(b, "empty", 0, {}), 0xffffffffu);
        return std::pair{u32, add_struct(b, "o", 4, {{"x", s32, 0}, {"e", many, 32}})};
    });
    auto small = must_btf_map(BPF_MAP_TYPE_ARRAY, 4, 4, 1, [](btf* b) {
        return std::pair{add_u32(b), add_s32(b)};
    });
    Mount ours("compat=linux");
    must_pin(huge.get(), ours.p("huge"));
    must_pin(small.get(), ours.p("small"));
    CHECK(read_text(ours.p("huge")) == "EFBIG");
    CHECK(read_text(ours.p("small")) == kWarnings + "0: 0\n");
}
