// SPDX-License-Identifier: GPL-2.0-or-later
// What kind of program `bpffsctl run` starts (bpffsctl_elf.hpp): the ELF header, its program
// headers (PT_INTERP) and its section names (Go's), read with pread, nothing mapped.
#include "client/bpffsctl_elf.hpp"

#include "common/unique_fd.hpp"

#include <elf.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

namespace bpffs::ctl {
namespace {

// The file execvp would run for `command`: itself when it holds a '/', else the first
// executable of that name in $PATH.
std::string resolve(const std::string& command) {
    if (command.find('/') != std::string::npos) return command;
    const char* path = std::getenv("PATH");
    std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
    while (true) {
        auto colon = dirs.find(':');
        std::string dir(dirs.substr(0, colon));
        std::string file = (dir.empty() ? "." : dir) + "/" + command;
        if (access(file.c_str(), X_OK) == 0) return file;
        if (colon == std::string_view::npos) return "";
        dirs.remove_prefix(colon + 1);
    }
}

template <class T>
bool read_at(int fd, T* out, std::size_t n, off_t off) {
    return pread(fd, out, n, off) == static_cast<ssize_t>(n);
}

bool has_interpreter(int fd, const Elf64_Ehdr& eh) {
    for (int i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr ph{};
        if (!read_at(fd, &ph, sizeof ph, static_cast<off_t>(eh.e_phoff + i * eh.e_phentsize)))
            return true;  // unreadable: leave it to the shim, as before
        if (ph.p_type == PT_INTERP) return true;
    }
    return false;
}

// Does the file hold a section Go's linker writes (.go.buildinfo, .note.go.buildid)?
bool built_by_go(int fd, const Elf64_Ehdr& eh) {
    if (eh.e_shstrndx == SHN_UNDEF || eh.e_shnum == 0) return false;
    Elf64_Shdr names{};
    if (!read_at(fd, &names, sizeof names,
                 static_cast<off_t>(eh.e_shoff + eh.e_shstrndx * eh.e_shentsize)) ||
        names.sh_size > (1u << 20)) {
        return false;
    }
    std::vector<char> table(names.sh_size + 1, '\0');
    if (!read_at(fd, table.data(), names.sh_size, static_cast<off_t>(names.sh_offset)))
        return false;
    for (int i = 0; i < eh.e_shnum; ++i) {
        Elf64_Shdr sh{};
        if (!read_at(fd, &sh, sizeof sh, static_cast<off_t>(eh.e_shoff + i * eh.e_shentsize)) ||
            sh.sh_name >= names.sh_size) {
            continue;
        }
        std::string_view name(table.data() + sh.sh_name);
        if (name == ".go.buildinfo" || name == ".note.go.buildid") return true;
    }
    return false;
}

}  // namespace

bool shim_cannot_reach(const std::string& command) {
    std::string file = resolve(command);
    UniqueFd fd(file.empty() ? -1 : open(file.c_str(), O_RDONLY | O_CLOEXEC));
    Elf64_Ehdr eh{};
    if (!fd || !read_at(fd.get(), &eh, sizeof eh, 0) ||
        std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64) {
        return false;
    }
    return !has_interpreter(fd.get(), eh) || built_by_go(fd.get(), eh);
}

}  // namespace bpffs::ctl
