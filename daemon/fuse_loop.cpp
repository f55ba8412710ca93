// SPDX-License-Identifier: GPL-2.0-or-later
// The FUSE request loop with custom io: the INIT kept, requests a dead worker read answered.
#include "daemon/fuse_loop.hpp"

#include "daemon/fuse_adapter.hpp"

#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <system_error>

namespace bpffs::daemon {
namespace {

// Linux 6.9's resend (uapi fuse.h 7.40), newer than Debian 12's header.
constexpr std::int32_t kNotifyResend = 7;         // FUSE_NOTIFY_RESEND
constexpr std::uint64_t kHasResend = 1ULL << 39;  // FUSE_HAS_RESEND, in flags2

// Does this FUSE_INIT request (header and fuse_init_in) offer FUSE_HAS_RESEND?
bool offers_resend(std::span<const std::uint8_t> init) {
    const std::size_t at = sizeof(fuse_in_header);
    if (init.size() < at + offsetof(fuse_init_in, flags2) + sizeof(std::uint32_t)) return false;
    fuse_init_in in{};
    std::memcpy(&in, init.data() + at, std::min(sizeof in, init.size() - at));
    if (in.major != 7 || in.minor < 36 || (in.flags & FUSE_INIT_EXT) == 0) return false;
    return (in.flags2 & (kHasResend >> 32)) != 0;
}

thread_local int t_slot = -1;  // this thread's in-flight slot, -1 for threads without one

// Wakes a thread blocked in read(): installed without SA_RESTART.
void wake_handler(int) {}

bool kept(std::uint32_t opcode) {
    return opcode != FUSE_FORGET && opcode != FUSE_BATCH_FORGET && opcode != FUSE_INTERRUPT &&
           opcode != FUSE_NOTIFY_REPLY && opcode != FUSE_INIT && opcode != FUSE_DESTROY;
}

FuseLoop* loop_of(void* userdata) {
    return static_cast<FuseLoop*>(static_cast<FuseState*>(userdata)->io);
}

}  // namespace

struct FuseLoop::Slot {
    std::atomic<std::uint32_t> len;  // 0: free; else the request's size, written last
    std::uint32_t pad;
    std::atomic<std::uint64_t> unique;
    std::uint8_t data[kSlotSize - 16];
};
static_assert(sizeof(std::atomic<std::uint32_t>) == 4 && sizeof(std::atomic<std::uint64_t>) == 8);

FuseLoop::FuseLoop(fuse_session* se, UniqueFd fuse_fd, int inflight_fd,
                   std::function<void(std::span<const std::uint8_t>)> on_init)
    : se_(se), on_init_(std::move(on_init)) {
    void* p = mmap(nullptr, inflight_size(), PROT_READ | PROT_WRITE, MAP_SHARED, inflight_fd, 0);
    if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap in-flight");
    area_ = static_cast<std::uint8_t*>(p);
    static const fuse_custom_io io = {
        .writev = io_writev, .read = io_read, .splice_receive = nullptr, .splice_send = nullptr};
    int raw = fuse_fd.release();
    if (int e = fuse_session_custom_io(se_, &io, raw); e != 0) {
        ::close(raw);
        throw std::system_error(-e, std::generic_category(), "fuse_session_custom_io");
    }
    struct sigaction sa {};
    sa.sa_handler = wake_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, nullptr);  // no SA_RESTART: read() returns EINTR
}

FuseLoop::~FuseLoop() {
    stop();
    if (area_ != nullptr) munmap(area_, inflight_size());
}

FuseLoop::Slot* FuseLoop::slot(std::size_t i) const {
    return reinterpret_cast<Slot*>(area_ + i * kSlotSize);
}

void FuseLoop::record(const void* buf, std::size_t n) {
    const auto* in = static_cast<const fuse_in_header*>(buf);
    if (in->opcode == FUSE_INIT) {
        std::span init(static_cast<const std::uint8_t*>(buf), n);
        resends_.store(offers_resend(init));
        init_seen_.store(true);
        if (on_init_) on_init_(init);
        return;
    }
    // The kernel's processing queue records the request: nothing to copy.
    if (resends_.load(std::memory_order_relaxed)) return;
    if (t_slot < 0 || !kept(in->opcode) || n > sizeof(Slot::data)) return;
    Slot* s = slot(static_cast<std::size_t>(t_slot));
    std::memcpy(s->data, buf, n);
    s->unique.store(in->unique, std::memory_order_relaxed);
    s->len.store(static_cast<std::uint32_t>(n), std::memory_order_release);
}

void FuseLoop::clear_if(std::uint64_t unique) {
    if (t_slot < 0) return;
    Slot* s = slot(static_cast<std::size_t>(t_slot));
    if (s->len.load(std::memory_order_acquire) != 0 &&
        s->unique.load(std::memory_order_relaxed) == unique) {
        s->len.store(0, std::memory_order_release);
    }
}

ssize_t FuseLoop::io_read(int fd, void* buf, std::size_t len, void* userdata) {
    FuseLoop* self = loop_of(userdata);
    if (self->stopping_.load()) {
        errno = EINTR;
        return -1;
    }
    ssize_t n = ::read(fd, buf, len);
    if (n >= static_cast<ssize_t>(sizeof(fuse_in_header))) {
        self->record(buf, static_cast<std::size_t>(n));
    }
    return n;
}

ssize_t FuseLoop::io_writev(int fd, struct iovec* iov, int count, void* userdata) {
    FuseLoop* self = loop_of(userdata);
    const auto* out = static_cast<const fuse_out_header*>(iov[0].iov_base);
    std::uint64_t unique = out->unique;
    std::uint64_t swallow = self->swallow_.load();
    if (swallow != 0 && unique == swallow) {
        self->swallow_.store(0);
        ssize_t total = 0;
        for (int i = 0; i < count; ++i) total += static_cast<ssize_t>(iov[i].iov_len);
        return total;
    }
    ssize_t n = ::writev(fd, iov, count);
    int e = errno;
    // A reply to a request the kernel no longer waits for (ENOENT: interrupted, or answered
    // before a crash) also ends the request.
    if (unique != 0) self->clear_if(unique);
    errno = e;
    return n;
}

void FuseLoop::resume(std::span<const std::uint8_t> init) {
    if (init.size() < sizeof(fuse_in_header)) {
        throw std::runtime_error("no recorded FUSE_INIT for a connection in use");
    }
    std::vector<std::uint8_t> copy(init.begin(), init.end());
    resends_.store(offers_resend(init));
    init_seen_.store(true);
    const auto* in = reinterpret_cast<const fuse_in_header*>(copy.data());
    swallow_.store(in->unique == 0 ? ~std::uint64_t{0} : in->unique);
    fuse_buf buf{};
    buf.mem = copy.data();
    buf.size = copy.size();
    fuse_session_process_buf(se_, &buf);
    if (swallow_.load() != 0) throw std::runtime_error("the replayed FUSE_INIT was not answered");
}

std::size_t FuseLoop::replay_inflight() {
    std::size_t n = 0;
    for (std::size_t i = 0; i < kSlots; ++i) {
        Slot* s = slot(i);
        std::uint32_t len = s->len.load(std::memory_order_acquire);
        if (len == 0) continue;
        if (len > sizeof(Slot::data)) {
            s->len.store(0);
            continue;
        }
        std::vector<std::uint8_t> copy(s->data, s->data + len);
        const auto* in = reinterpret_cast<const fuse_in_header*>(copy.data());
        spdlog::info("answering request {} (opcode {}) left by the previous worker", in->unique,
                     in->opcode);
        t_slot = static_cast<int>(i);
        fuse_buf buf{};
        buf.mem = copy.data();
        buf.size = copy.size();
        fuse_session_process_buf(se_, &buf);
        t_slot = -1;
        s->len.store(0, std::memory_order_release);
        ++n;
    }
    return n;
}

int FuseLoop::request_resend() {
    if (init_seen_.load() && !resends_.load()) return EOPNOTSUPP;
    // A notification: unique 0, the code in `error`, no payload. Without an INIT (the first
    // worker of a mount) the kernel is asked anyway: one that cannot resend says EINVAL.
    fuse_out_header out{};
    out.len = sizeof out;
    out.error = kNotifyResend;
    out.unique = 0;
    ssize_t n;
    while ((n = ::write(fuse_session_fd(se_), &out, sizeof out)) < 0 && errno == EINTR) {}
    if (n < 0) return errno == EINVAL && !init_seen_.load() ? EOPNOTSUPP : errno;
    return n == static_cast<ssize_t>(sizeof out) ? 0 : EIO;
}

void FuseLoop::run(std::size_t index) {
    t_slot = static_cast<int>(index);
    sigset_t wake;
    sigemptyset(&wake);
    sigaddset(&wake, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &wake, nullptr);
    fuse_buf buf{};
    while (true) {
        int r = fuse_session_receive_buf(se_, &buf);
        if (r == -EINTR || r == -EAGAIN) {
            if (stopping_.load()) break;
            continue;
        }
        if (r <= 0) {
            // 0: the connection ended (ENODEV: unmounted or aborted); < 0: a read error.
            if (!stopping_.load()) {
                if (r < 0) spdlog::error("reading /dev/fuse: {}", std::strerror(-r));
                if (!gone_.exchange(true) && on_gone) on_gone();
            }
            break;
        }
        if (stall_opcode != 0 &&
            static_cast<const fuse_in_header*>(buf.mem)->opcode == stall_opcode) {
            spdlog::warn("test fault: not answering request opcode {}", stall_opcode);
            while (!stopping_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            break;
        }
        fuse_session_process_buf(se_, &buf);
    }
    std::free(buf.mem);
    running_.fetch_sub(1);
}

void FuseLoop::start() {
    running_.store(kSlots);
    for (std::size_t i = 0; i < kSlots; ++i) threads_.emplace_back([this, i] { run(i); });
}

void FuseLoop::stop() {
    stopping_.store(true);
    // A thread may be just about to block in read(): keep waking until all have left.
    while (running_.load() != 0) {
        for (auto& t : threads_) {
            if (t.joinable()) pthread_kill(t.native_handle(), SIGUSR2);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
    threads_.clear();
}

}  // namespace bpffs::daemon
