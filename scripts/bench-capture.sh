#!/usr/bin/env bash
# Capture overhead benchmark: N (default 1000) pairs of CREATE TABLE + ALTER TABLE ADD COLUMN,
# each statement in its own transaction (autocommit, like migrations tools run them), in a
# database without the capture triggers and in one with them installed, in the same run against
# the same server. Prints both timings and the ratio (goal <= 1.3x).
#
#   scripts/bench-capture.sh [N] [ROUNDS]
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
eval "$(scripts/dev-services.sh env)"
base_url=${OUTBOX_BRIDGE_TEST_DATABASE_URL%/*}
n=${1:-1000}
rounds=${2:-3}
export PGOPTIONS="-c client_min_messages=warning"
psql_() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

workload=$(mktemp)
trap 'rm -f "$workload"' EXIT
{
    for i in $(seq 1 "$n"); do
        echo "CREATE TABLE tenant_1.t$i (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz DEFAULT now());"
        echo "ALTER TABLE tenant_1.t$i ADD COLUMN extra integer;"
    done
} >"$workload"

setup() { # db with_triggers
    psql_ -d "$base_url/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
    if [ "$2" = yes ]; then
        for f in sql/0*.sql; do psql_ -d "$base_url/$1" -f "$f" >/dev/null; done
    fi
    psql_ -d "$base_url/$1" -c "CREATE SCHEMA tenant_1"
}

run() { # db -> seconds
    local start end
    psql_ -d "$base_url/$1" -c "DROP SCHEMA tenant_1 CASCADE" -c "CREATE SCHEMA tenant_1" -c "CHECKPOINT" >/dev/null
    start=$(date +%s.%N)
    psql_ -d "$base_url/$1" -f "$workload" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}

setup bench_plain no
setup bench_capture yes
best_plain=999999; best_capture=999999
for r in $(seq 1 "$rounds"); do
    # Interleave so both see the same machine conditions.
    p=$(run bench_plain); c=$(run bench_capture)
    printf 'round %d: without triggers %6.3fs   with triggers %6.3fs   ratio %.3f\n' "$r" "$p" "$c" "$(echo "$c / $p" | bc -l)"
    best_plain=$(echo "if ($p < $best_plain) $p else $best_plain" | bc)
    best_capture=$(echo "if ($c < $best_capture) $c else $best_capture" | bc)
done
events=$(psql_ -At -d "$base_url/bench_capture" -c "SELECT count(*) FROM platform.schema_changes WHERE event_data->>'command' IN ('CREATE TABLE', 'ALTER TABLE') AND created_at > now() - interval '1 hour'")
printf 'best of %d: without %.3fs (%.0f us/stmt)  with %.3fs (%.0f us/stmt)  ratio %.3f  (goal <= 1.3)\n' "$rounds" \
    "$best_plain" "$(echo "$best_plain * 1000000 / (2 * $n)" | bc -l)" \
    "$best_capture" "$(echo "$best_capture * 1000000 / (2 * $n)" | bc -l)" \
    "$(echo "$best_capture / $best_plain" | bc -l)"
echo "events captured in bench_capture (all rounds): $events"
