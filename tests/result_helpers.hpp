// SPDX-License-Identifier: GPL-2.0-or-later
// The errno of a Result, for tests of the core and the codec (no kernel, no Catch2 needed).
#pragma once

namespace bpffs::test {

// 0 for a Result with a value, else its errno.
template <class R>
int err_of(const R& r) {
    return r.has_value() ? 0 : r.error().value;
}

}  // namespace bpffs::test
