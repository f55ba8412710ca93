// SPDX-License-Identifier: GPL-2.0-or-later
// Recovery: the core a new worker serves, rebuilt from the state log and the objects the
// supervisor holds. The log is read as a write-ahead log (StateLog::read: the batches before
// the first damaged one); what it and the held objects disagree on is settled so that nothing
// the supervisor holds is released:
//  - a name whose object the supervisor no longer holds is dropped (the object is gone);
//  - after damage, an object no restored name holds is kept under /.lost+found
//    (Filesystem::keep_lost); after a clean end it is a pin the worker had not logged when it
//    stopped (its caller saw no reply), and is released;
//  - a state that does not restore gives an empty tree, the objects all under /.lost+found.
// After a loss, new nodes take inos above any the kernel may know from the changes lost.
#pragma once

#include "common/result.hpp"
#include "daemon/state_log.hpp"
#include "fsops/filesystem.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bpffs::daemon {

struct RecoveryInput {
    std::string options;     // the mount's option list
    bool first = false;      // a new mount (no worker served it yet)
    bool read_only = false;  // the mount's -o ro
    bool socket_bound =
        false;  // the broker's socket exists (kSocketIno) though the log may not say
    std::vector<fsops::HeldObject> held;  // the objects the supervisor holds
};

struct RecoveryReport {
    std::size_t damaged_at = 0;     // the log's first dropped batch (StateLog::read), 0: none
    bool unrestorable = false;      // what the log held was no consistent tree
    std::size_t names_dropped = 0;  // names of objects the supervisor no longer held
    std::vector<std::string> kept;  // names made under /.lost+found
    std::map<fsops::ObjHandle, std::uint64_t> refs;  // names per held object, in the new core
    bool lost_anything() const { return damaged_at != 0 || unrestorable || !kept.empty(); }
};

// EINVAL: options that do not parse (the supervisor checked them). Every other outcome is a
// core to serve, and the report says what it cost. Logs what was lost, once.
Result<std::unique_ptr<fsops::Filesystem>> recover(const StateLog& log, const RecoveryInput& in,
                                                   RecoveryReport& report);

}  // namespace bpffs::daemon
