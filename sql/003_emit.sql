-- outbox-bridge migration 3: domain events through <schema>.emit(tenant, event_type, payload).
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/003_emit.sql
--
-- emit() is SECURITY DEFINER and granted to the role outbox_emitter, not to PUBLIC: an emitter
-- can put any tenant on an event, so only trusted application roles should be members
-- (GRANT outbox_emitter TO my_app_role). Tenant roles never get it.

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 3) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;
-- The schema name reaches DO blocks and the installer helper through a transaction-local setting.
SET LOCAL outbox_bridge.install_schema = :'schema';
-- Serialise concurrent installers of any outbox-bridge version in this database.
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;
INSERT INTO :"schema".schema_migrations (version, name) VALUES (3, 'emit');

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

-- emit(tenant, event_type, payload) -> id of the outbox row.
--   tenant      tenant id (becomes tenant_id and the Kafka key); NULL for a tenant-less event
--   event_type  non-empty, stored as event_data.command (kind = 'domain' tells it from DDL)
--   payload     any JSON value, stored as event_data.payload (SQL NULL becomes JSON null)
-- The event commits or rolls back with the caller's transaction, like captured DDL.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.emit(tenant text, event_type text, payload jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_id      bigint;
    v_channel text;
BEGIN
    IF event_type IS NULL OR pg_catalog.btrim(event_type) = '' THEN
        RAISE EXCEPTION 'outbox-bridge: emit() needs a non-empty event_type' USING ERRCODE = '22023';
    END IF;
    IF tenant = '' THEN
        RAISE EXCEPTION 'outbox-bridge: emit() tenant must be NULL or non-empty' USING ERRCODE = '22023';
    END IF;
    SELECT s.notify_channel INTO STRICT v_channel FROM @schema@.settings s;
    INSERT INTO @schema@.schema_changes (event_data, tenant_key)
    VALUES (pg_catalog.jsonb_build_object(
                'version', 1,
                'kind', 'domain',
                'event_id', pg_catalog.gen_random_uuid(),
                'command', event_type,
                'object_type', NULL,
                'object_identity', NULL,
                'schema_name', NULL,
                'tenant_id', tenant,
                'occurred_at', pg_catalog.statement_timestamp(),
                'transaction_id', pg_catalog.txid_current(),
                'actor', SESSION_USER::text,
                'database', pg_catalog.current_database()::text,
                'payload', COALESCE(payload, 'null'::jsonb)),
            tenant)
    RETURNING id INTO v_id;
    PERFORM pg_catalog.pg_notify(v_channel, '');
    RETURN v_id;
END
$fn$
$ddl$);

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA :"schema" FROM PUBLIC;
-- USAGE on the schema is needed to call the function; it grants nothing on the tables.
GRANT USAGE ON SCHEMA :"schema" TO outbox_emitter;
GRANT EXECUTE ON FUNCTION :"schema".emit(text, text, jsonb) TO outbox_emitter;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 3 (emit) already applied, skipping
\endif
