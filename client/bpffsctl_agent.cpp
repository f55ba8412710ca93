// SPDX-License-Identifier: GPL-2.0-or-later
// `bpffsctl seccomp-agent SOCKET`: the seccomp supervisor for whole containers (docs/preload.md,
// "Containers"). An OCI runtime (runc's `linux.seccomp.listenerPath`) connects to SOCKET once
// per container it starts and sends the container's state (JSON, the OCI runtime spec's
// ContainerProcessState) with the listener of the container's filter (SCM_RIGHTS; "fds" names
// it "seccompFd"). Each container's listener is served by a process of its own (forked: a
// supervisor forks a helper per call, which must not happen in a process with threads), as
// `bpffsctl run --seccomp` serves its command: a caller is served in a helper that takes on its
// credentials, root and mount namespace (the agent is root), never with the agent's own.
//
// Only a peer with the agent's uid (the runtime runs as root, as the agent does) may hand it a
// listener; the socket is made 0600. The agent stops on SIGINT or SIGTERM and takes its
// serving processes with it; the containers' calls then fail with ENOSYS, none hangs.
#include "client/bpffsctl_commands.hpp"
#include "client/bpffsctl_seccomp.hpp"

#include "common/scm.hpp"
#include "common/unique_fd.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace bpffs::ctl {
namespace {

std::atomic<bool> g_stop{false};

void on_stop(int) { g_stop.store(true); }

// A container's state as the runtime sends it: what the agent needs of it.
struct Handed {
    UniqueFd listener;
    std::string id;  // the container's
    long pid = 0;    // its init process, in our pid namespace
};

// Reads one runtime's message: the JSON, the fds with it. runc does not close the connection
// after it, so the message ends where the JSON does (a stream may bring it in parts). Nothing,
// with a reason in *why, when it is not a container's state with its seccomp listener.
std::optional<Handed> receive(int conn, std::string* why) {
    std::string json;
    std::vector<UniqueFd> fds;
    nlohmann::json state;
    for (;;) {
        pollfd p{conn, POLLIN, 0};
        if (poll(&p, 1, 5000) != 1) {  // a runtime sends at once: no peer may hold us
            *why = "no complete state within 5 s";
            return std::nullopt;
        }
        std::uint8_t buf[16384];
        Received got = recv_with_fds(conn, std::span(buf, sizeof buf), 8);
        if (got.error != 0 || got.size == 0) {
            *why = got.error != 0 ? std::strerror(got.error) : "the state ends before its JSON";
            return std::nullopt;
        }
        for (auto& fd : got.fds) fds.push_back(std::move(fd));
        json.append(reinterpret_cast<const char*>(buf), got.size);
        state = nlohmann::json::parse(json, nullptr, false);
        if (!state.is_discarded()) break;
        if (json.size() > (1u << 20)) {
            *why = "a state of more than 1 MiB";
            return std::nullopt;
        }
    }
    if (!state.is_object() || !state.contains("fds") || !state["fds"].is_array()) {
        *why = "not a container process state (JSON with \"fds\")";
        return std::nullopt;
    }
    Handed h;
    const auto& names = state["fds"];
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i] == "seccompFd" && i < fds.size()) h.listener = std::move(fds[i]);
    }
    if (!h.listener) {
        *why = "no \"seccompFd\" among the fds sent";
        return std::nullopt;
    }
    h.pid = state.value("pid", 0L);
    if (state.contains("state") && state["state"].is_object())
        h.id = state["state"].value("id", std::string());
    return h;
}

// The listening socket at `path` (a stale socket there is replaced, anything else refused).
UniqueFd listen_at(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        std::fprintf(stderr,
                     "bpffsctl: error: seccomp-agent: %s: a path that long cannot be a "
                     "socket\n",
                     path.c_str());
        return {};
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0) {
        UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        bool live = S_ISSOCK(st.st_mode) &&
                    connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        if (!S_ISSOCK(st.st_mode) || live) {
            std::fprintf(stderr, "bpffsctl: error: seccomp-agent: %s %s\n", path.c_str(),
                         live ? "is served by another agent" : "exists and is no socket");
            return {};
        }
        unlink(path.c_str());
    }
    UniqueFd s(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    mode_t old = umask(0177);  // 0600: only the agent's uid may connect
    bool bound = s && bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    umask(old);
    if (!bound || listen(s.get(), 64) != 0) {
        std::fprintf(stderr, "bpffsctl: error: seccomp-agent: %s: %s\n", path.c_str(),
                     std::strerror(errno));
        return {};
    }
    return s;
}

void serve_container(Handed h, std::uint32_t trust_uid) {
    seccomp::Supervisor sup(std::move(h.listener), trust_uid);
    bool ok = sup.serve();
    const auto& f = sup.figures();
    std::fprintf(stderr,
                 "bpffsctl: seccomp-agent: container %s (pid %ld) gone%s: %llu call(s) served, "
                 "%llu left to the kernel\n",
                 h.id.c_str(), h.pid, ok ? "" : " (its listener failed)",
                 static_cast<unsigned long long>(f.served),
                 static_cast<unsigned long long>(f.continued));
}

}  // namespace

int run_agent(const AgentOptions& o) {
    UniqueFd s = listen_at(o.socket);
    if (!s) return kExitFailure;
    struct sigaction sa {};
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::fprintf(stderr, "bpffsctl: seccomp-agent: listening at %s\n", o.socket.c_str());
    std::vector<pid_t> servers;  // a process per container, until its container is gone
    while (!g_stop.load()) {
        for (pid_t pid; (pid = waitpid(-1, nullptr, WNOHANG)) > 0;) {
            std::erase(servers, pid);
        }
        pollfd p{s.get(), POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0) continue;  // EINTR: a signal, maybe the stop
        UniqueFd conn(accept4(s.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn) continue;
        ucred peer{};
        socklen_t len = sizeof peer;
        if (getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 ||
            peer.uid != geteuid()) {
            std::fprintf(stderr, "bpffsctl: seccomp-agent: refused a connection of uid %u\n",
                         peer.uid);
            continue;
        }
        std::string why;
        auto h = receive(conn.get(), &why);
        if (!h) {
            std::fprintf(stderr, "bpffsctl: seccomp-agent: ignored a message of pid %d: %s\n",
                         peer.pid, why.c_str());
            continue;
        }
        std::fprintf(stderr, "bpffsctl: seccomp-agent: serving container %s (pid %ld)\n",
                     h->id.c_str(), h->pid);
        std::fflush(stderr);
        pid_t child = fork();
        if (child == 0) {
            s.reset();
            conn.reset();
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            serve_container(std::move(*h), o.trust_uid);
            std::fflush(stderr);
            _exit(0);
        }
        if (child < 0) {
            std::fprintf(stderr, "bpffsctl: seccomp-agent: fork: %s\n", std::strerror(errno));
        } else {
            servers.push_back(child);
        }
    }
    for (pid_t pid : servers) kill(pid, SIGTERM);
    while (waitpid(-1, nullptr, 0) > 0) {}
    unlink(o.socket.c_str());
    std::fprintf(stderr, "bpffsctl: seccomp-agent: stopped\n");
    return kExitOk;
}

}  // namespace bpffs::ctl
