// SPDX-License-Identifier: GPL-2.0-or-later
// Result<T, E>: a small stand-in for std::expected (g++ 12 has no <expected>).
// Errors of the core and the broker are an Errno: a strong type around a positive errno value,
// so that a bare int (a count, a fd, a length) cannot be returned where an error is meant.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace bpffs {

struct Errno {
    int value = 0;  // positive: ENOENT, EACCES, ...
    // The rule that refused, for logs ("names containing '.' are reserved"): a string literal,
    // or null where the errno says it all. Not part of the error's identity.
    const char* rule = nullptr;
    explicit operator bool() const { return value != 0; }  // a refusal (0: allowed)
    friend bool operator==(Errno a, Errno b) { return a.value == b.value; }
};

inline Errno err(int e) { return Errno{e}; }
// The errno `e`, refused by `rule` (a string literal).
inline Errno refusal(int e, const char* rule) { return Errno{e, rule}; }

// Wraps the error alternative so that Result<int, Errno> and the like are never ambiguous.
template <class E>
struct Unexpected {
    E error;
};
template <class E>
Unexpected(E) -> Unexpected<E>;

inline Unexpected<Errno> fail(int e) { return Unexpected<Errno>{Errno{e}}; }
inline Unexpected<Errno> fail(Errno e) { return Unexpected<Errno>{e}; }
inline Unexpected<Errno> refuse(int e, const char* rule) { return fail(refusal(e, rule)); }

template <class T, class E = Errno>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    Result(Unexpected<E> e) : v_(std::in_place_index<1>, std::move(e.error)) {}  // NOLINT
    Result(Errno e) requires std::is_same_v<E, Errno> &&(!std::is_same_v<T, Errno>)
        : v_(std::in_place_index<1>, e) {}  // NOLINT

    bool has_value() const { return v_.index() == 0; }
    explicit operator bool() const { return has_value(); }

    T& value() & {
        check();
        return std::get<0>(v_);
    }
    const T& value() const& {
        check();
        return std::get<0>(v_);
    }
    T&& value() && {
        check();
        return std::get<0>(std::move(v_));
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const E& error() const {
        if (has_value()) std::abort();
        return std::get<1>(v_);
    }

private:
    void check() const {
        if (!has_value()) std::abort();  // a caller that did not test has_value(): a bug
    }
    std::variant<T, E> v_;
};

template <class E>
class [[nodiscard]] Result<void, E> {
public:
    Result() = default;
    Result(Unexpected<E> e) : ok_(false), e_(std::move(e.error)) {}           // NOLINT
    Result(Errno e) requires std::is_same_v<E, Errno> : ok_(false), e_(e) {}  // NOLINT

    bool has_value() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const E& error() const {
        if (ok_) std::abort();
        return e_;
    }

private:
    bool ok_ = true;
    E e_{};
};

}  // namespace bpffs
