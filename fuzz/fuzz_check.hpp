// SPDX-License-Identifier: GPL-2.0-or-later
// What every harness in fuzz/ shares: the entry point libFuzzer calls (and replay_main.cpp,
// for builds without libFuzzer) and FUZZ_CHECK, which aborts with the failed condition when an
// invariant does not hold. An abort is a crash to libFuzzer (it keeps the input as crash-<sha>)
// and a failure to ctest, so a harness asserts its invariants with it instead of only calling
// the code under test. Every harness is single-threaded from the caller's side.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace bpffs::fuzz {

[[noreturn]] inline void violated(const char* cond, const char* file, int line) {
    std::fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, cond);
    std::abort();
}

}  // namespace bpffs::fuzz

// A macro, for the condition's text in the message.
#define FUZZ_CHECK(cond) ((cond) ? void(0) : ::bpffs::fuzz::violated(#cond, __FILE__, __LINE__))
