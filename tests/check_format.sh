#!/bin/sh
# tests/check_format.sh — every C file is as clang-format (.clang-format) writes it.
# Prints the files that differ and how to fix them; exits 1 if any does.
set -u
src=${srcdir:-$(dirname "$0")/..}
if ! command -v clang-format >/dev/null 2>&1; then
    echo "check_format: clang-format is not installed (Debian package clang-format)" >&2
    exit 1
fi
bad=""
for f in "$src"/fcgi/*.c "$src"/fcgi/*.h "$src"/fcgi/providers/*.c "$src"/fcgi/providers/*.h "$src"/fcgi/ctl/*.c "$src"/fcgi/ctl/*.h "$src"/tests/unit/*.c "$src"/tests/unit/*.h "$src"/tests/bench/*.c "$src"/tests/fuzz/*.c "$src"/tests/fuzz/*.h; do
    [ -e "$f" ] || continue # a folder with no file of that kind
    clang-format --style=file --dry-run -Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
done
if [ -n "$bad" ]; then
    echo "not formatted (run: clang-format -i$bad)" >&2
    exit 1
fi
exit 0
