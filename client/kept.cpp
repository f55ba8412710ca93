// SPDX-License-Identifier: GPL-2.0-or-later
// The one-shot calls' kept connections (kept.hpp).
#include "client/kept.hpp"

#include "common/caps.hpp"

#include <pthread.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>

namespace bpffs::client {
namespace {

struct Entry {
    MountKey key;
    ThreadCreds creds;
    Kept conn;
};

// Every process's kept connections, with the pid that made them. The lock is held for a lookup
// only, never across a system call that can block; fork() takes it first (pthread_atfork), so a
// child never inherits it held, and the child drops what it inherited.
struct Pool {
    std::mutex mu;
    std::vector<Entry> idle;  // few: a mount or two, a thread or two each
    pid_t pid = 0;
};

Pool& pool() {
    static Pool* p = [] {
        auto* created = new Pool;  // never destroyed: calls may come from other atexit handlers
        pthread_atfork([] { pool().mu.lock(); }, [] { pool().mu.unlock(); },
                       [] {
                           Pool& c = pool();
                           c.idle.clear();  // closes the child's copies; the parent's stay open
                           c.pid = 0;
                           c.mu.unlock();
                       });
        return created;
    }();
    return *p;
}

bool still_ours(const Kept& k) {
    struct stat st {};
    return fstat(k.sock.get(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == k.dev &&
           st.st_ino == k.ino;
}

}  // namespace

ThreadCreds ThreadCreds::now() {
    ThreadCreds c;
    if (getresuid(&c.ruid, &c.euid, &c.suid) != 0 || getresgid(&c.rgid, &c.egid, &c.sgid) != 0)
        return c;
    auto caps = effective_caps(0);  // the calling thread's
    if (!caps) return c;
    c.caps = *caps;
    std::array<gid_t, 64> some{};
    int n = getgroups(static_cast<int>(some.size()), some.data());
    if (n >= 0) {
        c.groups.assign(some.begin(), some.begin() + n);
    } else {
        n = getgroups(0, nullptr);
        if (n < 0) return c;
        c.groups.resize(static_cast<std::size_t>(n));
        n = getgroups(n, c.groups.data());
        if (n < 0) return c;
        c.groups.resize(static_cast<std::size_t>(n));
    }
    c.known = true;
    return c;
}

std::optional<MountKey> mount_key(const struct statx& sx, const Trust& trust) {
    // A socket the caller named ($BPFFS_SOCKET) is connected to for each call, as before.
    const char* env = secure_getenv("BPFFS_SOCKET");
    if (env != nullptr && *env != '\0') return std::nullopt;
    MountKey k;
    k.unique = (sx.stx_mask & kStatxMntIdUnique) != 0;
    if (!k.unique && (sx.stx_mask & STATX_MNT_ID) == 0) return std::nullopt;
    k.mnt_id = sx.stx_mnt_id;
    k.dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
    k.trust_uid = trust.uid;
    return k;
}

std::optional<Kept> take_kept(const MountKey& key, const ThreadCreds& creds) {
    if (!creds.known) return std::nullopt;
    Pool& p = pool();
    std::optional<Kept> out;
    {
        std::lock_guard l(p.mu);
        if (p.pid != getpid()) return std::nullopt;  // a child made without fork(): not ours
        auto it = std::find_if(p.idle.rbegin(), p.idle.rend(),
                               [&](const Entry& e) { return e.key == key && e.creds == creds; });
        if (it == p.idle.rend()) return std::nullopt;
        out = std::move(it->conn);
        p.idle.erase(std::next(it).base());
    }
    if (!still_ours(*out)) {
        (void)out->sock.release();  // the number is the program's now: not ours to close
        return std::nullopt;
    }
    return out;
}

void keep(const MountKey& key, const ThreadCreds& creds, UniqueFd sock) {
    struct stat st {};
    if (!sock || fstat(sock.get(), &st) != 0) return;
    keep(key, creds, Kept{std::move(sock), st.st_dev, st.st_ino});
}

void keep(const MountKey& key, const ThreadCreds& creds, Kept k) {
    if (!creds.known || !k.sock) return;
    Pool& p = pool();
    Entry e{key, creds, std::move(k)};
    std::unique_lock l(p.mu);
    pid_t self = getpid();
    if (p.pid != self) {
        if (p.pid != 0) {
            for (auto& old : p.idle) (void)old.conn.sock.release();  // another process's
        }
        p.idle.clear();
        p.pid = self;
    }
    auto same = std::count_if(p.idle.begin(), p.idle.end(),
                              [&](const Entry& x) { return x.key == key && x.creds == creds; });
    if (static_cast<std::size_t>(same) >= kMaxIdle) return;  // closed on return, unlocked
    p.idle.push_back(std::move(e));
}

void close_kept() {
    Pool& p = pool();
    std::vector<Entry> gone;
    {
        std::lock_guard l(p.mu);
        if (p.pid != getpid()) return;
        gone.swap(p.idle);
    }
    for (auto& e : gone) {
        if (!still_ours(e.conn)) (void)e.conn.sock.release();
    }
}  // closed here, unlocked

}  // namespace bpffs::client
