-- outbox-bridge migration 19: the capture's cost per statement, part 2 (issue 14, "Capture cost,
-- decided"). The events and snapshots are unchanged, byte for byte; only how table_shape() gets
-- there changes (measurements: sql/README.md, "Capture cost of migration 19").
--
-- table_shape(relid): 014's query with two of its four sorts gone. On PostgreSQL 15 every
--   aggregate with an ORDER BY sets up a sort of its own, even for one row or none. Now the
--   columns come from a subquery sorted by attnum, with their default and comment joined inside
--   it (a subquery with ORDER BY is never pulled up, and an aggregate with nothing joined above
--   it consumes its rows in order), and the constraints in name order from pg_constraint's
--   (conrelid, contypid, conname) index (contypid is 0 for every table constraint).
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/019_capture_shape.sql
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
INSERT INTO :"schema".schema_migrations (version, name) VALUES (19, 'capture_shape');

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

-- table_shape(relid): as in 014, its columns and constraints aggregated from sorted input (see above).
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
         WHERE c.oid = relid AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
    );
END
$fn$
$ddl$);

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA :"schema" FROM PUBLIC;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 19 (capture shape) already applied, skipping
\endif
