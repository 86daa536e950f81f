-- outbox-bridge migration 12: retention under the relay's own role.
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/012_retention.sql
-- (after the earlier files; see sql/README.md).
--
-- The relay runs as a login granted outbox_relay, which may not DELETE from the outbox: a role
-- that could delete rows could lose events that were never delivered. Retention still has to
-- remove delivered events, so it goes through prune_processed(), which deletes only processed
-- rows older than the interval it is given, at most 10,000 per call (each call is one short
-- statement, so no lock is held for long), and runs with the owner's rights. Dead events and
-- pending events are never deleted.
--
-- The function names its table by this install's schema, written into its body when it is
-- created (format's %I), so no search_path can redirect it when it runs. It is plain SQL with a
-- string body, which PostgreSQL 13 accepts too (BEGIN ATOMIC bodies need 14).

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 12) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;
INSERT INTO :"schema".schema_migrations (version, name) VALUES (12, 'retention');

-- prune_processed(older_than, batch_size) -> rows deleted by this call.
--   older_than  processed rows whose processed_at is older than now() minus this go; an
--               interval below zero counts as zero
--   batch_size  the most rows one call deletes, clamped to 0..10000; call again while the
--               result equals it
-- Rows another transaction holds (a replay, a second relay's sweep) are skipped, not waited
-- for: the next sweep takes them. The condition is checked again on each row the DELETE
-- reaches, so a row replayed (pending again) after the batch was chosen is left alone.
SET LOCAL outbox_bridge.install_schema = :'schema';
DO $create$
BEGIN
    EXECUTE pg_catalog.format($ddl$
        CREATE FUNCTION %1$I.prune_processed(older_than interval, batch_size int) RETURNS int
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
            WITH deleted AS (
                DELETE FROM %1$I.schema_changes s
                WHERE s.processed AND s.processed_at < pg_catalog.now() - GREATEST(older_than, interval '0')
                  AND s.id IN (
                    SELECT o.id FROM %1$I.schema_changes o
                    WHERE o.processed AND o.processed_at < pg_catalog.now() - GREATEST(older_than, interval '0')
                    ORDER BY o.id
                    LIMIT LEAST(GREATEST(batch_size, 0), 10000)
                    FOR UPDATE SKIP LOCKED)
                RETURNING 1
            )
            SELECT pg_catalog.count(*)::int FROM deleted
        $fn$
        $ddl$, pg_catalog.current_setting('outbox_bridge.install_schema'));
END
$create$;

REVOKE ALL ON FUNCTION :"schema".prune_processed(interval, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION :"schema".prune_processed(interval, int) TO outbox_relay;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 12 (retention) already applied, skipping
\endif
