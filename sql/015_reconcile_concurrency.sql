-- outbox-bridge migration 15: reconcile() safe beside DDL in progress, now that the running
-- bridge calls it periodically.
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/015_reconcile_concurrency.sql
-- (after the files before it; see sql/README.md). Same conventions as 002.
--
-- reconcile() of migration 14 compared catalog and snapshots in one statement, then re-took every
-- snapshot with refresh_table_shapes() in a later one. Two ways that went wrong while DDL ran:
-- - A captured ALTER still in progress holds its snapshot row: the refresh waited for it, then
--   wrote the shape it had read before the ALTER committed over the ALTER's own snapshot, and
--   the next reconcile() reported the ALTER again as drift.
-- - DDL the triggers never saw, committed between the two statements, went straight into the
--   snapshot without an event: drift lost.
-- It also rewrote every snapshot row on each call (bloat, WAL) where only drifted ones change.
-- Now one statement, table_drift(), reads catalog and snapshots together, and reconcile() writes
-- back only snapshots that are still what it read (see reconcile()).
-- Also: the relay's login may read schema_migrations, so `outbox-bridge check` run as it can say
-- which version is installed.

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 15) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;
SET LOCAL outbox_bridge.install_schema = :'schema';
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;
INSERT INTO :"schema".schema_migrations (version, name) VALUES (15, 'reconcile_concurrency');

CREATE OR REPLACE PROCEDURE pg_temp.outbox_install(ddl text)
LANGUAGE plpgsql AS $install$
DECLARE
    s text := pg_catalog.current_setting('outbox_bridge.install_schema');
BEGIN
    EXECUTE pg_catalog.replace(pg_catalog.replace(ddl,
        '@schema@', pg_catalog.quote_ident(s)),
        '@schema_literal@', pg_catalog.quote_literal(s));
END
$install$;

-- table_drift(): every table whose snapshot is out of date (shape differs, no snapshot, or a
-- snapshot whose table is gone), and every table consumers have not heard of yet, with what
-- reconcile() needs to act on it: the live shape (NULL when gone), the snapshot as stored, and
-- announce, whether an event is due (drift() lists exactly those). Snapshots of schemas the
-- capture does not publish are out of date without being announced. Internal.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.table_drift()
RETURNS TABLE (relid oid, drift text, schema_name text, table_name text, shape jsonb, snapshot jsonb,
               reported boolean, announce boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_settings @schema@.settings;
BEGIN
    SELECT * INTO STRICT v_settings FROM @schema@.settings;
    RETURN QUERY
    WITH live AS (
        SELECT c.oid AS relid, @schema@.table_shape(c.oid) AS shape
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
           AND n.nspname <> @schema_literal@
           AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND n.nspname !~ '^pg_(temp|toast_temp)_'),
    compared AS (
        SELECT COALESCE(l.relid, s.relid) AS relid,
               CASE WHEN s.relid IS NULL OR NOT s.reported THEN 'created' WHEN l.relid IS NULL THEN 'dropped' ELSE 'altered' END AS drift,
               COALESCE(l.shape, s.shape)->>'schema' AS schema_name, COALESCE(l.shape, s.shape)->>'name' AS table_name,
               l.shape, s.shape AS snapshot, COALESCE(s.reported, false) AS reported,
               l.relid IS NULL OR s.relid IS NULL OR l.shape IS DISTINCT FROM s.shape AS outdated,
               -- A table consumers never heard of is announced while it exists, and forgotten
               -- silently once it is gone.
               CASE WHEN l.relid IS NULL THEN s.reported
                    ELSE s.relid IS NULL OR NOT s.reported OR l.shape IS DISTINCT FROM s.shape END AS changed
          FROM live l FULL JOIN @schema@.table_shapes s ON s.relid = l.relid)
    SELECT c.relid, c.drift, c.schema_name, c.table_name, c.shape, c.snapshot, c.reported,
           c.changed AND @schema@.captures_schema(c.schema_name, v_settings.capture_schemas, v_settings.tenant_schema_prefix)
      FROM compared c
     WHERE c.outdated OR c.changed
     ORDER BY 3, 4, 1;
END
$fn$
$ddl$);

-- drift(): unchanged in what it returns (see migration 14), now read from table_drift().
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.drift()
RETURNS TABLE (relid oid, drift text, schema_name text, table_name text, shape jsonb, previous_shape jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT d.relid, d.drift, d.schema_name, d.table_name, d.shape, CASE WHEN d.reported THEN d.snapshot END
      FROM @schema@.table_drift() d
     WHERE d.announce
     ORDER BY 3, 4, 1
$fn$
$ddl$);

-- reconcile(): emits one kind = 'drift' event per table drift() lists and brings the snapshots
-- up to date, as migration 14 describes, from one consistent read of catalog and snapshots
-- (table_drift()). Each snapshot is then written only if it is still the one that read saw
-- (compare and set), and the table's event is emitted only if that write happened: a capture that
-- rewrote the snapshot meanwhile saw a newer catalog and its own event already carries the change.
--
-- It never makes tenants' DDL wait on it, nor risks a deadlock with it: it takes no table lock,
-- and a snapshot row held by a capture still in progress is waited for at most 100 ms, then left
-- for the next call. (A lock on table_shapes held across the read would deadlock: reading a
-- table's shape briefly takes ACCESS SHARE on the table, which an ALTER in progress holds
-- exclusively while its capture waits for table_shapes.) The 100 ms lock_timeout is set inside
-- this function, whose own SET clause ends it when the function returns.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.reconcile() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_settings @schema@.settings;
    v_drift    record;
    v_tenant   text;
    v_written  bigint;
    v_count    bigint := 0;
BEGIN
    SELECT * INTO STRICT v_settings FROM @schema@.settings;
    -- One reconcile at a time per database: two would both emit the same drift.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.reconcile'));
    FOR v_drift IN SELECT * FROM @schema@.table_drift() LOOP
        PERFORM pg_catalog.set_config('lock_timeout', '100ms', true);
        BEGIN
            IF v_drift.snapshot IS NULL THEN
                INSERT INTO @schema@.table_shapes AS s (relid, shape, updated_at, reported)
                VALUES (v_drift.relid, v_drift.shape, pg_catalog.now(), v_drift.announce)
                ON CONFLICT (relid) DO NOTHING;
            ELSIF v_drift.shape IS NULL THEN
                DELETE FROM @schema@.table_shapes s WHERE s.relid = v_drift.relid AND s.shape = v_drift.snapshot;
            ELSE
                UPDATE @schema@.table_shapes s
                   SET shape = v_drift.shape, updated_at = pg_catalog.now(), reported = s.reported OR v_drift.announce
                 WHERE s.relid = v_drift.relid AND s.shape = v_drift.snapshot;
            END IF;
            GET DIAGNOSTICS v_written = ROW_COUNT;
        EXCEPTION WHEN lock_not_available THEN
            v_written := 0;
        END;
        IF v_written = 1 AND v_drift.announce THEN
            v_tenant := @schema@.tenant_of(v_drift.schema_name, v_settings.tenant_schema_prefix);
            INSERT INTO @schema@.schema_changes (event_data, tenant_key)
            VALUES (@schema@.event_envelope('drift', 'DRIFT', 'table',
                        pg_catalog.format('%I.%I', v_drift.schema_name, v_drift.table_name), v_drift.schema_name, v_tenant)
                    || pg_catalog.jsonb_build_object(
                        'drift', v_drift.drift,
                        'table', COALESCE(v_drift.shape, v_drift.snapshot),
                        'changes', CASE WHEN v_drift.drift = 'altered'
                                        THEN @schema@.shape_changes(v_drift.snapshot, v_drift.shape) END,
                        'previous_shape_known', v_drift.reported AND v_drift.snapshot IS NOT NULL),
                    COALESCE(v_tenant, v_drift.schema_name));
            v_count := v_count + 1;
        END IF;
    END LOOP;
    IF v_count > 0 THEN
        PERFORM pg_catalog.pg_notify(v_settings.notify_channel, '');
    END IF;
    RETURN v_count;
END
$fn$
$ddl$);

-- `outbox-bridge check`, run as the relay's login, reads which migrations are installed.
GRANT SELECT ON :"schema".schema_migrations TO outbox_relay;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA :"schema" FROM PUBLIC;
GRANT EXECUTE ON FUNCTION :"schema".drift(), :"schema".reconcile() TO outbox_relay;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 15 (reconcile_concurrency) already applied, skipping
\endif
