// SPDX-License-Identifier: GPL-2.0-or-later
// Groups and capabilities of a thread, from /proc/<tid>/status; a process's state, from
// /proc/<pid>/stat.
#include "common/proc_status.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace bpffs {

ProcStatus read_proc_status(pid_t pid) {
    ProcStatus st;
    if (pid <= 0) return st;
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Groups:", 0) == 0) {
            std::istringstream is(line.substr(7));
            std::uint32_t g;
            while (is >> g) st.groups.push_back(g);
        } else if (line.rfind("Umask:", 0) == 0) {
            st.umask =
                static_cast<std::uint32_t>(std::strtoul(line.c_str() + 6, nullptr, 8)) & 0777;
        } else if (line.rfind("Uid:", 0) == 0 || line.rfind("Gid:", 0) == 0) {
            std::istringstream is(line.substr(4));
            std::uint32_t* ids = line[0] == 'U' ? st.uids : st.gids;
            for (int i = 0; i < 4 && (is >> ids[i]); ++i) {}
        } else if (line.rfind("Tgid:", 0) == 0) {
            st.tgid = static_cast<std::uint32_t>(std::strtoul(line.c_str() + 5, nullptr, 10));
        } else if (line.rfind("CapEff:", 0) == 0) {
            st.cap_eff = std::stoull(line.substr(7), nullptr, 16);
            st.ok = true;
        }
    }
    return st;
}

char process_state(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return '?';
    auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() ? line[close + 2] : '?';
}

}  // namespace bpffs
