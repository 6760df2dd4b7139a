#!/bin/sh
# tests/check_cycles.sh — no two modules of fcgi/ include each other.
# A module is x.c + x.h (in fcgi/ or fcgi/providers/). A and B form a cycle when
# A's .c or .h includes "B.h" and B's .c or .h includes "A.h": layering is one-way
# (CONVENTIONS.md). Prints every cycle; exits 1 if one is not in the allowlist.
set -u
src=${srcdir:-$(dirname "$0")/..}

# The allowed cycles: two modules (a trailing "*" matches any rest of a name),
# a tab, and why the pair is allowed. An entry no cycle uses any more is reported
# (not an error) so that it gets removed.
allow='config	config_load	one module split in two files'

# One "module<TAB>included module" line per quoted include of a header.
edges=$(for f in "$src"/fcgi/*.c "$src"/fcgi/*.h "$src"/fcgi/providers/*.c "$src"/fcgi/providers/*.h; do
    [ -e "$f" ] || continue # a folder with no file of that kind
    awk -v f="$f" '
        BEGIN { m = f; sub(/.*\//, "", m); sub(/\.[ch]$/, "", m) }
        /^[ \t]*#[ \t]*include[ \t]*"[^"]*\.h"/ {
            h = $0; sub(/^[^"]*"/, "", h); sub(/".*$/, "", h); sub(/.*\//, "", h); sub(/\.h$/, "", h)
            if (h != m) print m "\t" h
        }' "$f"
done | sort -u)

report=$(printf '%s\n' "$edges" | awk -F '\t' -v allow="$allow" '
    function fits(pattern, name) {
        if (substr(pattern, length(pattern)) == "*")
            return index(name, substr(pattern, 1, length(pattern) - 1)) == 1
        return pattern == name
    }
    BEGIN {
        n_allow = split(allow, lines, "\n")
        for (i = 1; i <= n_allow; i++) {
            split(lines[i], part, "\t")
            allow_a[i] = part[1]; allow_b[i] = part[2]; reason[i] = part[3]
        }
    }
    NF == 2 { edge[$1 "\t" $2] = 1 }
    END {
        for (e in edge) {
            split(e, ab, "\t")
            if (ab[1] >= ab[2] || !((ab[2] "\t" ab[1]) in edge))
                continue
            why = ""
            for (i = 1; i <= n_allow && why == ""; i++)
                if ((fits(allow_a[i], ab[1]) && fits(allow_b[i], ab[2])) ||
                    (fits(allow_a[i], ab[2]) && fits(allow_b[i], ab[1]))) {
                    why = reason[i]; used[i] = 1
                }
            if (why != "")
                printf "allowed: %s <-> %s (%s)\n", ab[1], ab[2], why
            else
                printf "include cycle: %s <-> %s\n", ab[1], ab[2]
        }
        for (i = 1; i <= n_allow; i++)
            if (!(i in used))
                printf "unused allowlist entry (remove it): %s <-> %s\n", allow_a[i], allow_b[i]
    }' | sort)

printf '%s\n' "$report"
if printf '%s\n' "$report" | grep -q '^include cycle:'; then
    echo "check_cycles: fcgi/ has include cycles; move what both need into a module" \
        "each can include, or pass it in" >&2
    exit 1
fi
exit 0
