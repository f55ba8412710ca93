// SPDX-License-Identifier: GPL-2.0-or-later
// bpffsctl's output fields (bpffsctl_fields.hpp).
#include "client/bpffsctl_fields.hpp"

#include "common/bpf_fd.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace bpffs::ctl {

nlohmann::ordered_json to_json(const std::vector<Field>& fields) {
    nlohmann::ordered_json o = nlohmann::ordered_json::object();
    for (const auto& f : fields) o[f.key] = f.value;
    return o;
}

void print_fields(const std::vector<Field>& fields, bool json) {
    if (json) {
        // Bytes that are no UTF-8 (a kernel object's name may hold any) are replaced, not fatal.
        std::string out =
            to_json(fields).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        std::printf("%s\n", out.c_str());
        return;
    }
    for (const auto& f : fields) {
        std::string v;
        if (f.value.is_array()) {  // a list: its strings, one after the other
            for (const auto& e : f.value) v += (v.empty() ? "" : ", ") + e.get<std::string>();
        } else {
            v = f.value.is_string() ? f.value.get<std::string>() : f.value.dump();
        }
        std::printf("%s: %s\n", f.key.c_str(), v.c_str());
    }
}

namespace {

// The kernel's name field: NUL-padded, not necessarily NUL-terminated.
std::string obj_name(const char* name, std::size_t size) {
    return std::string(name, strnlen(name, size));
}

// The kernel's info on a map or program (bpf_map_info, bpf_prog_info).
template <typename Info>
Result<Info> info_of(int fd) {
    Info info{};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return fail(errno);
    return info;
}

// The first fields of both kinds: type, id, name, then the kernel's type of the object as
// bpftool shows it: libbpf's name for it when it has one (`type_name`), else its number.
std::vector<Field> head_fields(const char* kind, std::uint32_t id, std::string name,
                               const char* type_name, std::uint32_t type) {
    std::string type_key = std::string(kind) + "_type";
    return {str("type", kind), num("id", id), str("name", std::move(name)),
            type_name != nullptr ? str(type_key, type_name) : num(type_key, type)};
}

Result<std::vector<Field>> map_fields(int fd) {
    auto got = info_of<bpf_map_info>(fd);
    if (!got) return got.error();
    const bpf_map_info& info = *got;
    std::vector<Field> f =
        head_fields("map", info.id, obj_name(info.name, sizeof info.name),
                    libbpf_bpf_map_type_str(static_cast<bpf_map_type>(info.type)), info.type);
    f.push_back(num("key_size", info.key_size));
    f.push_back(num("value_size", info.value_size));
    f.push_back(num("max_entries", info.max_entries));
    f.push_back(num("map_flags", info.map_flags));
    return f;
}

Result<std::vector<Field>> prog_fields(int fd) {
    auto got = info_of<bpf_prog_info>(fd);
    if (!got) return got.error();
    const bpf_prog_info& info = *got;
    std::vector<Field> f =
        head_fields("prog", info.id, obj_name(info.name, sizeof info.name),
                    libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(info.type)), info.type);
    std::string tag;
    for (unsigned char b : info.tag) {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%02x", b);
        tag += buf;
    }
    f.push_back(str("tag", tag));
    return f;
}

// A link has no name: type, id, its kernel type and the program it attaches.
Result<std::vector<Field>> link_fields(int fd) {
    auto got = info_of<bpf_link_info>(fd);
    if (!got) return got.error();
    const bpf_link_info& info = *got;
    const char* type_name = libbpf_bpf_link_type_str(static_cast<bpf_link_type>(info.type));
    return std::vector<Field>{
        str("type", "link"), num("id", info.id),
        type_name != nullptr ? str("link_type", type_name) : num("link_type", info.type),
        num("prog_id", info.prog_id)};
}

}  // namespace

Result<std::vector<Field>> object_fields(int fd) {
    auto kind = bpf_kind(fd);
    if (!kind) return kind.error();
    switch (*kind) {
        case BpfKind::map:
            return map_fields(fd);
        case BpfKind::prog:
            return prog_fields(fd);
        case BpfKind::link:
            return link_fields(fd);
        case BpfKind::other:
            break;
    }
    return fail(EINVAL);
}

}  // namespace bpffs::ctl
