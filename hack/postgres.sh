#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL 15 on a free loopback port, with scram-sha-256
# password auth (so a wrong password can be tested).
#   hack/postgres.sh start DIR   -> prints `export PG…=…` lines for the server in DIR
#   hack/postgres.sh stop DIR
set -euo pipefail

BIN=${BACKSTOP_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PASSWORD=${BACKSTOP_PG_PASSWORD:-backstop-test}
command=${1:?usage: hack/postgres.sh start|stop DIR}
dir=${2:?usage: hack/postgres.sh start|stop DIR}

# From /, which the postgres user can always enter (the caller's folder may be a 0700 clone).
as_postgres() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

case "$command" in
start)
    [ -x "$BIN/initdb" ] || { echo "no PostgreSQL server binaries in $BIN; run hack/install-deps.sh" >&2; exit 1; }
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$dir"
        as_postgres test -w "$dir" || {
            echo "the postgres user cannot write $dir: make its parent folders traversable (chmod o+x)" >&2
            exit 1
        }
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    pwfile=$(mktemp)
    printf '%s\n' "$PASSWORD" > "$pwfile"
    chmod 644 "$pwfile"
    as_postgres "$BIN/initdb" -D "$dir/data" -U postgres --auth=scram-sha-256 --pwfile="$pwfile" \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$pwfile"
    as_postgres "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c max_connections=50" \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    cat <<ENV
export PGHOST=127.0.0.1
export PGPORT=$port
export PGUSER=postgres
export PGPASSWORD=$PASSWORD
export BACKSTOP_TEST_PG_DIR=$dir
ENV
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_postgres "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: hack/postgres.sh start|stop DIR" >&2
    exit 64
    ;;
esac
