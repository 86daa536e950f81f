-- outbox-bridge migration 2: DDL capture functions and the event triggers that call them.
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/002_capture_functions.sql
--
-- Function bodies are dollar-quoted, where psql does not substitute :"schema". So each function is
-- written once with the tokens @schema@ (identifier) and @schema_literal@ (string literal) and
-- created through pg_temp.outbox_install(), which replaces them with quote_ident()/quote_literal()
-- of the install schema and EXECUTEs the result. The tokens are internal to this file: an
-- installer only substitutes :"schema" / :'schema' like psql does.
--
-- Helpers are plpgsql rather than SQL functions on purpose: a SQL function that cannot be inlined
-- (and SET search_path prevents inlining) is re-planned on every call, while plpgsql caches its
-- plans for the session. That alone was most of the per-DDL overhead in scripts/bench-capture.sh.
--
-- Every function is SECURITY DEFINER (owned by the installing superuser) with a pinned
-- search_path and pg_catalog-qualified names, so callers cannot redirect any lookup.

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 2) AS outbox_apply \gset
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
INSERT INTO :"schema".schema_migrations (version, name) VALUES (2, 'capture_functions');

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

-- tenant_of(schema, prefix): 'tenant_42' -> '42'; NULL when the schema is not a tenant schema.
-- left()/substr() rather than LIKE, because the default prefix contains "_", a LIKE wildcard.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.tenant_of(schema_name text, prefix text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN (
        SELECT CASE
            WHEN pg_catalog.length(schema_name) > pg_catalog.length(prefix)
             AND pg_catalog.left(schema_name, pg_catalog.length(prefix)) = prefix
            THEN pg_catalog.substr(schema_name, pg_catalog.length(prefix) + 1)
        END
    );
END
$fn$
$ddl$);

-- is_automation(role): is session_user a member of the automation role?
-- session_user, not current_user: inside these SECURITY DEFINER functions current_user is the
-- installer. SET ROLE does not change session_user, so a tenant cannot borrow membership by
-- SET ROLE either. Not pg_has_role(): it reports superusers as members of every role, which would
-- silently stop capturing all superuser DDL. Membership is walked explicitly instead.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.is_automation(automation_role name) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_session_super boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = automation_role) THEN
        RETURN false;  -- misconfigured or dropped role: capture everything, never break DDL
    END IF;
    SELECT r.rolsuper INTO v_session_super FROM pg_catalog.pg_roles r WHERE r.rolname = SESSION_USER;
    IF NOT v_session_super THEN
        -- Fast path: for non-superusers pg_has_role(MEMBER) is exact (and uses the role cache).
        RETURN pg_catalog.pg_has_role(SESSION_USER, automation_role, 'MEMBER');
    END IF;
    -- Superusers: walk pg_auth_members so only explicit (possibly indirect) membership counts.
    RETURN (
        WITH RECURSIVE members(oid) AS (
            SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = automation_role
            UNION
            SELECT m.member FROM pg_catalog.pg_auth_members m JOIN members ON m.roleid = members.oid
        )
        SELECT EXISTS (
            SELECT 1 FROM members JOIN pg_catalog.pg_roles s ON s.oid = members.oid
            WHERE s.rolname = SESSION_USER)
    );
END
$fn$
$ddl$);

-- table_shape(relid): the shape of an ordinary or partitioned, non-temporary table, or NULL.
-- Index lookups by oid only (pg_class, pg_attribute, pg_attrdef, pg_constraint, pg_description).
-- pg_description is read directly: obj_description()/col_description() are SQL functions that
-- are re-planned on every call (they were ~40% of the trigger's cost in the benchmark).
--   position = 1-based ordinal among live columns; attnum = PostgreSQL's stable column number
--   (used to detect renames); default = pg_get_expr of the default (NULL for generated columns,
--   whose expression is in "generated").
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.table_shape(relid oid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN (
        SELECT pg_catalog.jsonb_build_object(
            'schema', n.nspname::text,
            'name', c.relname::text,
            'comment', (SELECT ds.description FROM pg_catalog.pg_description ds
                        WHERE ds.objoid = c.oid AND ds.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND ds.objsubid = 0),
            'partitioned', c.relkind = 'p',
            'columns', COALESCE((
                SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                           'name', a.attname::text,
                           'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                           'nullable', NOT a.attnotnull,
                           'default', CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END,
                           'generated', CASE WHEN a.attgenerated <> '' THEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) END,
                           'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
                           'position', a.ord,
                           'attnum', a.attnum,
                           'comment', dc.description)
                       ORDER BY a.attnum)
                FROM (SELECT att.*, pg_catalog.row_number() OVER (ORDER BY att.attnum) AS ord
                      FROM pg_catalog.pg_attribute att
                      WHERE att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped) a
                LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                LEFT JOIN pg_catalog.pg_description dc
                       ON dc.objoid = c.oid AND dc.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND dc.objsubid = a.attnum
            ), '[]'::jsonb),
            'primary_key', COALESCE((
                SELECT pg_catalog.jsonb_agg(pa.attname::text ORDER BY k.ord)
                FROM pg_catalog.pg_constraint con
                CROSS JOIN LATERAL pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                JOIN pg_catalog.pg_attribute pa ON pa.attrelid = con.conrelid AND pa.attnum = k.attnum
                WHERE con.conrelid = c.oid AND con.contype = 'p'
            ), '[]'::jsonb))
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = relid AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
    );
END
$fn$
$ddl$);

-- shape_changes(old_shape, new_shape): what an ALTER TABLE / COMMENT changed. Columns are matched by attnum,
-- so RENAME COLUMN is a rename (not drop+add) and ALTER COLUMN TYPE is a retype. Every array is
-- always present (empty when nothing of that kind changed); object-valued keys are NULL then.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.shape_changes(old_shape jsonb, new_shape jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN (
        WITH o AS (SELECT c, (c->>'attnum')::int AS attnum FROM pg_catalog.jsonb_array_elements(old_shape->'columns') c),
             n AS (SELECT c, (c->>'attnum')::int AS attnum FROM pg_catalog.jsonb_array_elements(new_shape->'columns') c),
             both_ AS (SELECT o.c AS oc, n.c AS nc, n.attnum FROM o JOIN n USING (attnum))
        SELECT pg_catalog.jsonb_build_object(
            'table_renamed', CASE WHEN old_shape->>'name' IS DISTINCT FROM new_shape->>'name'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'name', 'new', new_shape->'name') END,
            'schema_changed', CASE WHEN old_shape->>'schema' IS DISTINCT FROM new_shape->>'schema'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'schema', 'new', new_shape->'schema') END,
            'columns_added', COALESCE((SELECT pg_catalog.jsonb_agg(n.c ORDER BY n.attnum) FROM n
                WHERE NOT EXISTS (SELECT 1 FROM o WHERE o.attnum = n.attnum)), '[]'::jsonb),
            'columns_dropped', COALESCE((SELECT pg_catalog.jsonb_agg(o.c ORDER BY o.attnum) FROM o
                WHERE NOT EXISTS (SELECT 1 FROM n WHERE n.attnum = o.attnum)), '[]'::jsonb),
            'columns_renamed', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'old', oc->'name', 'new', nc->'name') ORDER BY attnum) FROM both_
                WHERE oc->>'name' IS DISTINCT FROM nc->>'name'), '[]'::jsonb),
            'columns_retyped', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', nc->'name', 'old_type', oc->'type', 'new_type', nc->'type') ORDER BY attnum) FROM both_
                WHERE oc->>'type' IS DISTINCT FROM nc->>'type'), '[]'::jsonb),
            'nullability_changed', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', nc->'name', 'old_nullable', oc->'nullable', 'new_nullable', nc->'nullable') ORDER BY attnum) FROM both_
                WHERE oc->'nullable' IS DISTINCT FROM nc->'nullable'), '[]'::jsonb),
            'defaults_changed', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', nc->'name', 'old_default', oc->'default', 'new_default', nc->'default') ORDER BY attnum) FROM both_
                WHERE oc->'default' IS DISTINCT FROM nc->'default'), '[]'::jsonb),
            'column_comments_changed', COALESCE((SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', nc->'name', 'old_comment', oc->'comment', 'new_comment', nc->'comment') ORDER BY attnum) FROM both_
                WHERE oc->'comment' IS DISTINCT FROM nc->'comment'), '[]'::jsonb),
            'comment_changed', CASE WHEN old_shape->'comment' IS DISTINCT FROM new_shape->'comment'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'comment', 'new', new_shape->'comment') END,
            'primary_key_changed', CASE WHEN old_shape->'primary_key' IS DISTINCT FROM new_shape->'primary_key'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'primary_key', 'new', new_shape->'primary_key') END)
    );
END
$fn$
$ddl$);

-- capture_ddl(): ddl_command_end trigger. One event per captured object per statement, in
-- statement order (bigserial id), all of a transaction sharing transaction_id. Any error here
-- aborts the DDL statement, so a committed DDL always has its events and a failed capture never
-- lets DDL through uncaptured.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.capture_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_settings   @schema@.settings;
    v_automation boolean;
    v_cmd        record;
    v_done       oid[] := '{}';
    v_shape      jsonb;
    v_old        jsonb;
    v_event      jsonb;
    v_schema     text;
    v_tenant     text;
    v_enum       record;
    v_inserted   boolean := false;
BEGIN
    -- STRICT: a missing settings row must fail the DDL loudly, not skip capture silently.
    SELECT * INTO STRICT v_settings FROM @schema@.settings;
    v_automation := @schema@.is_automation(v_settings.automation_role);

    FOR v_cmd IN SELECT * FROM pg_catalog.pg_event_trigger_ddl_commands() LOOP
        -- Cheap exits first: our own schema, system and temporary schemas.
        CONTINUE WHEN v_cmd.schema_name IS NOT NULL AND (
            v_cmd.schema_name = @schema_literal@
            OR v_cmd.schema_name IN ('pg_catalog', 'information_schema', 'pg_toast')
            OR pg_catalog.left(v_cmd.schema_name, 7) = 'pg_temp');

        IF v_cmd.object_type IN ('table', 'table column')
           AND v_cmd.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'COMMENT') THEN
            -- A statement can report the same table more than once; one event per table.
            CONTINUE WHEN v_cmd.objid = ANY (v_done);
            v_done := v_done || v_cmd.objid;
            v_shape := @schema@.table_shape(v_cmd.objid);
            -- NULL: views, foreign tables, temp tables, ...; SET SCHEMA into our schema.
            CONTINUE WHEN v_shape IS NULL OR v_shape->>'schema' = @schema_literal@;
            v_old := NULL;
            IF v_cmd.command_tag IN ('ALTER TABLE', 'COMMENT') THEN
                SELECT s.shape INTO v_old FROM @schema@.table_shapes s WHERE s.relid = v_cmd.objid;
            END IF;
            -- The snapshot follows reality even for automation DDL (which is not emitted), so the
            -- next captured ALTER reports only its own changes.
            INSERT INTO @schema@.table_shapes AS s (relid, shape, updated_at)
            VALUES (v_cmd.objid, v_shape, pg_catalog.statement_timestamp())
            ON CONFLICT (relid) DO UPDATE SET shape = EXCLUDED.shape, updated_at = EXCLUDED.updated_at;
            CONTINUE WHEN v_automation;
            v_schema := v_shape->>'schema';
            v_event := pg_catalog.jsonb_build_object(
                'table', v_shape,
                -- NULL for CREATE, and for ALTER of a table whose previous shape is unknown
                -- (created before install and not seeded); previous_shape_known says which.
                'changes', CASE WHEN v_old IS NOT NULL THEN @schema@.shape_changes(v_old, v_shape) END,
                'previous_shape_known', v_old IS NOT NULL);

        ELSIF v_cmd.object_type = 'schema' AND v_cmd.command_tag = 'CREATE SCHEMA' THEN
            SELECT n.nspname::text INTO v_schema FROM pg_catalog.pg_namespace n WHERE n.oid = v_cmd.objid;
            CONTINUE WHEN v_automation OR v_schema = @schema_literal@;
            v_event := pg_catalog.jsonb_build_object('schema', pg_catalog.jsonb_build_object('name', v_schema));

        ELSIF v_cmd.object_type = 'type' AND v_cmd.command_tag IN ('CREATE TYPE', 'ALTER TYPE') THEN
            CONTINUE WHEN v_automation;
            SELECT n.nspname::text AS nspname, t.typname::text AS typname,
                   (SELECT pg_catalog.jsonb_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                      FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid) AS labels
              INTO v_enum
              FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
             WHERE t.oid = v_cmd.objid AND t.typtype = 'e';
            CONTINUE WHEN NOT FOUND;  -- only enums are captured
            v_schema := v_enum.nspname;
            v_event := pg_catalog.jsonb_build_object('enum', pg_catalog.jsonb_build_object(
                'schema', v_enum.nspname, 'name', v_enum.typname,
                'values', COALESCE(v_enum.labels, '[]'::jsonb)));
        ELSE
            CONTINUE;
        END IF;

        v_tenant := @schema@.tenant_of(v_schema, v_settings.tenant_schema_prefix);
        INSERT INTO @schema@.schema_changes (event_data, tenant_key)
        VALUES (v_event || pg_catalog.jsonb_build_object(
                    'version', 1,
                    'kind', 'ddl',
                    'event_id', pg_catalog.gen_random_uuid(),
                    'command', v_cmd.command_tag,
                    'object_type', v_cmd.object_type,
                    'object_identity', v_cmd.object_identity,
                    'schema_name', v_schema,
                    'tenant_id', v_tenant,
                    'occurred_at', pg_catalog.statement_timestamp(),
                    'transaction_id', pg_catalog.txid_current(),
                    'actor', SESSION_USER::text,
                    'database', pg_catalog.current_database()::text),
                COALESCE(v_tenant, v_schema));
        v_inserted := true;
    END LOOP;

    IF v_inserted THEN
        -- Wake-up only; the event never travels in the notification. Identical notifications
        -- are folded to one per transaction by PostgreSQL.
        PERFORM pg_catalog.pg_notify(v_settings.notify_channel, '');
    END IF;
END
$fn$
$ddl$);

-- capture_drop(): sql_drop trigger for DROP TABLE and DROP SCHEMA. The dropped table's shape
-- comes from the snapshot (the catalog rows are already gone). DROP SCHEMA ... CASCADE emits one
-- event per dropped table (command 'DROP SCHEMA', cascade: true) followed by one event for the
-- schema itself, so consumers handle "table gone" in one place whatever dropped it.
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
    v_idents     text[] := '{}';
    v_schema     text;
    v_tables     jsonb;
    v_inserted   boolean := false;
    v_common     jsonb;
BEGIN
    SELECT * INTO STRICT v_settings FROM @schema@.settings;
    v_automation := @schema@.is_automation(v_settings.automation_role);
    v_common := pg_catalog.jsonb_build_object(
        'version', 1, 'kind', 'ddl', 'command', TG_TAG,
        'occurred_at', pg_catalog.statement_timestamp(),
        'transaction_id', pg_catalog.txid_current(),
        'actor', SESSION_USER::text,
        'database', pg_catalog.current_database()::text,
        'changes', NULL);

    FOR v_obj IN SELECT * FROM pg_catalog.pg_event_trigger_dropped_objects() LOOP
        IF v_obj.object_type = 'table' THEN
            -- Always forget the snapshot (its oid may be reused later).
            DELETE FROM @schema@.table_shapes s WHERE s.relid = v_obj.objid RETURNING s.shape INTO v_shape;
            CONTINUE WHEN v_obj.is_temporary OR v_automation
                OR v_obj.schema_name = @schema_literal@ OR pg_catalog.left(v_obj.schema_name, 7) = 'pg_temp';
            v_tenant := @schema@.tenant_of(v_obj.schema_name, v_settings.tenant_schema_prefix);
            INSERT INTO @schema@.schema_changes (event_data, tenant_key)
            VALUES (v_common || pg_catalog.jsonb_build_object(
                        'event_id', pg_catalog.gen_random_uuid(),
                        'object_type', 'table',
                        'object_identity', v_obj.object_identity,
                        'schema_name', v_obj.schema_name,
                        'tenant_id', v_tenant,
                        'cascade', NOT v_obj.original,
                        'previous_shape_known', v_shape IS NOT NULL,
                        -- Unknown shape (table predates install): name only, columns NULL.
                        'table', COALESCE(v_shape, pg_catalog.jsonb_build_object(
                            'schema', v_obj.schema_name, 'name', v_obj.object_name,
                            'comment', NULL, 'columns', NULL, 'primary_key', NULL))),
                    COALESCE(v_tenant, v_obj.schema_name));
            v_inserted := true;
            v_idents := v_idents || v_obj.object_identity;
        ELSIF v_obj.object_type = 'schema' AND NOT v_automation
              AND v_obj.object_name <> @schema_literal@ AND pg_catalog.left(v_obj.object_name, 7) <> 'pg_temp' THEN
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
        VALUES (v_common || pg_catalog.jsonb_build_object(
                    'event_id', pg_catalog.gen_random_uuid(),
                    'object_type', 'schema',
                    'object_identity', pg_catalog.quote_ident(v_schema),
                    'schema_name', v_schema,
                    'tenant_id', v_tenant,
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

-- refresh_table_shapes(): (re)seed the snapshot of every user table, so ALTER/DROP of tables that
-- existed before install report real changes/shapes. Called once below; safe to call again.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.refresh_table_shapes() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_count bigint;
BEGIN
    DELETE FROM @schema@.table_shapes s
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = s.relid AND c.relkind IN ('r', 'p'));
    INSERT INTO @schema@.table_shapes AS s (relid, shape, updated_at)
    SELECT c.oid, @schema@.table_shape(c.oid), pg_catalog.now()
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
       AND n.nspname <> @schema_literal@
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
       AND n.nspname !~ '^pg_(temp|toast_temp)_'
    ON CONFLICT (relid) DO UPDATE SET shape = EXCLUDED.shape, updated_at = EXCLUDED.updated_at;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$fn$
$ddl$);

-- Event triggers are database-wide objects with database-wide names, so one capture install per
-- database. Refuse to silently take over triggers that call another schema's functions.
DO $triggers$
DECLARE
    s   text := pg_catalog.current_setting('outbox_bridge.install_schema');
    t   record;
BEGIN
    FOR t IN SELECT e.evtname, n.nspname
               FROM pg_catalog.pg_event_trigger e
               JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
               JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
              WHERE e.evtname IN ('outbox_bridge_capture_ddl', 'outbox_bridge_capture_drop') LOOP
        IF t.nspname <> s THEN
            RAISE EXCEPTION 'outbox-bridge: event trigger % already captures into schema %; only one install per database',
                t.evtname, pg_catalog.quote_ident(t.nspname);
        END IF;
        EXECUTE pg_catalog.format('DROP EVENT TRIGGER %I', t.evtname);
    END LOOP;
    EXECUTE pg_catalog.format(
        'CREATE EVENT TRIGGER outbox_bridge_capture_ddl ON ddl_command_end '
        'WHEN TAG IN (''CREATE TABLE'', ''CREATE TABLE AS'', ''SELECT INTO'', ''ALTER TABLE'', '
        '''CREATE SCHEMA'', ''CREATE TYPE'', ''ALTER TYPE'', ''COMMENT'') '
        'EXECUTE FUNCTION %I.capture_ddl()', s);
    EXECUTE pg_catalog.format(
        'CREATE EVENT TRIGGER outbox_bridge_capture_drop ON sql_drop '
        'WHEN TAG IN (''DROP TABLE'', ''DROP SCHEMA'') '
        'EXECUTE FUNCTION %I.capture_drop()', s);
END
$triggers$;

CALL pg_temp.outbox_install($ddl$
DO $seed$ BEGIN RAISE NOTICE 'outbox-bridge: seeded % table shapes', @schema@.refresh_table_shapes(); END $seed$
$ddl$);

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA :"schema" FROM PUBLIC;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 2 (capture_functions) already applied, skipping
\endif
