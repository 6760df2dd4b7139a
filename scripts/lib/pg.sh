# shellcheck shell=bash
# A private PostgreSQL cluster for scripts/run: unix socket only, in a
# directory only its owner can enter.  Needs deps.sh (TG_PGBIN, tg_as_user).
# tg_pg_init DATA, tg_pg_start DATA SOCKDIR PORT LOG, tg_pg_stop DATA.

tg_pg_init() {
    local data=$1
    [ -f "$data/PG_VERSION" ] && return 0
    tg_log "initdb $data"
    tg_as_user "$TG_PGBIN/initdb" -D "$data" -U "$TG_USER" -A trust -E UTF8 \
        --locale=C.UTF-8 >/dev/null || tg_die "initdb failed"
}

tg_pg_running() {
    tg_as_user "$TG_PGBIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

tg_pg_start() {
    local data=$1 sockdir=$2 port=$3 log=$4
    if tg_pg_running "$data"; then
        tg_die "PostgreSQL in $data is already running (another scripts/run?)"
    fi
    tg_as_user "$TG_PGBIN/pg_ctl" -D "$data" -l "$log" -w -t 60 \
        -o "-c listen_addresses='' -k '$sockdir' -p $port" start >/dev/null ||
        tg_die "PostgreSQL did not start; see $log"
    local url="postgresql:///postgres?host=$sockdir&port=$port&user=$TG_USER"
    if [ -z "$(tg_as_user "$TG_PGBIN/psql" -X -A -t -d "$url" \
        -c "select 1 from pg_database where datname = 'tollgate'")" ]; then
        tg_as_user "$TG_PGBIN/psql" -X -q -d "$url" -c 'create database tollgate' ||
            tg_die "could not create database tollgate"
    fi
}

tg_pg_stop() {
    tg_pg_running "$1" || return 0
    tg_as_user "$TG_PGBIN/pg_ctl" -D "$1" -m fast -w -t 30 stop >/dev/null ||
        tg_as_user "$TG_PGBIN/pg_ctl" -D "$1" -m immediate stop >/dev/null
}
