// SPDX-License-Identifier: GPL-2.0-or-later
// What a supervisor hands a new worker: the fds and figures, as "key value" text in a memfd.
#include "daemon/handoff.hpp"

#include <cerrno>
#include <charconv>
#include <sstream>

namespace bpffs::daemon {
namespace {

template <typename T>
bool number(const std::string& s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::vector<int> WorkerHandoff::fds() const {
    std::vector<int> v;
    for (int fd : {fuse_fd, control_fd, log_fd, inflight_fd, listen_fd, tree_fd}) {
        if (fd >= 0) v.push_back(fd);
    }
    for (const auto& [h, fd] : objects) v.push_back(fd);
    for (int fd : conns) v.push_back(fd);
    return v;
}

std::string to_text(const WorkerHandoff& h) {
    std::ostringstream o;
    o << "mountpoint " << h.mountpoint << '\n'
      << "options " << h.options << '\n'
      << "read_only " << h.read_only << '\n'
      << "first " << h.first << '\n'
      << "detached " << h.detached << '\n'
      << "debug " << h.debug << '\n'
      << "log_level " << h.log_level << '\n'
      << "fuse " << h.fuse_fd << '\n'
      << "control " << h.control_fd << '\n'
      << "log " << h.log_fd << '\n'
      << "inflight " << h.inflight_fd << '\n'
      << "listen " << h.listen_fd << '\n'
      << "tree " << h.tree_fd << '\n'
      << "supervisor " << h.supervisor_pid << '\n'
      << "generation " << h.generation << '\n'
      << "restarts " << h.restarts << '\n';
    if (!h.log_file.empty()) o << "log_file " << h.log_file << '\n';
    for (const auto& [handle, fd] : h.objects) o << "obj " << handle << ' ' << fd << '\n';
    for (int fd : h.conns) o << "conn " << fd << '\n';
    return o.str();
}

Result<WorkerHandoff> parse_handoff(const std::string& text) {
    WorkerHandoff h;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        auto sp = line.find(' ');
        std::string key = line.substr(0, sp);
        std::string val = sp == std::string::npos ? "" : line.substr(sp + 1);
        bool ok = true;
        int flag = 0;
        if (key == "mountpoint")
            h.mountpoint = val;
        else if (key == "options")
            h.options = val;
        else if (key == "log_level")
            h.log_level = val;
        else if (key == "log_file")
            h.log_file = val;
        else if (key == "read_only") {
            ok = number(val, flag);
            h.read_only = flag != 0;
        } else if (key == "first") {
            ok = number(val, flag);
            h.first = flag != 0;
        } else if (key == "detached") {
            ok = number(val, flag);
            h.detached = flag != 0;
        } else if (key == "debug") {
            ok = number(val, flag);
            h.debug = flag != 0;
        } else if (key == "fuse")
            ok = number(val, h.fuse_fd);
        else if (key == "control")
            ok = number(val, h.control_fd);
        else if (key == "log")
            ok = number(val, h.log_fd);
        else if (key == "inflight")
            ok = number(val, h.inflight_fd);
        else if (key == "listen")
            ok = number(val, h.listen_fd);
        else if (key == "tree")
            ok = number(val, h.tree_fd);
        else if (key == "supervisor")
            ok = number(val, h.supervisor_pid);
        else if (key == "generation")
            ok = number(val, h.generation);
        else if (key == "restarts")
            ok = number(val, h.restarts);
        else if (key == "obj") {
            auto sp2 = val.find(' ');
            fsops::ObjHandle handle = 0;
            int fd = -1;
            ok = sp2 != std::string::npos && number(val.substr(0, sp2), handle) &&
                 number(val.substr(sp2 + 1), fd) && fd >= 0;
            if (ok) h.objects.emplace_back(handle, fd);
        } else if (key == "conn") {
            int fd = -1;
            ok = number(val, fd) && fd >= 0;
            if (ok) h.conns.push_back(fd);
        } else if (!key.empty()) {
            ok = false;
        }
        if (!ok) return fail(EINVAL);
    }
    if (h.mountpoint.empty() || h.fuse_fd < 0 || h.control_fd < 0 || h.log_fd < 0 ||
        h.inflight_fd < 0) {
        return fail(EINVAL);
    }
    return h;
}

}  // namespace bpffs::daemon
