// SPDX-License-Identifier: GPL-2.0-or-later
// bpffs-fuse: mounts the bpf filesystem of the 2015 patch with FUSE.
//   bpffs-fuse [SOURCE] MOUNTPOINT [-o OPTIONS] [-f] [-d] [--log-level L] [--help] [--version]
// SOURCE is what mount.fuse3 passes for an fstab line of type fuse.bpffs-fuse; it becomes the
// fsname. uid=, gid= and mode= are ours (parsed by the core); standard FUSE/mount options pass
// through to libfuse; anything else refuses to mount. default_permissions and allow_other are
// always on. Start-up errors are exceptions caught here; nothing is left mounted on failure.
#include "daemon/fuse_adapter.hpp"
#include "daemon/logging.hpp"
#include "fsops/filesystem.hpp"
#include "fsops/mount_options.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace bpffs;

struct Options {
    std::vector<std::string> positional;  // [SOURCE] MOUNTPOINT
    std::vector<std::string> o;           // every -o list, in order
    bool foreground = false;
    bool debug = false;
    std::string log_level;
};

// A start-up failure: the message is printed as "bpffs-fuse: error: <message>".
struct StartupError : std::runtime_error {
    int exit_code;
    StartupError(const std::string& m, int code) : std::runtime_error(m), exit_code(code) {}
};

std::string join(const std::vector<std::string>& v, char sep) {
    std::string s;
    for (const auto& x : v) {
        if (x.empty()) continue;
        if (!s.empty()) s += sep;
        s += x;
    }
    return s;
}

// libfuse splits -o lists at commas; a backslash escapes one.
std::string escape_opt(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == ',' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

// Owns the fuse_args vector and frees it on every path.
struct FuseArgs {
    fuse_args args = FUSE_ARGS_INIT(0, nullptr);
    ~FuseArgs() { fuse_opt_free_args(&args); }
    void add(const std::string& a) {
        if (fuse_opt_add_arg(&args, a.c_str()) != 0) throw std::bad_alloc();
    }
};

struct SessionDeleter {
    void operator()(fuse_session* se) const { fuse_session_destroy(se); }
};

int run(const Options& cli) {
    std::string source = cli.positional.size() == 2 ? cli.positional[0] : "bpffs";
    std::string mountpoint = cli.positional.back();

    auto parsed = fsops::parse_mount_options(join(cli.o, ','));
    if (!parsed) {
        throw StartupError(parsed.error().message, 2);
    }
    struct stat st {};
    if (::stat(mountpoint.c_str(), &st) != 0) {
        int e = errno;
        throw StartupError("mountpoint " + mountpoint + ": " + std::strerror(e), 1);
    }
    if (!S_ISDIR(st.st_mode)) {
        throw StartupError("mountpoint " + mountpoint + ": " + std::strerror(ENOTDIR), 1);
    }

    std::vector<std::string> fuse_opts = {"default_permissions", "allow_other",
                                          "fsname=" + escape_opt(source), "subtype=bpffs-fuse"};
    for (const auto& p : parsed->passthrough) fuse_opts.push_back(p);
    FuseArgs fa;
    fa.add("bpffs-fuse");
    fa.add("-o");
    fa.add(join(fuse_opts, ','));
    if (cli.debug) fa.add("-d");

    fsops::Filesystem fs(parsed->ours);
    daemon::FuseState state{fs};
    std::unique_ptr<fuse_session, SessionDeleter> se(
        fuse_session_new(&fa.args, &daemon::fuse_ops(), sizeof(fuse_lowlevel_ops), &state));
    if (!se) throw StartupError("cannot create the FUSE session (see the message above)", 1);
    if (fuse_set_signal_handlers(se.get()) != 0) {
        throw StartupError("cannot install signal handlers", 1);
    }
    if (fuse_session_mount(se.get(), mountpoint.c_str()) != 0) {
        fuse_remove_signal_handlers(se.get());
        throw StartupError("cannot mount on " + mountpoint + " (see the message above)", 1);
    }
    state.session.store(se.get());
    spdlog::info("mounted {} on {} ({})", source, mountpoint,
                 fsops::show_options(parsed->ours).empty() ? "defaults"
                                                           : fsops::show_options(parsed->ours));
    if (!cli.foreground) {
        daemon::switch_logging_to_syslog();
        if (fuse_daemonize(0) != 0) {
            spdlog::error("cannot daemonize");
            fuse_session_unmount(se.get());
            fuse_remove_signal_handlers(se.get());
            return 1;
        }
    }

    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    fuse_loop_cfg_set_idle_threads(cfg, 4);
    int rc = fuse_session_loop_mt(se.get(), cfg);
    fuse_loop_cfg_destroy(cfg);

    state.session.store(nullptr);
    fuse_session_unmount(se.get());
    fuse_remove_signal_handlers(se.get());
    spdlog::info("unmounted {}", mountpoint);
    return rc == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    Options cli;
    CLI::App app{"bpffs-fuse: the bpf filesystem (persistent eBPF maps and programs) in FUSE.\n"
                 "Pinned objects are created and fetched with libbpffs or bpffsctl.",
                 "bpffs-fuse"};
    app.add_option("SOURCE_MOUNTPOINT", cli.positional,
                   "[SOURCE] MOUNTPOINT: SOURCE (default \"bpffs\") names the mount in "
                   "/proc/mounts")
        ->required()
        ->expected(1, 2);
    app.add_option("-o", cli.o,
                   "mount options: uid=N, gid=N (default 0), mode=OCTAL (default 0700), and "
                   "standard FUSE/mount options (ro, nosuid, nodev, noexec, noatime, fsname=, "
                   "...)");
    app.add_flag("-f,--foreground", cli.foreground, "stay in the foreground");
    app.add_flag("-d,--debug", cli.debug,
                 "debug: foreground, debug log level, libfuse's request trace");
    app.add_option("--log-level", cli.log_level,
                   "trace, debug, info, warn, error, critical, off (default: $SPDLOG_LEVEL or "
                   "info)");
    app.set_version_flag("-V,--version", std::string("bpffs-fuse ") + BPFFS_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForVersion&) {
        std::printf("bpffs-fuse %s\n", BPFFS_VERSION);
        return 0;
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "bpffs-fuse: error: %s\n", e.what());
        std::fprintf(stderr, "Run with --help for more information.\n");
        return 2;
    }
    if (cli.debug) {
        cli.foreground = true;
        if (cli.log_level.empty()) cli.log_level = "debug";
    }
    try {
        daemon::setup_logging(cli.log_level);
        return run(cli);
    } catch (const StartupError& e) {
        std::fprintf(stderr, "bpffs-fuse: error: %s\n", e.what());
        return e.exit_code;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bpffs-fuse: error: %s\n", e.what());
        return 1;
    }
}
