#!/usr/bin/env bash
# The whole pipeline, end to end on one machine: a throwaway PostgreSQL 15, the outbox
# installed, the in-memory development broker, `outbox-bridge run` relaying schema changes from
# three tenants to Kafka, and the consumers acting on them: `sdk-sync` writing a TypeScript
# package per tenant, `warehouse-sync` mirroring the tables into a warehouse database,
# `schema-state` keeping the latest shape of every table in a compacted topic, and `exec` running
# examples/markdown-docs.sh per event. Shows the records as an independent client (kcat) reads
# them, the outbox rows with the partition and offset each event landed at, one tenant's
# generated src/index.ts compiled with tsc --strict, the mirrored table in the warehouse, a
# schema-state record, a generated documentation page, and the relay's status page URL.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

scripts/install-deps.sh demo
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release --product outbox-bridge
bridge="$repo_root/.build/release/outbox-bridge"

# Services someone already started (a developer's) are used and left running.
started_services=false
if scripts/dev-services.sh status; then
    eval "$(scripts/dev-services.sh env)"
else
    eval "$(scripts/dev-services.sh start)"
    started_services=true
fi
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if $started_services; then scripts/dev-services.sh stop; fi
}
trap cleanup EXIT

database_url="${OUTBOX_BRIDGE_TEST_DATABASE_URL%/*}/outbox_demo"
warehouse_url="${OUTBOX_BRIDGE_TEST_DATABASE_URL%/*}/outbox_demo_warehouse"
psql -X -q "$OUTBOX_BRIDGE_TEST_DATABASE_URL" -c 'DROP DATABASE IF EXISTS outbox_demo' -c 'CREATE DATABASE outbox_demo' \
    -c 'DROP DATABASE IF EXISTS outbox_demo_warehouse' -c 'CREATE DATABASE outbox_demo_warehouse'
"$bridge" install --database-url "$database_url"

bootstrap_file="$repo_root/.dev/bootstrap"
rm -f "$bootstrap_file"
"$bridge" dev-broker --brokers 1 --partitions 6 --topic schema-changes --topic schema-changes.dead-letter --topic schema-state \
    --bootstrap-file "$bootstrap_file" >/dev/null 2>"$repo_root/.dev/dev-broker.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$bootstrap_file" ] && break; sleep 0.1; done
brokers=$(cat "$bootstrap_file")
echo "== development broker at $brokers"

# `run` needs brokers: without them it exits 2. (`run --dev-broker` would start the same mock
# cluster inside the relay instead, lost when the relay exits; a separate process lets kcat read
# what the relay wrote.)
http_port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bridge" run --database-url "$database_url" --brokers "$brokers" --http-port "$http_port" 2>"$repo_root/.dev/relay.log" &
pids+=($!)

# The consumers: each its own consumer group on the same topic.
sdk_dir="$repo_root/.dev/demo-sdks"
rm -rf "$sdk_dir"
"$bridge" sdk-sync --brokers "$brokers" --out "$sdk_dir" 2>"$repo_root/.dev/sdk-sync.log" &
pids+=($!)
"$bridge" warehouse-sync --brokers "$brokers" --warehouse-url "$warehouse_url" 2>"$repo_root/.dev/warehouse-sync.log" &
pids+=($!)
"$bridge" schema-state --brokers "$brokers" --state-topic schema-state 2>"$repo_root/.dev/schema-state.log" &
pids+=($!)
docs_dir="$repo_root/.dev/demo-docs"
rm -rf "$docs_dir"
"$bridge" exec --brokers "$brokers" --group markdown-docs -- examples/markdown-docs.sh "$docs_dir" \
    2>"$repo_root/.dev/exec.log" &
pids+=($!)

echo "== three tenants change their schemas"
psql -X -q "$database_url" <<'SQL'
CREATE SCHEMA tenant_acme;
CREATE TABLE tenant_acme.sensors (id bigint PRIMARY KEY, reading float8 NOT NULL);
ALTER TABLE tenant_acme.sensors ADD COLUMN humidity numeric;
CREATE SCHEMA tenant_globex;
CREATE TYPE tenant_globex.status AS ENUM ('active', 'retired');
CREATE TABLE tenant_globex.devices (id uuid PRIMARY KEY, status tenant_globex.status);
BEGIN;
CREATE SCHEMA tenant_initech;
CREATE TABLE tenant_initech.tps_reports (id serial PRIMARY KEY, cover_sheet boolean DEFAULT false);
COMMENT ON TABLE tenant_initech.tps_reports IS 'Did you get the memo?';
COMMIT;
SQL

# Waits up to a minute for a command to succeed.
wait_until() {
    local what=$1
    shift
    for _ in $(seq 600); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "demo: timed out waiting for $what (logs in .dev/)" >&2
    exit 1
}
# Whether a query prints "t".
holds() {
    [ "$(psql -X -At "$1" -c "$2" 2>/dev/null)" = t ]
}
# Waits up to a minute for a query to print "t".
wait_for() {
    wait_until "$3" holds "$1" "$2"
}
wait_for "$database_url" 'SELECT count(*) = 0 FROM platform.schema_changes WHERE NOT processed' "the relay"
ddl_events=$(psql -X -At "$database_url" -c "SELECT count(*) FROM platform.schema_changes WHERE event_data->>'kind' = 'ddl'")
wait_for "$warehouse_url" \
    "SELECT pg_catalog.to_regclass('outbox_warehouse.applied_events') IS NOT NULL AND (SELECT count(*) >= $ddl_events FROM outbox_warehouse.applied_events)" \
    "warehouse-sync"
wait_until "sdk-sync" test -f "$sdk_dir/initech/package.json" -a -f "$sdk_dir/acme/dist/index.js"
state_key="acme/tenant_acme.sensors"
wait_until "schema-state" sh -c "kcat -C -b '$brokers' -t schema-state -e -q -f '%k\n' | grep -qx '$state_key'"
wait_until "exec" grep -q humidity "$docs_dir/acme/tenant_acme.sensors.md"

echo "== what Kafka holds (read with kcat): partition, offset, key, ce_type"
kcat -C -b "$brokers" -t schema-changes -e -q -f '%p\t%o\t%k\t%h\n' | awk -F'\t' '{
    match($4, /ce_type=[^,]*/); print $1 "\t" $2 "\t" $3 "\t" substr($4, RSTART + 8, RLENGTH - 8) }' | sort -n -k1 -k2
echo "== the outbox rows, marked only after Kafka acknowledged them"
psql -X "$database_url" -c "SELECT id, tenant_key, event_data->>'command' AS command, processed,
    kafka_topic, kafka_partition, kafka_offset FROM platform.schema_changes ORDER BY id"
echo "== the ALTER TABLE event as consumers receive it, read at the position its row records"
read -r partition offset < <(psql -X -At -F ' ' "$database_url" -c \
    "SELECT kafka_partition, kafka_offset FROM platform.schema_changes WHERE event_data->>'command' = 'ALTER TABLE'")
kcat -C -b "$brokers" -t schema-changes -p "$partition" -o "$offset" -c 1 -e -q -f '%s\n' | python3 -m json.tool

echo "== sdk-sync: the package of tenant acme ($sdk_dir/acme)"
(cd "$sdk_dir/acme" && find . -type f -not -name '.outbox-sdk-state.json' | sort)
echo "-- src/index.ts"
cat "$sdk_dir/acme/src/index.ts"
echo "-- compiled with tsc --strict"
tsc --strict --noEmit --target ES2020 --module ES2020 --moduleResolution node "$sdk_dir/acme/src/index.ts"
echo "tsc --strict: no errors"
echo "-- and usable from Node as it is: require('$sdk_dir/acme')"
node -e 'const sdk = require(process.argv[1]); console.log(sdk.tenant, sdk.version, sdk.tables.map((t) => t.name))' "$sdk_dir/acme"

echo "== warehouse-sync: the mirrored table in the warehouse database"
psql -X "$warehouse_url" -c '\d tenant_acme.sensors'
psql -X "$warehouse_url" -c 'SELECT tenant, command, outcome, topic, "partition", "offset" FROM outbox_warehouse.applied_events ORDER BY applied_at'

echo "== schema-state: the latest shape of $state_key in the compacted topic"
kcat -C -b "$brokers" -t schema-state -e -q -f '%k %s\n' | grep "^$state_key " | tail -n 1 | cut -c 1-300

echo "== exec: examples/markdown-docs.sh wrote documentation per tenant ($docs_dir)"
(cd "$docs_dir" && find . -type f | sort)
echo "-- acme/tenant_acme.sensors.md"
cat "$docs_dir/acme/tenant_acme.sensors.md"

echo "== the relay's status page and endpoints (while this script runs)"
echo "   status page:  http://127.0.0.1:$http_port/"
echo "   metrics:      http://127.0.0.1:$http_port/metrics"
echo "   readiness:    http://127.0.0.1:$http_port/health/ready"
if [ -t 0 ] && [ -t 1 ]; then
    read -r -p "Press Enter to stop the demo. " _
fi
