// SPDX-License-Identifier: GPL-2.0-or-later
// Recovery: the state log and the supervisor's objects made into one core (recovery.hpp).
#include "daemon/recovery.hpp"

#include "fsops/mount_options.hpp"
#include "fsops/state.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <set>

namespace bpffs::daemon {
namespace {

// A core with no nodes but the root (and the socket, when it is bound).
std::unique_ptr<fsops::Filesystem> empty_core(const fsops::MountOptions& opts,
                                              const RecoveryInput& in) {
    auto fs = std::make_unique<fsops::Filesystem>(opts);
    if (in.socket_bound) (void)fs->make_socket_node();
    fs->set_read_only(in.read_only);
    return fs;
}

// The core the log's state gives, with the names of objects no one holds dropped; nullptr when
// the state is no consistent tree. The nodes go from the log into the core one at a time.
std::unique_ptr<fsops::Filesystem> restored_core(LogReplay& replay, const RecoveryInput& in,
                                                 const fsops::MountOptions& opts,
                                                 RecoveryReport& report) {
    std::set<fsops::ObjHandle> held;
    for (const auto& o : in.held) held.insert(o.handle);
    const fsops::CoreMeta meta_of_log = replay.meta();
    fsops::CoreMeta meta = meta_of_log;
    bool decoded = true;
    auto nodes = [&](const std::function<bool(fsops::NodeState &&)>& each) {
        decoded = replay.take([&](fsops::NodeState&& n) {
            if (in.first && !fsops::fresh_mount_node(n, meta_of_log)) return true;
            if (!n.is_dir && n.handle && held.count(*n.handle) == 0) {
                ++report.names_dropped;  // its object is gone
                return true;
            }
            return each(std::move(n));
        });
    };
    if (in.first) {  // fresh_mount_view's meta
        meta.socket_ino = 0;
        meta.read_only = in.read_only;
    }
    auto fs = fsops::Filesystem::restore(meta, nodes, replay.size());
    if (!fs || !decoded) {
        report.names_dropped = 0;
        return nullptr;
    }
    if (in.first) (*fs)->apply_options(opts);  // a new mount takes today's options
    return std::move(*fs);
}

// Above every ino the kernel may have been told of in the changes that were lost: each new
// node took at least one byte of the log since it was last rewritten. When the whole log is
// lost, so is the ino it had reached: then the clock in microseconds, which no mount creating
// fewer than a node per microsecond ever reaches.
fsops::Ino ino_floor(fsops::Ino next_ino, const StateLog& log, bool whole_log_lost) {
    fsops::Ino floor = next_ino + log.capacity();
    if (!whole_log_lost) return floor;
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
    return std::max(floor, static_cast<fsops::Ino>(us));
}

void log_report(const RecoveryReport& r, const StateLog& log) {
    if (r.damaged_at != 0) {
        spdlog::error(
            "the state log is damaged at byte {} of {}: the changes from there on are dropped, "
            "everything before them is restored",
            r.damaged_at, log.used());
    }
    if (r.unrestorable)
        spdlog::error("the state log holds no consistent tree: serving an empty one");
    if (r.names_dropped != 0)
        spdlog::warn("{} name(s) lost their kernel object; dropped", r.names_dropped);
    if (!r.kept.empty()) {
        std::string some;
        for (std::size_t i = 0; i < r.kept.size() && i < 16; ++i) some += " " + r.kept[i];
        spdlog::warn("kept {} object(s) that no restored name holds under /{}:{}{}", r.kept.size(),
                     fsops::kLostFoundName, some, r.kept.size() > 16 ? " ..." : "");
    }
}

}  // namespace

Result<std::unique_ptr<fsops::Filesystem>> recover(const StateLog& log, const RecoveryInput& in,
                                                   RecoveryReport& report) {
    auto opts = fsops::parse_mount_options(in.options);
    if (!opts) {
        spdlog::error("bad mount options in the handoff: {}", opts.error().message);
        return fail(EINVAL);
    }
    report = RecoveryReport{};
    auto replay = log.replay(&report.damaged_at);
    std::unique_ptr<fsops::Filesystem> fs;
    bool whole_log_lost = true;
    if (!replay) {
        report.unrestorable = true;
    } else if (replay->size() != 0) {
        fs = restored_core(*replay, in, opts->ours, report);
        report.unrestorable = fs == nullptr;
        whole_log_lost = fs == nullptr;
    }
    if (!fs) fs = empty_core(opts->ours, in);
    // Every object the supervisor holds keeps a name.
    fsops::Ino next_ino = 0;
    fs->stream_state([&](const fsops::Change& ch) {
        if (ch.kind == fsops::Change::Kind::meta) next_ino = ch.meta.next_ino;
        if (ch.kind == fsops::Change::Kind::put && ch.node.handle) ++report.refs[*ch.node.handle];
    });
    // Objects no name holds: after a clean end, pins a worker had not logged when it stopped
    // (their callers saw no reply), which the registry releases; after damage, objects whose
    // names may be in what was lost.
    std::vector<fsops::HeldObject> lost;
    if (report.damaged_at != 0 || report.unrestorable) {
        for (const auto& o : in.held) {
            if (report.refs.count(o.handle) == 0) lost.push_back(o);
        }
        // Before any node is made: the kernel may know inos the lost changes gave.
        fs->skip_inos(ino_floor(next_ino, log, whole_log_lost));
    }
    report.kept = fs->keep_lost(lost);
    for (const auto& o : lost) report.refs[o.handle] = 1;
    log_report(report, log);
    return fs;
}

}  // namespace bpffs::daemon
