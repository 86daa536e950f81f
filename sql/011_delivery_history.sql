-- outbox-bridge migration 11: where replayed events had landed before.
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/011_delivery_history.sql
-- (after the earlier files; see sql/README.md).
--
-- `outbox-bridge replay` marks events pending again so the relay publishes them anew and records
-- their new positions; the positions they had are moved here first, so an audit trail of every
-- place an event was delivered survives the replay.

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 11) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;
INSERT INTO :"schema".schema_migrations (version, name) VALUES (11, 'delivery_history');

CREATE TABLE :"schema".delivery_history (
    outbox_id       bigint NOT NULL,
    event_id        uuid NOT NULL,
    kafka_topic     text NOT NULL,
    kafka_partition int NOT NULL,
    kafka_offset    bigint NOT NULL,
    processed_at    timestamptz,
    replayed_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    replayed_by     text NOT NULL DEFAULT SESSION_USER
);
CREATE INDEX delivery_history_outbox_id_idx ON :"schema".delivery_history (outbox_id);

-- Counting dead events (status, metrics) stays cheap however large the outbox grows.
CREATE INDEX schema_changes_dead_idx ON :"schema".schema_changes (id) WHERE dead;

REVOKE ALL ON :"schema".delivery_history FROM PUBLIC;
GRANT SELECT ON :"schema".delivery_history TO outbox_relay;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 11 (delivery_history) already applied, skipping
\endif
