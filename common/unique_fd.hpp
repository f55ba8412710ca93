// SPDX-License-Identifier: GPL-2.0-or-later
// UniqueFd: the one owner of a file descriptor. Move-only; closes on destruction. Functions that
// take an `int fd` borrow it; functions that take a UniqueFd by value own it. No raw close()
// elsewhere in the project.
#pragma once

#include <unistd.h>

#include <utility>

namespace bpffs {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) reset(o.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    explicit operator bool() const { return valid(); }
    [[nodiscard]] int release() { return std::exchange(fd_, -1); }
    // Closes the held fd (errors from close are not actionable here and are ignored; EINTR
    // must not be retried on Linux).
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

}  // namespace bpffs
