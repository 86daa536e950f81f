#!/usr/bin/env bash
# Check 10 (shell, needs several sessions): tenant_seq under concurrent transactions.
#   1. While a transaction of tenant a is open, a tenant b DDL commits (tenants do not wait for
#      each other), and a second tenant a DDL waits for it; when the first rolls back the waiting
#      one gets its number (gap-free), when it commits the waiting one gets the next (commit order).
#   2. Four sessions of one tenant run transactions at once, every third rolled back: the
#      committed events are numbered 1..n without a gap or duplicate, in outbox id order, and
#      each transaction's numbers are consecutive (no other transaction of the tenant got a number
#      in between, so numbers follow commit order).
#   3. (1d) platform.snapshot() is ordered with the tenant's DDL the same way.
# DDL runs as tenant_alice, a plain login without any outbox role.
# Usage: Tests/sql/10_tenant_seq_concurrency.sh BASE_URL   (run by scripts/test-capture.sh)
set -euo pipefail
base_url=$1
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PGOPTIONS="-c client_min_messages=warning"
fail() { echo "CHECK FAILED: $*" >&2; exit 1; }
db=capture_10
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$base_url/$db" -c "$1"; }
tenant() { psql -X -q -At -v ON_ERROR_STOP=1 -U tenant_alice -d "$base_url/$db" "$@"; }
work=$(mktemp -d)
holder_pid=
cleanup() { [ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null; exec 3>&- 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# waits up to 120 s for a query to return t
wait_for() {
    local what=$1 sql=$2 deadline=$((SECONDS + 120))
    until [ "$(q "$sql")" = t ]; do
        [ $SECONDS -lt $deadline ] || fail "timed out waiting for: $what"
        sleep 0.2
    done
}
seq_of() { q "SELECT event_data->>'tenant_seq' FROM platform.schema_changes WHERE event_data->'table'->>'name' = '$1'"; }

psql -X -q -v ON_ERROR_STOP=1 -d "$base_url/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
for f in sql/0*.sql; do psql -X -q -v ON_ERROR_STOP=1 -d "$base_url/$db" -f "$f" >/dev/null; done
q "CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b; CREATE SCHEMA tenant_s;
   GRANT USAGE, CREATE ON SCHEMA tenant_a, tenant_b, tenant_s TO tenant_alice" >/dev/null

# Session "holder": tenant a's transaction, kept open until we write to its input.
hold() { # name: opens a transaction that creates tenant_a.<name> and waits for its end
    mkfifo "$work/in.$1"
    tenant -f - <"$work/in.$1" >"$work/out.$1" 2>&1 &
    holder_pid=$!
    exec 3>"$work/in.$1"
    echo "BEGIN; CREATE TABLE tenant_a.$1 (id int);" >&3
    wait_for "$1 open" "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = '$db' AND state = 'idle in transaction' AND query LIKE '%tenant_a.$1%')"
}
finish() { # ROLLBACK | COMMIT
    echo "$1;" >&3; exec 3>&-
    wait "$holder_pid" || fail "holder session failed: $(cat "$work"/out.*)"
    holder_pid=
}
waiter() { # name: tenant a DDL in the background; must block behind the holder
    tenant -c "CREATE TABLE tenant_a.$1 (id int)" >"$work/waiter.$1" 2>&1 &
    waiter_pid=$!
    wait_for "$1 waiting on the tenant's counter" \
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = '$db' AND wait_event_type = 'Lock' AND query LIKE '%tenant_a.$1%')"
}

tenant -c "CREATE TABLE tenant_a.first (id int)"
[ "$(seq_of first)" = 2 ] || fail "first: expected tenant_seq 2 (after CREATE SCHEMA), got $(seq_of first)"

# 1a. Another tenant's DDL commits while tenant a's transaction is open (it would hang, and
# fail on its timeout, if the counter serialised across tenants).
hold held_rolled_back
tenant -c "SET statement_timeout = '120s'" -c "CREATE TABLE tenant_b.free (id int)" || fail "tenant b waited for tenant a"
[ "$(seq_of free)" = 2 ] || fail "tenant b: expected tenant_seq 2, got $(seq_of free)"
# 1b. Tenant a's next DDL waits; the open transaction rolls back; the waiter takes its number.
waiter after_rollback
finish ROLLBACK
wait "$waiter_pid" || fail "waiter failed: $(cat "$work/waiter.after_rollback")"
[ "$(seq_of after_rollback)" = 3 ] || fail "after rollback: expected the rolled-back number 3, got $(seq_of after_rollback)"
# 1c. Same, the open transaction commits: the waiter gets the next number and a later outbox id.
hold held_committed
waiter after_commit
[ "$(q "SELECT count(*) FROM platform.schema_changes WHERE event_data->'table'->>'name' = 'after_commit'")" = 0 ] \
    || fail "the waiter was numbered while the earlier transaction was open"
finish COMMIT
wait "$waiter_pid" || fail "waiter failed: $(cat "$work/waiter.after_commit")"
[ "$(seq_of held_committed),$(seq_of after_commit)" = "4,5" ] || fail "commit order: expected 4,5, got $(seq_of held_committed),$(seq_of after_commit)"
[ "$(q "SELECT (SELECT id FROM platform.schema_changes WHERE event_data->'table'->>'name' = 'held_committed')
             < (SELECT id FROM platform.schema_changes WHERE event_data->'table'->>'name' = 'after_commit')")" = t ] \
    || fail "commit order: outbox ids out of order"

# 1d. A snapshot of tenant a waits for the tenant's DDL in flight and includes it, with higher
# numbers; a snapshot of tenant b does not wait for tenant a.
hold held_for_snapshot
q "SET statement_timeout = '120s'; SELECT count(*) FROM platform.snapshot('b')" >/dev/null || fail "snapshot of b waited for tenant a"
psql -X -q -At -v ON_ERROR_STOP=1 -d "$base_url/$db" -c "SELECT tables FROM platform.snapshot('a')" >"$work/snapshot.a" 2>&1 &
snapshot_pid=$!
wait_for "snapshot of a waiting for the tenant's counter" \
    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = '$db' AND wait_event_type = 'Lock' AND query LIKE '%platform.snapshot(''a'')%')"
finish COMMIT
wait "$snapshot_pid" || fail "snapshot failed: $(cat "$work/snapshot.a")"
[ "$(q "SELECT event_data->'snapshot_objects' @> '[{\"object_identity\": \"tenant_a.held_for_snapshot\"}]'
          FROM platform.schema_changes WHERE event_data->>'kind' = 'snapshot_end' AND tenant_key = 'a'")" = t ] \
    || fail "the snapshot misses the table committed while it waited"
[ "$(q "SELECT (SELECT max((event_data->>'tenant_seq')::int) FROM platform.schema_changes WHERE tenant_key = 'a' AND event_data->>'kind' = 'ddl')
             < (SELECT min((event_data->>'tenant_seq')::int) FROM platform.schema_changes WHERE tenant_key = 'a' AND event_data->>'kind' LIKE 'snapshot%')")" = t ] \
    || fail "snapshot numbered before the DDL it waited for"

# 2. Four concurrent sessions of tenant s, 15 transactions each, every third rolled back.
pids=()
for worker in 1 2 3 4; do
    for i in $(seq 1 15); do
        end=COMMIT; [ $((i % 3)) = 0 ] && end=ROLLBACK
        echo "BEGIN; CREATE TABLE tenant_s.w${worker}_$i (id int); ALTER TABLE tenant_s.w${worker}_$i ADD COLUMN v text; $end;"
    done | tenant -f - >"$work/worker.$worker" 2>&1 &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || fail "a worker failed: $(cat "$work"/worker.*)"; done
q "SELECT pg_catalog.jsonb_build_object('count', count(*), 'distinct', count(DISTINCT s), 'min', min(s), 'max', max(s))
     FROM (SELECT (event_data->>'tenant_seq')::bigint AS s FROM platform.schema_changes WHERE tenant_key = 's') x" >"$work/summary"
# CREATE SCHEMA (1) + 4 workers x 10 committed transactions x 2 events
[ "$(cat "$work/summary")" = '{"max": 81, "min": 1, "count": 81, "distinct": 81}' ] || fail "gap-free: $(cat "$work/summary")"
[ "$(q "SELECT bool_and(s = r) FROM (SELECT (event_data->>'tenant_seq')::bigint AS s, row_number() OVER (ORDER BY id) AS r
                                       FROM platform.schema_changes WHERE tenant_key = 's') x")" = t ] || fail "numbers not in outbox id order"
[ "$(q "SELECT bool_and(max - min + 1 = n) FROM (SELECT max((event_data->>'tenant_seq')::bigint), min((event_data->>'tenant_seq')::bigint), count(*) AS n
                                                 FROM platform.schema_changes WHERE tenant_key = 's' GROUP BY event_data->'transaction_id') x")" = t ] \
    || fail "a transaction's numbers are not consecutive"
[ "$(q "SELECT count(*) FROM platform.schema_changes WHERE event_data->'table'->>'name' ~ '^w[0-9]_([369]|12|15)$'")" = 0 ] \
    || fail "rolled-back transactions left events"
echo 'check 10 passed'
