// SPDX-License-Identifier: GPL-2.0-or-later
// What kind of program `bpffsctl run` is about to start, for its choice between the preload
// shim and the seccomp supervisor: the shim reaches only programs that call libc's syscall()
// and statfs() through the dynamic linker.
#pragma once

#include <string>

namespace bpffs::ctl {

// A program the shim cannot reach: an ELF file without an interpreter (statically linked) or
// built by Go (which issues raw system calls, static or not). False for dynamically linked C
// programs, scripts and anything unreadable (their interpreter decides, or exec fails anyway).
// `command` is found in $PATH as execvp would find it.
bool shim_cannot_reach(const std::string& command);

}  // namespace bpffs::ctl
