// SPDX-License-Identifier: GPL-2.0-or-later
// Catch2's main, in its own translation unit so the test files compile faster.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
