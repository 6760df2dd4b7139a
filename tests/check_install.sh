#!/bin/sh
# `make install` puts the binaries, every migration, the example configs and the
# spawn-fcgi script where an FHS system expects them, and the installed worker
# accepts the installed example config. Run from a configured build directory.
set -eu
src=${SRCDIR:-..}
dest=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT
make -s install DESTDIR="$dest" prefix=/usr sysconfdir=/etc >"$dest/make.log" 2>&1 ||
    { cat "$dest/make.log"; exit 1; }
fail=0
need() { [ -e "$dest$1" ] || { echo "not installed: $1"; fail=1; }; }
need /usr/bin/tollgate-fcgi
need /usr/bin/tollgatectl
need /etc/tollgate/tollgate.json
need /etc/tollgate/guardrails.json
need /etc/tollgate/lighttpd.conf
need /etc/tollgate/apache-tollgate.conf
need /etc/tollgate/tollgate-fcgi.service
need /usr/share/tollgate/spawn-fcgi.sh
need /etc/cron.d/tollgate
need /etc/tollgate/lighttpd-peraddr.lua
for f in index.html app.js views.js money.js app.css print.css favicon.svg \
    vendor/chart.umd.min.js vendor/LICENSE.md; do need "/usr/share/tollgate/ui/$f"; done
for f in "$src"/conf/errors/*.html; do need "/etc/tollgate/errors/$(basename "$f")"; done
for f in "$src"/sql/[0-9]*.sql; do need "/usr/share/tollgate/sql/$(basename "$f")"; done
for f in "$src"/sql/reports/*.sql; do need "/usr/share/tollgate/sql/reports/$(basename "$f")"; done
[ -x "$dest/usr/share/tollgate/spawn-fcgi.sh" ] || { echo "spawn-fcgi.sh not executable"; fail=1; }
ANTHROPIC_API_KEY=x TOLLGATE_DATABASE_URL=postgresql:///x \
    "$dest/usr/bin/tollgate-fcgi" -c "$dest/etc/tollgate/tollgate.json" --check ||
    { echo "installed worker refuses the installed config"; fail=1; }
[ "$fail" -eq 0 ] && echo "make install: ok"
exit "$fail"
