// SPDX-License-Identifier: GPL-2.0-or-later
// Logging set up once: spdlog to stderr, the journal or syslog, libfuse's messages routed in.
#include "daemon/logging.hpp"

#include <fcntl.h>
#include <fuse3/fuse_log.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace bpffs::daemon {
namespace {

void fuse_log_to_spdlog(enum fuse_log_level level, const char* fmt, va_list ap) {
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    if (n <= 0) return;
    std::string_view msg(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
    while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
    spdlog::level::level_enum l = spdlog::level::debug;
    if (level <= FUSE_LOG_ERR)
        l = spdlog::level::err;
    else if (level == FUSE_LOG_WARNING)
        l = spdlog::level::warn;
    else if (level <= FUSE_LOG_INFO)
        l = spdlog::level::info;
    spdlog::log(l, "libfuse: {}", msg);
}

bool to_file = false;  // setup_logging() was given a file: detaching keeps it

}  // namespace

bool syslog_available() {
    struct stat st {};
    return stat("/dev/log", &st) == 0 && S_ISSOCK(st.st_mode);
}

void setup_logging(const std::string& level, const std::string& file) {
    std::string name = level;
    if (name.empty()) {
        const char* env = std::getenv("SPDLOG_LEVEL");
        name = env != nullptr && *env != '\0' ? env : "info";
    }
    auto lvl = spdlog::level::from_str(name);
    if (lvl == spdlog::level::off && name != "off") {
        throw std::invalid_argument("unknown log level '" + name + "'");
    }
    std::shared_ptr<spdlog::logger> logger;
    if (!file.empty()) {
        logger = spdlog::basic_logger_mt("bpffs-fuse", file, false);  // appends
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e bpffs-fuse[%P] %l: %v");
        logger->flush_on(spdlog::level::trace);  // a line at a time: two processes share it
        to_file = true;
    } else {
        logger = spdlog::stderr_logger_mt("bpffs-fuse");
        if (std::getenv("JOURNAL_STREAM") != nullptr)
            logger->set_pattern("%l: %v");
        else
            logger->set_pattern("%Y-%m-%d %H:%M:%S.%e bpffs-fuse[%P] %l: %v");
        logger->flush_on(spdlog::level::warn);
    }
    logger->set_level(lvl);
    spdlog::set_default_logger(logger);
    fuse_set_log_func(fuse_log_to_spdlog);
}

void switch_logging_to_syslog() {
    auto old = spdlog::default_logger();
    auto sink =
        std::make_shared<spdlog::sinks::syslog_sink_mt>("bpffs-fuse", LOG_PID, LOG_DAEMON, true);
    auto logger = std::make_shared<spdlog::logger>("bpffs-fuse-syslog", sink);
    logger->set_pattern("%v");
    logger->set_level(old->level());
    spdlog::set_default_logger(logger);
}

namespace {

// Is stderr somewhere that outlives the caller's reading of it: a regular file (a redirect such
// as 2>>FILE) or the journal's stream ($JOURNAL_STREAM names its device and inode)? A pipe is
// not: the reader (`bpffs-fuse MNT 2>&1 | tee log`) would wait for the daemon's exit.
bool stderr_is_a_log() {
    struct stat st {};
    if (fstat(2, &st) != 0) return false;
    if (S_ISREG(st.st_mode)) return true;
    const char* journal = std::getenv("JOURNAL_STREAM");
    unsigned long long dev = 0, ino = 0;
    return journal != nullptr && std::sscanf(journal, "%llu:%llu", &dev, &ino) == 2 &&
           dev == st.st_dev && ino == st.st_ino;
}

}  // namespace

bool log_stays_on_stderr() { return !to_file && !syslog_available() && stderr_is_a_log(); }

void detach_from_terminal() {
    // Where the log goes once detached: the --log-file; else syslog; else stderr when it is a
    // file or the journal (log_stays_on_stderr()).
    const bool keep_stderr = log_stays_on_stderr();
    if (!to_file && !keep_stderr) switch_logging_to_syslog();
    if (chdir("/") != 0) spdlog::warn("chdir /: {}", std::strerror(errno));
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        if (!keep_stderr) dup2(devnull, 2);
        ::close(devnull);
    }
}

}  // namespace bpffs::daemon
