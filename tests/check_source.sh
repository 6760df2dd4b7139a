#!/bin/sh
# Fails when fcgi/ uses a banned call (unbounded or unchecked; bounded or checked
# alternatives exist), as curl's checksrc does.
dir="${SRCDIR:-.}/fcgi"
hits=$(grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|strtok)[[:space:]]*\(' \
    "$dir"/*.c "$dir"/*.h 2>/dev/null)
if [ -n "$hits" ]; then
    echo "banned calls in fcgi/:"
    echo "$hits"
    exit 1
fi
echo "no banned calls in fcgi/"
