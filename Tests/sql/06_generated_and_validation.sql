-- Check 06: generated expressions (SET / DROP EXPRESSION, generated columns added and dropped,
-- stored and virtual), NOT NULL constraints not yet validated, and what VALIDATE CONSTRAINT
-- validated. Parts that need a newer server run only there; the rest runs on every version.
\set ON_ERROR_STOP 1
SELECT current_setting('server_version_num')::int >= 170000 AS pg17, current_setting('server_version_num')::int >= 180000 AS pg18 \gset

CREATE SCHEMA tenant_6;
CREATE TABLE tenant_6.items (id int PRIMARY KEY, price numeric NOT NULL, qty int,
                             total numeric GENERATED ALWAYS AS (price * 2) STORED);
SELECT public.check_eq((SELECT c->>'generated_kind' FROM public.events_after(0), jsonb_array_elements(e->'table'->'columns') c
                        WHERE c->>'name' = 'total'), 'stored', 'stored generated column: kind');

-- DROP EXPRESSION (13+): the column keeps its values and becomes a plain column.
SELECT public.last_event_id() AS w \gset
ALTER TABLE tenant_6.items ALTER COLUMN total DROP EXPRESSION;
SELECT public.check_eq((SELECT e->'changes'->'generated_changed' FROM public.events_after(:w)),
    '[{"column": "total", "old_expression": "(price * (2)::numeric)", "new_expression": null, "old_kind": "stored", "new_kind": null}]'::jsonb,
    'drop expression: generated_changed');

-- A generated column added, then dropped.
SELECT public.last_event_id() AS w \gset
ALTER TABLE tenant_6.items ADD COLUMN doubled int GENERATED ALWAYS AS (qty * 2) STORED;
ALTER TABLE tenant_6.items DROP COLUMN doubled;
SELECT public.check_eq((SELECT jsonb_agg(e->'changes'->'generated_changed' ORDER BY id) FROM public.events_after(:w)),
    '[[{"column": "doubled", "old_expression": null, "new_expression": "(qty * 2)", "old_kind": null, "new_kind": "stored"}],
      [{"column": "doubled", "old_expression": "(qty * 2)", "new_expression": null, "old_kind": "stored", "new_kind": null}]]'::jsonb,
    'generated column added and dropped');
SELECT public.check_eq((SELECT e->'changes'->'columns_added'->0->>'generated_kind' FROM public.events_after(:w) ORDER BY id LIMIT 1),
    'stored', 'added generated column: kind in columns_added');

-- A plain ALTER reports no generated change.
SELECT public.last_event_id() AS w \gset
ALTER TABLE tenant_6.items ADD COLUMN note text;
SELECT public.check_eq((SELECT e->'changes'->'generated_changed' FROM public.events_after(:w)), '[]'::jsonb, 'no generated change');

-- CHECK ... NOT VALID, then VALIDATE CONSTRAINT.
INSERT INTO tenant_6.items (id, price, qty) VALUES (1, 1, -1);
SELECT public.last_event_id() AS w \gset
ALTER TABLE tenant_6.items ADD CONSTRAINT qty_positive CHECK (qty > 0) NOT VALID;
UPDATE tenant_6.items SET qty = 1;
ALTER TABLE tenant_6.items VALIDATE CONSTRAINT qty_positive;
SELECT public.check_eq((SELECT e->'table'->'constraints' FROM public.events_after(:w) ORDER BY id LIMIT 1),
    '[{"name": "qty_positive", "type": "check", "columns": ["qty"], "definition": "CHECK ((qty > 0)) NOT VALID", "validated": false}]'::jsonb,
    'check not valid: in the shape');
SELECT public.check_eq((SELECT e->'changes'->'constraints_validated' FROM public.events_after(:w) ORDER BY id DESC LIMIT 1),
    '[{"name": "qty_positive", "type": "check", "columns": ["qty"]}]'::jsonb, 'validate constraint: what it validated');
SELECT public.check_eq((SELECT e->'table'->'constraints'->0->'validated' FROM public.events_after(:w) ORDER BY id DESC LIMIT 1),
    'true'::jsonb, 'validate constraint: validated in the shape');

\if :pg17
-- SET EXPRESSION (17+).
CREATE TABLE tenant_6.sums (a int, s int GENERATED ALWAYS AS (a + 1) STORED);
SELECT public.last_event_id() AS w \gset
ALTER TABLE tenant_6.sums ALTER COLUMN s SET EXPRESSION AS (a + 2);
SELECT public.check_eq((SELECT e->'changes'->'generated_changed' FROM public.events_after(:w)),
    '[{"column": "s", "old_expression": "(a + 1)", "new_expression": "(a + 2)", "old_kind": "stored", "new_kind": "stored"}]'::jsonb,
    'set expression: generated_changed');
\endif

\if :pg18
-- VIRTUAL generated columns (18+) are told from STORED ones.
SELECT public.last_event_id() AS w \gset
CREATE TABLE tenant_6.virt (a int, v int GENERATED ALWAYS AS (a * 3) VIRTUAL, s int GENERATED ALWAYS AS (a * 3) STORED);
SELECT public.check_eq((SELECT jsonb_agg(c->'generated_kind' ORDER BY (c->>'attnum')::int)
                          FROM public.events_after(:w), jsonb_array_elements(e->'table'->'columns') c),
    '[null, "virtual", "stored"]'::jsonb, 'virtual and stored generated columns differ');

-- ADD CONSTRAINT ... NOT NULL ... NOT VALID (18+): NULL rows may exist, so not plain nullable: false.
INSERT INTO tenant_6.virt (a) VALUES (NULL);
SELECT public.last_event_id() AS w \gset
ALTER TABLE tenant_6.virt ADD CONSTRAINT a_not_null NOT NULL a NOT VALID;
SELECT public.check_eq((SELECT c - 'comment' - 'position' - 'attnum' - 'default' - 'identity' - 'generated' - 'generated_kind'
                          FROM public.events_after(:w), jsonb_array_elements(e->'table'->'columns') c WHERE c->>'name' = 'a'),
    '{"name": "a", "type": "integer", "nullable": true, "not_null": "not valid"}'::jsonb, 'not null not valid: column');
SELECT public.check_eq((SELECT e->'changes'->'nullability_changed' FROM public.events_after(:w)), '[]'::jsonb,
    'not null not valid: nullability unchanged');
SELECT public.check_eq((SELECT e->'table'->'constraints' FROM public.events_after(:w)),
    '[{"name": "a_not_null", "type": "not null", "columns": ["a"], "definition": "NOT NULL a NOT VALID", "validated": false}]'::jsonb,
    'not null not valid: in the constraints');
UPDATE tenant_6.virt SET a = 0;
SELECT public.last_event_id() AS w \gset
ALTER TABLE tenant_6.virt VALIDATE CONSTRAINT a_not_null;
SELECT public.check_eq((SELECT e->'changes'->'constraints_validated' FROM public.events_after(:w)),
    '[{"name": "a_not_null", "type": "not null", "columns": ["a"]}]'::jsonb, 'validate not null: what it validated');
SELECT public.check_eq((SELECT e->'changes'->'nullability_changed' FROM public.events_after(:w)),
    '[{"column": "a", "old_nullable": true, "new_nullable": false}]'::jsonb, 'validate not null: nullability');
\endif

\echo 'check 06 passed'
