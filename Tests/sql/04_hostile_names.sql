-- Check 04: hostile identifiers (quotes, semicolons, comment terminators, unicode, 63-byte
-- names, reserved words) are captured verbatim, and object_identity is properly quoted.
\set ON_ERROR_STOP 1

SELECT public.last_event_id() AS w \gset
CREATE SCHEMA "tenant_""q;uote*/";
CREATE TABLE "tenant_""q;uote*/"."Robert'); DROP TABLE students;--" (
    "select" int PRIMARY KEY,
    "*/ SELECT 1; /*" text DEFAULT 'it''s; */ --',
    "ünïcødé_列" text,
    "user" text,
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" int,   -- 63 bytes
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxé" int,     -- 61 + 2 bytes
    "$1" int, " lead space" int, "Mixed Case" int
);
ALTER TABLE "tenant_""q;uote*/"."Robert'); DROP TABLE students;--" RENAME COLUMN "user" TO "order";
COMMENT ON COLUMN "tenant_""q;uote*/"."Robert'); DROP TABLE students;--"."order" IS 'E''vil */ -- $$ comment';
CREATE TYPE "tenant_""q;uote*/"."enum; DROP" AS ENUM ('a''b', '*/', 'ü');
ALTER TYPE "tenant_""q;uote*/"."enum; DROP" ADD VALUE 'new; value';

CREATE TEMP VIEW ev AS SELECT row_number() OVER (ORDER BY id) AS n, e, tenant_key FROM public.events_after(:w);
SELECT public.check_eq((SELECT count(*) FROM ev), 6::bigint, 'six events');
SELECT public.check((SELECT bool_and(e->>'schema_name' = 'tenant_"q;uote*/' AND e->>'tenant_id' = '"q;uote*/'
                                     AND tenant_key = '"q;uote*/') FROM ev), 'schema and tenant verbatim');
SELECT public.check_eq((SELECT e->>'object_identity' FROM ev WHERE n = 1), '"tenant_""q;uote*/"', 'schema identity quoted');
SELECT public.check_eq((SELECT e->'table'->>'name' FROM ev WHERE n = 2), 'Robert''); DROP TABLE students;--', 'table name verbatim');
SELECT public.check_eq((SELECT e->>'object_identity' FROM ev WHERE n = 2),
    quote_ident('tenant_"q;uote*/') || '.' || quote_ident('Robert''); DROP TABLE students;--'), 'table identity quoted');
SELECT public.check_eq((SELECT jsonb_path_query_array(e, '$.table.columns[*].name') FROM ev WHERE n = 2),
    jsonb_build_array('select', '*/ SELECT 1; /*', 'ünïcødé_列', 'user', repeat('x', 63), repeat('x', 61) || 'é',
                      '$1', ' lead space', 'Mixed Case'), 'column names verbatim');
SELECT public.check_eq((SELECT octet_length(e->'table'->'columns'->5->>'name') FROM ev WHERE n = 2), 63, '63-byte multibyte name');
SELECT public.check_eq((SELECT e->'table'->'columns'->1->>'default' FROM ev WHERE n = 2), '''it''''s; */ --''::text', 'default verbatim');
SELECT public.check_eq((SELECT e->'table'->'primary_key' FROM ev WHERE n = 2), '["select"]'::jsonb, 'reserved-word primary key');
SELECT public.check_eq((SELECT e->'changes'->'columns_renamed' FROM ev WHERE n = 3), '[{"old": "user", "new": "order"}]'::jsonb, 'reserved-word rename');
SELECT public.check_eq((SELECT e->'changes'->'column_comments_changed'->0->>'new_comment' FROM ev WHERE n = 4),
    'E''vil */ -- $$ comment', 'comment verbatim');
SELECT public.check_eq((SELECT e->'enum'->'values' FROM ev WHERE n = 6), '["a''b", "*/", "ü", "new; value"]'::jsonb, 'enum labels verbatim');
SELECT public.check_eq((SELECT e->'enum'->>'name' FROM ev WHERE n = 6), 'enum; DROP', 'enum name verbatim');

-- And dropping it all reports the same names.
SELECT public.last_event_id() AS w2 \gset
DROP SCHEMA "tenant_""q;uote*/" CASCADE;
SELECT public.check_eq((SELECT e->'table'->>'name' FROM public.events_after(:w2) WHERE e->>'object_type' = 'table'),
    'Robert''); DROP TABLE students;--', 'drop: table name verbatim');
SELECT public.check_eq((SELECT e->'schema'->>'name' FROM public.events_after(:w2) WHERE e->>'object_type' = 'schema'),
    'tenant_"q;uote*/', 'drop: schema name verbatim');

\echo 'check 04 passed'
