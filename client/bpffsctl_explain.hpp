// SPDX-License-Identifier: GPL-2.0-or-later
// bpffsctl's words for a failure: the rule that refused it and, where there is one, the fix.
// The daemon answers with an errno (docs/semantics.md says which rule gives which); bpffsctl reads
// it with what it can see from here: the name, the filesystem under the path, its own
// capabilities. The rules themselves live in the daemon (fsops::Policy); this only names them.
#pragma once

#include <string>

namespace bpffs::ctl {

// What is under a path: the kernel's bpffs, a bpffs-fuse mount (a FUSE filesystem with the
// broker's socket), another filesystem, or nothing (ENOENT).
enum class Where { kernel_bpffs, bpffs_fuse, other, missing };
// The directory a path's last name is in, as the words below name it ("a/b" -> "a", "b" -> ".",
// "/b" -> "/").
std::string parent_of(const std::string& path);
// Of `path` itself, or (`new_name`) of the directory a new name there would go into.
Where where_is(const std::string& path, bool new_name);

// chown: a new directory's --owner or --mode; pin_chown: a pin's.
enum class Verb { pin, get, mkdir, chown, pin_chown, upgrade };
// Why `verb` of `path` failed with errno `e`, as a clause ("names containing '.' are reserved"),
// or "" when the errno says it all.
std::string explain(Verb verb, const std::string& path, int e);

}  // namespace bpffs::ctl
