-- outbox-bridge migration 19: the capture's cost per statement, part 2 (issue 14, "Capture cost,
-- decided"). The events and snapshots are unchanged, byte for byte; what changes is how many SQL
-- statements the capture runs for each captured table, because most of its cost is the fixed
-- price of each one (plan revalidation, locks, executor start-up and shutdown, plus the nested
-- SECURITY DEFINER call around some of them). Measurements: sql/README.md, "Capture cost of
-- migration 19".
--
-- live_table_shapes (a view): table_shape()'s query for every table, so a statement can read a
--   shape inline instead of through a nested function that runs the query as a statement of its
--   own. table_shape(relid) now reads it (one definition of the shape). Two of the query's four
--   sorts are gone (each aggregate with an ORDER BY set up a sort of its own, even for one row or
--   none; this was the largest single saving): the columns come from a subquery sorted by attnum
--   (with their default and comment joined inside it), the constraints in name order from
--   pg_constraint's index.
-- numbered_envelope(..., tenant_seq): event_envelope()'s fields for a number already drawn, so
--   the capture can draw the number and insert the event in one statement; event_envelope() is
--   the counter upsert plus this.
-- capture_ddl(): per captured table two statements where there were four or five (shape,
--   previous snapshot, snapshot upsert; counter, event insert, notify):
--   1. shape (from live_table_shapes), previous snapshot (ALTER and COMMENT only) and snapshot
--      upsert, in one statement: its CTEs read the snapshot before the upsert replaces it;
--   2. tenant counter, event insert and NOTIFY, in one statement: the counter's row lock is
--      taken before the event's id is drawn (the insert selects from the counter's RETURNING),
--      as event_envelope() before it; NOTIFY per event instead of once per statement is the
--      same wake-up (identical notifications are folded to one per transaction).
--   tenant_of() runs once per event (it ran twice for tables).
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/019_capture_statements.sql
-- (after the files before it; see sql/README.md). Same conventions as 002: function bodies use
-- @schema@ / @schema_literal@, replaced by pg_temp.outbox_install().

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 19) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;
SET LOCAL outbox_bridge.install_schema = :'schema';
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;
INSERT INTO :"schema".schema_migrations (version, name) VALUES (19, 'capture_statements');

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

-- live_table_shapes: relid and shape (as described at table_shape() in 014) of every ordinary or
-- partitioned, non-temporary table. A condition on relid is pushed down to the pg_class lookup,
-- so reading one table's shape costs what table_shape()'s query did. Readable only by its owner
-- (the capture's functions run as the owner).
CALL pg_temp.outbox_install($ddl$
CREATE VIEW @schema@.live_table_shapes AS
SELECT c.oid AS relid,
       pg_catalog.jsonb_build_object(
            'schema', n.nspname::text,
            'name', c.relname::text,
            'comment', td.description,
            'partitioned', c.relkind = 'p',
            'columns', COALESCE(cols.columns, '[]'::jsonb),
            'primary_key', COALESCE(cols.primary_key, '[]'::jsonb),
            'constraints', COALESCE(cons.constraints, '[]'::jsonb)) AS shape
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
                 ) FILTER (WHERE k.contype <> 'p' AND NOT (k.contype = 'n' AND k.convalidated)) AS constraints
      -- In name order without a sort: pg_constraint's (conrelid, contypid, conname) index gives
      -- that order once both are fixed (contypid is 0 for every table constraint).
      FROM (SELECT k.oid, k.conname, k.contype, k.conkey, k.convalidated
              FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contypid = 0
             ORDER BY k.conname) k
  ) cons
  CROSS JOIN LATERAL (
      -- The columns come sorted by attnum from the subquery (a subquery with ORDER BY is never
      -- pulled up, and an aggregate with nothing joined above it consumes its rows in order), so
      -- the columns' aggregate needs no sort of its own.
      SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                 'name', a.attname::text,
                 'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
                 'nullable', NOT a.attnotnull OR a.not_valid,
                 'not_null', CASE WHEN a.not_valid THEN 'not valid' WHEN a.attnotnull THEN 'validated' END,
                 'default', CASE WHEN a.attgenerated = '' THEN a.expression END,
                 'generated', CASE WHEN a.attgenerated <> '' THEN a.expression END,
                 'generated_kind', CASE a.attgenerated WHEN 's' THEN 'stored' WHEN 'v' THEN 'virtual' END,
                 'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
                 'position', a.ord,
                 'attnum', a.attnum,
                 'comment', a.description)) AS columns,
             pg_catalog.jsonb_agg(a.attname::text ORDER BY a.pk_ord) FILTER (WHERE a.pk_ord IS NOT NULL) AS primary_key
      FROM (SELECT att.attnum, att.attname, att.atttypid, att.atttypmod, att.attnotnull,
                   att.attgenerated, att.attidentity,
                   att.attnum = ANY (COALESCE(cons.not_valid_not_null, '{}')) AS not_valid,
                   pg_catalog.row_number() OVER (ORDER BY att.attnum) AS ord,
                   pg_catalog.array_position(pk.conkey, att.attnum) AS pk_ord,
                   pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS expression,
                   dc.description
            FROM pg_catalog.pg_attribute att
            LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = att.attrelid AND d.adnum = att.attnum
            LEFT JOIN pg_catalog.pg_description dc
                   ON dc.objoid = att.attrelid AND dc.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass AND dc.objsubid = att.attnum
            WHERE att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped
            ORDER BY att.attnum) a
  ) cols
 WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
$ddl$);
REVOKE ALL ON :"schema".live_table_shapes FROM PUBLIC;

-- table_shape(relid): as in 014, read from live_table_shapes.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.table_shape(relid oid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN (SELECT l.shape FROM @schema@.live_table_shapes l WHERE l.relid = table_shape.relid);
END
$fn$
$ddl$);

-- numbered_envelope(...): the fields every captured event shares (see event_envelope() in 016),
-- for a tenant_seq already drawn from the tenant's counter (NULL when tenant is NULL). VOLATILE:
-- each call makes a new event_id.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.numbered_envelope(kind text, command text, object_type text, object_identity text,
                                                      schema_name text, tenant text, tenant_seq bigint) RETURNS jsonb
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
        'tenant_seq', tenant_seq,
        'occurred_at', pg_catalog.statement_timestamp(),
        'transaction_id', pg_catalog.txid_current(),
        'actor', SESSION_USER::text,
        'database', pg_catalog.current_database()::text);
END
$fn$
$ddl$);

-- event_envelope(...): as in 016 (the tenant's counter upsert, then the fields).
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
    RETURN @schema@.numbered_envelope(kind, command, object_type, object_identity, schema_name, tenant, v_seq);
END
$fn$
$ddl$);

-- capture_ddl(): as in 016, in fewer statements (see the top of this file).
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
    v_notified   text;
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
            -- Shape, previous snapshot and snapshot upsert in one statement. No row: views,
            -- foreign tables, temp tables, ... A table in our schema (SET SCHEMA into it) gets
            -- neither snapshot nor event. The snapshot follows every schema and automation DDL
            -- too, so the next captured ALTER reports only its own changes.
            WITH live AS (
                SELECT l.shape,
                       NOT v_automation AND @schema@.captures_schema(l.shape->>'schema', v_capture, v_prefix) AS published
                  FROM @schema@.live_table_shapes l
                 WHERE l.relid = v_cmd.objid AND l.shape->>'schema' <> @schema_literal@),
            snapshot AS (
                INSERT INTO @schema@.table_shapes AS s (relid, shape, updated_at, reported)
                SELECT v_cmd.objid, live.shape, pg_catalog.statement_timestamp(), v_automation OR live.published FROM live
                ON CONFLICT (relid) DO UPDATE
                    SET shape = EXCLUDED.shape, updated_at = EXCLUDED.updated_at, reported = s.reported OR EXCLUDED.reported)
            -- The previous snapshot is read for every command (one index probe) and dropped here
            -- for those that do not diff, which keeps the statement free of conditions on the
            -- command (its plan is the same for every call).
            SELECT live.shape, live.published, previous.shape
              INTO v_shape, v_published, v_old
              FROM live LEFT JOIN @schema@.table_shapes previous ON previous.relid = v_cmd.objid;
            IF v_cmd.command_tag NOT IN ('ALTER TABLE', 'COMMENT') THEN
                v_old := NULL;
            END IF;
            CONTINUE WHEN v_shape IS NULL OR NOT v_published;
            v_schema := v_shape->>'schema';
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
        -- The tenant's number is drawn (its counter row locked) before the INSERT draws the row's
        -- id: the insert's one row comes out of the join with the counter's RETURNING, so a
        -- transaction that waited for the counter gets ids after the one it waited for.
        -- The NOTIFY is a wake-up only; identical notifications are folded to one per transaction.
        WITH counter AS (
            INSERT INTO @schema@.tenant_sequences AS t (tenant, last_seq)
            SELECT v_tenant, 1 WHERE v_tenant IS NOT NULL
            ON CONFLICT ON CONSTRAINT tenant_sequences_pkey DO UPDATE SET last_seq = t.last_seq + 1
            RETURNING t.last_seq)
        INSERT INTO @schema@.schema_changes (event_data, tenant_key)
        SELECT v_event || @schema@.numbered_envelope('ddl', v_cmd.command_tag, v_cmd.object_type, v_cmd.object_identity,
                                                     v_schema, v_tenant, counter.last_seq),
               COALESCE(v_tenant, v_schema)
          FROM (SELECT) one LEFT JOIN counter ON true
        RETURNING pg_catalog.pg_notify(v_channel, '')::text INTO v_notified;
    END LOOP;
END
$fn$
$ddl$);

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA :"schema" FROM PUBLIC;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 19 (capture statements) already applied, skipping
\endif
