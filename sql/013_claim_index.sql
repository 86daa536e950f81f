-- outbox-bridge migration 13: claims that skip a waiting tenant's backlog instead of scanning it.
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/013_claim_index.sql
-- (after the earlier files; see sql/README.md).
--
-- A tenant whose event waits for a retry holds back all its later events, and a claim used to
-- walk pending rows in id order, rejecting that tenant's rows one by one. This index lets a claim
-- find each tenant with pending rows in one probe and read only the rows of tenants it may claim
-- for, so a poisoned tenant's backlog costs a claim nothing.

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 13) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;
INSERT INTO :"schema".schema_migrations (version, name) VALUES (13, 'claim_index');

CREATE INDEX schema_changes_pending_tenant_idx
    ON :"schema".schema_changes (tenant_key, id)
    WHERE NOT processed AND NOT dead;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 13 (claim_index) already applied, skipping
\endif
