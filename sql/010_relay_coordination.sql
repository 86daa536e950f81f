-- outbox-bridge migration 10: what the relay needs beyond the outbox itself.
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/010_relay_coordination.sql
-- (after 001-003; see sql/README.md). Same conventions as the other files: the schema comes from
-- the psql variable `schema`, and the part between the body markers is what the programmatic
-- installer runs.
--
-- relay_leases: tenants hash to a fixed number of shards (one row each). A relay instance relays
--   only shards it holds an unexpired lease on, so several instances share the work without
--   publishing an event twice or reordering a tenant. Rows, not advisory locks, so leases work
--   through a connection pooler in transaction mode.
-- relay_instances: heartbeats, so each instance can size its fair share of the shards.

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 10) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;
INSERT INTO :"schema".schema_migrations (version, name) VALUES (10, 'relay_coordination');

CREATE TABLE :"schema".relay_leases (
    shard      int PRIMARY KEY CHECK (shard >= 0),
    owner      uuid,
    expires_at timestamptz NOT NULL DEFAULT '-infinity'
);
-- Sixteen shards: enough to spread over a handful of instances. Changing the count moves
-- tenants between shards, so do it only with every relay instance stopped.
INSERT INTO :"schema".relay_leases (shard) SELECT pg_catalog.generate_series(0, 15);

CREATE TABLE :"schema".relay_instances (
    id           uuid PRIMARY KEY,
    host         text,
    started_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    heartbeat_at timestamptz NOT NULL
);

-- Tenants waiting for a retry are excluded from every claim; this keeps finding them cheap.
CREATE INDEX schema_changes_retry_wait_idx
    ON :"schema".schema_changes (tenant_key)
    WHERE NOT processed AND NOT dead AND next_attempt_at IS NOT NULL;

REVOKE ALL ON :"schema".relay_leases, :"schema".relay_instances FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON :"schema".relay_leases, :"schema".relay_instances TO outbox_relay;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 10 (relay_coordination) already applied, skipping
\endif
