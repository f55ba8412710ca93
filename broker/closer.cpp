// SPDX-License-Identifier: GPL-2.0-or-later
// The closing thread and its watchdog (closer.hpp).
#include "broker/closer.hpp"

#include "common/bpf_fd.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

namespace bpffs::broker {

bool closes_at_once(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_PATH)) return true;
    auto kind = bpf_kind(fd);  // a readlink of /proc/self/fd: no call into the file's filesystem
    return kind && *kind != BpfKind::other;
}

namespace {

// The device of an fd's filesystem, from the cached attributes (AT_STATX_DONT_SYNC: a FUSE
// filesystem is not asked). {0, 0} when unknown.
std::pair<unsigned, unsigned> device_of(int fd) {
    struct statx sx {};
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, 0, &sx) != 0) return {0, 0};
    return {sx.stx_dev_major, sx.stx_dev_minor};
}

// Writes fusectl's "abort" of the FUSE connection of device 0:minor, through a private mount of
// fusectl (none is needed in the tree), else through /sys/fs/fuse/connections. 0 or an errno
// (ENOENT: not a FUSE filesystem's device).
int abort_fuse_connection(unsigned minor) {
    UniqueFd root;
    UniqueFd ctx(fsopen("fusectl", FSOPEN_CLOEXEC));
    if (ctx && fsconfig(ctx.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0)
        root.reset(fsmount(ctx.get(), FSMOUNT_CLOEXEC, 0));
    if (!root) root.reset(open("/sys/fs/fuse/connections", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return errno;
    std::string knob = std::to_string(minor) + "/abort";
    UniqueFd f(openat(root.get(), knob.c_str(), O_WRONLY | O_CLOEXEC));
    if (!f) return errno;
    return write(f.get(), "1", 1) == 1 ? 0 : errno;
}

}  // namespace

struct Closer::State {
    struct Item {
        UniqueFd fd;
        uid_t uid;
        std::pair<unsigned, unsigned> dev;
    };
    Config cfg;
    mutable std::mutex mu;
    std::condition_variable work;     // the closing thread: an item or the stop
    std::condition_variable changed;  // the watchdog and the destructor: progress
    std::deque<Item> queue;
    std::unordered_map<uid_t, std::size_t> charged;  // queued and being closed, by uid
    // Written under mu; read without it where nothing waiting is the common answer.
    std::atomic<std::size_t> waiting{0};
    bool stop = false;
    bool closer_done = false;
    // The close in progress, for the watchdog.
    bool closing = false;
    bool watched = false;  // the watchdog dealt with it already
    std::chrono::steady_clock::time_point since;
    uid_t closing_uid = 0;
    std::pair<unsigned, unsigned> closing_dev;
    std::uint64_t aborted = 0;

    void closer_loop();
    void watchdog_loop();
};

void Closer::State::closer_loop() {
    std::unique_lock l(mu);
    for (;;) {
        work.wait(l, [&] { return stop || !queue.empty(); });
        if (queue.empty()) break;  // stopped, and nothing left
        Item it = std::move(queue.front());
        queue.pop_front();
        closing = true;
        watched = false;
        since = std::chrono::steady_clock::now();
        closing_uid = it.uid;
        closing_dev = it.dev;
        changed.notify_all();
        l.unlock();
        it.fd.reset();
        l.lock();
        closing = false;
        --waiting;
        if (--charged[it.uid] == 0) charged.erase(it.uid);
        changed.notify_all();
    }
    closer_done = true;
    changed.notify_all();
}

void Closer::State::watchdog_loop() {
    std::unique_lock l(mu);
    while (!closer_done) {
        changed.wait_for(l, std::chrono::milliseconds(200));
        if (!closing || watched || std::chrono::steady_clock::now() - since < cfg.stuck_after)
            continue;
        watched = true;
        auto [major, minor] = closing_dev;
        uid_t uid = closing_uid;
        l.unlock();
        int e = major == 0 && minor != 0 ? abort_fuse_connection(minor) : ENOENT;
        if (e == 0) {
            spdlog::warn(
                "broker: closing a file uid {} sent did not return in {} ms: aborted FUSE "
                "connection {} (its server does not answer)",
                uid, cfg.stuck_after.count(), minor);
        } else {
            spdlog::error(
                "broker: closing a file uid {} sent (device {}:{}) has not returned in {} ms and "
                "cannot be aborted ({}); uid {}'s requests are refused while it waits",
                uid, major, minor, cfg.stuck_after.count(), std::strerror(e), uid);
        }
        l.lock();
        if (e == 0) ++aborted;
    }
}

Closer::Closer(Config cfg) : st_(std::make_shared<State>()) {
    st_->cfg = cfg;
    std::thread([s = st_] { s->closer_loop(); }).detach();
    std::thread([s = st_] { s->watchdog_loop(); }).detach();
}

Closer::~Closer() {
    std::unique_lock l(st_->mu);
    st_->stop = true;
    st_->work.notify_all();
    // Each stuck close is aborted after stuck_after; give the queue that long, and one more.
    auto deadline = std::chrono::steady_clock::now() + 2 * st_->cfg.stuck_after;
    st_->changed.wait_until(l, deadline, [&] { return st_->closer_done; });
    // The threads hold the state; a stuck one is left behind rather than hang the caller.
}

void Closer::close(UniqueFd fd, uid_t uid) {
    if (!fd || closes_at_once(fd.get())) return;  // UniqueFd closes it here
    auto dev = device_of(fd.get());
    std::lock_guard l(st_->mu);
    ++st_->charged[uid];
    ++st_->waiting;
    st_->queue.push_back(State::Item{std::move(fd), uid, dev});
    st_->work.notify_one();
}

bool Closer::over_share(uid_t uid) const {
    if (st_->waiting.load(std::memory_order_acquire) == 0) return false;  // the usual case
    std::lock_guard l(st_->mu);
    auto it = st_->charged.find(uid);
    return it != st_->charged.end() && it->second > st_->cfg.share;
}

std::size_t Closer::waiting() const {
    std::lock_guard l(st_->mu);
    return st_->waiting;
}

std::uint64_t Closer::connections_aborted() const {
    std::lock_guard l(st_->mu);
    return st_->aborted;
}

}  // namespace bpffs::broker
