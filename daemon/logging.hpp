// SPDX-License-Identifier: GPL-2.0-or-later
// Logging set-up, done once in main: spdlog to stderr (plain, without timestamps, when systemd's
// journal reads it: $JOURNAL_STREAM), or to syslog once the daemon has detached from its
// terminal (to stderr still where there is no syslog and stderr is a file or the journal), or to
// a file (--log-file) throughout. libfuse's own messages are routed into the same logger.
#pragma once

#include <string>

namespace bpffs::daemon {

// Throws std::invalid_argument for an unknown level name. An empty name takes $SPDLOG_LEVEL,
// else "info". `file` (absolute; empty: none): append every line there instead, with the time and
// pid, also once detached (the supervisor and its workers share it); std::runtime_error
// (spdlog's) when it cannot be opened.
void setup_logging(const std::string& level, const std::string& file = "");
// Is there a syslog daemon to log to (a socket at /dev/log)?
bool syslog_available();
// Without a log file or syslog, does a detached daemon keep logging to stderr? Yes when stderr
// is a regular file (a redirect) or the journal's stream; not on a terminal, whose session may
// end, nor on a pipe, whose reader would wait for the daemon's exit: there the log goes nowhere.
bool log_stays_on_stderr();
// After fuse_daemonize(): stderr is /dev/null, so send everything to syslog instead.
void switch_logging_to_syslog();
// Leaves the terminal: logging to syslog (or kept on stderr: log_stays_on_stderr()), the working
// directory to /, stdin, stdout and stderr (unless kept) to /dev/null. For the detached
// supervisor once it serves, and for a worker it started before then.
void detach_from_terminal();

}  // namespace bpffs::daemon
