#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# No function in the product (everything but tests/ and bench/) is longer than 80 lines, counted
# from its signature to its closing brace by universal-ctags. Prints each one that is; exits 1
# if any.
#   tools/check_function_length.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
max=80
ctags=$(command -v ctags-universal || command -v ctags) ||
    { echo "check_function_length: universal-ctags is not installed (tools/deps.txt)"; exit 1; }

long=$("$ctags" -R --languages=C,C++ --kinds-C=f --kinds-C++=f --fields=+ne -x \
           --_xformat='%{line} %{end} %N %F' common fsops broker daemon client preload include |
       awk -v max="$max" '$2 - $1 + 1 > max { print "  " $4 ": " $3 " (" $2 - $1 + 1 " lines)" }')
if [ -n "$long" ]; then
    echo "check_function_length: functions over $max lines:"
    echo "$long"
    exit 1
fi
echo "check_function_length: no product function is over $max lines"
