// SPDX-License-Identifier: GPL-2.0-or-later
// A map as text, byte for byte as today's kernel bpffs prints it (kernel/bpf/inode.c, btf.c,
// arraymap.c, hashtab.c, local_storage.c; checked against a 6.18 kernel by
// tests/btf_text_test.cpp). The map's BTF comes from the kernel through libbpf; the printing is
// the kernel's btf_show machinery re-enacted step by step (class Shower), state and quirks
// included, because the text is defined by that code and by nothing else.
//
// The file: "# WARNING!! The output is for debug purpose only\n", "# WARNING!! The output format
// will change\n", then one entry per key, in map_get_next_key order, skipping a key whose lookup
// finds nothing:
//   array, prog array   "%u: " (the index; an array without a BTF key type, a .bss-like map,
//                       prints none) VALUE "\n" (a prog array's value is the program's id)
//   hash, LRU hash, cgroup storage            KEY ": " VALUE "\n"
//   per-CPU array       "%u: {\n", then "\tcpu%d: " VALUE "\n" per possible CPU, then "}\n"
//   per-CPU hash, LRU per-CPU hash, per-CPU cgroup storage: the same with KEY for "%u"
// Other map types (and maps without a BTF value type) have no text: open is EIO.
//
// KEY and VALUE are btf_type_seq_show(): flags NONAME|COMPACT|ZERO|UNSAFE, so no names, no
// spaces, zeros shown. Each scalar is followed by a delimiter at depth > 0: "," (a union with no
// members ends "}|"), nothing at the top level. So:
//   ints  8/16/32/64 bits: %d or %u by the SIGNED bit (BOOL and CHAR are unsigned unless
//         SIGNED); 128 bits "0x%llx" (the high half, if any, then "%016llx"); any other width, a
//         bit offset, or a bitfield member (kflag): hex "0x%llx" of the bits, never signed
//   char  1-byte ints inside an array whose element is 1 byte: '%c' when the kernel's isprint()
//         holds (0x20-0x7e and Latin-1 0xa0-0xff), else a number; a NUL ends the array (nothing
//         more is printed, "]" follows)
//   struct, union  "{" members "}": but "{" is left out when the member's declared type starts
//         with a qualifier (const/volatile/restrict/type tag), when it is an array element, or
//         when any array was shown since the enclosing array element began
//   array "[" elements "]", with the same omissions; an array of pointers prints no "["; an
//         element that is not an int, struct, union, enum or float (an array, a pointer) has
//         size 0 for the walk, so every element shows the first one
//   enum  the name of the value, else %d (kflag) or %u; always 4 bytes are read, whatever the
//         enum's size; enum64: 8 bytes, %lld or %llu
//   pointer "0x%p": the kernel hashes it (16 hex digits); here NULL is 0x0000000000000000 as
//         there, any other value is printed raw (what no_hash_pointers shows)
//   float, func, fwd, decl tag: "<unsupported kind:N>", no delimiter
//   datasec (.bss/.data) `section ("NAME") = {` then its variables comma-separated at the top
//         level, and no closing brace
// Values come from bpf(2) lookups, which zero the special fields (bpf_spin_lock, timers, kptrs)
// the kernel's own walk shows raw; bytes read past a value (an enum's 4-byte read) are zeros.
#include "broker/btf_text.hpp"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/btf.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace bpffs::broker {
namespace {

using Bytes = std::span<const std::uint8_t>;

// lib/ctype.c's isprint(): ASCII and Latin-1.
bool kernel_isprint(std::uint8_t c) { return (c >= 0x20 && c <= 0x7e) || c >= 0xa0; }

// printf of a number or two (a few dozen characters at most).
template <class... A>
std::string format(const char* fmt, A... args) {
    char buf[48];
    int n = std::snprintf(buf, sizeof buf, fmt, args...);
    return std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
}

// The CPU's shifts (x86-64 and arm64 alike), which take the count modulo 64:
// btf_int128_shift() shifts a u64 by 64 when a bitfield spans all 128 bits, and the kernel runs
// what the CPU does with that.
std::uint64_t shl(std::uint64_t v, unsigned n) { return v << (n & 63); }
std::uint64_t shr(std::uint64_t v, unsigned n) { return v >> (n & 63); }

// One shift of btf_int128_shift(): 128 bits as two halves shifted by n, from the half `from`
// toward the half `to` (`fwd` shifts that way, `back` the other).
template <class Shift>
void shift128(std::uint64_t& from, std::uint64_t& to, unsigned n, Shift fwd, Shift back) {
    if (n >= 64) {
        to = fwd(from, n - 64);
        from = 0;
    } else {
        to = fwd(to, n) | back(from, 64 - n);
        from = fwd(from, n);
    }
}

// One call of btf_type_show(): the kernel's struct btf_show state and its show functions.
class Shower {
public:
    Shower(const btf* b, Bytes buf, std::string& out) : btf_(b), buf_(buf), out_(out) {}
    void show(std::uint32_t id) { type_show(btf__type_by_id(btf_, id), id, 0, 0); }

private:
    void type_show(const btf_type* t, std::uint32_t id, std::size_t off, std::uint8_t bits);
    void int_show(const btf_type* t, std::uint32_t id, std::size_t off, std::uint8_t bits);
    void char_or_number(std::size_t off, bool sign);
    void bitfield_show(std::size_t off, std::uint8_t bits_offset, std::uint8_t nr_bits);
    void int128_print(std::uint64_t lower, std::uint64_t upper);
    void ptr_show(const btf_type* t, std::uint32_t id, std::size_t off);
    void array_show(const btf_type* t, std::uint32_t id, std::size_t off, std::uint8_t bits);
    void struct_show(const btf_type* t, std::uint32_t id, std::size_t off);
    void enum_show(const btf_type* t, std::uint32_t id, std::size_t off);
    void datasec_show(const btf_type* t, std::uint32_t id, std::size_t off, std::uint8_t bits);

    std::string_view parens() const;
    std::string_view delim() const;
    void value(const std::string& v) { out_.append(parens()).append(v).append(delim()); }
    void start_type(const btf_type* t, std::uint32_t id) {
        st_.type = t;
        st_.type_id = id;
    }
    void end_type() { start_type(nullptr, 0); }
    // Past the most text a view holds: the walk stops (map_text says EFBIG). An array of
    // billions of empty structs is a 4-byte value.
    bool full() const { return out_.size() > kMapTextMax; }
    void start_aggr(const btf_type* t, std::uint32_t id) {
        start_type(t, id);
        out_.append(parens());
        ++st_.depth;
    }
    void end_aggr(char suffix) {
        --st_.depth;
        out_.push_back(suffix);
        out_.append(delim());
        end_type();
    }
    // The bytes at `off`, zeros past the end of the buffer.
    template <class T>
    T load(std::size_t off) const {
        std::uint8_t raw[sizeof(T)] = {};
        if (off < buf_.size())
            std::memcpy(raw, buf_.data() + off, std::min(sizeof(T), buf_.size() - off));
        T v;
        std::memcpy(&v, raw, sizeof(T));
        return v;
    }

    struct State {
        int depth = 0;
        const btf_member* member = nullptr;
        bool array_member = false;
        std::uint8_t array_encoding = 0;
        bool array_terminated = false;
        const btf_type* type = nullptr;
        std::uint32_t type_id = 0;
    };
    const btf* btf_;
    Bytes buf_;
    std::string& out_;
    State st_;
};

// btf_type_ops(t)->show.
void Shower::type_show(const btf_type* t, std::uint32_t id, std::size_t off, std::uint8_t bits) {
    if (t == nullptr) return;  // not in the BTF the kernel checked: cannot happen
    switch (btf_kind(t)) {
        case BTF_KIND_INT:
            return int_show(t, id, off, bits);
        case BTF_KIND_PTR:
            return ptr_show(t, id, off);
        case BTF_KIND_ARRAY:
            return array_show(t, id, off, bits);
        case BTF_KIND_STRUCT:
        case BTF_KIND_UNION:
            return struct_show(t, id, off);
        case BTF_KIND_ENUM:
        case BTF_KIND_ENUM64:
            return enum_show(t, id, off);
        case BTF_KIND_TYPEDEF:
        case BTF_KIND_VOLATILE:
        case BTF_KIND_CONST:
        case BTF_KIND_RESTRICT:
        case BTF_KIND_TYPE_TAG:
        case BTF_KIND_VAR: {  // btf_modifier_show, btf_var_show: the resolved type and its id
            int rid = btf__resolve_type(btf_, id);
            if (rid < 0) return;
            return type_show(btf__type_by_id(btf_, rid), rid, off, bits);
        }
        case BTF_KIND_DATASEC:
            return datasec_show(t, id, off, bits);
        default:  // btf_df_show: fwd, func, func_proto, float, decl_tag
            out_.append(format("<unsupported kind:%u>", btf_kind(t)));
    }
}

// btf_show_name() under BTF_SHOW_NONAME: only the opening bracket of a struct, union or array,
// found by following typedefs, arrays and pointers from the member's declared type (or the
// shown type at the top level), as the kernel does.
std::string_view Shower::parens() const {
    if (st_.array_member) return "";
    std::uint32_t id = st_.member != nullptr ? st_.member->type : st_.type_id;
    const btf_type* t = btf__type_by_id(btf_, id);
    if (t == nullptr) return "";
    std::string_view parens;
    bool array = false, ptr = false;
    int i = 0;
    for (; i < 10; ++i) {  // BTF_SHOW_MAX_ITER
        switch (btf_kind(t)) {
            case BTF_KIND_TYPEDEF:
                id = t->type;
                break;
            case BTF_KIND_ARRAY:
                array = true;
                parens = "[";
                id = btf_array(t)->type;
                break;
            case BTF_KIND_PTR:
                ptr = true;
                id = t->type;
                break;
            default:
                id = 0;
        }
        if (id == 0) break;
        t = btf__type_by_id(btf_, id);
        while (t != nullptr && btf_is_mod(t)) t = btf__type_by_id(btf_, t->type);  // qualifiers
        if (t == nullptr) return "";
    }
    if (i == 10) return "";
    if (btf_is_composite(t) && !array) parens = "{";
    return ptr ? "" : parens;
}

std::string_view Shower::delim() const {
    if (st_.depth == 0) return "";
    return st_.type != nullptr && btf_is_union(st_.type) ? "|" : ",";
}

void Shower::int_show(const btf_type* t, std::uint32_t id, std::size_t off, std::uint8_t bits) {
    const bool sign = (btf_int_encoding(t) & BTF_INT_SIGNED) != 0;
    const std::uint8_t nr_bits = btf_int_bits(t), int_offset = btf_int_offset(t);
    start_type(t, id);
    const bool regular = bits == 0 && int_offset == 0 && nr_bits % 8 == 0;
    if (regular && nr_bits == 128) {
        int128_print(load<std::uint64_t>(off), load<std::uint64_t>(off + 8));
    } else if (regular && nr_bits == 64) {
        value(sign ? std::to_string(load<std::int64_t>(off))
                   : std::to_string(load<std::uint64_t>(off)));
    } else if (regular && nr_bits == 32) {
        value(sign ? std::to_string(load<std::int32_t>(off))
                   : std::to_string(load<std::uint32_t>(off)));
    } else if (regular && nr_bits == 16) {
        value(sign ? std::to_string(load<std::int16_t>(off))
                   : std::to_string(load<std::uint16_t>(off)));
    } else if (regular && nr_bits == 8) {
        char_or_number(off, sign);
    } else {  // btf_int_bits_show
        std::uint8_t total = static_cast<std::uint8_t>(bits + int_offset);
        bitfield_show(off + total / 8, total % 8, nr_bits);
    }
    end_type();
}

void Shower::char_or_number(std::size_t off, bool sign) {
    const auto c = load<std::uint8_t>(off);
    if (st_.array_encoding == BTF_INT_CHAR) {
        if (st_.array_terminated) return;
        if (c == 0) {
            st_.array_terminated = true;
            return;
        }
        if (kernel_isprint(c)) return value(std::string{'\'', static_cast<char>(c), '\''});
    }
    value(sign ? std::to_string(static_cast<std::int8_t>(c)) : std::to_string(c));
}

// btf_bitfield_show(): the bits, shifted into place in 128 bits, printed in hex.
void Shower::bitfield_show(std::size_t off, std::uint8_t bits_offset, std::uint8_t nr_bits) {
    const std::uint8_t nr_copy_bits = static_cast<std::uint8_t>(nr_bits + bits_offset);
    std::uint8_t raw[16] = {};
    for (unsigned i = 0; i < (nr_copy_bits + 7u) / 8 && i < 16; ++i)
        raw[i] = load<std::uint8_t>(off + i);
    std::uint64_t lower, upper;
    std::memcpy(&lower, raw, 8);
    std::memcpy(&upper, raw + 8, 8);
    shift128(lower, upper, 128u - nr_copy_bits, shl, shr);  // the bits to the top...
    shift128(upper, lower, 128u - nr_bits, shr, shl);       // ...and down to bit 0
    int128_print(lower, upper);
}

void Shower::int128_print(std::uint64_t lower, std::uint64_t upper) {
    if (upper == 0) return value(format("0x%" PRIx64, lower));
    value(format("0x%" PRIx64 "%016" PRIx64, upper, lower));
}

void Shower::ptr_show(const btf_type* t, std::uint32_t id, std::size_t off) {
    start_type(t, id);
    value(format("0x%016" PRIx64, load<std::uint64_t>(off)));
    end_type();
}

// __btf_array_show(). The element's size counts only for kinds with a size of their own.
void Shower::array_show(const btf_type* t, std::uint32_t id, std::size_t off, std::uint8_t bits) {
    const struct btf_array* a = btf_array(t);
    const btf_type* elem = btf__type_by_id(btf_, a->type);
    while (btf_is_mod(elem) || btf_is_typedef(elem)) elem = btf__type_by_id(btf_, elem->type);
    const bool sized = btf_is_int(elem) || btf_is_composite(elem) || btf_is_any_enum(elem) ||
                       btf_is_float(elem) || btf_is_datasec(elem);
    const std::size_t elem_size = sized ? elem->size : 0;
    std::uint8_t encoding = 0;
    if (btf_is_int(elem)) encoding = elem_size == 1 ? BTF_INT_CHAR : btf_int_encoding(elem);
    st_.array_encoding = encoding;
    st_.array_terminated = false;
    start_aggr(t, id);
    for (std::uint32_t i = 0; i < a->nelems && !full(); ++i) {
        st_.array_member = true;
        st_.member = nullptr;
        type_show(elem, a->type, off, bits);
        off += elem_size;
        st_.array_member = false;
        st_.member = nullptr;
        if (st_.array_terminated) break;
    }
    st_.array_encoding = 0;
    st_.array_terminated = false;
    end_aggr(']');
}

// __btf_struct_show(); a bitfield member (kflag) is printed by btf_bitfield_show directly.
void Shower::struct_show(const btf_type* t, std::uint32_t id, std::size_t off) {
    start_aggr(t, id);
    const btf_member* m = btf_members(t);
    for (std::uint32_t i = 0; i < btf_vlen(t) && !full(); ++i, ++m) {
        const btf_type* mt = btf__type_by_id(btf_, m->type);
        st_.member = m;
        const std::uint32_t bit_off = btf_member_bit_offset(t, i);
        const std::uint32_t bitfield = btf_member_bitfield_size(t, i);
        if (bitfield != 0) {
            start_type(mt, m->type);
            bitfield_show(off + bit_off / 8, bit_off % 8, static_cast<std::uint8_t>(bitfield));
            end_type();
        } else {
            type_show(mt, m->type, off + bit_off / 8, static_cast<std::uint8_t>(bit_off % 8));
        }
        st_.member = nullptr;
    }
    end_aggr('}');
}

// btf_enum_show() reads an int whatever the enum's size; btf_enum64_show() a u64.
void Shower::enum_show(const btf_type* t, std::uint32_t id, std::size_t off) {
    start_type(t, id);
    const char* name = nullptr;
    std::string number;
    if (btf_is_enum(t)) {
        const auto v = load<std::int32_t>(off);
        for (std::uint32_t i = 0; i < btf_vlen(t) && name == nullptr; ++i) {
            if (btf_enum(t)[i].val == v) name = btf__name_by_offset(btf_, btf_enum(t)[i].name_off);
        }
        number = btf_kflag(t) ? std::to_string(v) : std::to_string(static_cast<std::uint32_t>(v));
    } else {
        const auto v = load<std::uint64_t>(off);
        for (std::uint32_t i = 0; i < btf_vlen(t) && name == nullptr; ++i) {
            const struct btf_enum64* e = btf_enum64(t) + i;
            if (btf_enum64_value(e) == v) name = btf__name_by_offset(btf_, e->name_off);
        }
        number = btf_kflag(t) ? std::to_string(static_cast<std::int64_t>(v)) : std::to_string(v);
    }
    value(name != nullptr ? std::string(name) : number);
    end_type();
}

// btf_datasec_show(): its variables at the current depth, and no closing brace.
void Shower::datasec_show(const btf_type* t, std::uint32_t id, std::size_t off, std::uint8_t bits) {
    start_type(t, id);
    const char* name = btf__name_by_offset(btf_, t->name_off);
    value(std::string("section (\"") + (name != nullptr && *name ? name : "(anon)") + "\") = {");
    const btf_var_secinfo* v = btf_var_secinfos(t);
    for (std::uint32_t i = 0; i < btf_vlen(t); ++i, ++v) {
        if (i != 0) out_.push_back(',');
        type_show(btf__type_by_id(btf_, v->type), v->type, off + v->offset, bits);
    }
    end_type();
}

// --- the map ----------------------------------------------------------------------------------

// How a map type's map_seq_show_elem prints a key and its value(s).
enum class KeyAs { index, index_if_typed, btf };
struct Layout {
    KeyAs key;
    bool per_cpu;
};

std::optional<Layout> layout_of(std::uint32_t map_type) {
    switch (map_type) {
        case BPF_MAP_TYPE_ARRAY:
            return Layout{KeyAs::index_if_typed, false};
        case BPF_MAP_TYPE_PROG_ARRAY:
            return Layout{KeyAs::index, false};
        case BPF_MAP_TYPE_PERCPU_ARRAY:
            return Layout{KeyAs::index, true};
        case BPF_MAP_TYPE_HASH:
        case BPF_MAP_TYPE_LRU_HASH:
        case BPF_MAP_TYPE_CGROUP_STORAGE:
            return Layout{KeyAs::btf, false};
        case BPF_MAP_TYPE_PERCPU_HASH:
        case BPF_MAP_TYPE_LRU_PERCPU_HASH:
        case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
            return Layout{KeyAs::btf, true};
        default:
            return std::nullopt;
    }
}

// The numbers of the possible CPUs in order (for_each_possible_cpu), as many as libbpf counts
// (the per-CPU values a lookup gives); 0..n-1 if the kernel's list cannot be read.
Result<std::vector<int>> possible_cpus() {
    const int n = libbpf_num_possible_cpus();
    if (n <= 0) return fail(n < 0 ? -n : EINVAL);
    std::vector<int> cpus;
    std::ifstream in("/sys/devices/system/cpu/possible");
    int first = 0, last = 0;
    char sep = ',';
    while (sep == ',' && in >> first) {
        last = first;
        if (in.peek() == '-') in >> sep >> last;
        for (int c = first; c <= last && cpus.size() <= static_cast<std::size_t>(n); ++c) {
            cpus.push_back(c);
        }
        if (!(in >> sep)) break;
    }
    if (cpus.size() != static_cast<std::size_t>(n)) {
        cpus.clear();
        for (int c = 0; c < n; ++c) cpus.push_back(c);
    }
    return cpus;
}

struct BtfFree {
    void operator()(btf* b) const { btf__free(b); }
};

// Everything the elements are printed with.
struct MapView {
    bpf_map_info info{};
    Layout layout{};
    std::unique_ptr<btf, BtfFree> types;
    std::vector<int> cpus;      // per-CPU maps: the possible CPUs
    std::size_t stride = 0;     // per-CPU maps: the bytes of one CPU's value
    std::size_t value_len = 0;  // the bytes a lookup fills
};

void show(const MapView& m, std::uint32_t type_id, Bytes bytes, std::string& out) {
    Shower(m.types.get(), bytes, out).show(type_id);
}

// One map_seq_show_elem().
void show_element(const MapView& m, Bytes key, Bytes value, std::string& out) {
    const bool index = m.layout.key == KeyAs::index ||
                       (m.layout.key == KeyAs::index_if_typed && m.info.btf_key_type_id != 0);
    std::uint32_t k = 0;
    std::memcpy(&k, key.data(), std::min<std::size_t>(key.size(), 4));
    if (m.layout.key == KeyAs::btf) show(m, m.info.btf_key_type_id, key, out);
    if (!m.layout.per_cpu) {
        out.append(index ? std::to_string(k) + ": " : m.layout.key == KeyAs::btf ? ": " : "");
        show(m, m.info.btf_value_type_id, value, out);
        out.push_back('\n');
        return;
    }
    out.append(index ? std::to_string(k) + ": {\n" : ": {\n");
    for (std::size_t i = 0; i < m.cpus.size(); ++i) {
        out.append("\tcpu").append(std::to_string(m.cpus[i])).append(": ");
        show(m, m.info.btf_value_type_id, value.subspan(i * m.stride, m.stride), out);
        out.push_back('\n');
    }
    out.append("}\n");
}

// What the map is and how to print it; nullopt if the kernel's bpffs would not.
Result<std::optional<MapView>> view_of(int fd) {
    MapView m;
    std::uint32_t len = sizeof m.info;
    if (int rc = bpf_obj_get_info_by_fd(fd, &m.info, &len); rc < 0) return fail(-rc);
    auto layout = layout_of(m.info.type);
    if (!layout || m.info.btf_value_type_id == 0) return std::optional<MapView>();
    m.layout = *layout;
    m.types.reset(btf__load_from_kernel_by_id(m.info.btf_id));
    if (!m.types) return fail(errno != 0 ? errno : EIO);
    m.value_len = m.info.value_size;
    if (m.layout.per_cpu) {
        auto cpus = possible_cpus();
        if (!cpus) return cpus.error();
        m.cpus = std::move(*cpus);
        m.stride = (m.info.value_size + 7u) / 8u * 8u;
        m.value_len = m.stride * m.cpus.size();
    }
    return std::optional<MapView>(std::move(m));
}

Result<std::optional<std::string>> render(int map_fd) {
    auto view = view_of(map_fd);
    if (!view) return view.error();
    if (!*view) return std::optional<std::string>();
    const MapView& m = **view;
    std::string out =
        "# WARNING!! The output is for debug purpose only\n"
        "# WARNING!! The output format will change\n";
    std::vector<std::uint8_t> key(m.info.key_size), next(m.info.key_size);
    std::vector<std::uint8_t> value(m.value_len);
    for (bool first = true;; first = false) {
        int rc = bpf_map_get_next_key(map_fd, first ? nullptr : key.data(), next.data());
        if (rc == -ENOENT) break;
        if (rc < 0) return fail(-rc);
        key.swap(next);
        rc = bpf_map_lookup_elem(map_fd, key.data(), value.data());
        if (rc == -ENOENT) continue;  // gone since, or an empty prog array slot: not shown
        if (rc < 0) return fail(-rc);
        show_element(m, key, value, out);
        if (out.size() > kMapTextMax) return fail(EFBIG);
    }
    return std::optional<std::string>(std::move(out));
}

}  // namespace

Result<std::optional<std::string>> map_text(int map_fd) {
    try {
        return render(map_fd);
    } catch (const std::bad_alloc&) {
        return fail(ENOMEM);
    }
}

}  // namespace bpffs::broker
