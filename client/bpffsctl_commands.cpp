// SPDX-License-Identifier: GPL-2.0-or-later
// bpffsctl's verbs. pin/get/exec go through the public C API (bpffs_obj_pin / bpffs_obj_get),
// exactly as any program would; status/remount/upgrade talk to the broker with the internal
// client helpers, since the C API has no such calls, through the same trust check
// (client::connect_broker). A refusal is printed with its reason: connect_broker gives it to
// status/remount/upgrade; after a pin or get fails with EPERM, client::refusal_for asks again
// (connecting, sending nothing) whether the broker was refused and why.
//
// exec places the fetched fds at 3, 4, ... without clobbering: a fetched fd may itself already
// be numbered inside the target range (fd 3 for the second PATH while the first PATH's fd must
// go there), so every fd inside the range is first duplicated above it and the original closed;
// only then are all dup2()ed down, from sources that are all outside the range. dup2 clears
// close-on-exec on the target; the sources keep it and vanish at exec.
//
// run adds the preload shim to LD_PRELOAD after what is already there: a sanitizer runtime must
// stay first, and an earlier interposer of syscall() still reaches the shim through RTLD_NEXT.
// The shim's path is made absolute, since CMD may change its directory before it loads anything.
//
// Remount options are validated here with the core's parser against the options in force
// (fetched with status), so a typo prints the same one-line message the daemon would log, and
// exits 2 (usage) instead of the broker's bare EINVAL.
#include "client/bpffsctl_commands.hpp"
#include "client/bpffsctl_elf.hpp"
#include "client/bpffsctl_explain.hpp"
#include "client/bpffsctl_fields.hpp"
#include "client/bpffsctl_seccomp.hpp"

#include "common/bpf_fd.hpp"

#include "bpffs/bpffs.h"
#include "client/client.hpp"
#include "common/protocol.hpp"
#include "common/unique_fd.hpp"
#include "fsops/mount_options.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#ifndef BPFFS_PRELOAD_PATH
#error "BPFFS_PRELOAD_PATH (the installed libbpffs-preload.so) is set by preload/CMakeLists.txt"
#endif

namespace bpffs::ctl {
namespace {

int report(const std::string& what, int e) {
    if (e == EUSERS) {  // the broker's refusal of a connection over its limits, whatever the verb
        std::fprintf(stderr,
                     "bpffsctl: error: %s: the broker refused the connection: too many are open "
                     "(max_conns_per_uid for your uid, or max_conns in all); close some, or ask "
                     "the mount's owner to raise them (%s)\n",
                     what.c_str(), std::strerror(e));
        return kExitFailure;
    }
    std::fprintf(stderr, "bpffsctl: error: %s: %s\n", what.c_str(), std::strerror(e));
    return kExitFailure;
}

// "WHAT: WHY (strerror)", or report()'s line when there is no why.
int report_why(const std::string& what, const std::string& why, int e) {
    if (why.empty()) return report(what, e);
    std::fprintf(stderr, "bpffsctl: error: %s: %s (%s)\n", what.c_str(), why.c_str(),
                 std::strerror(e));
    return kExitFailure;
}

std::string join(const std::vector<std::string>& v, char sep) {
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i != 0) s += sep;
        s += v[i];
    }
    return s;
}

std::string octal_mode(std::uint32_t mode) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0%03o", mode & 07777u);
    return buf;
}

client::Trust trust_of(std::uint32_t trust_uid) {
    client::Trust t;
    if (trust_uid != 0) t.uid = trust_uid;
    return t;
}

bpffs_opts opts_of(std::uint32_t trust_uid) {
    bpffs_opts o{};
    o.sz = sizeof o;
    o.trust_uid = trust_uid;
    return o;
}

// Prints the failure `e` of a pin (`pin`) or get of `path`, with the rule that refused it
// (bpffsctl_explain.hpp): a path on the kernel's bpffs first, then a broker that is not trusted
// (EPERM), then a path off any bpffs-fuse mount or what the daemon's errno means.
int report_call(const std::string& what, const std::string& path, bool pin, std::uint32_t trust_uid,
                int e) {
    const Verb verb = pin ? Verb::pin : Verb::get;
    if (where_is(path, pin) == Where::kernel_bpffs)
        return report_why(what, explain(verb, path, e), e);
    if (e == client::kUntrusted) {
        if (auto why = client::refusal_for(path, pin, trust_of(trust_uid))) {
            std::fprintf(stderr, "bpffsctl: error: %s: %s\n", what.c_str(),
                         client::describe(*why).c_str());
            return kExitFailure;
        }
    }
    return report_why(what, explain(verb, path, e), e);
}

// Do these attrs give a new node to another owner or a group the caller is not in (chown(2)'s
// rules, which decide then)?
bool gives_away(const PinAttrs& a) {
    if (a.uid && *a.uid != geteuid()) return true;
    if (!a.gid || *a.gid == getegid()) return false;
    std::vector<gid_t> groups(static_cast<std::size_t>(std::max(getgroups(0, nullptr), 0)));
    int n = getgroups(static_cast<int>(groups.size()), groups.data());
    groups.resize(static_cast<std::size_t>(std::max(n, 0)));
    return std::find(groups.begin(), groups.end(), *a.gid) == groups.end();
}

// A connection to the broker serving directory `dir`, checked as libbpffs checks it. Errors are
// positive errnos; a directory without a broker is ENOENT or ECONNREFUSED, as connect() says;
// an untrusted one is client::kUntrusted, with the reason in *why.
Result<UniqueFd> connect_to(const std::string& dir, std::uint32_t trust_uid, client::Refusal* why) {
    UniqueFd dirfd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dirfd) return fail(errno);
    return client::connect_broker(dir, dirfd.get(), trust_of(trust_uid), why);
}

// Prints the failure of connect_to for `verb dir`.
int report_connect(const std::string& verb, const std::string& dir, int e,
                   const client::Refusal& why) {
    if (e == client::kUntrusted) {
        std::fprintf(stderr, "bpffsctl: error: %s %s: %s\n", verb.c_str(), dir.c_str(),
                     client::describe(why).c_str());
        return kExitFailure;
    }
    if (e == ENOENT || e == ECONNREFUSED) {
        if (const char* env = secure_getenv("BPFFS_SOCKET"); env != nullptr && *env != '\0') {
            return report(verb + " " + dir + ": no broker at $BPFFS_SOCKET (" + env + ")", e);
        }
        // The directory exists (it was opened): it has no broker.
        struct stat st {};
        if (stat(dir.c_str(), &st) == 0) {
            return report(verb + " " + dir + ": not on a bpffs-fuse mount (no " +
                              std::string(protocol::kSocketName) + ")",
                          e);
        }
    }
    return report(verb + " " + dir, e);
}

// A Channel to `dir`'s broker: status and remount are idempotent, so they go through it and are
// resent across a worker's restart or an upgrade as libbpffs's get is (client::RetryPolicy).
client::Channel channel_to(const std::string& dir, std::uint32_t trust_uid) {
    return client::Channel(dir, UniqueFd(open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)), {},
                           trust_of(trust_uid));
}

Result<protocol::StatusInfo> fetch_status(client::Channel& ch) {
    auto out = ch.call(protocol::Request{protocol::Op::status, {}}, {});
    if (!out) return out.error();
    if (out->resp.reply.error != 0) return fail(out->resp.reply.error);
    if (!out->resp.reply.status) return fail(EPROTO);
    return std::move(*out->resp.reply.status);
}

// Prints the failure of a call on `ch` for `verb dir`: a connect's (report_connect says why) or
// the broker's answer.
int report_call(const std::string& verb, const std::string& dir, int e, const client::Channel& ch) {
    bool at_connect = e == client::kUntrusted || e == ENOENT || e == ECONNREFUSED || e == EACCES;
    return at_connect ? report_connect(verb, dir, e, ch.refusal()) : report(verb + " " + dir, e);
}

// The options a status reply says are in force.
fsops::MountOptions options_of(const protocol::StatusInfo& st) {
    return {st.uid, st.gid, st.mode,
            st.compat == protocol::StatusInfo::kCompatLinux ? fsops::Compat::linux
                                                            : fsops::Compat::seed};
}

// Replaces this process with `command` (looked up in $PATH); returns only when it cannot be
// run, after saying why.
int exec_command(const char* verb, const std::vector<std::string>& command) {
    std::vector<char*> argv;
    for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::fflush(nullptr);
    execvp(argv[0], argv.data());
    report(std::string(verb) + " " + command.front(), errno);
    return kExitCannotExec;
}

}  // namespace

int run_pin(const PinOptions& o) {
    UniqueFd obj;
    std::string what;
    switch (o.source) {
        case PinOptions::Source::map_id:
            what = "map id " + std::to_string(o.id);
            obj.reset(bpf_map_get_fd_by_id(o.id));
            break;
        case PinOptions::Source::prog_id:
            what = "prog id " + std::to_string(o.id);
            obj.reset(bpf_prog_get_fd_by_id(o.id));
            break;
        case PinOptions::Source::fd:  // a copy: the fd stays as it was handed over
            what = "fd " + std::to_string(o.id);
            obj.reset(fcntl(static_cast<int>(o.id), F_DUPFD_CLOEXEC, 0));
            break;
        case PinOptions::Source::path:
            // From a bpffs-fuse mount as `get` fetches; from anywhere else as the kernel does.
            if (where_is(o.from, false) == Where::bpffs_fuse) {
                bpffs_opts opts = opts_of(o.trust_uid);
                obj.reset(bpffs_obj_get_opts(o.from.c_str(), &opts));
                if (!obj)
                    return report_call("pin: get " + o.from, o.from, false, o.trust_uid, errno);
            } else {
                what = "pin: bpf_obj_get " + o.from;
                obj.reset(bpf_obj_get(o.from.c_str()));
            }
            break;
    }
    if (!obj) return report(what, errno);
    bpffs_opts opts = opts_of(o.trust_uid);
    const PinAttrs& a = o.attrs;
    opts.pin_set =
        (a.mode ? BPFFS_PIN_MODE : 0) | (a.uid ? BPFFS_PIN_UID : 0) | (a.gid ? BPFFS_PIN_GID : 0);
    opts.mode = a.mode.value_or(0);
    opts.uid = a.uid.value_or(0);
    opts.gid = a.gid.value_or(0);
    if (bpffs_obj_pin_opts(obj.get(), o.path.c_str(), &opts) != 0) {
        int e = errno;
        if (e == EPERM && gives_away(a))
            return report_why("pin " + o.path, explain(Verb::pin_chown, o.path, e), e);
        if (e == EPROTO && !a.empty())
            return report_why(
                "pin " + o.path,
                "the daemon is older than this bpffsctl and takes no --mode or "
                "--owner: upgrade it (bpffsctl upgrade), or pin, then chmod and chown",
                e);
        return report_call("pin " + o.path, o.path, true, o.trust_uid, e);
    }
    return kExitOk;
}

namespace {

// The directories `mkdir` of `path` makes, outermost first: the path, and with -p each missing
// parent. Empty when there is nothing to make (-p of an existing directory); an errno when a
// path that exists is in the way.
Result<std::vector<std::string>> dirs_to_make(std::string path, bool parents) {
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    std::vector<std::string> todo;
    struct stat st {};
    for (;;) {
        if (lstat(path.c_str(), &st) == 0) {
            if (!S_ISDIR(st.st_mode)) return fail(todo.empty() ? EEXIST : ENOTDIR);
            if (todo.empty() && !parents) return fail(EEXIST);
            break;
        }
        if (errno != ENOENT) return fail(errno);
        todo.insert(todo.begin(), path);
        if (!parents) break;
        std::string up = parent_of(path);
        if (up == path) break;
        path = up;
    }
    return todo;
}

// Makes `dir`, then gives it the owner and mode asked (chown before chmod: root's chown may clear
// bits a chmod set). 0 or the errno, with the verb that failed in *verb.
int make_dir(const std::string& dir, const PinAttrs& a, Verb* verb) {
    *verb = Verb::mkdir;
    // Nobody else may use it before it has its owner and mode (compat=seed copies the parent's
    // mode whatever is asked, so the chmod below decides).
    if (mkdir(dir.c_str(), a.empty() ? 0777 : 0700) != 0) return errno;
    *verb = Verb::chown;
    if ((a.uid || a.gid) && lchown(dir.c_str(), a.uid ? *a.uid : static_cast<uid_t>(-1),
                                   a.gid ? *a.gid : static_cast<gid_t>(-1)) != 0)
        return errno;
    if (a.mode && chmod(dir.c_str(), *a.mode) != 0) return errno;
    return 0;
}

int mkdir_one(const MkdirOptions& o, const std::string& path) {
    auto todo = dirs_to_make(path, o.parents);
    if (!todo) {
        int e = todo.error().value;
        return report_why("mkdir " + path, explain(Verb::mkdir, path, e), e);
    }
    if (todo->empty()) return kExitOk;
    if (where_is(todo->front(), true) != Where::bpffs_fuse) {
        std::fprintf(stderr, "bpffsctl: error: mkdir %s: %s\n", todo->front().c_str(),
                     explain(Verb::mkdir, todo->front(), 0).c_str());
        return kExitFailure;
    }
    for (std::size_t i = 0; i < todo->size(); ++i) {
        const std::string& dir = (*todo)[i];
        Verb verb = Verb::mkdir;
        int e = make_dir(dir, o.attrs, &verb);
        if (e == 0) continue;
        // Nothing half made stays: the directories made so far go again, innermost first.
        for (std::size_t j = verb == Verb::chown ? i + 1 : i; j-- > 0;) rmdir((*todo)[j].c_str());
        const char* what = verb == Verb::chown ? " (--owner, --mode)" : "";
        return report_why("mkdir " + dir + what, explain(verb, dir, e), e);
    }
    return kExitOk;
}

}  // namespace

int run_mkdir(const MkdirOptions& o) {
    for (const std::string& path : o.paths) {
        if (int rc = mkdir_one(o, path); rc != kExitOk) return rc;
    }
    return kExitOk;
}

int run_get(const GetOptions& o) {
    bpffs_opts opts = opts_of(o.trust_uid);
    UniqueFd fd(bpffs_obj_get_opts(o.path.c_str(), &opts));
    if (!fd) return report_call("get " + o.path, o.path, false, o.trust_uid, errno);
    auto fields = object_fields(fd.get());
    if (!fields) {
        int e = fields.error().value;
        return report(
            "get " + o.path + (e == EINVAL ? ": not a map, program or link" : ": object info"), e);
    }
    print_fields(*fields, o.json);
    return kExitOk;
}

int run_exec(const ExecOptions& o) {
    if (o.command.empty()) {
        std::fprintf(stderr, "bpffsctl: error: exec: no command after '--'\n");
        return kExitUsage;
    }
    std::vector<UniqueFd> fetched;
    bpffs_opts opts = opts_of(o.trust_uid);
    for (const auto& p : o.paths) {
        UniqueFd fd(bpffs_obj_get_opts(p.c_str(), &opts));
        if (!fd) return report_call("get " + p, p, false, o.trust_uid, errno);
        fetched.push_back(std::move(fd));
    }
    const int first = 3;
    const int above = first + static_cast<int>(fetched.size());
    std::vector<UniqueFd> staged;
    for (auto& fd : fetched) {
        if (fd.get() < first || fd.get() >= above) {
            staged.push_back(std::move(fd));  // no dup2 below can land on it
            continue;
        }
        UniqueFd s(fcntl(fd.get(), F_DUPFD_CLOEXEC, above));
        if (!s) {
            return report("exec: cannot place " + std::to_string(o.paths.size()) + " fds", errno);
        }
        staged.push_back(std::move(s));
    }
    fetched.clear();  // closes the originals that sat in the target range
    std::string list;
    for (std::size_t i = 0; i < staged.size(); ++i) {
        int target = first + static_cast<int>(i);
        if (dup2(staged[i].get(), target) < 0) {
            return report("exec: dup2 to fd " + std::to_string(target), errno);
        }
        if (i != 0) list += ' ';
        list += std::to_string(target);
    }
    if (setenv("BPFFS_FDS", list.c_str(), 1) != 0) return report("exec: setenv BPFFS_FDS", errno);
    return exec_command("exec", o.command);
}

int run_run(const RunOptions& o) {
    if (o.command.empty()) {
        std::fprintf(stderr, "bpffsctl: error: run: no command after '--'\n");
        return kExitUsage;
    }
    // The shim for dynamically linked programs (no notification per call), the supervisor for
    // the rest, unless told.
    bool supervise = o.via == RunOptions::Via::seccomp ||
                     (o.via == RunOptions::Via::automatic && shim_cannot_reach(o.command.front()));
    if (supervise) return seccomp::run_supervised(o.command, o.trust_uid);
    const char* env = std::getenv("BPFFS_PRELOAD");
    std::string shim = env != nullptr && *env != '\0' ? env : BPFFS_PRELOAD_PATH;
    if (env == nullptr || *env == '\0') {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0) {
            std::string dir(self, static_cast<std::size_t>(n));
            dir = dir.substr(0, dir.rfind('/'));
            // Installed (bin/../lib/bpffs/), or in the build tree it was built in.
            for (const char* rel : {BPFFS_PRELOAD_RELPATH, "preload/libbpffs-preload.so"}) {
                std::string beside = dir + "/" + rel;
                if (access(beside.c_str(), R_OK) == 0) {
                    shim = beside;
                    break;
                }
            }
        }
    }
    char resolved[PATH_MAX];
    if (realpath(shim.c_str(), resolved) == nullptr || access(resolved, R_OK) != 0) {
        return report("run: preload library " + shim, errno);
    }
    std::string preload = resolved;
    if (const char* old = std::getenv("LD_PRELOAD"); old != nullptr && *old != '\0') {
        preload = std::string(old) + ":" + preload;
    }
    if (setenv("LD_PRELOAD", preload.c_str(), 1) != 0) {
        return report("run: setenv LD_PRELOAD", errno);
    }
    // The shim's only channel for the trusted uid.
    if (o.trust_uid != 0 &&
        setenv("BPFFS_TRUST_UID", std::to_string(o.trust_uid).c_str(), 1) != 0) {
        return report("run: setenv BPFFS_TRUST_UID", errno);
    }
    return exec_command("run", o.command);
}

int run_status(const StatusOptions& o) {
    client::Channel ch = channel_to(o.mountpoint, o.trust_uid);
    auto got = fetch_status(ch);
    if (!got) return report_call("status", o.mountpoint, got.error().value, ch);
    const protocol::StatusInfo* st = &*got;
    fsops::MountOptions opts = options_of(*st);
    std::string shown = fsops::show_options(opts);
    // The daemon tells the counts only to a caller with CAP_SYS_ADMIN.
    auto count = [&](const char* key, std::uint64_t n) {
        return st->counts_shown() ? num(key, n) : str(key, "hidden");
    };
    std::vector<Field> f{str("options", shown.empty() && !o.json ? "defaults" : shown),
                         str("compat", opts.compat == fsops::Compat::linux ? "linux" : "seed"),
                         num("uid", st->uid),
                         num("gid", st->gid),
                         str("mode", octal_mode(st->mode)),
                         count("directories", st->dirs),
                         count("maps", st->maps),
                         count("programs", st->progs)};
    if (st->links) f.push_back(count("links", *st->links));  // a daemon that predates links: none
    for (auto& x : {num("pid", st->pid), str("version", st->version), num("worker", st->worker_pid),
                    num("generation", st->generation), num("restarts", st->restarts)}) {
        f.push_back(x);
    }
    if (const auto& v = st->service) {  // a daemon that predates them: none
        for (auto& x :
             {num("connections", v->connections), num("max_conns", v->max_conns),
              num("max_conns_per_uid", v->max_conns_per_uid),
              num("connections_refused", v->refused), num("files_closing", v->files_closing),
              num("fuse_connections_aborted", v->fuse_aborted), num("nodes", v->nodes),
              num("nr_inodes", v->nr_inodes), num("nr_inodes_per_uid", v->nr_inodes_per_uid)}) {
            f.push_back(x);
        }
    }
    if (const auto& r = st->recovery) {  // what the serving worker's start found lost
        for (auto& x : {num("state_log_damaged_at", r->damaged_at),
                        str("state_log_unrestorable", r->unrestorable != 0 ? "yes" : "no"),
                        num("names_dropped", r->names_dropped), num("objects_kept", r->kept),
                        num("lost_found", r->lost_found)}) {
            f.push_back(x);
        }
    }
    if (const auto& k = st->kernel_bpffs) {  // bpftool's mounts over the mount's directories
        f.push_back(num("kernel_bpffs_mounts", k->size()));
        if (!k->empty()) f.push_back(Field{"kernel_bpffs_at", nlohmann::ordered_json(*k)});
    }
    print_fields(f, o.json);
    return kExitOk;
}

int run_upgrade(const UpgradeOptions& o) {
    const std::string what = "upgrade " + o.mountpoint;
    std::string path;
    if (!o.exec.empty()) {
        char real[PATH_MAX];
        if (realpath(o.exec.c_str(), real) == nullptr) return report("upgrade: " + o.exec, errno);
        path = real;
    }
    if (path.size() > protocol::kMaxMessage - protocol::kHeaderSize) {
        report(what + ": path too long", ENAMETOOLONG);
        return kExitUsage;
    }
    client::Channel ch = channel_to(o.mountpoint, o.trust_uid);
    auto before = fetch_status(ch);  // resent if need be, as status
    if (!before) return report_call("upgrade", o.mountpoint, before.error().value, ch);
    // The upgrade itself is not resent (a broken connection may have carried it to the old
    // worker already): one exchange on a connection of its own.
    client::Refusal why;
    auto sock = connect_to(o.mountpoint, o.trust_uid, &why);
    if (!sock) return report_connect("upgrade", o.mountpoint, sock.error().value, why);
    auto rep = client::exchange(sock->get(), protocol::Request{protocol::Op::upgrade, path}, {});
    if (!rep) return report(what, rep.error().value);
    if (rep->reply.error == EACCES && !path.empty()) {
        report(what + ": " + path +
                   " must be owned by root (or the daemon's user), like every "
                   "directory above it, and writable by no one else",
               EACCES);
        return kExitFailure;
    }
    if (rep->reply.error != 0) {
        return report_why(what, explain(Verb::upgrade, path, rep->reply.error), rep->reply.error);
    }
    sock->reset();
    // The old worker hands over and a new one starts: ask until the new one answers.
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<long>(o.timeout * 1000));
    while (std::chrono::steady_clock::now() < deadline) {
        client::Channel next = channel_to(o.mountpoint, o.trust_uid);
        if (auto st = fetch_status(next)) {
            if (st->generation > before->generation) {
                // The next worker serves: the new binary. A later one (or a restart) means the
                // new binary died and the supervisor went back to the old one.
                if (st->generation != before->generation + 1 || st->restarts != before->restarts) {
                    std::fprintf(stderr,
                                 "bpffsctl: error: %s: the new binary did not start; worker %u "
                                 "(generation %u) serves with the previous one\n",
                                 what.c_str(), st->worker_pid, st->generation);
                    return kExitFailure;
                }
                std::printf("upgraded %s: worker %u (generation %u), version %s\n",
                            o.mountpoint.c_str(), st->worker_pid, st->generation,
                            st->version.c_str());
                return kExitOk;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return report(what + ": the new worker did not answer", ETIMEDOUT);
}

int run_remount(const RemountOptions& o) {
    std::string list = join(o.options, ',');
    const std::string what = "remount " + o.mountpoint;
    client::Channel ch = channel_to(o.mountpoint, o.trust_uid);
    auto st = fetch_status(ch);
    if (!st) return report_call("remount", o.mountpoint, st.error().value, ch);
    auto parsed = fsops::parse_remount_options(list, options_of(*st));
    if (!parsed) {
        std::fprintf(stderr, "bpffsctl: error: %s\n", parsed.error().message.c_str());
        return kExitUsage;
    }
    if (list.size() > protocol::kMaxMessage - protocol::kHeaderSize) {
        report(what + ": option list too long", E2BIG);
        return kExitUsage;
    }
    // A remount sets what the list says: it may be resent on a new connection.
    auto rep = ch.call(protocol::Request{protocol::Op::remount, list}, {});
    if (!rep) return report(what, rep.error().value);
    if (rep->resp.reply.error != 0) return report(what, rep->resp.reply.error);
    return kExitOk;
}

}  // namespace bpffs::ctl
