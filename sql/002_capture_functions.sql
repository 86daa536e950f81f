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
    -- A plain expression, not RETURN (SELECT ...): plpgsql evaluates it without the executor.
    RETURN CASE
        WHEN pg_catalog.length(schema_name) > pg_catalog.length(prefix)
         AND pg_catalog.left(schema_name, pg_catalog.length(prefix)) = prefix
        THEN pg_catalog.substr(schema_name, pg_catalog.length(prefix) + 1)
    END;
END
$fn$
$ddl$);

-- is_automation(role): is session_user a member of the automation role?
-- session_user, not current_user: inside these SECURITY DEFINER functions current_user is the
-- installer. SET ROLE does not change session_user, so a tenant cannot borrow membership by
-- SET ROLE either. pg_has_role() only for non-superusers: it reports superusers as members of
-- every role, which would silently stop capturing all superuser DDL. For superusers membership
-- is walked explicitly, upwards from session_user; a superuser without memberships (the usual
-- case) costs one index probe of pg_auth_members.
-- One query, no cache: a per-session or per-transaction cache would need a place a tenant cannot
-- write (a GUC can be SET by anyone), and the query is already cheap (pg_has_role uses the
-- backend's role membership cache).
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.is_automation(automation_role name) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_role       oid;
    v_user       oid;
    v_super      boolean;
    v_has_groups boolean;
BEGIN
    SELECT a.oid, u.oid, u.rolsuper,
           CASE WHEN u.rolsuper THEN EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member = u.oid) END
      INTO v_role, v_user, v_super, v_has_groups
      FROM pg_catalog.pg_roles a, pg_catalog.pg_roles u
     WHERE a.rolname = automation_role AND u.rolname = SESSION_USER;
    IF NOT FOUND THEN
        RETURN false;  -- misconfigured or dropped role: capture everything, never break DDL
    ELSIF v_user = v_role THEN
        RETURN true;
    ELSIF NOT v_super THEN
        -- Fast path: for non-superusers pg_has_role(MEMBER) is exact (and uses the role cache).
        RETURN pg_catalog.pg_has_role(v_user, v_role, 'MEMBER');
    ELSIF NOT v_has_groups THEN
        RETURN false;  -- a superuser that is a member of no role at all (the usual case)
    END IF;
    -- Superusers with memberships: walk pg_auth_members upwards from session_user, so only
    -- explicit (possibly indirect) membership counts.
    RETURN EXISTS (
        WITH RECURSIVE granted(oid) AS (
            SELECT m.roleid FROM pg_catalog.pg_auth_members m WHERE m.member = v_user
            UNION
            SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN granted g ON m.member = g.oid)
        SELECT 1 FROM granted g WHERE g.oid = v_role);
END
$fn$
$ddl$);

-- table_shape(relid): the shape of an ordinary or partitioned, non-temporary table, or NULL.
-- One query, index lookups by oid only: one probe each of pg_class, pg_namespace, pg_constraint
-- (primary key) and pg_description (table comment), then one pass over pg_attribute with a probe
-- of pg_attrdef and pg_description per column; primary key order comes from conkey.
-- pg_description is read directly: obj_description()/col_description() are SQL functions that
-- are re-planned on every call.
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
            'comment', td.description,
            'partitioned', c.relkind = 'p',
            'columns', COALESCE(cols.columns, '[]'::jsonb),
            'primary_key', COALESCE(cols.primary_key, '[]'::jsonb))
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
        LEFT JOIN pg_catalog.pg_description td
               ON td.objoid = c.oid AND td.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND td.objsubid = 0
        CROSS JOIN LATERAL (
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
                       ORDER BY a.attnum) AS columns,
                   pg_catalog.jsonb_agg(a.attname::text ORDER BY a.pk_ord) FILTER (WHERE a.pk_ord IS NOT NULL) AS primary_key
            FROM (SELECT att.attrelid, att.attnum, att.attname, att.atttypid, att.atttypmod, att.attnotnull,
                         att.attgenerated, att.attidentity,
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

-- shape_changes(old_shape, new_shape): what an ALTER TABLE / COMMENT changed. Columns are matched
-- by attnum, so RENAME COLUMN is a rename (not drop+add) and ALTER COLUMN TYPE is a retype. Every
-- array is always present (empty when nothing of that kind changed); object-valued keys are NULL
-- then. One pass: old and new columns full-joined on attnum, one aggregate per kind of change.
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
            'column_comments_changed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', x.nc->'name', 'old_comment', x.oc->'comment', 'new_comment', x.nc->'comment') ORDER BY x.attnum)
                FILTER (WHERE x.both_ AND x.oc->'comment' IS DISTINCT FROM x.nc->'comment'), '[]'::jsonb),
            'comment_changed', CASE WHEN old_shape->'comment' IS DISTINCT FROM new_shape->'comment'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'comment', 'new', new_shape->'comment') END,
            'primary_key_changed', CASE WHEN old_shape->'primary_key' IS DISTINCT FROM new_shape->'primary_key'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'primary_key', 'new', new_shape->'primary_key') END)
        FROM (SELECT o.c AS oc, n.c AS nc, COALESCE(n.attnum, o.attnum) AS attnum,
                     o.c IS NOT NULL AND n.c IS NOT NULL AS both_
              FROM (SELECT c, (c->>'attnum')::int AS attnum FROM pg_catalog.jsonb_array_elements(old_shape->'columns') c) o
              FULL JOIN (SELECT c, (c->>'attnum')::int AS attnum FROM pg_catalog.jsonb_array_elements(new_shape->'columns') c) n
                     ON o.attnum = n.attnum) x
    );
END
$fn$
$ddl$);

-- capture_ddl(): ddl_command_end trigger. One event per captured object per statement, in
-- statement order (bigserial id), all of a transaction sharing transaction_id. Any error here
-- aborts the DDL statement, so a committed DDL always has its events and a failed capture never
-- lets DDL through uncaptured.
-- Hot path (CREATE/ALTER TABLE): settings + loop guard in one query, the command list filtered
-- in SQL (the indexes, sequences, ... a CREATE TABLE also reports never reach the loop), then per
-- table: shape, previous snapshot (ALTER/COMMENT only), snapshot upsert, event, and pg_notify.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.capture_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_prefix     text;
    v_channel    text;
    v_automation boolean;
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
    SELECT s.tenant_schema_prefix, s.notify_channel, @schema@.is_automation(s.automation_role)
      INTO STRICT v_prefix, v_channel, v_automation
      FROM @schema@.settings s;

    FOR v_cmd IN
        SELECT c.objid, c.command_tag, c.object_type, c.object_identity
          FROM pg_catalog.pg_event_trigger_ddl_commands() c
         -- Only what can produce an event (not the indexes, sequences, ... a statement also
         -- creates), and nothing in our own schema or in system and temporary schemas.
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
            -- A statement can report the same table more than once; one event per table.
            CONTINUE WHEN v_cmd.objid = ANY (v_done);
            v_done := v_done || v_cmd.objid;
            -- Separate small statements: one WITH ... INSERT doing all of this measured slower
            -- (about twice the sum of its parts).
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
            v_tenant := @schema@.tenant_of(v_schema, v_prefix);
            -- The whole event in one jsonb_build_object: every extra jsonb step (||, an
            -- intermediate variable) re-serialises the shape.
            INSERT INTO @schema@.schema_changes (event_data, tenant_key)
            VALUES (pg_catalog.jsonb_build_object(
                        'table', v_shape,
                        -- NULL for CREATE, and for ALTER of a table whose previous shape is
                        -- unknown (created before install and not seeded); previous_shape_known
                        -- says which.
                        'changes', CASE WHEN v_old IS NOT NULL THEN @schema@.shape_changes(v_old, v_shape) END,
                        'previous_shape_known', v_old IS NOT NULL,
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
            CONTINUE;

        ELSIF v_cmd.object_type = 'schema' THEN
            CONTINUE WHEN v_automation;
            SELECT n.nspname::text INTO v_schema FROM pg_catalog.pg_namespace n WHERE n.oid = v_cmd.objid;
            CONTINUE WHEN v_schema = @schema_literal@;
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
            v_event := pg_catalog.jsonb_build_object('enum', pg_catalog.jsonb_build_object(
                'schema', v_enum.nspname, 'name', v_enum.typname,
                'values', COALESCE(v_enum.labels, '[]'::jsonb)));
        END IF;

        v_tenant := @schema@.tenant_of(v_schema, v_prefix);
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
        PERFORM pg_catalog.pg_notify(v_channel, '');
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
