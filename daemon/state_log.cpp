// SPDX-License-Identifier: GPL-2.0-or-later
// The state log: every core change appended before its reply, read back and compacted.
#include "daemon/state_log.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

namespace bpffs::daemon {
namespace {

constexpr char kMagic[8] = {'B', 'P', 'F', 'F', 'S', 'L', 'O', 'G'};
// Version 3 frames each batch with a CRC; version 2 (kStateVersion's records, no CRC) is read
// too, so an upgrade takes over the log an older worker wrote.
constexpr std::uint32_t kLogVersion = 3;
constexpr std::uint32_t kLogVersionNoCrc = 2;
static_assert(fsops::kStateVersion == 2, "a new record codec needs a new log version");
constexpr std::size_t kHeaderSize = 4096;
constexpr std::size_t kInitOffset = 16;  // magic[8] | version u32 | init_len u32 | init
constexpr std::size_t kInitMax = kHeaderSize - kInitOffset;
constexpr std::size_t kInitialCapacity = 1 << 20;
constexpr std::size_t kVarintMax = 10;
constexpr std::size_t kBatchMax = std::numeric_limits<std::uint32_t>::max() - 3;

std::size_t pad4(std::size_t n) { return (n + 3) & ~std::size_t{3}; }

std::uint32_t crc_of(const std::uint8_t* p, std::size_t n) {
    return static_cast<std::uint32_t>(crc32(crc32(0L, Z_NULL, 0), p, static_cast<uInt>(n)));
}

std::uint32_t load_u32(const std::uint8_t* p) {
    return std::atomic_ref<std::uint32_t>(
               *reinterpret_cast<std::uint32_t*>(const_cast<std::uint8_t*>(p)))
        .load(std::memory_order_acquire);
}

// A record's length: an unsigned LEB128 varint, read within [p, stop). 0 when it does not fit
// or is not minimal (a record is never empty, so 0 is never a valid length).
std::size_t read_len(const std::uint8_t*& p, const std::uint8_t* stop) {
    std::uint64_t len = 0;
    for (int shift = 0; shift < 35 && p < stop; shift += 7) {
        std::uint8_t b = *p++;
        len |= std::uint64_t{b & 0x7fu} << shift;
        if ((b & 0x80) == 0) return (b == 0 && shift != 0) ? 0 : static_cast<std::size_t>(len);
    }
    return 0;
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

Result<std::unique_ptr<StateLog>> StateLog::open(UniqueFd fd, std::string* why) {
    auto invalid = [why](std::string what) {
        if (why != nullptr) *why = std::move(what);
        return fail(EINVAL);
    };
    struct stat st {};
    if (fstat(fd.get(), &st) != 0) return fail(errno);
    auto size = static_cast<std::size_t>(st.st_size);
    if (size < kHeaderSize || size % 4 != 0) return invalid("not a state log (size)");
    std::unique_ptr<StateLog> log(new StateLog());
    log->fd_ = std::move(fd);
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, log->fd_.get(), 0);
    if (p == MAP_FAILED) return fail(errno);
    log->base_ = static_cast<std::uint8_t*>(p);
    log->capacity_ = size;
    std::uint32_t version = 0;
    std::memcpy(&version, log->base_ + 8, 4);
    if (std::memcmp(log->base_, kMagic, sizeof kMagic) != 0) return invalid("not a state log");
    if (version == kLogVersionNoCrc) log->head_ = 4;
    if (version != kLogVersion && version != kLogVersionNoCrc) {
        return invalid("a state log of format version " + std::to_string(version) +
                       "; this binary reads versions 2 and 3");
    }
    // Find the end: the first batch that was never committed.
    std::size_t pos = kHeaderSize;
    while (pos + 4 <= size) {
        std::uint32_t total = load_u32(log->base_ + pos);
        if (total == 0) {
            // A batch is committed CRC first, length last: a CRC after a length 0 is a batch
            // whose length was lost, not one a worker was still writing.
            log->damaged_end_ =
                log->head_ == 8 && pos + 8 <= size && load_u32(log->base_ + pos + 4) != 0;
            break;
        }
        if (pos + log->head_ + total > size) {  // a damaged length
            log->damaged_end_ = true;
            break;
        }
        pos += log->head_ + pad4(total);
    }
    log->end_ = pos;
    log->compacted_size_ = pos;
    // The daemon sizes its memfd in steps of kInitialCapacity doubled: a log of another size was
    // cut short.
    if (size % kInitialCapacity != 0 || !std::has_single_bit(size / kInitialCapacity))
        log->damaged_end_ = true;
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

int StateLog::put_record(std::size_t& pos, const fsops::Change& c) {
    scratch_.clear();
    fsops::encode_to(c, scratch_);
    // Room for the length, the record, the padding and the zero word that ends the log.
    std::size_t need = pos + kVarintMax + scratch_.size() + 3 + 4;
    if (need - end_ - head_ > kBatchMax) return EFBIG;
    if (int e = grow(need); e != 0) return e;
    std::uint8_t* p = base_ + pos;
    for (std::size_t len = scratch_.size();; len >>= 7) {
        if (len < 0x80) {
            *p++ = static_cast<std::uint8_t>(len);
            break;
        }
        *p++ = static_cast<std::uint8_t>((len & 0x7f) | 0x80);
    }
    std::memcpy(p, scratch_.data(), scratch_.size());
    pos = static_cast<std::size_t>(p - base_) + scratch_.size();
    return 0;
}

void StateLog::commit_batch(std::size_t pos) {
    auto total = static_cast<std::uint32_t>(pos - end_ - head_);
    std::memset(base_ + pos, 0, pad4(pos) - pos);
    if (head_ == 8) {
        std::uint32_t crc = crc_of(base_ + end_ + head_, total);
        std::memcpy(base_ + end_ + 4, &crc, 4);
    }
    std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(base_ + end_))
        .store(total, std::memory_order_release);
    end_ += head_ + pad4(total);
}

void StateLog::write_batch(const std::vector<fsops::Change>& changes) {
    std::size_t pos = end_ + head_;
    for (const auto& c : changes) {
        if (int e = put_record(pos, c); e != 0) {
            // Nothing is visible: the batch's length word is still 0. What it wrote goes, so
            // that the word after the next batch reads as the end.
            std::memset(base_ + end_ + head_, 0, pos - end_ - head_);
            throw std::runtime_error("state log: cannot grow: " + std::string(std::strerror(e)));
        }
    }
    commit_batch(pos);
}

void StateLog::append(const std::vector<fsops::Change>& changes) {
    if (changes.empty()) return;
    std::lock_guard lock(mu_);
    write_batch(changes);
}

namespace {

// What one record does to a replay's index (applied once its whole batch checks).
// One record of a batch that decoded, staged until its whole batch has: where it is, its kind
// and node (24 bytes, so a snapshot batch of a million nodes stages in 24 MB).
struct Step {
    fsops::Change::Kind kind;
    std::uint32_t len = 0;
    fsops::Ino ino = 0;
    std::size_t at = 0;
};

std::optional<fsops::Change> change_at(const std::uint8_t* base, std::size_t at, std::size_t len) {
    auto c = fsops::decode(std::string_view(reinterpret_cast<const char*>(base + at), len));
    if (!c) return std::nullopt;
    return std::move(*c);
}

std::optional<Step> step_of(const std::uint8_t* base, const std::uint8_t* p, std::size_t len) {
    auto at = static_cast<std::size_t>(p - base);
    auto c = change_at(base, at, len);
    if (!c) return std::nullopt;
    bool put = c->kind == fsops::Change::Kind::put;
    return Step{c->kind, static_cast<std::uint32_t>(len), put ? c->node.ino : c->ino, at};
}

}  // namespace

Result<LogReplay> StateLog::replay(std::size_t* damaged_at) const {
    std::lock_guard lock(mu_);
    LogReplay r;
    r.base_ = base_;
    // As StateBuilder::apply, keeping where each node's latest record is instead of the node.
    auto apply = [&r, this](const Step& s) {
        using Kind = fsops::Change::Kind;
        if (s.kind == Kind::meta) {
            r.meta_ = change_at(base_, s.at, s.len)->meta;
        } else if (s.kind == Kind::put) {
            r.latest_.insert_or_assign(s.ino, LogReplay::Latest{s.at, s.len});
            r.nlookup_.erase(s.ino);
            r.times_.erase(s.ino);
        } else if (s.kind == Kind::erase) {
            r.latest_.erase(s.ino);
            r.nlookup_.erase(s.ino);
            r.times_.erase(s.ino);
        } else if (r.latest_.count(s.ino) != 0) {
            auto c = change_at(base_, s.at, s.len);  // it decoded when staged
            if (s.kind == Kind::lookups)
                r.nlookup_.insert_or_assign(s.ino, c->nlookup);
            else
                r.times_.insert_or_assign(s.ino, c->times);
        }
    };
    std::size_t pos = kHeaderSize;
    std::vector<Step> batch;
    if (damaged_at != nullptr) *damaged_at = 0;
    while (pos + 4 <= end_) {
        std::uint32_t total = load_u32(base_ + pos);
        if (total == 0) break;
        const std::uint8_t* p = base_ + pos + head_;
        const std::uint8_t* stop = p + total;
        batch.clear();
        bool whole = pos + head_ + total <= end_;
        if (whole && head_ == 8) whole = load_u32(base_ + pos + 4) == crc_of(p, total);
        while (whole && p < stop) {
            std::size_t len = read_len(p, stop);
            auto s = len == 0 || len > static_cast<std::size_t>(stop - p) ? std::nullopt
                                                                          : step_of(base_, p, len);
            whole = s.has_value();
            if (whole) batch.push_back(*s);
            p += len;
        }
        if (!whole) {  // the torn tail: this batch and all after it
            if (damaged_at != nullptr) *damaged_at = pos;
            return r;
        }
        for (const Step& s : batch) apply(s);
        pos += head_ + pad4(total);
    }
    if (damaged_end_ && damaged_at != nullptr) *damaged_at = end_;
    return r;
}

Result<fsops::CoreState> StateLog::read(std::size_t* damaged_at) const {
    auto r = replay(damaged_at);
    if (!r) return r.error();
    fsops::CoreState s;
    s.meta = r->meta();
    s.nodes.reserve(r->size());
    bool ok = r->take([&s](fsops::NodeState&& n) {
        s.nodes.push_back(std::move(n));
        return true;
    });
    if (!ok) return fail(EINVAL);
    std::sort(s.nodes.begin(), s.nodes.end(),
              [](const fsops::NodeState& a, const fsops::NodeState& b) { return a.ino < b.ino; });
    return s;
}

bool LogReplay::take(const std::function<bool(fsops::NodeState&&)>& each) {
    for (auto it = latest_.begin(); it != latest_.end(); it = latest_.erase(it)) {
        const auto& [ino, l] = *it;
        auto c =
            fsops::decode(std::string_view(reinterpret_cast<const char*>(base_ + l.put), l.len));
        if (!c || c->kind != fsops::Change::Kind::put) return false;
        fsops::NodeState& n = c->node;
        if (auto k = nlookup_.find(ino); k != nlookup_.end()) {
            n.nlookup = k->second;
            nlookup_.erase(k);
        }
        if (auto t = times_.find(ino); t != times_.end()) {
            n.attr.atime = t->second.atime;
            n.attr.mtime = t->second.mtime;
            n.attr.ctime = t->second.ctime;
            n.attr.nlink = t->second.nlink;
            n.next_cookie = t->second.next_cookie;
            times_.erase(t);
        }
        if (!each(std::move(n))) break;
    }
    return true;
}

std::size_t StateLog::capacity() const {
    std::lock_guard lock(mu_);
    return capacity_;
}

std::size_t StateLog::used() const {
    std::lock_guard lock(mu_);
    return end_;
}

bool StateLog::wants_compaction() const {
    std::lock_guard lock(mu_);
    return end_ > floor_ && 2 * end_ > 3 * compacted_size_;
}

int StateLog::compact(const fsops::Filesystem& fs, const std::function<void(int new_fd)>& publish) {
    return rewrite(fs, true, publish);
}

int StateLog::reset_to(const fsops::Filesystem& fs, bool keep_init,
                       const std::function<void(int new_fd)>& publish) {
    return rewrite(fs, keep_init, publish);
}

int StateLog::rewrite(const fsops::Filesystem& fs, bool keep_init,
                      const std::function<void(int new_fd)>& publish) {
    auto fresh = create();
    if (!fresh) return fresh.error().value;
    // No one else sees the new log until it is published: it is written without its mutex.
    StateLog& n = **fresh;
    std::size_t pos = n.end_ + n.head_;
    int e = 0;
    try {
        fs.stream_state(
            [&](const fsops::Change& c) {
                if (e == 0) e = n.put_record(pos, c);
            },
            [&] {
                if (e != 0) return;
                // Under the core's lock: no change can land in this log from here on.
                std::lock_guard lock(mu_);
                std::uint32_t init_len = load_u32(base_ + 12);
                if (keep_init && init_len <= kInitMax) {
                    std::memcpy(n.base_ + kInitOffset, base_ + kInitOffset, init_len);
                    std::memcpy(n.base_ + 12, &init_len, 4);
                }
                n.commit_batch(pos);
                publish(n.fd_.get());
                std::swap(fd_, n.fd_);
                std::swap(base_, n.base_);
                std::swap(capacity_, n.capacity_);
                std::swap(head_, n.head_);  // the new log is of this binary's version
                damaged_end_ = false;
                end_ = n.end_;
                compacted_size_ = end_;
            });
    } catch (const std::bad_alloc&) {
        return ENOMEM;
    }
    return e;
}

}  // namespace bpffs::daemon
