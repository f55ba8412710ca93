// SPDX-License-Identifier: GPL-2.0-or-later
// bpffsctl: pin, fetch and inspect eBPF objects on bpffs-fuse mounts; show and change a
// mount's options.
//   bpffsctl pin (--map-id N | --prog-id N | --from PINNED_PATH) PATH
//   bpffsctl get PATH [--json]
//   bpffsctl exec PATH... -- CMD [ARGS...]
//   bpffsctl run -- CMD [ARGS...]
//   bpffsctl status MOUNTPOINT [--json]
//   bpffsctl remount MOUNTPOINT -o OPTIONS
//   bpffsctl upgrade MOUNTPOINT [--exec PATH]
// Exit status: 0 ok, 1 failure, 2 usage; exec, run: 127 when CMD cannot be run, else CMD's own.
//
// CLI11 cannot split "PATH... -- CMD ARGS..." into two lists (after "--" everything is one more
// positional), so for exec and run the command line is cut at the first "--" before CLI11
// sees it.
// Exceptions are used for command-line errors only; anything that escapes a verb is caught
// here and reported, never a crash.
#include "client/bpffsctl_attrs.hpp"
#include "client/bpffsctl_commands.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

namespace {

using namespace bpffs::ctl;

int usage_error(const std::string& message) {
    std::fprintf(stderr, "bpffsctl: error: %s\n", message.c_str());
    std::fprintf(stderr, "Run with --help for more information.\n");
    return kExitUsage;
}

// A verb: its subcommand, with --trust-uid (every verb talks to a broker, bpffsctl_commands.hpp).
CLI::App* add_verb(CLI::App& app, const std::string& name, const std::string& description,
                   std::uint32_t& trust_uid) {
    CLI::App* verb = app.add_subcommand(name, description);
    verb->add_option("--trust-uid", trust_uid,
                     "also trust a bpffs-fuse daemon running as this uid (a mount another "
                     "user made); root's and your own are always trusted")
        ->envname("BPFFS_TRUST_UID");
    return verb;
}

void add_json(CLI::App* verb, bool& json) { verb->add_flag("--json", json, "print JSON instead"); }

// The index of the verb: the first argument that is not an option (the top level has no
// options that take a value); args.size() when there is none.
std::size_t verb_index(const std::vector<std::string>& args) {
    std::size_t i = 1;
    while (i < args.size() && args[i].size() > 1 && args[i][0] == '-') ++i;
    return i;
}

// For exec and run: moves everything after the first "--" that follows the subcommand into
// `command`, and returns the arguments left for CLI11.
std::vector<std::string> split_exec_command(int argc, char** argv,
                                            std::vector<std::string>& command,
                                            bool& has_separator) {
    std::vector<std::string> args(argv, argv + argc);
    has_separator = false;
    std::size_t sub = verb_index(args);
    if (sub >= args.size() || (args[sub] != "exec" && args[sub] != "run")) return args;
    for (std::size_t i = sub + 1; i < args.size(); ++i) {
        if (args[i] != "--") continue;
        command.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
        args.resize(i);
        has_separator = true;
        break;
    }
    return args;
}

// The command line: the top-level app, each verb's options and its CLI11 subcommand.
struct Cli {
    CLI::App app{
        "bpffsctl: pin, fetch and inspect eBPF maps and programs on bpffs-fuse mounts,\n"
        "and show or change a mount's options.",
        "bpffsctl"};
    PinOptions pin_o;
    std::uint32_t map_id = 0, prog_id = 0, pin_fd = 0;
    CLI::App* pin = nullptr;
    CLI::Option *opt_map = nullptr, *opt_prog = nullptr, *opt_fd = nullptr, *opt_from = nullptr;
    GetOptions get_o;
    CLI::App* get = nullptr;
    LsOptions ls_o;
    CLI::App* ls = nullptr;
    ExecOptions exec_o;
    CLI::App* exec = nullptr;
    RunOptions run_o;
    CLI::App* run = nullptr;
    StatusOptions status_o;
    CLI::App* status = nullptr;
    RemountOptions remount_o;
    CLI::App* remount = nullptr;
    UpgradeOptions upgrade_o;
    CLI::App* upgrade = nullptr;
    MkdirOptions mkdir_o;
    CLI::App* mkdir = nullptr;
    AgentOptions agent_o;
    CLI::App* agent = nullptr;
    std::string mode_text, owner_text;  // pin's or mkdir's --mode, --owner
};

// --mode and --owner of pin and mkdir, for `what`.
void add_attrs(CLI::App* verb, Cli& c, const std::string& what) {
    verb->add_option("--mode", c.mode_text,
                     "permission bits of " + what +
                         ", in octal (at most 0777); default: the "
                         "mount's rules");
    verb->add_option("--owner", c.owner_text,
                     "USER[:GROUP] or :GROUP (names or numbers) of " + what +
                         "; another owner needs CAP_CHOWN, another group membership or "
                         "CAP_CHOWN");
}

void add_pin(Cli& c) {
    c.pin = add_verb(c.app, "pin",
                     "pin a kernel map, program or link at PATH on a bpffs-fuse mount, with "
                     "an owner and mode if asked (CAP_SYS_ADMIN on a compat=seed mount; write "
                     "permission on the directory on a compat=linux one)",
                     c.pin_o.trust_uid);
    auto* source = c.pin->add_option_group("source", "where the object comes from (exactly one)");
    c.opt_map = source->add_option("--map-id", c.map_id, "the map with this kernel id");
    c.opt_prog = source->add_option("--prog-id", c.prog_id, "the program with this kernel id");
    c.opt_fd = source->add_option("--fd", c.pin_fd,
                                  "the object open on this fd of bpffsctl's (inherited: "
                                  "from 'bpffsctl exec', or a parent that created it)");
    c.opt_from = source->add_option("--from", c.pin_o.from,
                                    "the object pinned at this path, on a kernel bpffs "
                                    "(e.g. /sys/fs/bpf/NAME) or a bpffs-fuse mount");
    c.pin->add_option("PATH", c.pin_o.path, "the new name, on a bpffs-fuse mount")->required();
    add_attrs(c.pin, c, "the object");
}

void add_mkdir(Cli& c) {
    c.mkdir = c.app.add_subcommand(
        "mkdir",
        "make directories on a bpffs-fuse mount, with an owner and mode (a tree a service hands "
        "to a user)");
    c.mkdir->add_flag("-p,--parents", c.mkdir_o.parents,
                      "make missing parents too; an existing directory is no error");
    c.mkdir->add_option("PATH", c.mkdir_o.paths, "the directories")->required();
    add_attrs(c.mkdir, c, "every directory this call makes (not existing ones)");
    c.mkdir->footer(
        "Each new directory gets --owner, then --mode (chown(1), then chmod(1)); until then\n"
        "only its maker can use it. On a failure the directories this PATH made are removed.");
}

void add_get(Cli& c) {
    c.get = add_verb(c.app, "get",
                     "fetch the object pinned at PATH and print its kernel "
                     "info, one 'key: value' per line",
                     c.get_o.trust_uid);
    c.get->add_option("PATH", c.get_o.path, "a pinned map or program")->required();
    add_json(c.get, c.get_o.json);
    c.get->footer(
        "Keys: type (map or prog), id, name; maps: map_type, key_size, value_size,\n"
        "max_entries, map_flags; programs: prog_type, tag. map_type and prog_type are\n"
        "libbpf's names, or numbers for types libbpf does not know.");
}

void add_ls(Cli& c) {
    c.ls = add_verb(c.app, "ls",
                    "list what a directory of a bpffs-fuse mount holds: names, and with -l "
                    "modes, owners, kernel ids and each object's facts",
                    c.ls_o.trust_uid);
    c.ls->add_option("PATH", c.ls_o.path, "a directory (or a node) on a bpffs-fuse mount")
        ->required();
    c.ls->add_flag("-l", c.ls_o.long_format,
                   "long: mode, uid, gid, kind, kernel id, name, and the object's facts");
    c.ls->add_flag("-R", c.ls_o.recursive, "list subdirectories too, as paths under PATH");
    add_json(c.ls, c.ls_o.json);
    c.ls->footer(
        "Kinds: dir, map, prog, link, symlink; object when the caller may not read which. The "
        "facts of an object (-l, --json) are those of\n"
        "'bpffsctl get': fetching each needs what a get needs (write permission under\n"
        "compat=seed); one that cannot be fetched is listed with the reason. --json prints one\n"
        "array: {path, kind, mode, uid, gid[, target][, object{id, name, ...}][, error]}.");
}

void add_exec(Cli& c) {
    c.exec = add_verb(c.app, "exec",
                      "exec PATH... -- CMD [ARGS...]: fetch each PATH and run "
                      "CMD with the objects open on fds 3, 4, ...",
                      c.exec_o.trust_uid);
    c.exec->add_option("PATH", c.exec_o.paths, "pinned maps or programs, in fd order")->required();
    c.exec->footer(
        "Usage: bpffsctl exec [OPTIONS] PATH... -- CMD [ARGS...]\n"
        "The fetched objects are open (not close-on-exec) on fds 3, 4, ... in the order\n"
        "of the PATHs, and $BPFFS_FDS lists them (\"3 4 ...\"). CMD is looked up in\n"
        "$PATH. Exit status: CMD's own; 1 if a PATH cannot be fetched, 2 on a usage\n"
        "error, 127 if CMD cannot be run (not found, not executable: execvp failed).");
}

void add_run(Cli& c) {
    c.run = add_verb(c.app, "run",
                     "run -- CMD [ARGS...]: run CMD so that its bpf(2) pins and gets and its "
                     "statfs() on bpffs-fuse mounts work unmodified (bpftool, libbpf, Go and "
                     "static programs)",
                     c.run_o.trust_uid);
    auto* via = c.run->add_option_group("how", "how CMD's calls reach the brokers (one at most)");
    via->add_flag_callback(
        "--seccomp", [&c] { c.run_o.via = RunOptions::Via::seccomp; },
        "seccomp user notification: every program, statically linked and Go ones too");
    via->add_flag_callback(
        "--preload", [&c] { c.run_o.via = RunOptions::Via::preload; },
        "the preload shim: dynamically linked programs that call libc's syscall() and statfs()");
    via->require_option(0, 1);
    c.run->footer(
        "Usage: bpffsctl run [--seccomp | --preload] [OPTIONS] -- CMD [ARGS...]\n"
        "Under it, bpf(2)'s BPF_OBJ_PIN and BPF_OBJ_GET of a path on a bpffs-fuse mount\n"
        "go to the mount's broker, and statfs() there reports the bpf filesystem's magic;\n"
        "every other call goes to the kernel untouched (a kernel bpffs path too).\n"
        "By default a statically linked or Go CMD runs under the seccomp supervisor and\n"
        "any other under the shim libbpffs-preload.so, added to LD_PRELOAD: $BPFFS_PRELOAD\n"
        "when set, else the one beside bpffsctl (../lib/bpffs/ of an install, preload/ of\n"
        "the build tree), else " BPFFS_PRELOAD_PATH
        ".\n"
        "--seccomp for a script that starts Go or static programs. Under --seccomp bpffsctl\n"
        "stays until the last process of CMD's tree is gone, and CMD runs with no_new_privs\n"
        "(set-user-ID programs do not gain privileges) unless it holds CAP_SYS_ADMIN.\n"
        "--trust-uid reaches the shim as $BPFFS_TRUST_UID. docs/preload.md says which to use.\n"
        "Example: bpffsctl run -- bpftool map create /mnt/bpf/tc/m type hash key 4\n"
        "value 8 entries 16 name m\n"
        "Exit status: CMD's own (128+N for a signal under --seccomp); 1 if the shim is\n"
        "missing or the filter cannot be installed, 2 on a usage error, 127 if CMD cannot\n"
        "be run.");
}

void add_agent(Cli& c) {
    c.agent = add_verb(c.app, "seccomp-agent",
                       "serve the bpf(2) pins and gets and statfs() of whole containers: the "
                       "seccomp agent an OCI runtime hands its listeners to (runc's "
                       "listenerPath)",
                       c.agent_o.trust_uid);
    c.agent
        ->add_option("SOCKET", c.agent_o.socket,
                     "the socket the runtime connects to (its listenerPath)")
        ->required();
    c.agent->footer(
        "Runs in the foreground until SIGINT or SIGTERM, as root (it serves each call in a\n"
        "helper that takes on the caller's credentials, root and mount namespace). The\n"
        "container's seccomp profile sends bpf(2) with BPF_OBJ_PIN (6) and BPF_OBJ_GET (7),\n"
        "statfs and fstatfs to it (SCMP_ACT_NOTIFY); docs/preload.md has the profile.");
}

void add_status(Cli& c) {
    c.status = add_verb(c.app, "status",
                        "show a mount's options, object counts, daemon "
                        "pid and version",
                        c.status_o.trust_uid);
    c.status
        ->add_option("MOUNTPOINT", c.status_o.mountpoint,
                     "a bpffs-fuse mount (or any directory in it)")
        ->required();
    add_json(c.status, c.status_o.json);
    c.status->footer(
        "Keys: options (as /proc/mounts shows them; 'defaults' when none, \"\" in\n"
        "JSON), compat (seed or linux: the mount's rule set), uid, gid, mode (octal),\n"
        "directories, maps, programs, links (when the daemon counts them), pid (the\n"
        "daemon's),\n"
        "version, worker (the process serving requests), generation (workers started),\n"
        "restarts (after a crash).");
}

void add_remount(Cli& c) {
    c.remount = add_verb(c.app, "remount",
                         "change a mount's options, as 'mount -o "
                         "remount' would (needs CAP_SYS_ADMIN)",
                         c.remount_o.trust_uid);
    c.remount->add_option("MOUNTPOINT", c.remount_o.mountpoint, "a bpffs-fuse mount")->required();
    c.remount
        ->add_option("-o", c.remount_o.options,
                     "uid=N, gid=N, mode=OCTAL; as in the kernel's bpffs, mode goes back to "
                     "0700 when not given, uid and gid keep their values")
        ->required();
}

void add_upgrade(Cli& c) {
    c.upgrade = add_verb(c.app, "upgrade",
                         "replace the daemon's worker with a new binary without unmounting (needs "
                         "CAP_SYS_ADMIN)",
                         c.upgrade_o.trust_uid);
    c.upgrade->add_option("MOUNTPOINT", c.upgrade_o.mountpoint, "a bpffs-fuse mount")->required();
    c.upgrade->add_option("--exec", c.upgrade_o.exec,
                          "the new bpffs-fuse binary (default: the path the running one was "
                          "started from, e.g. after a package upgrade)");
    c.upgrade->add_option("--timeout", c.upgrade_o.timeout,
                          "seconds to wait for the new worker to serve (default 30)");
    c.upgrade->footer(
        "Pinned objects, inode numbers and open client connections carry over; requests\n"
        "wait while the workers change. See docs/operations.md.");
}

// pin: exactly one source.
int dispatch_pin(Cli& c) {
    std::size_t given =
        c.opt_map->count() + c.opt_prog->count() + c.opt_fd->count() + c.opt_from->count();
    if (given != 1)
        return usage_error("pin: give exactly one of --map-id, --prog-id, --fd, --from");
    if (c.opt_fd->count() != 0) {
        c.pin_o.source = PinOptions::Source::fd;
        c.pin_o.id = c.pin_fd;
    } else if (c.opt_map->count() != 0) {
        c.pin_o.source = PinOptions::Source::map_id;
        c.pin_o.id = c.map_id;
    } else if (c.opt_prog->count() != 0) {
        c.pin_o.source = PinOptions::Source::prog_id;
        c.pin_o.id = c.prog_id;
    } else {
        c.pin_o.source = PinOptions::Source::path;
    }
    return run_pin(c.pin_o);
}

// Runs the verb the command line chose; `command` is what followed "--" (exec, run).
int dispatch(Cli& c, std::vector<std::string> command, bool has_separator) {
    bool has_command = has_separator && !command.empty();
    if (*c.pin || *c.mkdir) {
        auto attrs = parse_attrs(c.mode_text, c.owner_text);
        if (!attrs) return usage_error(std::string(*c.pin ? "pin: " : "mkdir: ") + attrs.error());
        c.pin_o.attrs = c.mkdir_o.attrs = *attrs;
    }
    if (*c.pin) return dispatch_pin(c);
    if (*c.mkdir) return run_mkdir(c.mkdir_o);
    if (*c.get) return run_get(c.get_o);
    if (*c.ls) return run_ls(c.ls_o);
    if (*c.exec) {
        if (!has_command) return usage_error("exec: expected '-- CMD [ARGS...]'");
        c.exec_o.command = std::move(command);
        return run_exec(c.exec_o);
    }
    if (*c.run) {
        if (!has_command) return usage_error("run: expected '-- CMD [ARGS...]'");
        c.run_o.command = std::move(command);
        return run_run(c.run_o);
    }
    if (*c.status) return run_status(c.status_o);
    if (*c.agent) return run_agent(c.agent_o);
    if (*c.remount) return run_remount(c.remount_o);
    if (*c.upgrade) return run_upgrade(c.upgrade_o);
    return usage_error("no verb given");
}

int run_main(int argc, char** argv) {
    Cli c;
    c.app.set_version_flag("--version", std::string("bpffsctl ") + BPFFS_VERSION);
    c.app.require_subcommand(1);
    c.app.footer(
        "Exit status: 0 ok, 1 failure, 2 usage error. Run 'bpffsctl VERB --help' for a verb.");
    for (auto add : {add_pin, add_get, add_ls, add_mkdir, add_exec, add_run, add_agent, add_status,
                     add_remount, add_upgrade})
        add(c);

    std::vector<std::string> command;
    bool has_separator = false;
    std::vector<std::string> args = split_exec_command(argc, argv, command, has_separator);
    std::size_t verb = verb_index(args);
    if (verb < args.size() && args[verb] != "--" &&
        c.app.get_subcommands([&](CLI::App* s) { return s->check_name(args[verb]); }).empty()) {
        return usage_error("unknown verb '" + args[verb] + "'");
    }
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    try {
        c.app.parse(static_cast<int>(cargs.size()), cargs.data());
    } catch (const CLI::Success& e) {
        return c.app.exit(e);  // --help, --version
    } catch (const CLI::ParseError& e) {
        return usage_error(e.what());
    }
    return dispatch(c, std::move(command), has_separator);
}

}  // namespace

int main(int argc, char** argv) {
    int rc;
    try {
        rc = run_main(argc, argv);
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "bpffsctl: error: %s\n", std::strerror(ENOMEM));
        return kExitFailure;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bpffsctl: error: %s\n", e.what());
        return kExitFailure;
    } catch (...) {
        std::fprintf(stderr, "bpffsctl: error: unexpected failure\n");
        return kExitFailure;
    }
    // Output that could not be written (a full disk, a closed pipe) is a failure too.
    bool flush_failed = std::fflush(stdout) != 0;
    if (flush_failed || std::ferror(stdout)) {
        int e = flush_failed ? errno : EIO;
        std::fprintf(stderr, "bpffsctl: error: write to standard output: %s\n", std::strerror(e));
        return kExitFailure;
    }
    return rc;
}
