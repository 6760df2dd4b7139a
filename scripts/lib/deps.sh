# shellcheck shell=bash disable=SC2034
# Shared by scripts/run and scripts/test: Debian packages, the unprivileged
# runtime user, and the autotools build.  Source it; it defines functions only.

TG_PACKAGES=(build-essential autoconf automake libtool pkg-config
    libfcgi-dev libfcgi-bin spawn-fcgi lighttpd lighttpd-modules-lua libapache2-mod-qos apache2 wrk nginx-light
    slowhttptest
    libcmocka-dev libjansson-dev libcurl4-openssl-dev libpcre2-dev libssl-dev
    libpq-dev postgresql curl prometheus clang-format nodejs npm clang libclang-rt-14-dev
    chromium)
# A package listed here counts as installed when its command is on PATH:
# Node.js from another source (NodeSource's nodejs bundles npm and conflicts
# with Debian's npm package, which apt would otherwise swap it for).
declare -gA TG_PACKAGE_COMMANDS=([nodejs]=node [npm]=npm)
TG_USER=tollgate
TG_PGBIN=/usr/lib/postgresql/15/bin  # used by pg.sh

tg_log() { printf '==> %s\n' "$*" >&2; }
tg_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Packages of TG_PACKAGES that are not installed, space separated.
tg_deps_missing() {
    local p missing=()
    for p in "${TG_PACKAGES[@]}"; do
        [ -n "${TG_PACKAGE_COMMANDS[$p]:-}" ] &&
            command -v "${TG_PACKAGE_COMMANDS[$p]}" >/dev/null 2>&1 && continue
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] ||
            missing+=("$p")
    done
    echo "${missing[*]}"
}

# Installs what is missing.  Package postinst scripts must not start system
# services (PostgreSQL's main cluster, lighttpd, apache2, nginx would grab
# ports 5432/80), so a policy-rc.d denies them for the duration.
tg_deps_ensure() {
    local missing
    missing=$(tg_deps_missing)
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        printf 'missing Debian packages; as root run:\n  apt-get install %s\n' "$missing" >&2
        exit 1
    fi
    tg_log "installing: $missing"
    local policy=/usr/sbin/policy-rc.d saved=""
    if [ -e "$policy" ]; then
        saved=$(mktemp)
        cp -p "$policy" "$saved"
    fi
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    local rc=0
    # shellcheck disable=SC2086
    { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing; } || rc=$?
    if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
    [ "$rc" -eq 0 ] || tg_die "apt-get failed (exit $rc)"
    missing=$(tg_deps_missing)
    [ -z "$missing" ] || tg_die "still missing after install: $missing"
}

# tg_npm_ensure DIR WHAT: the npm packages of DIR at the versions its
# package-lock.json pins.  Runs `npm ci` when node_modules is missing, older
# than package.json or package-lock.json, or was installed from another
# package-lock.json (its copy in node_modules is the stamp), then makes it
# readable by all, so that TG_USER can load it when we are root.  A failure
# only warns: the other tests do not need it, and the test says what is
# missing.
# tg_mcp_ensure TOP: the same for tests/mcp (npm's @modelcontextprotocol/sdk
# and @modelcontextprotocol/server-everything) for tests/integration/test_mcp.py.
tg_mcp_ensure() {
    tg_npm_ensure "$1/tests/mcp" "the MCP tests (tests/mcp)"
}

tg_npm_ensure() {
    local dir=$1 what=$2 stamp
    stamp=$dir/node_modules/.tollgate-package-lock.json
    if [ -f "$stamp" ] && [ ! "$dir/package-lock.json" -nt "$stamp" ] &&
        [ ! "$dir/package.json" -nt "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        tg_log "warning: no npm; $what will fail"
        return 0
    fi
    tg_log "npm ci (${dir#"${dir%/tests/*}/"})"
    if ! (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >&2); then
        tg_log "warning: npm ci failed in $dir; $what will fail"
        return 0
    fi
    cp "$dir/package-lock.json" "$stamp"
    chmod -R a+rX "$dir/node_modules"
}

# tg_sdk_ensure TOP: the official client SDKs of tests/sdk (npm's openai and
# @anthropic-ai/sdk) for tests/integration/test_sdk.py, and puppeteer-core of
# tests/ui (it drives Debian's chromium) for tests/integration/test_ui.py.
tg_sdk_ensure() {
    tg_npm_ensure "$1/tests/sdk" "the SDK tests (test_sdk.py)"
    tg_npm_ensure "$1/tests/ui" "the dashboard's browser tests (test_ui.py)"
}

# "${TG_AS[@]}" CMD... runs CMD as TG_USER when we are root (set by
# tg_user_ensure), else as ourselves.  setpriv execs CMD, so after
# "${TG_AS[@]}" CMD &, "$!" is CMD's pid (a shell function run with & would
# be a subshell's).
TG_AS=()
tg_as_user() { "${TG_AS[@]}" "$@"; }

# The unprivileged user that runs PostgreSQL (which refuses root) and the
# stack.  Only for root; sets TG_AS.
tg_user_ensure() {
    if ! id -u "$TG_USER" >/dev/null 2>&1; then
        tg_log "creating system user $TG_USER"
        useradd --system --no-create-home --shell /usr/sbin/nologin "$TG_USER"
    fi
    TG_AS=(setpriv --reuid="$(id -u "$TG_USER")" --regid="$(id -g "$TG_USER")" --init-groups --)
}

# Lets TG_USER reach DIR (a checkout under /root, say): adds search
# permission for others (x only, no listing) to each ancestor that lacks it.
tg_user_reach() {
    local d="" part
    local IFS=/
    for part in $1; do
        [ -n "$part" ] || continue
        d="$d/$part"
        if ! "${TG_AS[@]}" test -x "$d"; then
            tg_log "chmod o+x $d (so that user $TG_USER can reach $1)"
            chmod o+x "$d"
        fi
    done
}

# tg_build TOP NAME [configure args...]: out-of-tree build in TOP/build/NAME.
# autogen only when configure is missing or older than its inputs; configure
# only when the build dir has no Makefile; make does the rest.
tg_build() {
    local top=$1 name=$2
    shift 2
    (
        cd "$top" || exit 1
        if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
            tg_log "autogen"
            ./autogen.sh || exit 1
        fi
        mkdir -p "build/$name" && cd "build/$name" || exit 1
        if [ ! -f Makefile ]; then
            tg_log "configure $* (build/$name)"
            ../../configure "$@" || exit 1
        fi
        tg_log "make (build/$name)"
        make -j2 || exit 1
    ) || tg_die "build failed (build/$name)"
}
