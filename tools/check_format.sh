#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every C and C++ source of the project follows .clang-format (Debian 12's clang-format 14).
# Prints the files that do not, with the first lines clang-format would change; exits 1 if any.
# Fix them with: clang-format -i FILE...
#   tools/check_format.sh [SOURCE_DIR]
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
command -v clang-format >/dev/null || { echo "check_format: clang-format is not installed (tools/deps.txt)"; exit 1; }

bad=0
while IFS= read -r -d '' f; do
    if ! out=$(clang-format --style=file "$f" | diff -u "$f" - 2>&1); then
        echo "check_format: $f does not follow .clang-format:"
        head -n 12 <<<"$out"
        bad=1
    fi
done < <(find common fsops broker daemon client preload include tests bench fuzz \
              \( -name '*.cpp' -o -name '*.hpp' -o -name '*.c' -o -name '*.h' \) -print0 | sort -z)
[ "$bad" -eq 0 ] && echo "check_format: every source follows .clang-format"
exit "$bad"
