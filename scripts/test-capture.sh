#!/usr/bin/env bash
# Runs the capture checks in Tests/sql against the dev PostgreSQL 15 (scripts/dev-services.sh start).
#
#   scripts/test-capture.sh            # all checks
#   scripts/test-capture.sh 03         # only check files whose name starts with 03
#
# Each Tests/sql/NN_*.sql runs in its own fresh database with sql/*.sql installed (schema
# platform) and Tests/sql/_helpers.sql loaded; the check RAISEs on failure. Finally every captured
# event from all those databases is validated against sql/event.schema.json.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
eval "$(scripts/dev-services.sh env)"
base_url=${OUTBOX_BRIDGE_TEST_DATABASE_URL%/*}
filter=${1:-}
export PGOPTIONS="-c client_min_messages=warning"
psql_() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

install() { # db [schema]
    local db=$1 schema=${2:-platform} f
    for f in sql/0*.sql; do
        psql_ -v schema="$schema" -d "$base_url/$db" -f "$f" >/dev/null
    done
}

# Cluster-wide test roles (trust auth lets us connect as them).
psql_ -d "$base_url/postgres" -f Tests/sql/_roles.sql

dbs=()
failed=0
for check in Tests/sql/[0-9]*.sql; do
    name=$(basename "$check" .sql)
    [[ -n "$filter" && "$name" != "$filter"* ]] && continue
    db="capture_${name%%_*}"
    psql_ -d "$base_url/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    # Roles must exist before install (install creates outbox_* roles) and be members afterwards.
    install "$db"
    psql_ -d "$base_url/$db" -f Tests/sql/_helpers.sql >/dev/null
    psql_ -d "$base_url/postgres" -c "GRANT outbox_automation TO automation_bot" -c "GRANT outbox_emitter TO app_emitter" >/dev/null
    if psql_ -t -d "$base_url/$db" -v base_url="$base_url" -v db="$db" -f "$check" >"/tmp/$db.log" 2>&1; then
        echo "PASS $name"
    else
        echo "FAIL $name"; sed 's/^/    /' "/tmp/$db.log" | tail -20; failed=1
    fi
    dbs+=("$db")
done

for check in Tests/sql/[0-9]*.sh; do
    name=$(basename "$check" .sh)
    [[ -n "$filter" && "$name" != "$filter"* ]] && continue
    if "$check" "$base_url" >"/tmp/capture_${name%%_*}.log" 2>&1; then
        echo "PASS $name"
    else
        echo "FAIL $name"; sed 's/^/    /' "/tmp/capture_${name%%_*}.log" | tail -20; failed=1
    fi
    # check 05 captures into a hostile schema name; validate those events too
    [[ "$name" == 05_* ]] && dbs+=("capture_05:out\"box; sch*/ema ü")
    # check 10's concurrent transactions and snapshots
    [[ "$name" == 10_* ]] && dbs+=(capture_10)
done

if [ ${#dbs[@]} -gt 0 ]; then
    python3 scripts/validate-events.py "$base_url" "${dbs[@]}" || failed=1
fi
exit $failed
