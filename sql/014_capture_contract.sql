-- outbox-bridge migration 14: the capture on PostgreSQL 13-18. Generated expressions and their
-- kind, not-null and other constraints that are not yet validated, the capture_schemas setting,
-- and drift reconciliation for DDL the event triggers never saw.
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/014_capture_contract.sql
-- (after the files before it; see sql/README.md). Same conventions as 002: function bodies use
-- @schema@ / @schema_literal@, replaced by pg_temp.outbox_install().
--
-- The functions of 002 that change are replaced here (CREATE OR REPLACE) rather than edited in
-- 002, so a database installed before this file gets them through the usual upgrade.

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 14) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;
SET LOCAL outbox_bridge.install_schema = :'schema';
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;
INSERT INTO :"schema".schema_migrations (version, name) VALUES (14, 'capture_contract');

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

-- What is captured: '{all}' (every schema but ours and the system's; the default, and the
-- behaviour before this setting existed), '{tenants}' (only schemas named <tenant_schema_prefix><id>),
-- or a list of schema name patterns where * matches any run of characters and ? one character
-- (e.g. '{tenant_*,billing}'). Table snapshots follow every schema whatever the mode, so
-- widening it later diffs against the real previous shape.
ALTER TABLE :"schema".settings
    ADD COLUMN capture_schemas text[] NOT NULL DEFAULT '{all}'
    CONSTRAINT settings_capture_schemas_valid CHECK (
        capture_schemas IN ('{all}', '{tenants}')
        OR (pg_catalog.cardinality(capture_schemas) > 0
            AND pg_catalog.array_position(capture_schemas, NULL) IS NULL
            AND pg_catalog.array_position(capture_schemas, '') IS NULL
            AND pg_catalog.array_position(capture_schemas, 'all') IS NULL
            AND pg_catalog.array_position(capture_schemas, 'tenants') IS NULL));

-- reported: whether consumers have heard of the table (an event named it, or automation DDL,
-- which is never published, made it). Snapshots seeded by the install or by
-- refresh_table_shapes() are not reported, so reconcile() announces tables that predate the
-- install once. On an upgrade, snapshots seeded by migration 2 (same timestamp as its ledger
-- row) are the unreported ones; every other snapshot was taken by the event triggers.
ALTER TABLE :"schema".table_shapes ADD COLUMN reported boolean NOT NULL DEFAULT false;
UPDATE :"schema".table_shapes s SET reported = true
 WHERE s.updated_at <> (SELECT m.applied_at FROM :"schema".schema_migrations m WHERE m.version = 2);

-- captures_schema(schema, capture_schemas, prefix): does the setting publish DDL in this schema?
-- Patterns become LIKE patterns with \ as escape: their own % _ \ are literal.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.captures_schema(schema_name text, capture_schemas text[], prefix text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF capture_schemas = '{all}' THEN
        RETURN true;
    ELSIF capture_schemas = '{tenants}' THEN
        RETURN @schema@.tenant_of(schema_name, prefix) IS NOT NULL;
    END IF;
    RETURN EXISTS (
        SELECT 1 FROM pg_catalog.unnest(capture_schemas) p
         WHERE schema_name LIKE pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                   p, '\', '\\'), '%', '\%'), '_', '\_'), '*', '%'), '?', '_'));
END
$fn$
$ddl$);

-- table_shape(relid), as in 002 plus, per column:
--   generated_kind  'stored' | 'virtual' (18+) | NULL; "generated" holds the expression
--   not_null        'validated' | 'not valid' (18+: ADD CONSTRAINT ... NOT NULL ... NOT VALID) | NULL
--   nullable        false only when a validated NOT NULL holds: NULL rows may exist otherwise
-- and per table "constraints": every constraint but the primary key and validated not-nulls
-- (name, type, columns, definition, validated), in name order, so VALIDATE CONSTRAINT shows up
-- in the diff.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.table_shape(relid oid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN (
        SELECT pg_catalog.jsonb_build_object(
            'schema', n.nspname::text,
            'name', c.relname::text,
            'comment', td.description,
            'partitioned', c.relkind = 'p',
            'columns', COALESCE(cols.columns, '[]'::jsonb),
            'primary_key', COALESCE(cols.primary_key, '[]'::jsonb),
            'constraints', COALESCE(cons.constraints, '[]'::jsonb))
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
        LEFT JOIN pg_catalog.pg_description td
               ON td.objoid = c.oid AND td.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND td.objsubid = 0
        CROSS JOIN LATERAL (
            SELECT pg_catalog.array_agg(k.conkey[1]) FILTER (WHERE k.contype = 'n' AND NOT k.convalidated) AS not_valid_not_null,
                   pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'name', k.conname::text,
                       'type', CASE k.contype WHEN 'c' THEN 'check' WHEN 'f' THEN 'foreign key' WHEN 'u' THEN 'unique'
                                              WHEN 'x' THEN 'exclusion' WHEN 'n' THEN 'not null' ELSE k.contype::text END,
                       'columns', (SELECT COALESCE(pg_catalog.jsonb_agg(a.attname::text ORDER BY o.ord), '[]'::jsonb)
                                     FROM pg_catalog.unnest(k.conkey) WITH ORDINALITY o(attnum, ord)
                                     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = o.attnum),
                       'definition', pg_catalog.pg_get_constraintdef(k.oid),
                       'validated', k.convalidated)
                       ORDER BY k.conname) FILTER (WHERE k.contype <> 'p' AND NOT (k.contype = 'n' AND k.convalidated)) AS constraints
            FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid
        ) cons
        CROSS JOIN LATERAL (
            SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                       'name', a.attname::text,
                       'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                       'nullable', NOT a.attnotnull OR a.not_valid,
                       'not_null', CASE WHEN a.not_valid THEN 'not valid' WHEN a.attnotnull THEN 'validated' END,
                       'default', CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END,
                       'generated', CASE WHEN a.attgenerated <> '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END,
                       'generated_kind', CASE a.attgenerated WHEN 's' THEN 'stored' WHEN 'v' THEN 'virtual' END,
                       'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
                       'position', a.ord,
                       'attnum', a.attnum,
                       'comment', dc.description)
                       ORDER BY a.attnum) AS columns,
                   pg_catalog.jsonb_agg(a.attname::text ORDER BY a.pk_ord) FILTER (WHERE a.pk_ord IS NOT NULL) AS primary_key
            FROM (SELECT att.attrelid, att.attnum, att.attname, att.atttypid, att.atttypmod, att.attnotnull,
                         att.attgenerated, att.attidentity,
                         att.attnum = ANY (COALESCE(cons.not_valid_not_null, '{}')) AS not_valid,
                         pg_catalog.row_number() OVER (ORDER BY att.attnum) AS ord,
                         pg_catalog.array_position(pk.conkey, att.attnum) AS pk_ord
                  FROM pg_catalog.pg_attribute att
                  WHERE att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped) a
            LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            LEFT JOIN pg_catalog.pg_description dc
                   ON dc.objoid = a.attrelid AND dc.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND dc.objsubid = a.attnum
        ) cols
        WHERE c.oid = relid AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
    );
END
$fn$
$ddl$);

-- shape_changes(old_shape, new_shape), as in 002 plus:
--   generated_changed      column, old and new expression (and kind): SET / DROP EXPRESSION, and
--                          generated columns added or dropped (NULL on the side that has none)
--   constraints_validated  what VALIDATE CONSTRAINT validated: a constraint not valid before and
--                          validated now, or a not-valid NOT NULL whose column is now validated
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.shape_changes(old_shape jsonb, new_shape jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN (
        SELECT pg_catalog.jsonb_build_object(
            'table_renamed', CASE WHEN old_shape->>'name' IS DISTINCT FROM new_shape->>'name'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'name', 'new', new_shape->'name') END,
            'schema_changed', CASE WHEN old_shape->>'schema' IS DISTINCT FROM new_shape->>'schema'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'schema', 'new', new_shape->'schema') END,
            'columns_added', COALESCE(pg_catalog.jsonb_agg(x.nc ORDER BY x.attnum) FILTER (WHERE x.oc IS NULL), '[]'::jsonb),
            'columns_dropped', COALESCE(pg_catalog.jsonb_agg(x.oc ORDER BY x.attnum) FILTER (WHERE x.nc IS NULL), '[]'::jsonb),
            'columns_renamed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'old', x.oc->'name', 'new', x.nc->'name') ORDER BY x.attnum)
                FILTER (WHERE x.both_ AND x.oc->>'name' IS DISTINCT FROM x.nc->>'name'), '[]'::jsonb),
            'columns_retyped', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', x.nc->'name', 'old_type', x.oc->'type', 'new_type', x.nc->'type') ORDER BY x.attnum)
                FILTER (WHERE x.both_ AND x.oc->>'type' IS DISTINCT FROM x.nc->>'type'), '[]'::jsonb),
            'nullability_changed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', x.nc->'name', 'old_nullable', x.oc->'nullable', 'new_nullable', x.nc->'nullable') ORDER BY x.attnum)
                FILTER (WHERE x.both_ AND x.oc->'nullable' IS DISTINCT FROM x.nc->'nullable'), '[]'::jsonb),
            'defaults_changed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', x.nc->'name', 'old_default', x.oc->'default', 'new_default', x.nc->'default') ORDER BY x.attnum)
                FILTER (WHERE x.both_ AND x.oc->'default' IS DISTINCT FROM x.nc->'default'), '[]'::jsonb),
            'generated_changed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', COALESCE(x.nc, x.oc)->'name',
                    'old_expression', COALESCE(x.oc->'generated', 'null'), 'new_expression', COALESCE(x.nc->'generated', 'null'),
                    'old_kind', COALESCE(x.oc->'generated_kind', 'null'), 'new_kind', COALESCE(x.nc->'generated_kind', 'null'))
                    ORDER BY x.attnum)
                FILTER (WHERE COALESCE(x.oc->'generated', 'null') IS DISTINCT FROM COALESCE(x.nc->'generated', 'null')), '[]'::jsonb),
            'column_comments_changed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', x.nc->'name', 'old_comment', x.oc->'comment', 'new_comment', x.nc->'comment') ORDER BY x.attnum)
                FILTER (WHERE x.both_ AND x.oc->'comment' IS DISTINCT FROM x.nc->'comment'), '[]'::jsonb),
            'comment_changed', CASE WHEN old_shape->'comment' IS DISTINCT FROM new_shape->'comment'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'comment', 'new', new_shape->'comment') END,
            'primary_key_changed', CASE WHEN old_shape->'primary_key' IS DISTINCT FROM new_shape->'primary_key'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'primary_key', 'new', new_shape->'primary_key') END,
            'constraints_validated', (
                SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                           'name', was->'name', 'type', was->'type', 'columns', was->'columns') ORDER BY was->>'name'), '[]'::jsonb)
                  FROM pg_catalog.jsonb_array_elements(COALESCE(old_shape->'constraints', '[]')) was
                 WHERE was->'validated' = 'false'
                   AND (EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(COALESCE(new_shape->'constraints', '[]')) nk
                                 WHERE nk->>'name' = was->>'name' AND nk->'validated' = 'true')
                        OR (was->>'type' = 'not null'
                            AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(new_shape->'constraints') nk
                                             WHERE nk->>'name' = was->>'name')
                            AND EXISTS (SELECT 1 FROM pg_catalog.jsonb_array_elements(new_shape->'columns') ncol
                                         WHERE ncol->>'name' = was->'columns'->>0 AND ncol->>'not_null' = 'validated')))))
        FROM (SELECT o.c AS oc, n.c AS nc, COALESCE(n.attnum, o.attnum) AS attnum,
                     o.c IS NOT NULL AND n.c IS NOT NULL AS both_
              FROM (SELECT c, (c->>'attnum')::int AS attnum FROM pg_catalog.jsonb_array_elements(old_shape->'columns') c) o
              FULL JOIN (SELECT c, (c->>'attnum')::int AS attnum FROM pg_catalog.jsonb_array_elements(new_shape->'columns') c) n
                     ON o.attnum = n.attnum) x
    );
END
$fn$
$ddl$);

-- event_envelope(...): the fields every captured event shares, so DDL, drop and drift events cannot
-- disagree. VOLATILE: each call makes a new event_id.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.event_envelope(kind text, command text, object_type text, object_identity text,
                                                   schema_name text, tenant text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN pg_catalog.jsonb_build_object(
        'version', 1,
        'kind', kind,
        'event_id', pg_catalog.gen_random_uuid(),
        'command', command,
        'object_type', object_type,
        'object_identity', object_identity,
        'schema_name', schema_name,
        'tenant_id', tenant,
        'occurred_at', pg_catalog.statement_timestamp(),
        'transaction_id', pg_catalog.txid_current(),
        'actor', SESSION_USER::text,
        'database', pg_catalog.current_database()::text);
END
$fn$
$ddl$);

-- capture_ddl(): as in 002, publishing only schemas capture_schemas selects (the snapshot
-- follows every schema).
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
    v_enum       record;
    v_inserted   boolean := false;
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
                'changes', CASE WHEN v_old IS NOT NULL THEN @schema@.shape_changes(v_old, v_shape) END,
                'previous_shape_known', v_old IS NOT NULL);
        ELSIF v_cmd.object_type = 'schema' THEN
            CONTINUE WHEN v_automation;
            SELECT n.nspname::text INTO v_schema FROM pg_catalog.pg_namespace n WHERE n.oid = v_cmd.objid;
            CONTINUE WHEN v_schema = @schema_literal@ OR NOT @schema@.captures_schema(v_schema, v_capture, v_prefix);
            v_event := pg_catalog.jsonb_build_object('schema', pg_catalog.jsonb_build_object('name', v_schema));
        ELSE  -- type
            CONTINUE WHEN v_automation;
            SELECT n.nspname::text AS nspname, t.typname::text AS typname,
                   (SELECT pg_catalog.jsonb_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                      FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) AS labels
              INTO v_enum
              FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
             WHERE t.oid = v_cmd.objid AND t.typtype = 'e';
            CONTINUE WHEN NOT FOUND;  -- only enums are captured
            v_schema := v_enum.nspname;
            CONTINUE WHEN NOT @schema@.captures_schema(v_schema, v_capture, v_prefix);
            v_event := pg_catalog.jsonb_build_object('enum', pg_catalog.jsonb_build_object(
                'schema', v_enum.nspname, 'name', v_enum.typname,
                'values', COALESCE(v_enum.labels, '[]'::jsonb)));
        END IF;

        v_tenant := @schema@.tenant_of(v_schema, v_prefix);
        INSERT INTO @schema@.schema_changes (event_data, tenant_key)
        VALUES (v_event || @schema@.event_envelope('ddl', v_cmd.command_tag, v_cmd.object_type, v_cmd.object_identity,
                                                   v_schema, v_tenant),
                COALESCE(v_tenant, v_schema));
        v_inserted := true;
    END LOOP;

    IF v_inserted THEN
        -- Wake-up only; identical notifications are folded to one per transaction.
        PERFORM pg_catalog.pg_notify(v_channel, '');
    END IF;
END
$fn$
$ddl$);

-- capture_drop(): as in 002, publishing only schemas capture_schemas selects.
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
            INSERT INTO @schema@.schema_changes (event_data, tenant_key)
            VALUES (@schema@.event_envelope('ddl', TG_TAG, 'table', v_obj.object_identity, v_obj.schema_name, v_tenant)
                    || pg_catalog.jsonb_build_object(
                        'changes', NULL,
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
        INSERT INTO @schema@.schema_changes (event_data, tenant_key)
        VALUES (@schema@.event_envelope('ddl', TG_TAG, 'schema', pg_catalog.quote_ident(v_schema), v_schema, v_tenant)
                || pg_catalog.jsonb_build_object(
                    'changes', NULL,
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

-- drift(): every table whose catalog shape differs from its snapshot, in a schema the capture
-- publishes: DDL the event triggers never saw (a disabled trigger, session_replication_role =
-- replica, sessions of roles a managed platform exempts from event triggers, tables created
-- before the install). drift = 'created' (no snapshot, or one consumers never heard of),
-- 'altered', or 'dropped' (a reported snapshot whose table is gone). Read-only: `outbox-bridge check --drift` lists it.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.drift()
RETURNS TABLE (relid oid, drift text, schema_name text, table_name text, shape jsonb, previous_shape jsonb)
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
           AND n.nspname !~ '^pg_(temp|toast_temp)_')
    SELECT COALESCE(l.relid, s.relid),
           CASE WHEN s.relid IS NULL OR NOT s.reported THEN 'created' WHEN l.relid IS NULL THEN 'dropped' ELSE 'altered' END,
           COALESCE(l.shape, s.shape)->>'schema', COALESCE(l.shape, s.shape)->>'name',
           l.shape, CASE WHEN s.reported THEN s.shape END
      FROM live l FULL JOIN @schema@.table_shapes s ON s.relid = l.relid
     -- A table consumers never heard of is announced while it exists, and forgotten silently
     -- once it is gone.
     WHERE CASE WHEN l.relid IS NULL THEN s.reported
                ELSE s.relid IS NULL OR NOT s.reported OR l.shape IS DISTINCT FROM s.shape END
       AND @schema@.captures_schema(COALESCE(l.shape, s.shape)->>'schema', v_settings.capture_schemas,
                                    v_settings.tenant_schema_prefix)
     ORDER BY 3, 4, 1;
END
$fn$
$ddl$);

-- reconcile(): emits one kind = 'drift' event (command 'DRIFT') per table drift() lists, with
-- the same table shape and changes diff as a DDL event, then brings the snapshot up to date, so a
-- second call emits nothing. Snapshots of schemas the capture does not publish are brought up to
-- date silently. Returns the number of events. Granted to outbox_relay (the running bridge calls
-- it periodically); tenants get permission denied.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.reconcile() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_settings @schema@.settings;
    v_drift    record;
    v_tenant   text;
    v_count    bigint := 0;
    v_reported oid[] := '{}';
BEGIN
    SELECT * INTO STRICT v_settings FROM @schema@.settings;
    -- One reconcile at a time per database: two would both emit the same drift.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.reconcile'));
    FOR v_drift IN SELECT * FROM @schema@.drift() LOOP
        v_tenant := @schema@.tenant_of(v_drift.schema_name, v_settings.tenant_schema_prefix);
        INSERT INTO @schema@.schema_changes (event_data, tenant_key)
        VALUES (@schema@.event_envelope('drift', 'DRIFT', 'table',
                    pg_catalog.format('%I.%I', v_drift.schema_name, v_drift.table_name), v_drift.schema_name, v_tenant)
                || pg_catalog.jsonb_build_object(
                    'drift', v_drift.drift,
                    'table', COALESCE(v_drift.shape, v_drift.previous_shape),
                    'changes', CASE WHEN v_drift.drift = 'altered'
                                    THEN @schema@.shape_changes(v_drift.previous_shape, v_drift.shape) END,
                    'previous_shape_known', v_drift.previous_shape IS NOT NULL),
                COALESCE(v_tenant, v_drift.schema_name));
        v_count := v_count + 1;
        v_reported := v_reported || v_drift.relid;
    END LOOP;
    PERFORM @schema@.refresh_table_shapes();
    UPDATE @schema@.table_shapes s SET reported = true WHERE s.relid = ANY (v_reported);
    IF v_count > 0 THEN
        PERFORM pg_catalog.pg_notify(v_settings.notify_channel, '');
    END IF;
    RETURN v_count;
END
$fn$
$ddl$);

-- Snapshots taken before this file lack the new keys; re-take them so the next ALTER diffs
-- like against like instead of reporting every column changed.
CALL pg_temp.outbox_install($ddl$
DO $seed$ BEGIN PERFORM @schema@.refresh_table_shapes(); END $seed$
$ddl$);

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA :"schema" FROM PUBLIC;
GRANT EXECUTE ON FUNCTION :"schema".drift(), :"schema".reconcile() TO outbox_relay;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 14 (capture_contract) already applied, skipping
\endif
