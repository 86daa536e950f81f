#!/usr/bin/env bash
# Starts and stops the throwaway services that development and tests use.
#
#   scripts/dev-services.sh start   # start PostgreSQL 15 on a free loopback port; prints `export ...` lines
#   scripts/dev-services.sh stop    # stop it and delete its data
#   scripts/dev-services.sh env     # print the `export ...` lines of the running services
#   scripts/dev-services.sh status  # exit 0 when they are running
#
# The cluster is disposable: fsync is off and every loopback connection is trusted. It allows 300
# connections: the budget scripts/test.sh divides among the tests it runs at once. Its URL is
# written to .dev/env, which `source` or `eval "$(scripts/dev-services.sh env)"` picks up.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dev_dir="$repo_root/.dev"
env_file="$dev_dir/env"
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}

die() { echo "dev-services: $*" >&2; exit 1; }

# Runs a PostgreSQL server binary as the `postgres` OS user when we are root (initdb refuses root).
as_cluster_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_postgres() {
    [ -x "$pg_bin/initdb" ] || die "PostgreSQL 15 server not found in $pg_bin (apt-get install postgresql-15)"
    if [ -f "$env_file" ] && status_postgres >/dev/null 2>&1; then
        cat "$env_file"
        return
    fi
    mkdir -p "$dev_dir"
    # The data directory lives where the cluster owner can reach it even when the checkout
    # sits below a folder only root may enter.
    local data_root
    data_root=$(mktemp -d /tmp/outbox-bridge-pg.XXXXXX)
    chmod 755 "$data_root"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$data_root"; fi
    local data_dir="$data_root/data" port
    port=$(free_port)
    as_cluster_owner "$pg_bin/initdb" --pgdata="$data_dir" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$data_root/initdb.log" 2>&1 \
        || { cat "$data_root/initdb.log" >&2; die "initdb failed"; }
    as_cluster_owner "$pg_bin/pg_ctl" --pgdata="$data_dir" --log="$data_root/server.log" --wait \
        --options="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$data_root -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null \
        || { cat "$data_root/server.log" >&2; die "PostgreSQL did not start"; }
    echo "$data_root" >"$dev_dir/postgres.path"
    cat >"$env_file" <<ENV
export OUTBOX_BRIDGE_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:$port/postgres
export OUTBOX_BRIDGE_PG_BIN=$pg_bin
ENV
    cat "$env_file"
}

status_postgres() {
    [ -f "$dev_dir/postgres.path" ] || return 1
    as_cluster_owner "$pg_bin/pg_ctl" --pgdata="$(cat "$dev_dir/postgres.path")/data" status >/dev/null
}

stop_postgres() {
    [ -f "$dev_dir/postgres.path" ] || return 0
    local data_root
    data_root=$(cat "$dev_dir/postgres.path")
    as_cluster_owner "$pg_bin/pg_ctl" --pgdata="$data_root/data" --mode=immediate --wait stop >/dev/null 2>&1 || true
    rm -rf "$data_root"
    rm -f "$dev_dir/postgres.path" "$env_file"
}

case "${1:-}" in
    start) start_postgres ;;
    stop) stop_postgres ;;
    env) [ -f "$env_file" ] || die "services are not running (scripts/dev-services.sh start)"; cat "$env_file" ;;
    status) [ -f "$env_file" ] && status_postgres ;;
    *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
