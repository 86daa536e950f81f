-- outbox-bridge migration 16: the event contract of issue 15 in capture. Per-tenant sequence
-- numbers (tenant_seq: every event whose tenant_id is not null is numbered inside the transaction
-- that writes it, from one counter row per tenant, so a consumer can tell a missed event from a
-- duplicate) and compatibility labels (changes.compatibility: breaking, additive or cosmetic on
-- every CREATE, ALTER, DROP, enum and drift event, so consumers stop re-deriving the rules).
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/016_tenant_seq_and_compatibility.sql
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
INSERT INTO :"schema".schema_migrations (version, name) VALUES (16, 'tenant_seq_and_compatibility');

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

-- Last known labels of every enum, keyed by type oid: ALTER TYPE's label compares with it (a
-- label gone means renamed, which breaks readers). Seeded here for the enums that exist.
CREATE TABLE :"schema".enum_shapes (
    typid oid PRIMARY KEY,
    shape jsonb NOT NULL
);
REVOKE ALL ON :"schema".enum_shapes FROM PUBLIC;

-- enum_shape(typid): {schema, name, values} as in enum events; NULL when the type is not an enum.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.enum_shape(typid oid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN (
        SELECT pg_catalog.jsonb_build_object(
                   'schema', n.nspname::text, 'name', t.typname::text,
                   'values', COALESCE((SELECT pg_catalog.jsonb_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                                         FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid), '[]'::jsonb))
          FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
         WHERE t.oid = typid AND t.typtype = 'e');
END
$fn$
$ddl$);

CALL pg_temp.outbox_install($ddl$
INSERT INTO @schema@.enum_shapes (typid, shape)
SELECT t.oid, @schema@.enum_shape(t.oid)
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typtype = 'e' AND n.nspname <> @schema_literal@
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_'
$ddl$);

-- enum_compatibility(old, new) for ALTER TYPE: breaking when the type was renamed or moved or a
-- label is gone (RENAME VALUE), or when no earlier shape is known; additive when labels were only
-- added; cosmetic when the labels and name are unchanged (OWNER TO and the like).
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.enum_compatibility(old_shape jsonb, new_shape jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN CASE
        WHEN old_shape IS NULL OR old_shape->'schema' <> new_shape->'schema' OR old_shape->'name' <> new_shape->'name'
             OR NOT ((new_shape->'values') @> (old_shape->'values')) THEN 'breaking'
        WHEN new_shape->'values' <> old_shape->'values' THEN 'additive'
        ELSE 'cosmetic'
    END;
END
$fn$
$ddl$);

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
    v_id       bigint;
    v_channel  text;
    v_envelope jsonb;
BEGIN
    IF event_type IS NULL OR pg_catalog.btrim(event_type) = '' THEN
        RAISE EXCEPTION 'outbox-bridge: emit() needs a non-empty event_type' USING ERRCODE = '22023';
    END IF;
    IF tenant = '' THEN
        RAISE EXCEPTION 'outbox-bridge: emit() tenant must be NULL or non-empty' USING ERRCODE = '22023';
    END IF;
    SELECT s.notify_channel INTO STRICT v_channel FROM @schema@.settings s;
    -- Numbered before the INSERT draws the row's id (see capture_ddl).
    v_envelope := @schema@.event_envelope('domain', event_type, NULL, NULL, NULL, tenant);
    INSERT INTO @schema@.schema_changes (event_data, tenant_key)
    VALUES (v_envelope || pg_catalog.jsonb_build_object('payload', COALESCE(payload, 'null'::jsonb)), tenant)
    RETURNING id INTO v_id;
    PERFORM pg_catalog.pg_notify(v_channel, '');
    RETURN v_id;
END
$fn$
$ddl$);

-- shape_changes(old, new): the diff of 014 (renamed to table_diff, whatever version of it is
-- installed) plus its compatibility label:
--   breaking  table renamed or moved; a column dropped, renamed or retyped; a column's
--             nullability changed (either way: readers' types change); a column added NOT NULL
--             without a default, identity or generation expression (existing inserts fail)
--   cosmetic  nothing but comments differs between the two shapes
--   additive  anything else: columns added nullable or with a default, primary key, defaults,
--             constraints, generation expressions
ALTER FUNCTION :"schema".shape_changes(jsonb, jsonb) RENAME TO table_diff;
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.shape_changes(old_shape jsonb, new_shape jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_diff jsonb := @schema@.table_diff(old_shape, new_shape);
BEGIN
    RETURN v_diff || pg_catalog.jsonb_build_object('compatibility', CASE
        WHEN v_diff->'table_renamed' <> 'null' OR v_diff->'schema_changed' <> 'null'
             OR v_diff->'columns_dropped' <> '[]' OR v_diff->'columns_renamed' <> '[]'
             OR v_diff->'columns_retyped' <> '[]' OR v_diff->'nullability_changed' <> '[]'
             OR pg_catalog.jsonb_path_exists(v_diff->'columns_added',
                    '$[*] ? (@.nullable == false && @.default == null && @.identity == null && @.generated == null)')
        THEN 'breaking'
        -- Cosmetic: equal but for comments. Column comments are stripped only when they changed
        -- (comparing whole columns is much cheaper than rebuilding them).
        WHEN (old_shape - 'comment' - 'columns') = (new_shape - 'comment' - 'columns')
             AND CASE WHEN v_diff->'column_comments_changed' = '[]' THEN old_shape->'columns' = new_shape->'columns'
                      ELSE @schema@.columns_without_comments(old_shape->'columns')
                           = @schema@.columns_without_comments(new_shape->'columns') END
        THEN 'cosmetic'
        ELSE 'additive' END);
END
$fn$
$ddl$);

CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.columns_without_comments(columns jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN (SELECT pg_catalog.jsonb_agg(c - 'comment' ORDER BY i) FROM pg_catalog.jsonb_array_elements(columns) WITH ORDINALITY x(c, i));
END
$fn$
$ddl$);

-- capture_ddl(): as in 014, plus changes.compatibility on every event, enum snapshots (for the
-- label of ALTER TYPE), and the envelope taken before the row's id.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.capture_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_prefix     text;
    v_channel    text;
    v_capture    text[];
    v_automation boolean;
    v_published  boolean;
    v_cmd        record;
    v_done       oid[] := '{}';
    v_event      jsonb;
    v_shape      jsonb;
    v_old        jsonb;
    v_schema     text;
    v_tenant     text;
    v_inserted   boolean := false;
    v_envelope   jsonb;
    v_type       jsonb;
    v_type_old   jsonb;
BEGIN
    -- STRICT: a missing settings row must fail the DDL loudly, not skip capture silently.
    SELECT s.tenant_schema_prefix, s.notify_channel, s.capture_schemas, @schema@.is_automation(s.automation_role)
      INTO STRICT v_prefix, v_channel, v_capture, v_automation
      FROM @schema@.settings s;

    FOR v_cmd IN
        SELECT c.objid, c.command_tag, c.object_type, c.object_identity
          FROM pg_catalog.pg_event_trigger_ddl_commands() c
         WHERE ((c.object_type IN ('table', 'table column')
                 AND c.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'COMMENT'))
                OR (c.object_type = 'schema' AND c.command_tag = 'CREATE SCHEMA')
                OR (c.object_type = 'type' AND c.command_tag IN ('CREATE TYPE', 'ALTER TYPE')))
           AND NOT (c.schema_name IS NOT NULL AND (
                    c.schema_name = @schema_literal@
                    OR c.schema_name IN ('pg_catalog', 'information_schema', 'pg_toast')
                    OR pg_catalog.left(c.schema_name, 7) = 'pg_temp'))
    LOOP
        IF v_cmd.object_type <> 'schema' AND v_cmd.object_type <> 'type' THEN
            CONTINUE WHEN v_cmd.objid = ANY (v_done);
            v_done := v_done || v_cmd.objid;
            v_shape := @schema@.table_shape(v_cmd.objid);
            CONTINUE WHEN v_shape IS NULL OR v_shape->>'schema' = @schema_literal@;
            v_old := NULL;
            IF v_cmd.command_tag IN ('ALTER TABLE', 'COMMENT') THEN
                SELECT s.shape INTO v_old FROM @schema@.table_shapes s WHERE s.relid = v_cmd.objid;
            END IF;
            v_schema := v_shape->>'schema';
            v_published := NOT v_automation AND @schema@.captures_schema(v_schema, v_capture, v_prefix);
            -- The snapshot follows every schema and automation DDL too, so the next captured
            -- ALTER reports only its own changes.
            INSERT INTO @schema@.table_shapes AS s (relid, shape, updated_at, reported)
            VALUES (v_cmd.objid, v_shape, pg_catalog.statement_timestamp(), v_automation OR v_published)
            ON CONFLICT (relid) DO UPDATE
                SET shape = EXCLUDED.shape, updated_at = EXCLUDED.updated_at, reported = s.reported OR EXCLUDED.reported;
            CONTINUE WHEN NOT v_published;
            v_tenant := @schema@.tenant_of(v_schema, v_prefix);
            v_event := pg_catalog.jsonb_build_object(
                'table', v_shape,
                -- No earlier shape: a new table is additive, a comment cosmetic, and an ALTER of a
                -- table never seen may have changed anything.
                'changes', CASE WHEN v_old IS NOT NULL THEN @schema@.shape_changes(v_old, v_shape)
                                ELSE pg_catalog.jsonb_build_object('compatibility', CASE v_cmd.command_tag
                                         WHEN 'COMMENT' THEN 'cosmetic' WHEN 'ALTER TABLE' THEN 'breaking' ELSE 'additive' END) END,
                'previous_shape_known', v_old IS NOT NULL);
        ELSIF v_cmd.object_type = 'schema' THEN
            CONTINUE WHEN v_automation;
            SELECT n.nspname::text INTO v_schema FROM pg_catalog.pg_namespace n WHERE n.oid = v_cmd.objid;
            CONTINUE WHEN v_schema = @schema_literal@ OR NOT @schema@.captures_schema(v_schema, v_capture, v_prefix);
            v_event := pg_catalog.jsonb_build_object('schema', pg_catalog.jsonb_build_object('name', v_schema),
                                                     'changes', pg_catalog.jsonb_build_object('compatibility', 'additive'));
        ELSE  -- type
            v_type := @schema@.enum_shape(v_cmd.objid);
            CONTINUE WHEN v_type IS NULL;  -- only enums are captured
            -- Like table_shapes, the enum snapshot follows automation DDL too.
            DELETE FROM @schema@.enum_shapes s WHERE s.typid = v_cmd.objid RETURNING s.shape INTO v_type_old;
            INSERT INTO @schema@.enum_shapes (typid, shape) VALUES (v_cmd.objid, v_type);
            CONTINUE WHEN v_automation;
            v_schema := v_type->>'schema';
            CONTINUE WHEN NOT @schema@.captures_schema(v_schema, v_capture, v_prefix);
            v_event := pg_catalog.jsonb_build_object('enum', v_type, 'changes', pg_catalog.jsonb_build_object(
                'compatibility', CASE WHEN v_cmd.command_tag = 'CREATE TYPE' THEN 'additive'
                                      ELSE @schema@.enum_compatibility(v_type_old, v_type) END));
        END IF;

        v_tenant := @schema@.tenant_of(v_schema, v_prefix);
        -- The envelope (and with it the tenant's number) before the INSERT draws the row's id:
        -- a transaction that waited for the tenant's counter gets ids after the one it waited for.
        v_envelope := @schema@.event_envelope('ddl', v_cmd.command_tag, v_cmd.object_type, v_cmd.object_identity,
                                              v_schema, v_tenant);
        INSERT INTO @schema@.schema_changes (event_data, tenant_key)
        VALUES (v_event || v_envelope, COALESCE(v_tenant, v_schema));
        v_inserted := true;
    END LOOP;

    IF v_inserted THEN
        -- Wake-up only; identical notifications are folded to one per transaction.
        PERFORM pg_catalog.pg_notify(v_channel, '');
    END IF;
END
$fn$
$ddl$);

-- capture_drop(): as in 014; drops are breaking; the envelope is taken before the row's id.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.capture_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_settings   @schema@.settings;
    v_automation boolean;
    v_obj        record;
    v_shape      jsonb;
    v_tenant     text;
    v_schemas    text[] := '{}';
    v_schema     text;
    v_tables     jsonb;
    v_inserted   boolean := false;
    v_envelope   jsonb;
BEGIN
    SELECT * INTO STRICT v_settings FROM @schema@.settings;
    v_automation := @schema@.is_automation(v_settings.automation_role);

    FOR v_obj IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() LOOP
        IF v_obj.object_type = 'table' THEN
            -- Always forget the snapshot (its oid may be reused later).
            DELETE FROM @schema@.table_shapes s WHERE s.relid = v_obj.objid RETURNING s.shape INTO v_shape;
            CONTINUE WHEN v_obj.is_temporary OR v_automation
                OR v_obj.schema_name = @schema_literal@ OR pg_catalog.left(v_obj.schema_name, 7) = 'pg_temp'
                OR NOT @schema@.captures_schema(v_obj.schema_name, v_settings.capture_schemas, v_settings.tenant_schema_prefix);
            v_tenant := @schema@.tenant_of(v_obj.schema_name, v_settings.tenant_schema_prefix);
            v_envelope := @schema@.event_envelope('ddl', TG_TAG, 'table', v_obj.object_identity, v_obj.schema_name, v_tenant);
            INSERT INTO @schema@.schema_changes (event_data, tenant_key)
            VALUES (v_envelope
                    || pg_catalog.jsonb_build_object(
                        'changes', pg_catalog.jsonb_build_object('compatibility', 'breaking'),
                        'cascade', NOT v_obj.original,
                        'previous_shape_known', v_shape IS NOT NULL,
                        -- Unknown shape (table predates install): name only, columns NULL.
                        'table', COALESCE(v_shape, pg_catalog.jsonb_build_object(
                            'schema', v_obj.schema_name, 'name', v_obj.object_name,
                            'comment', NULL, 'columns', NULL, 'primary_key', NULL))),
                    COALESCE(v_tenant, v_obj.schema_name));
            v_inserted := true;
        ELSIF v_obj.object_type = 'schema' AND NOT v_automation
              AND v_obj.object_name <> @schema_literal@ AND pg_catalog.left(v_obj.object_name, 7) <> 'pg_temp'
              AND @schema@.captures_schema(v_obj.object_name, v_settings.capture_schemas, v_settings.tenant_schema_prefix) THEN
            v_schemas := v_schemas || v_obj.object_name;
        END IF;
    END LOOP;

    -- Schema events after their tables' events.
    FOREACH v_schema IN ARRAY v_schemas LOOP
        v_tenant := @schema@.tenant_of(v_schema, v_settings.tenant_schema_prefix);
        SELECT pg_catalog.jsonb_agg(o.object_identity ORDER BY o.object_identity) INTO v_tables
          FROM pg_catalog.pg_event_trigger_dropped_objects() o
         WHERE o.object_type = 'table' AND o.schema_name = v_schema;
        v_envelope := @schema@.event_envelope('ddl', TG_TAG, 'schema', pg_catalog.quote_ident(v_schema), v_schema, v_tenant);
        INSERT INTO @schema@.schema_changes (event_data, tenant_key)
        VALUES (v_envelope
                || pg_catalog.jsonb_build_object(
                    'changes', pg_catalog.jsonb_build_object('compatibility', 'breaking'),
                    'cascade', false,
                    'schema', pg_catalog.jsonb_build_object('name', v_schema),
                    'dropped_tables', COALESCE(v_tables, '[]'::jsonb)),
                COALESCE(v_tenant, v_schema));
        v_inserted := true;
    END LOOP;

    IF v_inserted THEN
        PERFORM pg_catalog.pg_notify(v_settings.notify_channel, '');
    END IF;
END
$fn$
$ddl$);

-- reconcile(): migration 15's, with exactly two changes: the envelope (and with it the tenant's
-- tenant_seq) is taken into v_envelope before the INSERT, so the number precedes the row's id, and
-- changes carries compatibility for every drift (created: additive, dropped: breaking, altered:
-- from the diff).
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.reconcile() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_settings @schema@.settings;
    v_drift    record;
    v_tenant   text;
    v_written  bigint;
    v_count    bigint := 0;
    v_envelope jsonb;
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
            v_envelope := @schema@.event_envelope('drift', 'DRIFT', 'table',
                              pg_catalog.format('%I.%I', v_drift.schema_name, v_drift.table_name), v_drift.schema_name, v_tenant);
            INSERT INTO @schema@.schema_changes (event_data, tenant_key)
            VALUES (v_envelope
                    || pg_catalog.jsonb_build_object(
                        'drift', v_drift.drift,
                        'table', COALESCE(v_drift.shape, v_drift.snapshot),
                        'changes', CASE v_drift.drift
                                        WHEN 'altered' THEN @schema@.shape_changes(v_drift.snapshot, v_drift.shape)
                                        WHEN 'created' THEN pg_catalog.jsonb_build_object('compatibility', 'additive')
                                        ELSE pg_catalog.jsonb_build_object('compatibility', 'breaking') END,
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

-- New functions would be executable by PUBLIC; CREATE OR REPLACE keeps the grants of the others.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA :"schema" FROM PUBLIC;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 16 (tenant_seq_and_compatibility) already applied, skipping
\endif
