#!/usr/bin/env bash
# Capture overhead benchmark.
#
#   scripts/bench-capture.sh [N] [ROUNDS]      # defaults: 1000 pairs, 7 rounds
#   BENCH_PG_MAJOR=18 scripts/bench-capture.sh  # the server major (default 15; others from scripts/pg-versions.sh)
#   BENCH_DURABILITY=fast scripts/bench-capture.sh  # fsync, synchronous_commit, full_page_writes off
#   BENCH_SQL_DIR=/tmp/old-sql scripts/bench-capture.sh   # install the NNN_*.sql of another version
#   BENCH_BASELINE_SQL_DIR=/tmp/old-sql scripts/bench-capture.sh  # also run that version's capture functions, as mode "baseline"
#   BENCH_CALLGRIND=1 scripts/bench-capture.sh 25  # instructions per statement instead of time (valgrind)
#
# The server is a private cluster of the chosen major, started for the run and removed after it.
# BENCH_DURABILITY=durable (the default) is what users run: fsync, synchronous_commit and
# full_page_writes on, so every statement's commit waits for its WAL to reach the disk. fast turns
# the three off, which leaves the CPU cost alone in the wall time.
#
# Workload: N pairs of CREATE TABLE + ALTER TABLE ADD COLUMN, each statement in its own
# transaction (autocommit, the way migration tools run them), sent by one psql session.
#
# Everything runs in ONE database with the capture installed; only which event triggers are
# enabled differs between the modes (PostgreSQL does not even load a disabled event trigger, so
# "plain" is exactly a database without triggers):
#
#   plain    no event trigger enabled
#   empty    one do-nothing plpgsql trigger on ddl_command_end (same WHEN TAG list as the
#            capture trigger): the fixed cost of having an event trigger at all -- the floor
#   capture  the two outbox-bridge triggers
#   baseline (only with BENCH_BASELINE_SQL_DIR) the same triggers running the functions of another
#            version of sql/: a change to the capture is compared with what it replaces in the
#            same rounds and the same database, which runs one after the other are not (on a
#            shared machine a bare statement's CPU moved 2x between such runs, and a second
#            database is not comparable: its files go to other ext4 directories). Before each
#            capture or baseline run that version's functions are put in place (CREATE OR
#            REPLACE of every function of the schema, as installed in a scratch database), so
#            the two versions must have the same tables: this compares changes of functions,
#            like migration 18.
#
# Every round runs each mode once (the order rotates from round to round), so all modes see the
# same machine conditions. Each run creates its tables in a new schema tenant_<run>; nothing is
# dropped until the end. Dropping thousands of tables between runs made the next runs measure
# the file system instead: ext4 avoids reusing recently freed inodes (60-300 s), so after the
# checkpoint that unlinks the dropped files every new file scans past them, which made a bare
# CREATE TABLE 2-4x slower at random (whenever a checkpoint happened to run) and hid the trigger
# cost behind it. Per run it measures the wall time of the psql session and the CPU
# time of its server backend (from /proc; insensitive to other load on the machine, which the wall
# time is not). Reported: per-round numbers and, per mode, medians over rounds of the time and of
# the per-round ratio mode/plain, and the backend CPU the capture adds per statement. Goals:
# capture/plain wall ratio <= 1.3 with durable commits, and <= 200 us of backend CPU added per
# statement.
#
# BENCH_CALLGRIND=1 counts instructions instead, which other load on the machine does not change:
# the server runs under valgrind's callgrind (every backend writes its own count when it exits),
# and each mode runs two sessions, one of BENCH_CALLGRIND_WARMUP pairs (default 5) and one of that
# many plus N, so that the difference holds N pairs in a warm session (plans cached, plpgsql
# compiled) and nothing of the sessions' start-up. Reported: instructions per statement per mode,
# and what the capture (and baseline) add over plain. Valgrind runs everything ~50x slower: use a
# small N (25 takes a few minutes, most of it the install). Backend user-space instructions
# only: the kernel's share of a statement (file creation, WAL writes) is not in them.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
major=${BENCH_PG_MAJOR:-15}
durability=${BENCH_DURABILITY:-durable}
case $durability in
    durable) durable_setting=on ;;
    fast) durable_setting=off ;;
    *) echo "bench-capture: BENCH_DURABILITY must be durable or fast, got $durability" >&2; exit 2 ;;
esac
if [ "$major" = 15 ]; then pg_bin=/usr/lib/postgresql/15/bin; else pg_bin=$(scripts/pg-versions.sh bin "$major"); fi
as_cluster_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
n=${1:-1000}
rounds=${2:-7}
modes=(plain empty capture)
db=bench_capture
[ -z "${BENCH_BASELINE_SQL_DIR:-}" ] || modes+=(baseline)
stmts=$((2 * n))
export PGOPTIONS="-c client_min_messages=warning"
psql_() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

tmp=$(mktemp -d)
chmod 755 "$tmp"
if [ "$(id -u)" = 0 ]; then chown postgres "$tmp"; fi
cleanup() {
    # Under callgrind a backend writes its counts as it exits, which an immediate stop does not
    # wait for (the folder was then still being written while it was removed); a fast stop does.
    local stop_mode=immediate
    [ "${BENCH_CALLGRIND:-0}" = 1 ] && stop_mode=fast
    as_cluster_owner "$pg_bin/pg_ctl" --pgdata="$tmp/data" --mode=$stop_mode --wait stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
    mkdir -p "$repo_root/.dev" && date +%s >"$repo_root/.dev/bench-last-drop"
}
trap cleanup EXIT
{
    # The backend's pid goes to a file first; after the workload its CPU time is read from /proc
    # while the session is still open.
    echo "\\pset tuples_only on"
    echo "\\pset format unaligned"
    echo "\\o $tmp/pid"
    echo "SELECT pg_backend_pid();"
    echo "\\o"
    for i in $(seq 1 "$n"); do
        echo "CREATE TABLE :\"schema\".t$i (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());"
        echo "ALTER TABLE :\"schema\".t$i ADD COLUMN extra integer;"
    done
    echo "\\! cat /proc/\$(cat $tmp/pid)/stat > $tmp/stat"
} >"$tmp/workload.sql"

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_cluster_owner "$pg_bin/initdb" --pgdata="$tmp/data" --username=postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; exit 1; }
server_options="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$tmp -c fsync=$durable_setting -c synchronous_commit=$durable_setting -c full_page_writes=$durable_setting"
if [ -n "${BENCH_CALLGRIND:-}" ]; then
    command -v valgrind >/dev/null || { echo "bench-capture: BENCH_CALLGRIND needs valgrind (apt-get install valgrind)" >&2; exit 2; }
    mkdir "$tmp/callgrind"
    if [ "$(id -u)" = 0 ]; then chown postgres "$tmp/callgrind"; fi
    # shellcheck disable=SC2086 # the options are words
    as_cluster_owner valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$tmp/callgrind/out.%p" \
        "$pg_bin/postgres" -D "$tmp/data" $server_options -c autovacuum=off >"$tmp/server.log" 2>&1 &
    for _ in $(seq 1 300); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 1; done
    pg_isready -q -h 127.0.0.1 -p "$port" || { cat "$tmp/server.log" >&2; exit 1; }
else
    as_cluster_owner "$pg_bin/pg_ctl" --pgdata="$tmp/data" --log="$tmp/server.log" --wait --options="$server_options" \
        start >/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
fi
base_url=postgresql://postgres@127.0.0.1:$port
url="$base_url/$db"
server=$(psql_ -At -d "$base_url/postgres" -c "SELECT pg_catalog.split_part(pg_catalog.current_setting('server_version'), ' ', 1) || ', fsync ' || pg_catalog.current_setting('fsync') || ', synchronous_commit ' || pg_catalog.current_setting('synchronous_commit')")
echo "PostgreSQL $server ($durability)"

# Let the file system settle first: a cluster removed less than a minute ago (by this script's
# last run) leaves thousands of freed inodes that ext4 will not reuse for 60 s
# (300 s while their inode table blocks are dirty, hence the sync), and until then every file a
# CREATE TABLE makes costs several times more -- measured: 1100 instead of 300 us per statement.
settle_file=$repo_root/.dev/bench-last-drop
psql_ -d "$base_url/postgres" -c "CREATE DATABASE $db"
sync
if [ "${BENCH_SETTLE:-65}" -gt 0 ]; then
    last=$(cat "$settle_file" 2>/dev/null || echo 0)
    wait_s=$((last + ${BENCH_SETTLE:-65} - $(date +%s)))
    if [ "$wait_s" -gt 0 ]; then
        echo "waiting ${wait_s}s for the file system to settle after the last drop (BENCH_SETTLE=0 skips)"
        sleep "$wait_s"
    fi
fi
for f in "${BENCH_SQL_DIR:-sql}"/0*.sql; do psql_ -d "$url" -f "$f" >/dev/null; done
functions_of() { # database url -> the CREATE OR REPLACE of every function of the capture's schema
    psql_ -At -d "$1" -c "SELECT pg_catalog.string_agg(pg_catalog.pg_get_functiondef(p.oid) || ';', E'\n')
                            FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'platform'::regnamespace AND p.prokind = 'f'"
}
if [ -n "${BENCH_BASELINE_SQL_DIR:-}" ]; then
    psql_ -d "$base_url/postgres" -c "CREATE DATABASE bench_capture_baseline"
    for f in "$BENCH_BASELINE_SQL_DIR"/0*.sql; do psql_ -d "$base_url/bench_capture_baseline" -f "$f" >/dev/null; done
    functions_of "$base_url/bench_capture_baseline" >"$tmp/functions-baseline.sql"
    functions_of "$url" >"$tmp/functions-capture.sql"
fi
psql_ -d "$url" >/dev/null <<'SQL'
CREATE FUNCTION public.bench_empty_trigger() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
CREATE EVENT TRIGGER bench_empty ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE',
                 'CREATE SCHEMA', 'CREATE TYPE', 'ALTER TYPE', 'COMMENT')
    EXECUTE FUNCTION public.bench_empty_trigger();
SQL

triggers_of() { # mode -> event triggers it enables
    case $1 in
        plain) ;;
        empty) echo bench_empty ;;
        capture) echo outbox_bridge_capture_ddl outbox_bridge_capture_drop ;;
    esac
}

set_triggers() { # mode: enable exactly that mode's triggers
    local sql="" t
    for t in bench_empty outbox_bridge_capture_ddl outbox_bridge_capture_drop; do sql+="ALTER EVENT TRIGGER $t DISABLE;"; done
    for t in $(triggers_of "$1"); do sql+="ALTER EVENT TRIGGER $t ENABLE;"; done
    psql_ -d "$url" -c "$sql"
}

run() { # mode schema -> "wall_seconds backend_cpu_seconds backend_system_cpu_seconds"
    local start end schema=$2
    set_triggers plain >/dev/null
    psql_ -d "$url" -c "CREATE SCHEMA $schema" -c "CHECKPOINT" >/dev/null
    if [ -n "${BENCH_BASELINE_SQL_DIR:-}" ] && { [ "$1" = capture ] || [ "$1" = baseline ]; }; then
        psql_ -d "$url" -f "$tmp/functions-$1.sql" >/dev/null
    fi
    if [ "$1" = baseline ]; then set_triggers capture >/dev/null; else set_triggers "$1" >/dev/null; fi
    start=$(date +%s.%N)
    psql_ -d "$url" -v schema="$schema" -f "$tmp/workload.sql" >/dev/null
    end=$(date +%s.%N)
    set_triggers plain >/dev/null
    echo "$(echo "$end - $start" | bc) $(awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz, $15 / hz }' "$tmp/stat")"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v m="$1" -v c="$2" '$1 == m { print $c }' "$tmp/results" | median; }  # mode column -> median

instructions() { # mode schema pairs -> instructions of one session of that many pairs
    local pid
    sed -n '1,5p' "$tmp/workload.sql" >"$tmp/session.sql"
    sed -n "6,$((5 + 2 * $3))p" "$tmp/workload.sql" >>"$tmp/session.sql"
    psql_ -d "$url" -v schema="$2" -f "$tmp/session.sql" >/dev/null
    pid=$(cat "$tmp/pid")
    # The count is written when the backend exits, shortly after psql disconnects.
    for _ in $(seq 1 600); do grep -q '^totals:' "$tmp/callgrind/out.$pid" 2>/dev/null && break; sleep 0.5; done
    awk '/^totals:/ { print $2 }' "$tmp/callgrind/out.$pid"
}
if [ -n "${BENCH_CALLGRIND:-}" ]; then
    warmup=${BENCH_CALLGRIND_WARMUP:-5}
    [ "$n" -gt 0 ] && [ "$warmup" -gt 0 ] || { echo "bench-capture: N and BENCH_CALLGRIND_WARMUP must be positive" >&2; exit 2; }
    # The workload with warmup + N pairs; each session runs its first lines.
    n=$((warmup + n)) && stmts=$((2 * (n - warmup)))
    {
        echo "\\pset tuples_only on"; echo "\\pset format unaligned"; echo "\\o $tmp/pid"; echo "SELECT pg_backend_pid();"; echo "\\o"
        for i in $(seq 1 "$n"); do
            echo "CREATE TABLE :\"schema\".t$i (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());"
            echo "ALTER TABLE :\"schema\".t$i ADD COLUMN extra integer;"
        done
    } >"$tmp/workload.sql"
    declare -A per_stmt=()
    for m in "${modes[@]}"; do
        set_triggers plain >/dev/null
        psql_ -d "$url" -c "CREATE SCHEMA tenant_${m}_short" -c "CREATE SCHEMA tenant_${m}_long" >/dev/null
        if [ -n "${BENCH_BASELINE_SQL_DIR:-}" ] && { [ "$m" = capture ] || [ "$m" = baseline ]; }; then
            psql_ -d "$url" -f "$tmp/functions-$m.sql" >/dev/null
        fi
        if [ "$m" = baseline ]; then set_triggers capture >/dev/null; else set_triggers "$m" >/dev/null; fi
        short=$(instructions "$m" "tenant_${m}_short" "$warmup")
        long=$(instructions "$m" "tenant_${m}_long" "$n")
        per_stmt[$m]=$(((long - short) / stmts))
        printf '  %-8s %9d instructions/stmt\n' "$m" "${per_stmt[$m]}"
    done
    set_triggers plain >/dev/null
    line="RESULT PostgreSQL $major instructions per statement ($stmts statements after $((2 * warmup)) of warm-up): plain ${per_stmt[plain]}"
    for m in "${modes[@]}"; do
        [ "$m" = plain ] || line+=$(printf ', %s +%d (ratio %.3f)' "$m" "$((per_stmt[$m] - per_stmt[plain]))" "$(echo "${per_stmt[$m]} / ${per_stmt[plain]}" | bc -l)")
    done
    echo "$line"
    exit 0
fi

# results: mode wall cpu wall/plain cpu/plain system-cpu
for r in $(seq 1 "$rounds"); do
    declare -A wall=() cpu=() sys=()
    for k in "${!modes[@]}"; do
        m=${modes[$(((r + k) % ${#modes[@]}))]}   # rotate the order so that no mode always runs first
        read -r wall[$m] cpu[$m] sys[$m] < <(run "$m" "tenant_${r}_$m")
    done
    line="round $r:"
    for m in "${modes[@]}"; do
        line+=$(printf '  %s %6.3fs (cpu %5.2fs)' "$m" "${wall[$m]}" "${cpu[$m]}")
        echo "$m ${wall[$m]} ${cpu[$m]} $(echo "${wall[$m]} / ${wall[plain]}" | bc -l) $(echo "${cpu[$m]} / ${cpu[plain]}" | bc -l) ${sys[$m]}" >>"$tmp/results"
    done
    echo "$line$(printf '  capture/plain %.3f' "$(echo "${wall[capture]} / ${wall[plain]}" | bc -l)")"
    [ -z "${cpu[baseline]:-}" ] || echo "${cpu[capture]} / ${cpu[baseline]}" | bc -l >>"$tmp/versus"
done

echo "medians over $rounds rounds, $stmts statements per run (wall = psql session; cpu = its backend):"
for m in "${modes[@]}"; do
    printf '  %-8s wall %6.3fs %5.0f us/stmt  ratio %.3f   cpu %6.3fs %5.0f us/stmt  ratio %.3f\n' "$m" \
        "$(col "$m" 2)" "$(echo "$(col "$m" 2) * 1000000 / $stmts" | bc -l)" "$(col "$m" 4)" \
        "$(col "$m" 3)" "$(echo "$(col "$m" 3) * 1000000 / $stmts" | bc -l)" "$(col "$m" 5)"
done
printf 'overhead per statement (wall): capture %.0f us, empty trigger (floor) %.0f us\n' \
    "$(echo "($(col capture 2) - $(col plain 2)) * 1000000 / $stmts" | bc -l)" \
    "$(echo "($(col empty 2) - $(col plain 2)) * 1000000 / $stmts" | bc -l)"
# In the kernel (system time) the backend mostly writes and fsyncs WAL: more WAL per statement costs
# CPU there too, which fast mode hides.
printf 'backend CPU added per statement: %.0f us user, %.0f us system\n' \
    "$(echo "($(col capture 3) - $(col capture 6) - $(col plain 3) + $(col plain 6)) * 1000000 / $stmts" | bc -l)" \
    "$(echo "($(col capture 6) - $(col plain 6)) * 1000000 / $stmts" | bc -l)"
printf 'RESULT PostgreSQL %s %s: median capture/plain ratio: wall %.3f (goal <= 1.3 durable), cpu %.3f; backend CPU added %.0f us/stmt (goal <= 200); empty-trigger floor: wall %.3f, cpu %.3f\n' \
    "$major" "$durability" "$(col capture 4)" "$(col capture 5)" \
    "$(echo "($(col capture 3) - $(col plain 3)) * 1000000 / $stmts" | bc -l)" "$(col empty 4)" "$(col empty 5)"
if [ -n "${BENCH_BASELINE_SQL_DIR:-}" ]; then
    printf 'RESULT capture against baseline %s: median per-round backend CPU ratio capture/baseline %.3f; backend CPU added by capture %.0f us/stmt, by baseline %.0f us/stmt\n' \
        "$BENCH_BASELINE_SQL_DIR" "$(median <"$tmp/versus")" \
        "$(echo "($(col capture 3) - $(col plain 3)) * 1000000 / $stmts" | bc -l)" \
        "$(echo "($(col baseline 3) - $(col plain 3)) * 1000000 / $stmts" | bc -l)"
fi
events=$(psql_ -At -d "$url" -c "SELECT count(*) FROM platform.schema_changes WHERE event_data->>'command' IN ('CREATE TABLE', 'ALTER TABLE')")
captures=$((rounds * stmts)); [ -z "${BENCH_BASELINE_SQL_DIR:-}" ] || captures=$((2 * captures))
echo "events captured (all capture and baseline runs): $events (expected $captures)"
[ "$events" = "$captures" ]
