#!/usr/bin/env bash
# Measures the partial index on pending outbox rows: 1,000,000 processed rows + 1,000 pending
# rows, the relay's claim query under EXPLAIN (ANALYZE, BUFFERS) with the partial index and with
# it dropped (inside a transaction that is rolled back).
#
#   scripts/explain-pending-index.sh [PROCESSED] [PENDING]
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
eval "$(scripts/dev-services.sh env)"
base_url=${OUTBOX_BRIDGE_TEST_DATABASE_URL%/*}
processed=${1:-1000000}
pending=${2:-1000}
export PGOPTIONS="-c client_min_messages=warning"
db=capture_explain
psql -X -q -v ON_ERROR_STOP=1 -d "$base_url/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
for f in sql/0*.sql; do psql -X -q -v ON_ERROR_STOP=1 -d "$base_url/$db" -f "$f" >/dev/null; done

psql -X -q -v ON_ERROR_STOP=1 -d "$base_url/$db" <<SQL
INSERT INTO platform.schema_changes (event_data, tenant_key, processed, processed_at, kafka_topic, kafka_partition, kafka_offset)
SELECT jsonb_build_object('version', 1, 'kind', 'ddl', 'event_id', gen_random_uuid(), 'command', 'ALTER TABLE',
                          'schema_name', 'tenant_' || (g % 500), 'tenant_id', (g % 500)::text),
       (g % 500)::text, true, now(), 'schema-changes', g % 12, g
FROM generate_series(1, $processed) g;
INSERT INTO platform.schema_changes (event_data, tenant_key)
SELECT jsonb_build_object('version', 1, 'kind', 'ddl', 'event_id', gen_random_uuid(), 'command', 'CREATE TABLE'),
       (g % 50)::text
FROM generate_series(1, $pending) g;
VACUUM ANALYZE platform.schema_changes;
SQL

claim="SELECT id, event_data, tenant_key FROM platform.schema_changes
 WHERE NOT processed AND NOT dead AND (next_attempt_at IS NULL OR next_attempt_at <= now())
 ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED"
count="SELECT count(*) FROM platform.schema_changes WHERE NOT processed AND NOT dead"

echo "== rows: $processed processed + $pending pending; sizes:"
psql -X -At -d "$base_url/$db" -c "SELECT relname || ': ' || pg_size_pretty(pg_relation_size(oid)) FROM pg_class WHERE relname IN ('schema_changes', 'schema_changes_pkey', 'schema_changes_pending_idx')"
for variant in with_index without_index; do
    echo; echo "== $variant"
    psql -X -q -v ON_ERROR_STOP=1 -d "$base_url/$db" <<SQL
BEGIN;
$( [ $variant = without_index ] && echo "DROP INDEX platform.schema_changes_pending_idx;" )
-- warm up twice, then measure
\o /dev/null
$claim;
$claim;
\o
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $claim;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) $count;
ROLLBACK;
SQL
done
