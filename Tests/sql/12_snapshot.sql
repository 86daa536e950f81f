-- Check 12: platform.snapshot(tenant) reproduces pg_catalog for every table (partitions included)
-- and enum of a tenant, with hostile names: one snapshot event per object with the shape the
-- capture computes, the identity PostgreSQL gives the object, and the table's columns and types
-- as the catalog has them; then one snapshot_end listing exactly those objects. Numbered with the
-- tenant's DDL, idempotent in content, every tenant when NULL, errors for bad input.
\set ON_ERROR_STOP 1

CREATE SCHEMA "tenant_we""ird; x";
SET search_path = "tenant_we""ird; x";
CREATE TYPE "Mood ü" AS ENUM ('sad', 'it''s "ok"', '*/ drop');
CREATE TYPE plain AS ENUM ();
CREATE TABLE "Order Lines" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "select" text NOT NULL DEFAULT 'x',
                            mood "Mood ü", "x""y;--" numeric(12, 2) CHECK ("x""y;--" >= 0));
COMMENT ON TABLE "Order Lines" IS 'lines; DROP TABLE x; --';
CREATE TABLE measurements (at date NOT NULL, reading float8, tag varchar(20)) PARTITION BY RANGE (at);
CREATE TABLE "measurements 2026" PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE measurements_rest PARTITION OF measurements DEFAULT;
CREATE TABLE "ünïcödé" (a int, b text[], c "Mood ü"[]);
ALTER TABLE "ünïcödé" DROP COLUMN a;
RESET search_path;
CREATE SCHEMA tenant_12b;
CREATE TABLE tenant_12b.only_one (id int);
CREATE SCHEMA tenant_12empty;
CREATE TABLE public.not_a_tenant (id int);

-- Drift the snapshot must see: a column added with the triggers off.
ALTER EVENT TRIGGER outbox_bridge_capture_ddl DISABLE;
ALTER TABLE "tenant_we""ird; x"."Order Lines" ADD COLUMN unseen boolean;
ALTER EVENT TRIGGER outbox_bridge_capture_ddl ENABLE;

SELECT (SELECT max((e->>'tenant_seq')::bigint) FROM public.events_after(0) WHERE e->>'tenant_id' = 'we"ird; x') AS seq_before \gset
SELECT public.last_event_id() AS w \gset
SELECT public.check_eq((SELECT jsonb_agg(jsonb_build_object('tenant', tenant_id, 'tables', tables, 'enums', enums))
                          FROM platform.snapshot('we"ird; x')),
    '[{"tenant": "we\"ird; x", "tables": 5, "enums": 2}]'::jsonb, 'counts');
CREATE TEMP TABLE snap AS SELECT id, e FROM public.events_after(:w);

-- Every table and enum of the schema, and nothing else, in snapshot events.
CREATE TEMP VIEW catalog_objects AS
SELECT 'table' AS object_type, c.oid, (pg_identify_object('pg_class'::regclass, c.oid, 0)).identity AS ident
  FROM pg_class c WHERE c.relnamespace = '"tenant_we""ird; x"'::regnamespace AND c.relkind IN ('r', 'p')
UNION ALL
SELECT 'type', t.oid, (pg_identify_object('pg_type'::regclass, t.oid, 0)).identity
  FROM pg_type t WHERE t.typnamespace = '"tenant_we""ird; x"'::regnamespace AND t.typtype = 'e';
SELECT public.check_eq((SELECT count(*) FROM snap WHERE e->>'kind' = 'snapshot'), (SELECT count(*) FROM catalog_objects), 'one event per object');
SELECT public.check_eq((SELECT count(*) FROM catalog_objects o JOIN snap s
                          ON s.e->>'object_type' = o.object_type AND s.e->>'object_identity' = o.ident), 7::bigint,
    'identities as PostgreSQL quotes them');
-- The shapes are the ones the capture computes from the catalog now (drift included).
SELECT public.check((SELECT bool_and(s.e->'table' = platform.table_shape(o.oid)) FROM catalog_objects o JOIN snap s
                       ON s.e->>'object_identity' = o.ident WHERE o.object_type = 'table'), 'table shapes = table_shape()');
SELECT public.check((SELECT bool_and(s.e->'enum' = platform.enum_shape(o.oid)) FROM catalog_objects o JOIN snap s
                       ON s.e->>'object_identity' = o.ident WHERE o.object_type = 'type'), 'enum shapes = enum_shape()');
-- And against the catalog directly: live columns, names and types in order; enum labels in order.
SELECT public.check((SELECT bool_and(
           (SELECT jsonb_agg(jsonb_build_object('name', a.attname::text, 'type', format_type(a.atttypid, a.atttypmod), 'nullable', NOT a.attnotnull) ORDER BY a.attnum)
              FROM pg_attribute a WHERE a.attrelid = o.oid AND a.attnum > 0 AND NOT a.attisdropped)
           = (SELECT jsonb_agg(jsonb_build_object('name', c->'name', 'type', c->'type', 'nullable', c->'nullable') ORDER BY (c->>'attnum')::int)
                FROM jsonb_array_elements(s.e->'table'->'columns') c))
        FROM catalog_objects o JOIN snap s ON s.e->>'object_identity' = o.ident WHERE o.object_type = 'table'),
    'columns, types and nullability as in pg_attribute');
SELECT public.check_eq((SELECT s.e->'enum'->'values' FROM snap s WHERE s.e->'enum'->>'name' = 'Mood ü'),
    (SELECT jsonb_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = '"tenant_we""ird; x"."Mood ü"'::regtype), 'enum labels');
SELECT public.check_eq((SELECT s.e->'table'->'columns' @> '[{"name": "unseen"}]' FROM snap s WHERE s.e->'table'->>'name' = 'Order Lines'), true,
    'drift is in the snapshot');
SELECT public.check_eq((SELECT jsonb_build_object('partitioned', s.e->'table'->'partitioned', 'comment', s.e->'table'->'comment')
                          FROM snap s WHERE s.e->'table'->>'name' = 'measurements'), '{"partitioned": true, "comment": null}'::jsonb, 'partitioned parent');
SELECT public.check_eq((SELECT count(*) FROM snap s WHERE s.e->'table'->>'name' IN ('measurements 2026', 'measurements_rest')), 2::bigint, 'partitions');

-- The envelope: snapshot / SNAPSHOT, changes null, one snapshot_id, numbers continuing the tenant's.
SELECT public.check((SELECT bool_and(e->>'command' = 'SNAPSHOT' AND e->'changes' = 'null' AND e->>'tenant_id' = 'we"ird; x'
                                     AND e->>'schema_name' = 'tenant_we"ird; x') FROM snap WHERE e->>'kind' = 'snapshot'), 'snapshot envelope');
SELECT public.check_eq((SELECT count(DISTINCT e->>'snapshot_id') FROM snap), 1::bigint, 'one snapshot_id');
SELECT public.check_eq((SELECT array_agg((e->>'tenant_seq')::bigint ORDER BY id) FROM snap),
    (SELECT array_agg(g::bigint) FROM generate_series(:seq_before + 1, :seq_before + 8) g), 'numbered after the tenant''s DDL');
SELECT public.check_eq((SELECT array_agg(DISTINCT tenant_key) FROM platform.schema_changes WHERE id IN (SELECT id FROM snap)), ARRAY['we"ird; x'], 'key');

-- snapshot_end: last, lists exactly the objects of the snapshot events.
SELECT public.check_eq((SELECT e->>'kind' || '/' || (e->>'command') FROM snap ORDER BY id DESC LIMIT 1), 'snapshot_end/SNAPSHOT END', 'end last');
SELECT public.check_eq((SELECT e->'snapshot_objects' FROM snap WHERE e->>'kind' = 'snapshot_end'),
    (SELECT jsonb_agg(jsonb_build_object('object_type', e->'object_type', 'object_identity', e->'object_identity') ORDER BY id)
       FROM snap WHERE e->>'kind' = 'snapshot'), 'snapshot_end lists every object');
SELECT public.check_eq((SELECT e->'snapshot_id' FROM snap WHERE e->>'kind' = 'snapshot_end'),
    (SELECT e->'snapshot_id' FROM snap LIMIT 1), 'snapshot_end shares the snapshot_id');

-- The snapshot became the capture's: no drift left, and the next ALTER reports only itself.
SELECT public.check_eq((SELECT count(*) FROM platform.drift() WHERE schema_name = 'tenant_we"ird; x'), 0::bigint, 'no drift after the snapshot');
SELECT public.last_event_id() AS w2 \gset
ALTER TABLE "tenant_we""ird; x"."Order Lines" ADD COLUMN later int;
SELECT public.check_eq((SELECT jsonb_path_query_array(e, '$.changes.columns_added[*].name') FROM public.events_after(:w2)), '["later"]'::jsonb,
    'next ALTER diffs against the snapshot');

-- Again: same shapes, a new snapshot_id (applying it twice changes nothing).
SELECT public.last_event_id() AS w3 \gset
SELECT count(*) FROM platform.snapshot('we"ird; x');
SELECT public.check_eq((SELECT jsonb_agg(e->'table' ORDER BY id) FROM public.events_after(:w3) WHERE e->'table'->>'name' <> 'Order Lines'),
                       (SELECT jsonb_agg(e->'table' ORDER BY id) FROM snap WHERE e->'table'->>'name' <> 'Order Lines'), 'same shapes again');
SELECT public.check((SELECT count(DISTINCT e->>'snapshot_id') FROM (SELECT e FROM snap UNION ALL SELECT e FROM public.events_after(:w3)) x) = 2,
    'a new snapshot_id per call');

-- Every tenant: one snapshot_end per tenant (an empty tenant lists nothing), no other schema.
SELECT public.last_event_id() AS w4 \gset
SELECT public.check_eq((SELECT jsonb_agg(jsonb_build_object('tenant', tenant_id, 'tables', tables, 'enums', enums) ORDER BY tenant_id) FROM platform.snapshot()),
    '[{"tenant": "12b", "tables": 1, "enums": 0}, {"tenant": "12empty", "tables": 0, "enums": 0}, {"tenant": "we\"ird; x", "tables": 5, "enums": 2}]'::jsonb,
    'every tenant');
SELECT public.check_eq((SELECT jsonb_object_agg(e->>'tenant_id', e->'snapshot_objects') FROM public.events_after(:w4)
                         WHERE e->>'kind' = 'snapshot_end' AND e->>'tenant_id' <> 'we"ird; x'),
    '{"12b": [{"object_type": "table", "object_identity": "tenant_12b.only_one"}], "12empty": []}'::jsonb, 'small tenants');
SELECT public.check_eq((SELECT count(*) FROM public.events_after(:w4) WHERE e->>'tenant_id' IS NULL), 0::bigint, 'no non-tenant schema');
SELECT public.check_eq((SELECT count(DISTINCT e->>'snapshot_id') FROM public.events_after(:w4)), 1::bigint, 'one snapshot_id for the call');

-- Bad input; tenants may not call it; the relay role may.
SELECT public.check_fails($$SELECT platform.snapshot('')$$, '22023', 'empty tenant');
SELECT public.check_fails($$SELECT platform.snapshot('nobody')$$, '22023', 'tenant without a schema');
UPDATE platform.settings SET capture_schemas = '{tenant_12b}';
SELECT public.check_fails($$SELECT platform.snapshot('12empty')$$, '22023', 'tenant not captured');
UPDATE platform.settings SET capture_schemas = DEFAULT;
GRANT USAGE ON SCHEMA platform TO tenant_alice;
SET ROLE tenant_alice;
SELECT public.check_fails($$SELECT platform.snapshot('12b')$$, '42501', 'tenant: permission denied');
RESET ROLE;
GRANT outbox_relay TO tenant_alice;
SET ROLE tenant_alice;
SELECT public.check_eq((SELECT tables FROM platform.snapshot('12b')), 1::bigint, 'outbox_relay may snapshot');
RESET ROLE;
REVOKE outbox_relay FROM tenant_alice;
REVOKE USAGE ON SCHEMA platform FROM tenant_alice;

\echo 'check 12 passed'
