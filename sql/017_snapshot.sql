-- outbox-bridge migration 17: platform.snapshot(tenant), the current schema of a tenant (or of
-- every tenant) as events through the outbox, for consumers that start after the early events are
-- gone (topic retention, outbox pruning).
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/017_snapshot.sql
-- (after the files before it; see sql/README.md). Same conventions as 002: function bodies use
-- @schema@ / @schema_literal@, replaced by pg_temp.outbox_install().

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 17) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;
SET LOCAL outbox_bridge.install_schema = :'schema';
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;
INSERT INTO :"schema".schema_migrations (version, name) VALUES (17, 'snapshot');

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

-- snapshot(tenant): for the tenant (every tenant when NULL) whose schema the capture publishes,
-- one kind = 'snapshot' event (command SNAPSHOT) per table (partitions included) and enum, with
-- the same table / enum shape as a DDL event and changes null, then one kind = 'snapshot_end'
-- event (command SNAPSHOT END) listing every object covered, all sharing one snapshot_id. Returns
-- one row per tenant with the counts.
--
-- Ordered with the tenant's DDL: the tenant's counter row is locked before the catalog is read,
-- so DDL of the tenant still in flight commits first (and is in the snapshot, with a lower
-- tenant_seq), and DDL after it waits for this transaction (and comes after it). The shapes
-- become the capture's snapshots (table_shapes, enum_shapes), so the next ALTER diffs against
-- what consumers were just told.
--
-- Errors (SQLSTATE 22023): an empty tenant, a tenant without a schema, or one whose schema the
-- capture does not publish. Granted to outbox_relay (`outbox-bridge snapshot`), not to tenants.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.snapshot(tenant text DEFAULT NULL)
RETURNS TABLE (tenant_id text, snapshot_id uuid, tables bigint, enums bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_settings @schema@.settings;
    v_schema   text;
    v_object   record;
    v_shape    jsonb;
    v_identity text;
    v_objects  jsonb;
    v_envelope jsonb;
BEGIN
    IF snapshot.tenant = '' THEN
        RAISE EXCEPTION 'outbox-bridge: snapshot() tenant must be NULL (every tenant) or non-empty' USING ERRCODE = '22023';
    END IF;
    SELECT * INTO STRICT v_settings FROM @schema@.settings;
    IF snapshot.tenant IS NOT NULL THEN
        v_schema := v_settings.tenant_schema_prefix || snapshot.tenant;
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = v_schema) THEN
            RAISE EXCEPTION 'outbox-bridge: tenant % has no schema %', pg_catalog.quote_literal(snapshot.tenant),
                pg_catalog.quote_ident(v_schema) USING ERRCODE = '22023';
        END IF;
        IF NOT @schema@.captures_schema(v_schema, v_settings.capture_schemas, v_settings.tenant_schema_prefix) THEN
            RAISE EXCEPTION 'outbox-bridge: schema % of tenant % is not captured (settings.capture_schemas)',
                pg_catalog.quote_ident(v_schema), pg_catalog.quote_literal(snapshot.tenant) USING ERRCODE = '22023';
        END IF;
    END IF;
    snapshot_id := pg_catalog.gen_random_uuid();

    FOR v_schema IN
        SELECT n.nspname::text FROM pg_catalog.pg_namespace n
         WHERE CASE WHEN snapshot.tenant IS NULL
                    THEN @schema@.tenant_of(n.nspname, v_settings.tenant_schema_prefix) IS NOT NULL
                    ELSE n.nspname = v_settings.tenant_schema_prefix || snapshot.tenant END
           AND n.nspname <> @schema_literal@ AND n.nspname !~ '^pg_'
           AND @schema@.captures_schema(n.nspname, v_settings.capture_schemas, v_settings.tenant_schema_prefix)
         ORDER BY n.nspname
    LOOP
        tenant_id := @schema@.tenant_of(v_schema, v_settings.tenant_schema_prefix);
        -- The tenant's counter first (created at 0 if the tenant has no event yet); see above.
        INSERT INTO @schema@.tenant_sequences AS s (tenant, last_seq) VALUES (tenant_id, 0)
        ON CONFLICT ON CONSTRAINT tenant_sequences_pkey DO NOTHING;
        PERFORM 1 FROM @schema@.tenant_sequences s WHERE s.tenant = tenant_id FOR UPDATE;

        tables := 0;
        enums := 0;
        v_objects := '[]';
        FOR v_object IN
            SELECT 'table' AS object_type, c.oid, c.relname::text AS name
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = v_schema AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
            UNION ALL
            SELECT 'type', t.oid, t.typname::text
              FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = v_schema AND t.typtype = 'e'
             ORDER BY 1, 3
        LOOP
            v_identity := pg_catalog.format('%I.%I', v_schema, v_object.name);
            IF v_object.object_type = 'table' THEN
                v_shape := @schema@.table_shape(v_object.oid);
                INSERT INTO @schema@.table_shapes AS s (relid, shape, updated_at, reported)
                VALUES (v_object.oid, v_shape, pg_catalog.statement_timestamp(), true)
                ON CONFLICT (relid) DO UPDATE SET shape = EXCLUDED.shape, updated_at = EXCLUDED.updated_at, reported = true;
                tables := tables + 1;
            ELSE
                v_shape := @schema@.enum_shape(v_object.oid);
                INSERT INTO @schema@.enum_shapes AS s (typid, shape) VALUES (v_object.oid, v_shape)
                ON CONFLICT (typid) DO UPDATE SET shape = EXCLUDED.shape;
                enums := enums + 1;
            END IF;
            v_envelope := @schema@.event_envelope('snapshot', 'SNAPSHOT', v_object.object_type, v_identity, v_schema, tenant_id);
            INSERT INTO @schema@.schema_changes (event_data, tenant_key)
            VALUES (v_envelope || pg_catalog.jsonb_build_object(
                        CASE v_object.object_type WHEN 'table' THEN 'table' ELSE 'enum' END, v_shape,
                        'changes', NULL,
                        'snapshot_id', snapshot_id),
                    tenant_id);
            v_objects := v_objects || pg_catalog.jsonb_build_object('object_type', v_object.object_type, 'object_identity', v_identity);
        END LOOP;

        v_envelope := @schema@.event_envelope('snapshot_end', 'SNAPSHOT END', 'schema', pg_catalog.quote_ident(v_schema),
                                              v_schema, tenant_id);
        INSERT INTO @schema@.schema_changes (event_data, tenant_key)
        VALUES (v_envelope || pg_catalog.jsonb_build_object(
                    'schema', pg_catalog.jsonb_build_object('name', v_schema),
                    'snapshot_id', snapshot_id,
                    'snapshot_objects', v_objects),
                tenant_id);
        RETURN NEXT;
    END LOOP;
    IF FOUND THEN
        PERFORM pg_catalog.pg_notify(v_settings.notify_channel, '');
    END IF;
END
$fn$
$ddl$);

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA :"schema" FROM PUBLIC;
GRANT EXECUTE ON FUNCTION :"schema".snapshot(text) TO outbox_relay;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 17 (snapshot) already applied, skipping
\endif
