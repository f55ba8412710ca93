// SPDX-License-Identifier: GPL-2.0-or-later
// What bpffsctl prints: `key: value` lines, or JSON (nlohmann-json), and the kernel's facts about
// a map, program or link as such fields (get, ls).
#pragma once

#include "common/result.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace bpffs::ctl {

// One `key: value` line, or a member of a JSON object.
struct Field {
    std::string key;
    nlohmann::ordered_json value;  // a string, a number, or a list of strings
};

inline Field str(std::string key, std::string value) { return {std::move(key), std::move(value)}; }
inline Field num(std::string key, unsigned long long value) { return {std::move(key), value}; }

// The fields as one JSON object, in their order.
nlohmann::ordered_json to_json(const std::vector<Field>& fields);
// `key: value` lines, or (json) one JSON object on one line.
void print_fields(const std::vector<Field>& fields, bool json);

// The kernel's facts about the object `fd` is: type (map, prog or link), id, name and the
// kind's own (map_type, key_size, value_size, max_entries, map_flags; prog_type, tag; link_type,
// prog_id). EINVAL: not a map, program or link.
Result<std::vector<Field>> object_fields(int fd);

}  // namespace bpffs::ctl
