// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/state_log.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

namespace bpffs::daemon {
namespace {

constexpr char kMagic[8] = {'B', 'P', 'F', 'F', 'S', 'L', 'O', 'G'};
constexpr std::uint32_t kLogVersion = 1;
constexpr std::size_t kHeaderSize = 4096;
constexpr std::size_t kInitOffset = 16;  // magic[8] | version u32 | init_len u32 | init
constexpr std::size_t kInitMax = kHeaderSize - kInitOffset;
constexpr std::size_t kInitialCapacity = 1 << 20;

std::size_t pad4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

std::uint32_t load_u32(const std::uint8_t* p) {
    return std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(
                                              const_cast<std::uint8_t*>(p)))
        .load(std::memory_order_acquire);
}

}  // namespace

StateLog::~StateLog() {
    if (base_ != nullptr) munmap(base_, capacity_);
}

Result<std::unique_ptr<StateLog>> StateLog::create() {
    std::unique_ptr<StateLog> log(new StateLog());
    log->fd_.reset(memfd_create("bpffs-state", MFD_CLOEXEC));
    if (!log->fd_) return fail(errno);
    std::lock_guard lock(log->mu_);
    if (int e = log->grow(kInitialCapacity); e != 0) return fail(e);
    std::memcpy(log->base_, kMagic, sizeof kMagic);
    std::memcpy(log->base_ + 8, &kLogVersion, 4);
    log->end_ = kHeaderSize;
    return log;
}

Result<std::unique_ptr<StateLog>> StateLog::open(UniqueFd fd) {
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) return fail(errno);
    auto size = static_cast<std::size_t>(st.st_size);
    if (size < kHeaderSize || size % 4 != 0) return fail(EINVAL);
    std::unique_ptr<StateLog> log(new StateLog());
    log->fd_ = std::move(fd);
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, log->fd_.get(), 0);
    if (p == MAP_FAILED) return fail(errno);
    log->base_ = static_cast<std::uint8_t*>(p);
    log->capacity_ = size;
    std::uint32_t version = 0;
    std::memcpy(&version, log->base_ + 8, 4);
    if (std::memcmp(log->base_, kMagic, sizeof kMagic) != 0 || version != kLogVersion) {
        return fail(EINVAL);
    }
    // Find the end: the first batch that was never committed.
    std::size_t pos = kHeaderSize;
    while (pos + 8 <= size) {
        std::uint32_t total = load_u32(log->base_ + pos);
        if (total == 0 || pos + 8 + total > size) break;
        pos += 8 + pad4(total);
    }
    log->end_ = pos;
    log->compacted_size_ = pos;
    return log;
}

int StateLog::fd() const { return fd_.get(); }

int StateLog::grow(std::size_t need) {
    if (need <= capacity_) return 0;
    std::size_t cap = capacity_ == 0 ? kInitialCapacity : capacity_;
    while (cap < need) cap *= 2;
    if (ftruncate(fd_.get(), static_cast<off_t>(cap)) != 0) return errno;
    void* p = base_ == nullptr
                  ? mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0)
                  : mremap(base_, capacity_, cap, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) return errno;
    base_ = static_cast<std::uint8_t*>(p);
    capacity_ = cap;
    return 0;
}

void StateLog::set_init(std::span<const std::uint8_t> bytes) {
    std::lock_guard lock(mu_);
    auto n = static_cast<std::uint32_t>(std::min(bytes.size(), kInitMax));
    std::memcpy(base_ + kInitOffset, bytes.data(), n);
    std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(base_ + 12))
        .store(n, std::memory_order_release);
}

std::vector<std::uint8_t> StateLog::init() const {
    std::lock_guard lock(mu_);
    std::uint32_t n = load_u32(base_ + 12);
    if (n > kInitMax) return {};
    return {base_ + kInitOffset, base_ + kInitOffset + n};
}

void StateLog::write_batch(const std::vector<fsops::Change>& changes) {
    std::vector<std::string> recs;
    recs.reserve(changes.size());
    std::size_t total = 0;
    for (const auto& c : changes) {
        recs.push_back(fsops::encode(c));
        total += 4 + pad4(recs.back().size());
    }
    // One spare word: the zero length after the batch that tells readers where it ends.
    if (grow(end_ + 8 + total + 4) != 0) {
        throw std::runtime_error("state log: cannot grow: " + std::string(std::strerror(errno)));
    }
    std::uint8_t* p = base_ + end_ + 8;
    for (const auto& r : recs) {
        auto len = static_cast<std::uint32_t>(r.size());
        std::memcpy(p, &len, 4);
        std::memcpy(p + 4, r.data(), r.size());
        p += 4 + pad4(r.size());
    }
    auto count = static_cast<std::uint32_t>(recs.size());
    std::memcpy(base_ + end_ + 4, &count, 4);
    std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(base_ + end_))
        .store(static_cast<std::uint32_t>(total), std::memory_order_release);
    end_ += 8 + total;
}

void StateLog::append(const std::vector<fsops::Change>& changes) {
    if (changes.empty()) return;
    std::lock_guard lock(mu_);
    write_batch(changes);
}

Result<fsops::CoreState> StateLog::read_locked() const {
    fsops::StateBuilder b;
    std::size_t pos = kHeaderSize;
    while (pos + 8 <= end_) {
        std::uint32_t total = load_u32(base_ + pos);
        std::uint32_t count = 0;
        std::memcpy(&count, base_ + pos + 4, 4);
        if (total == 0) break;
        const std::uint8_t* p = base_ + pos + 8;
        const std::uint8_t* stop = p + total;
        for (std::uint32_t i = 0; i < count; ++i) {
            if (p + 4 > stop) return fail(EINVAL);
            std::uint32_t len = 0;
            std::memcpy(&len, p, 4);
            if (p + 4 + len > stop) return fail(EINVAL);
            auto c = fsops::decode(std::string_view(reinterpret_cast<const char*>(p + 4), len));
            if (!c) return fail(EINVAL);
            b.apply(*c);
            p += 4 + pad4(len);
        }
        pos += 8 + pad4(total);
    }
    return b.state();
}

Result<fsops::CoreState> StateLog::read() const {
    std::lock_guard lock(mu_);
    return read_locked();
}

std::size_t StateLog::used() const {
    std::lock_guard lock(mu_);
    return end_;
}

bool StateLog::wants_compaction() const {
    std::lock_guard lock(mu_);
    return end_ > floor_ && end_ > 2 * compacted_size_;
}

int StateLog::compact(const std::function<void(int new_fd)>& publish) {
    std::lock_guard lock(mu_);
    auto state = read_locked();
    if (!state) return state.error().value;
    return replace_locked(*state, true, publish);
}

int StateLog::reset_to(const fsops::CoreState& state, bool keep_init,
                       const std::function<void(int new_fd)>& publish) {
    std::lock_guard lock(mu_);
    return replace_locked(state, keep_init, publish);
}

int StateLog::replace_locked(const fsops::CoreState& state, bool keep_init,
                             const std::function<void(int new_fd)>& publish) {
    auto fresh = create();
    if (!fresh) return fresh.error().value;
    StateLog& n = **fresh;
    std::uint32_t init_len = load_u32(base_ + 12);
    if (keep_init && init_len <= kInitMax) {
        std::memcpy(n.base_ + kInitOffset, base_ + kInitOffset, init_len);
        std::memcpy(n.base_ + 12, &init_len, 4);
    }
    std::vector<fsops::Change> all;
    all.reserve(state.nodes.size() + 1);
    fsops::Change meta;
    meta.kind = fsops::Change::Kind::meta;
    meta.meta = state.meta;
    all.push_back(std::move(meta));
    for (const auto& node : state.nodes) {
        fsops::Change c;
        c.kind = fsops::Change::Kind::put;
        c.node = node;
        all.push_back(std::move(c));
    }
    try {
        n.write_batch(all);
    } catch (const std::runtime_error&) {
        return ENOSPC;
    }
    publish(n.fd_.get());
    std::swap(fd_, n.fd_);
    std::swap(base_, n.base_);
    std::swap(capacity_, n.capacity_);
    end_ = n.end_;
    compacted_size_ = end_;
    return 0;
}

}  // namespace bpffs::daemon
