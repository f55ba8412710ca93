// SPDX-License-Identifier: GPL-2.0-or-later
// The checks of a restore that the state and state-log harnesses share: a state from outside
// the process (the log) must give EINVAL or a core that is exactly that state and behaves.
#pragma once

#include "fsops/filesystem.hpp"
#include "fsops/state.hpp"

#include <memory>

namespace bpffs::fuzz {

// Filesystem::restore(s) is EINVAL, or a core whose snapshot() is `s` (a node's names in the
// order snapshot() gives them), which restores again to the same snapshot, whose readdir lists
// exactly the names `s` gives each live directory (with the nodes' attributes), and whose
// states stay restorable while a mkdir, a pin and the removal of every name and lookup change
// it. Aborts on a violation; returns the restored core (nullptr for EINVAL), untouched.
std::unique_ptr<fsops::Filesystem> check_restore(const fsops::CoreState& s);

}  // namespace bpffs::fuzz
