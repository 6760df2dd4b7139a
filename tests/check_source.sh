#!/bin/sh
# Fails when fcgi/ calls a banned function (unbounded or unchecked; bounded or
# checked alternatives exist), as curl's checksrc does. Comments are skipped.
dir="${SRCDIR:-.}/fcgi"
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|strtok)[[:space:]]*\('
hits=$(for f in "$dir"/*.c "$dir"/*.h "$dir"/providers/*.c "$dir"/providers/*.h "$dir"/ctl/*.c "$dir"/ctl/*.h; do
    [ -e "$f" ] || continue
    sed -e 's|/\*.*\*/||g' -e 's|^[[:space:]]*\*.*||' -e 's|^[[:space:]]*/\*.*||' "$f" |
        grep -nE "$banned" | sed "s|^|$f:|"
done)
if [ -n "$hits" ]; then
    echo "banned calls in fcgi/:"
    echo "$hits"
    exit 1
fi
echo "no banned calls in fcgi/"
