-- Check 02: every captured command kind, ALTER TABLE change detection for each kind of change,
-- statement order and a shared transaction_id within one transaction, tenant ids, drops.
\set ON_ERROR_STOP 1

CREATE SCHEMA tenant_42;

-- One transaction, many statements.
SELECT public.last_event_id() AS w \gset
BEGIN;
CREATE TABLE tenant_42.orders (
    id     bigserial PRIMARY KEY,
    amount numeric(10,2) NOT NULL DEFAULT 0,
    note   text,
    code   varchar(20)
);
ALTER TABLE tenant_42.orders ADD COLUMN status text DEFAULT 'new';            -- 2 added
ALTER TABLE tenant_42.orders DROP COLUMN code;                                 -- 3 dropped
ALTER TABLE tenant_42.orders RENAME COLUMN note TO remark;                     -- 4 renamed
ALTER TABLE tenant_42.orders ALTER COLUMN amount TYPE numeric(12,2);           -- 5 retyped
ALTER TABLE tenant_42.orders ALTER COLUMN remark SET NOT NULL;                 -- 6 not null
ALTER TABLE tenant_42.orders ALTER COLUMN amount DROP NOT NULL;                -- 7 nullable
ALTER TABLE tenant_42.orders ALTER COLUMN remark SET DEFAULT '';               -- 8 set default
ALTER TABLE tenant_42.orders ALTER COLUMN amount DROP DEFAULT;                 -- 9 drop default
ALTER TABLE tenant_42.orders RENAME TO purchase_orders;                       -- 10 table renamed
COMMENT ON TABLE tenant_42.purchase_orders IS 'Purchase orders';              -- 11
COMMENT ON COLUMN tenant_42.purchase_orders.remark IS 'Free text';            -- 12
ALTER TABLE tenant_42.purchase_orders ADD COLUMN a int, ADD COLUMN b int NOT NULL DEFAULT 1,
    ALTER COLUMN status TYPE varchar(10);                                      -- 13 several at once
COMMIT;

CREATE TEMP VIEW ev AS SELECT row_number() OVER (ORDER BY id) AS n, id, e, tenant_key FROM public.events_after(:w);

SELECT public.check_eq((SELECT count(*) FROM ev), 13::bigint, 'tx: 13 events');
SELECT public.check_eq((SELECT count(DISTINCT e->'transaction_id') FROM ev), 1::bigint, 'tx: one transaction_id');
SELECT public.check_eq((SELECT array_agg(e->>'command' ORDER BY n) FROM ev),
    ARRAY['CREATE TABLE'] || array_fill('ALTER TABLE'::text, ARRAY[9]) || ARRAY['COMMENT', 'COMMENT', 'ALTER TABLE'],
    'tx: statement order');
SELECT public.check((SELECT bool_and(e->>'tenant_id' = '42' AND tenant_key = '42' AND e->>'schema_name' = 'tenant_42') FROM ev),
    'tenant id and key from tenant_42');
SELECT public.check((SELECT bool_and(e->>'actor' = session_user) FROM ev), 'actor is session_user');
SELECT public.check((SELECT count(DISTINCT e->>'event_id') = 13 FROM ev), 'distinct event ids');

-- CREATE: full shape.
SELECT public.check_eq((SELECT e->'table' FROM ev WHERE n = 1) - 'columns',
    '{"schema": "tenant_42", "name": "orders", "comment": null, "partitioned": false, "primary_key": ["id"], "constraints": []}'::jsonb,
    'create: table shape');
SELECT public.check_eq((SELECT jsonb_path_query_array(e, '$.table.columns[*] ? (@.name == "amount")') FROM ev WHERE n = 1),
    '[{"name": "amount", "type": "numeric(10,2)", "nullable": false, "not_null": "validated", "default": "0", "generated": null,
       "generated_kind": null, "identity": null, "position": 2, "attnum": 2, "comment": null}]'::jsonb, 'create: amount column');
SELECT public.check_eq((SELECT e->'table'->'columns'->0->>'default' FROM ev WHERE n = 1),
    'nextval(''tenant_42.orders_id_seq''::regclass)', 'create: serial default via pg_get_expr');
SELECT public.check_eq((SELECT e->'changes' FROM ev WHERE n = 1), '{"compatibility": "additive"}'::jsonb, 'create: changes only labelled');

-- A helper view: the non-empty parts of each ALTER's changes but the label, checked here first.
CREATE TEMP VIEW ch AS
SELECT n, (SELECT jsonb_object_agg(k, v) FROM jsonb_each(e->'changes') AS x(k, v)
           WHERE v <> 'null'::jsonb AND v <> '[]'::jsonb AND k <> 'compatibility') AS c
FROM ev WHERE n > 1;
SELECT public.check_eq((SELECT array_agg(e->'changes'->>'compatibility' ORDER BY n) FROM ev),
    ARRAY['additive', 'additive', 'breaking', 'breaking', 'breaking', 'breaking', 'breaking', 'additive', 'additive',
          'breaking', 'cosmetic', 'cosmetic', 'breaking'], 'compatibility of each statement');

SELECT public.check_eq((SELECT jsonb_path_query_array(c, '$.columns_added[*].name') FROM ch WHERE n = 2), '["status"]'::jsonb, 'add column');
SELECT public.check_eq((SELECT c - 'columns_added' FROM ch WHERE n = 2), '{}'::jsonb, 'add column: nothing else');
SELECT public.check_eq((SELECT c->'columns_added'->0->>'default' FROM ch WHERE n = 2), '''new''::text', 'add column: default');
SELECT public.check_eq((SELECT jsonb_path_query_array(c, '$.columns_dropped[*].name') FROM ch WHERE n = 3), '["code"]'::jsonb, 'drop column');
SELECT public.check_eq((SELECT c->'columns_dropped'->0->>'type' FROM ch WHERE n = 3), 'character varying(20)', 'drop column: old type');
SELECT public.check_eq((SELECT c FROM ch WHERE n = 4), '{"columns_renamed": [{"old": "note", "new": "remark"}]}'::jsonb, 'rename column');
SELECT public.check_eq((SELECT c FROM ch WHERE n = 5),
    '{"columns_retyped": [{"column": "amount", "old_type": "numeric(10,2)", "new_type": "numeric(12,2)"}]}'::jsonb, 'retype');
SELECT public.check_eq((SELECT c FROM ch WHERE n = 6),
    '{"nullability_changed": [{"column": "remark", "old_nullable": true, "new_nullable": false}]}'::jsonb, 'set not null');
SELECT public.check_eq((SELECT c FROM ch WHERE n = 7),
    '{"nullability_changed": [{"column": "amount", "old_nullable": false, "new_nullable": true}]}'::jsonb, 'drop not null');
SELECT public.check_eq((SELECT c FROM ch WHERE n = 8),
    '{"defaults_changed": [{"column": "remark", "old_default": null, "new_default": "''''::text"}]}'::jsonb, 'set default');
SELECT public.check_eq((SELECT c FROM ch WHERE n = 9),
    '{"defaults_changed": [{"column": "amount", "old_default": "0", "new_default": null}]}'::jsonb, 'drop default');
SELECT public.check_eq((SELECT c FROM ch WHERE n = 10),
    '{"table_renamed": {"old": "orders", "new": "purchase_orders"}}'::jsonb, 'rename table');
SELECT public.check_eq((SELECT e->>'object_identity' FROM ev WHERE n = 10), 'tenant_42.purchase_orders', 'rename table: identity is new name');
SELECT public.check_eq((SELECT c FROM ch WHERE n = 11),
    '{"comment_changed": {"old": null, "new": "Purchase orders"}}'::jsonb, 'comment on table');
SELECT public.check_eq((SELECT e->'table'->>'comment' FROM ev WHERE n = 11), 'Purchase orders', 'comment on table: in shape');
SELECT public.check_eq((SELECT c FROM ch WHERE n = 12),
    '{"column_comments_changed": [{"column": "remark", "old_comment": null, "new_comment": "Free text"}]}'::jsonb, 'comment on column');
SELECT public.check_eq((SELECT e->>'object_type' FROM ev WHERE n = 12), 'table column', 'comment on column: object_type');
SELECT public.check_eq((SELECT jsonb_path_query_array(c, '$.columns_added[*].name') FROM ch WHERE n = 13), '["a", "b"]'::jsonb, 'multi: added');
SELECT public.check_eq((SELECT c->'columns_retyped' FROM ch WHERE n = 13),
    '[{"column": "status", "old_type": "text", "new_type": "character varying(10)"}]'::jsonb, 'multi: retyped');
SELECT public.check_eq((SELECT jsonb_path_query_array(e, '$.table.columns[*].position') FROM ev WHERE n = 13),
    '[1, 2, 3, 4, 5, 6]'::jsonb, 'positions are dense after a drop');
SELECT public.check_eq((SELECT jsonb_path_query_array(e, '$.table.columns[*].attnum') FROM ev WHERE n = 13),
    '[1, 2, 3, 5, 6, 7]'::jsonb, 'attnums keep their gaps (4 was dropped)');
SELECT public.check_eq((SELECT e->'table'->'columns'->2->>'comment' FROM ev WHERE n = 13), 'Free text', 'column comment kept in shape');

-- Separate transactions get different transaction ids.
SELECT public.last_event_id() AS w2 \gset
CREATE TABLE public.tx_a (id int);
CREATE TABLE public.tx_b (id int);
SELECT public.check_eq((SELECT count(DISTINCT e->'transaction_id') FROM public.events_after(:w2)), 2::bigint, 'autocommit: two transaction ids');
SELECT public.check((SELECT bool_and(e->'tenant_id' = 'null'::jsonb AND tenant_key = 'public') FROM public.events_after(:w2)),
    'non-tenant schema: tenant_id null, key = schema');

-- Primary key changes, SET SCHEMA, generated/identity columns, partitioned tables.
SELECT public.last_event_id() AS w3 \gset
CREATE TABLE public.pk_t (a int NOT NULL, b int NOT NULL, g int GENERATED ALWAYS AS (a * 2) STORED,
                          i int GENERATED BY DEFAULT AS IDENTITY);
ALTER TABLE public.pk_t ADD PRIMARY KEY (b, a);
ALTER TABLE public.pk_t SET SCHEMA tenant_42;
CREATE TABLE public.parted (id int, region text) PARTITION BY LIST (region);
SELECT public.check_eq((SELECT e->'changes'->'primary_key_changed' FROM public.events_after(:w3) WHERE e->>'command' = 'ALTER TABLE' LIMIT 1),
    '{"old": [], "new": ["b", "a"]}'::jsonb, 'add primary key');
SELECT public.check_eq((SELECT e->'changes'->'schema_changed' FROM public.events_after(:w3) WHERE e->>'command' = 'ALTER TABLE' OFFSET 1 LIMIT 1),
    '{"old": "public", "new": "tenant_42"}'::jsonb, 'set schema');
SELECT public.check_eq((SELECT e->>'tenant_id' FROM public.events_after(:w3) WHERE e->>'command' = 'ALTER TABLE' OFFSET 1 LIMIT 1),
    '42', 'set schema: tenant of the new schema');
SELECT public.check_eq((SELECT (e->'table'->'columns'->2) - 'comment' - 'position' - 'attnum' - 'nullable' FROM public.events_after(:w3) LIMIT 1),
    '{"name": "g", "type": "integer", "default": null, "generated": "(a * 2)", "generated_kind": "stored", "identity": null,
      "not_null": null}'::jsonb, 'generated column');
SELECT public.check_eq((SELECT e->'table'->'columns'->3->>'identity' FROM public.events_after(:w3) LIMIT 1), 'by default', 'identity column');
SELECT public.check((SELECT (e->'table'->>'partitioned')::boolean FROM public.events_after(:w3) WHERE e->'table'->>'name' = 'parted'),
    'partitioned table captured');

-- CREATE TABLE AS, SELECT INTO, enums.
SELECT public.last_event_id() AS w4 \gset
CREATE TABLE tenant_42.ctas AS SELECT 1 AS one, 'x'::text AS two;
SELECT 1 AS one INTO tenant_42.selinto;
CREATE TYPE tenant_42.mood AS ENUM ('sad', 'ok');
ALTER TYPE tenant_42.mood ADD VALUE 'happy';
ALTER TYPE tenant_42.mood ADD VALUE 'meh' BEFORE 'ok';
CREATE TYPE tenant_42.pair AS (a int, b int);     -- composite: not captured
CREATE DOMAIN tenant_42.posint AS int CHECK (VALUE > 0);  -- not captured
SELECT public.check_eq((SELECT array_agg(e->>'command' ORDER BY id) FROM public.events_after(:w4)),
    ARRAY['CREATE TABLE AS', 'SELECT INTO', 'CREATE TYPE', 'ALTER TYPE', 'ALTER TYPE'], 'ctas/select into/enum commands');
SELECT public.check_eq((SELECT e->'table'->'columns'->1->>'type' FROM public.events_after(:w4) LIMIT 1), 'text', 'ctas: shape');
SELECT public.check_eq((SELECT e->'enum' FROM public.events_after(:w4) ORDER BY id DESC LIMIT 1),
    '{"schema": "tenant_42", "name": "mood", "values": ["sad", "meh", "ok", "happy"]}'::jsonb, 'enum values in sort order');

-- DROP TABLE: the shape that was dropped. DROP SCHEMA CASCADE: each table, then the schema.
SELECT public.last_event_id() AS w5 \gset
DROP TABLE tenant_42.ctas, public.tx_a;
SELECT public.check_eq((SELECT array_agg(e->>'object_identity' ORDER BY e->>'object_identity') FROM public.events_after(:w5)),
    ARRAY['public.tx_a', 'tenant_42.ctas'], 'drop table: both tables');
SELECT public.check((SELECT bool_and(e->>'command' = 'DROP TABLE' AND NOT (e->>'cascade')::boolean
                                    AND (e->>'previous_shape_known')::boolean) FROM public.events_after(:w5)), 'drop table: flags');
SELECT public.check_eq((SELECT e->'table'->'columns'->1->>'name' FROM public.events_after(:w5) WHERE e->>'object_identity' = 'tenant_42.ctas'),
    'two', 'drop table: dropped shape');
SELECT public.check_eq((SELECT count(*) FROM platform.table_shapes WHERE shape->>'name' IN ('ctas', 'tx_a')), 0::bigint, 'drop table: snapshot removed');

SELECT public.last_event_id() AS w6 \gset
DROP SCHEMA tenant_42 CASCADE;
SELECT public.check_eq((SELECT array_agg(e->>'object_type' ORDER BY id) FROM public.events_after(:w6)),
    ARRAY['table', 'table', 'table', 'schema'], 'drop schema: tables then schema');
SELECT public.check((SELECT bool_and(e->>'command' = 'DROP SCHEMA' AND e->>'tenant_id' = '42') FROM public.events_after(:w6)), 'drop schema: command and tenant');
SELECT public.check((SELECT bool_and((e->>'cascade')::boolean) FROM public.events_after(:w6) WHERE e->>'object_type' = 'table'), 'drop schema: tables by cascade');
SELECT public.check_eq((SELECT e->'dropped_tables' FROM public.events_after(:w6) WHERE e->>'object_type' = 'schema'),
    '["tenant_42.pk_t", "tenant_42.purchase_orders", "tenant_42.selinto"]'::jsonb, 'drop schema: dropped_tables');

-- Table that predates the install (snapshot removed to simulate): ALTER still captured, changes unknown.
CREATE TABLE public.legacy (id int);
DELETE FROM platform.table_shapes WHERE shape->>'name' = 'legacy';
SELECT public.last_event_id() AS w7 \gset
ALTER TABLE public.legacy ADD COLUMN v int;
SELECT public.check_eq((SELECT e->'changes' FROM public.events_after(:w7)), '{"compatibility": "breaking"}'::jsonb, 'unknown previous shape: changes only labelled breaking');
SELECT public.check_eq((SELECT e->'previous_shape_known' FROM public.events_after(:w7)), 'false'::jsonb, 'unknown previous shape flagged');
SELECT public.check_eq(platform.refresh_table_shapes() >= 1, true, 'refresh_table_shapes reseeds');

-- Configurable tenant prefix: compared literally (the "_" is not a LIKE wildcard).
UPDATE platform.settings SET tenant_schema_prefix = 'org_';
CREATE SCHEMA org_7;
CREATE SCHEMA orgX7;
CREATE SCHEMA "org_";
SELECT public.last_event_id() AS w8 \gset
CREATE TABLE org_7.t (id int);
CREATE TABLE orgX7.t (id int);
CREATE TABLE "org_".t (id int);
SELECT public.check_eq((SELECT array_agg(coalesce(e->>'tenant_id', '<null>') ORDER BY id) FROM public.events_after(:w8)),
    ARRAY['7', '<null>', '<null>'], 'custom prefix org_, literal match, empty id is no tenant');
UPDATE platform.settings SET tenant_schema_prefix = DEFAULT;

\echo 'check 02 passed'
