-- outbox-bridge migration 16: per-tenant sequence numbers. Every event whose tenant_id is not
-- null gets tenant_seq, assigned inside the transaction that writes the event from one counter
-- row per tenant, so a consumer can tell a missed event (a gap) from a duplicate.
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/016_tenant_sequence.sql
-- (after the files before it; see sql/README.md). Same conventions as 002: function bodies use
-- @schema@ / @schema_literal@, replaced by pg_temp.outbox_install().

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 16) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;
SET LOCAL outbox_bridge.install_schema = :'schema';
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;
INSERT INTO :"schema".schema_migrations (version, name) VALUES (16, 'tenant_sequence');

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

-- One counter row per tenant. The transaction that numbers an event keeps the row locked until it
-- commits or rolls back, which is what makes the numbers gap-free (a rollback undoes its
-- increment) and commit-ordered (the next transaction of the tenant numbers its events only
-- after the previous one has finished). Other tenants' rows are not touched, so their DDL does
-- not wait. last_seq 0: a row platform.snapshot() created to lock a tenant that had no event yet.
CREATE TABLE :"schema".tenant_sequences (
    tenant   text PRIMARY KEY CHECK (tenant <> ''),
    last_seq bigint NOT NULL CHECK (last_seq >= 0)
);
REVOKE ALL ON :"schema".tenant_sequences FROM PUBLIC;

-- event_envelope(...): as in 014, plus tenant_seq (null when tenant is null). Every event goes
-- through here (DDL, drop, drift, domain and snapshot events), so no path can skip a number.
-- The upsert takes the tenant's row lock for the rest of the caller's transaction.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.event_envelope(kind text, command text, object_type text, object_identity text,
                                                   schema_name text, tenant text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_seq bigint;
BEGIN
    IF tenant IS NOT NULL THEN
        INSERT INTO @schema@.tenant_sequences AS t (tenant, last_seq) VALUES (tenant, 1)
        ON CONFLICT ON CONSTRAINT tenant_sequences_pkey DO UPDATE SET last_seq = t.last_seq + 1
        RETURNING t.last_seq INTO v_seq;
    END IF;
    RETURN pg_catalog.jsonb_build_object(
        'version', 1,
        'kind', kind,
        'event_id', pg_catalog.gen_random_uuid(),
        'command', command,
        'object_type', object_type,
        'object_identity', object_identity,
        'schema_name', schema_name,
        'tenant_id', tenant,
        'tenant_seq', v_seq,
        'occurred_at', pg_catalog.statement_timestamp(),
        'transaction_id', pg_catalog.txid_current(),
        'actor', SESSION_USER::text,
        'database', pg_catalog.current_database()::text);
END
$fn$
$ddl$);

-- emit(): as in 003, its envelope from event_envelope() so domain events are numbered with the
-- tenant's DDL.
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
    VALUES (@schema@.event_envelope('domain', event_type, NULL, NULL, NULL, tenant)
            || pg_catalog.jsonb_build_object('payload', COALESCE(payload, 'null'::jsonb)),
            tenant)
    RETURNING id INTO v_id;
    PERFORM pg_catalog.pg_notify(v_channel, '');
    RETURN v_id;
END
$fn$
$ddl$);

-- New functions would be executable by PUBLIC; CREATE OR REPLACE keeps the grants of the others.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA :"schema" FROM PUBLIC;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 16 (tenant_sequence) already applied, skipping
\endif
