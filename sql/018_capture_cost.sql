-- outbox-bridge migration 18: the capture's cost per statement (issue 14, "Capture cost,
-- decided"). The events and snapshots are unchanged, byte for byte; only how two functions get
-- there changes (measurements and the profile of what is left: sql/README.md, "Capture cost of
-- migration 18").
--
-- table_diff(old, new): 014's diff, with its eight column lists fed from the joined columns
--   sorted once by attnum instead of eight jsonb_agg(... ORDER BY attnum), each of which set up
--   and ran a sort of its own (seen on PostgreSQL 15). The FROM subquery keeps its ORDER BY (a
--   subquery with ORDER BY is never pulled up into its parent), and a plain aggregate over it,
--   with nothing joined above it, consumes the rows in that order.
-- shape_changes(old, new): 016's label, testing the columns before the rest of the shapes: the
--   rest is compared by deleting two keys from each shape, which rebuilds both (about 1 KB each),
--   and an ALTER that changes a column (most do) now never reaches that comparison.
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/018_capture_cost.sql
-- (after the files before it; see sql/README.md). Same conventions as 002: function bodies use
-- @schema@ / @schema_literal@, replaced by pg_temp.outbox_install().

\if :{?schema}
\else
\set schema platform
\endif
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 18) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;
SET LOCAL outbox_bridge.install_schema = :'schema';
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;
INSERT INTO :"schema".schema_migrations (version, name) VALUES (18, 'capture_cost');

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

-- table_diff(old_shape, new_shape): as in 014 (there named shape_changes), its column lists
-- aggregated from input sorted once.
CALL pg_temp.outbox_install($ddl$
CREATE OR REPLACE FUNCTION @schema@.table_diff(old_shape jsonb, new_shape jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN (
        SELECT pg_catalog.jsonb_build_object(
            'table_renamed', CASE WHEN old_shape->>'name' IS DISTINCT FROM new_shape->>'name'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'name', 'new', new_shape->'name') END,
            'schema_changed', CASE WHEN old_shape->>'schema' IS DISTINCT FROM new_shape->>'schema'
                THEN pg_catalog.jsonb_build_object('old', old_shape->'schema', 'new', new_shape->'schema') END,
            'columns_added', COALESCE(pg_catalog.jsonb_agg(x.nc) FILTER (WHERE x.oc IS NULL), '[]'::jsonb),
            'columns_dropped', COALESCE(pg_catalog.jsonb_agg(x.oc) FILTER (WHERE x.nc IS NULL), '[]'::jsonb),
            'columns_renamed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'old', x.oc->'name', 'new', x.nc->'name'))
                FILTER (WHERE x.both_ AND x.oc->>'name' IS DISTINCT FROM x.nc->>'name'), '[]'::jsonb),
            'columns_retyped', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', x.nc->'name', 'old_type', x.oc->'type', 'new_type', x.nc->'type'))
                FILTER (WHERE x.both_ AND x.oc->>'type' IS DISTINCT FROM x.nc->>'type'), '[]'::jsonb),
            'nullability_changed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', x.nc->'name', 'old_nullable', x.oc->'nullable', 'new_nullable', x.nc->'nullable'))
                FILTER (WHERE x.both_ AND x.oc->'nullable' IS DISTINCT FROM x.nc->'nullable'), '[]'::jsonb),
            'defaults_changed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', x.nc->'name', 'old_default', x.oc->'default', 'new_default', x.nc->'default'))
                FILTER (WHERE x.both_ AND x.oc->'default' IS DISTINCT FROM x.nc->'default'), '[]'::jsonb),
            'generated_changed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', COALESCE(x.nc, x.oc)->'name',
                    'old_expression', COALESCE(x.oc->'generated', 'null'), 'new_expression', COALESCE(x.nc->'generated', 'null'),
                    'old_kind', COALESCE(x.oc->'generated_kind', 'null'), 'new_kind', COALESCE(x.nc->'generated_kind', 'null'))
                   )
                FILTER (WHERE COALESCE(x.oc->'generated', 'null') IS DISTINCT FROM COALESCE(x.nc->'generated', 'null')), '[]'::jsonb),
            'column_comments_changed', COALESCE(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'column', x.nc->'name', 'old_comment', x.oc->'comment', 'new_comment', x.nc->'comment'))
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
                     ON o.attnum = n.attnum
              ORDER BY attnum) x  -- the output column: the order of every column list
    );
END
$fn$
$ddl$);

-- shape_changes(old_shape, new_shape): as in 016, the columns compared first.
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
        -- (comparing whole columns is much cheaper than rebuilding them), and the columns are
        -- compared first: most ALTERs change a column, and then the shapes are never rebuilt.
        WHEN CASE WHEN v_diff->'column_comments_changed' = '[]' THEN old_shape->'columns' = new_shape->'columns'
                  ELSE @schema@.columns_without_comments(old_shape->'columns')
                       = @schema@.columns_without_comments(new_shape->'columns') END
             AND (old_shape - 'comment' - 'columns') = (new_shape - 'comment' - 'columns')
        THEN 'cosmetic'
        ELSE 'additive' END);
END
$fn$
$ddl$);

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA :"schema" FROM PUBLIC;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 18 (capture cost) already applied, skipping
\endif
