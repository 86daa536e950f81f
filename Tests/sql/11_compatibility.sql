-- Check 11: changes.compatibility for every rule (the table in sql/README.md): each statement
-- below, then the labels of the events it produced.
\set ON_ERROR_STOP 1

CREATE OR REPLACE FUNCTION public.labels_after(after_id bigint) RETURNS text[]
LANGUAGE sql AS $$ SELECT array_agg(e->'changes'->>'compatibility' ORDER BY id) FROM public.events_after(after_id) $$;

-- additive: new schema, table, enum; columns that existing inserts need not know about.
SELECT public.last_event_id() AS w \gset
CREATE SCHEMA tenant_11;
CREATE TABLE tenant_11.t (id int NOT NULL, note text);
CREATE TYPE tenant_11.mood AS ENUM ('sad', 'ok');
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive', 'additive', 'additive'], 'create schema, table, enum');
\set rule 'SELECT public.last_event_id() AS w \\gset'
:rule
ALTER TABLE tenant_11.t ADD COLUMN nullable_col text;
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive'], 'add nullable column');
:rule
ALTER TABLE tenant_11.t ADD COLUMN with_default int NOT NULL DEFAULT 0;
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive'], 'add NOT NULL column with a default');
:rule
ALTER TABLE tenant_11.t ADD COLUMN ident bigint GENERATED ALWAYS AS IDENTITY;
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive'], 'add identity column (NOT NULL, fills itself)');
:rule
ALTER TABLE tenant_11.t ADD COLUMN twice int GENERATED ALWAYS AS (id * 2) STORED;
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive'], 'add generated column');
:rule
ALTER TYPE tenant_11.mood ADD VALUE 'happy';
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive'], 'enum value added');
:rule
ALTER TYPE tenant_11.mood ADD VALUE 'meh' BEFORE 'ok';
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive'], 'enum value added in the middle');
:rule
ALTER TABLE tenant_11.t ADD PRIMARY KEY (id);
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive'], 'primary key added on a NOT NULL column (a key on a nullable one also sets NOT NULL: breaking)');
:rule
ALTER TABLE tenant_11.t ALTER COLUMN note SET DEFAULT 'n/a';
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive'], 'default set');
:rule
ALTER TABLE tenant_11.t ADD CONSTRAINT positive CHECK (id > 0);
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive'], 'check constraint added');

-- cosmetic: comments only, or nothing a reader or writer can see.
:rule
COMMENT ON TABLE tenant_11.t IS 'a table';
COMMENT ON COLUMN tenant_11.t.note IS 'a note';
SELECT public.check_eq(public.labels_after(:w), ARRAY['cosmetic', 'cosmetic'], 'comments');
:rule
ALTER TABLE tenant_11.t SET (fillfactor = 90);
SELECT public.check_eq(public.labels_after(:w), ARRAY['cosmetic'], 'storage parameter: shape unchanged');
:rule
ALTER TYPE tenant_11.mood OWNER TO tenant_alice;
SELECT public.check_eq(public.labels_after(:w), ARRAY['cosmetic'], 'enum owner: labels unchanged');

-- breaking: what existing readers or writers break on.
:rule
ALTER TABLE tenant_11.t ADD COLUMN required int NOT NULL;
SELECT public.check_eq(public.labels_after(:w), ARRAY['breaking'], 'add NOT NULL column without a default');
:rule
ALTER TABLE tenant_11.t DROP COLUMN required;
SELECT public.check_eq(public.labels_after(:w), ARRAY['breaking'], 'drop column');
:rule
ALTER TABLE tenant_11.t RENAME COLUMN note TO remark;
SELECT public.check_eq(public.labels_after(:w), ARRAY['breaking'], 'rename column');
:rule
ALTER TABLE tenant_11.t ALTER COLUMN remark TYPE varchar(50);
SELECT public.check_eq(public.labels_after(:w), ARRAY['breaking'], 'retype column');
:rule
ALTER TABLE tenant_11.t ALTER COLUMN remark SET NOT NULL;
SELECT public.check_eq(public.labels_after(:w), ARRAY['breaking'], 'set not null');
:rule
ALTER TABLE tenant_11.t ALTER COLUMN remark DROP NOT NULL;
SELECT public.check_eq(public.labels_after(:w), ARRAY['breaking'], 'drop not null (readers now see nulls)');
:rule
ALTER TABLE tenant_11.t RENAME TO t2;
SELECT public.check_eq(public.labels_after(:w), ARRAY['breaking'], 'rename table');
:rule
CREATE SCHEMA tenant_11_other;
ALTER TABLE tenant_11.t2 SET SCHEMA tenant_11_other;
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive', 'breaking'], 'set schema');
:rule
ALTER TYPE tenant_11.mood RENAME VALUE 'sad' TO 'blue';
SELECT public.check_eq(public.labels_after(:w), ARRAY['breaking'], 'enum value renamed');
:rule
ALTER TYPE tenant_11.mood RENAME TO feeling;
SELECT public.check_eq(public.labels_after(:w), ARRAY['breaking'], 'enum renamed');
:rule
CREATE TABLE tenant_11.doomed (id int);
CREATE TABLE tenant_11.doomed_too (id int);
DROP TABLE tenant_11.doomed;
DROP SCHEMA tenant_11 CASCADE;
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive', 'additive', 'breaking', 'breaking', 'breaking'],
    'drop table; drop schema: its table and the schema');
-- Several changes at once: the most significant wins.
:rule
ALTER TABLE tenant_11_other.t2 ADD COLUMN extra text, DROP COLUMN twice;
SELECT public.check_eq(public.labels_after(:w), ARRAY['breaking'], 'additive and breaking together');
:rule
ALTER TABLE tenant_11_other.t2 ADD COLUMN extra2 text, ALTER COLUMN extra SET DEFAULT '';
COMMENT ON COLUMN tenant_11_other.t2.extra IS 'x';
SELECT public.check_eq(public.labels_after(:w), ARRAY['additive', 'cosmetic'], 'additive and defaults; a comment');

-- Unknown earlier shape: an ALTER may have changed anything, a comment only comments.
DELETE FROM platform.table_shapes WHERE shape->>'name' = 't2';
:rule
ALTER TABLE tenant_11_other.t2 ADD COLUMN after_loss text;
DELETE FROM platform.table_shapes WHERE shape->>'name' = 't2';
COMMENT ON TABLE tenant_11_other.t2 IS 'still';
SELECT public.check_eq(public.labels_after(:w), ARRAY['breaking', 'cosmetic'], 'unknown earlier shape');

-- Drift: created additive, altered from the diff, dropped breaking.
ALTER EVENT TRIGGER outbox_bridge_capture_ddl DISABLE;
CREATE TABLE tenant_11_other.unseen (id int);
ALTER TABLE tenant_11_other.t2 ADD COLUMN quietly text;
ALTER EVENT TRIGGER outbox_bridge_capture_ddl ENABLE;
CREATE TABLE tenant_11_other.gone (id int);
:rule
SELECT public.check_eq(platform.reconcile(), 2::bigint, 'two drifts');
SELECT public.check_eq((SELECT array_agg((e->>'drift') || ':' || (e->'changes'->>'compatibility') ORDER BY id) FROM public.events_after(:w)),
    ARRAY['altered:additive', 'created:additive'], 'drift: column added, table created');
ALTER EVENT TRIGGER outbox_bridge_capture_ddl DISABLE;
ALTER EVENT TRIGGER outbox_bridge_capture_drop DISABLE;
DROP TABLE tenant_11_other.gone;
ALTER TABLE tenant_11_other.t2 DROP COLUMN quietly;
ALTER EVENT TRIGGER outbox_bridge_capture_ddl ENABLE;
ALTER EVENT TRIGGER outbox_bridge_capture_drop ENABLE;
:rule
SELECT public.check_eq(platform.reconcile(), 2::bigint, 'two more drifts');
SELECT public.check_eq((SELECT array_agg((e->>'drift') || ':' || (e->'changes'->>'compatibility') ORDER BY id) FROM public.events_after(:w)),
    ARRAY['dropped:breaking', 'altered:breaking'], 'drift: table dropped, column dropped');

\echo 'check 11 passed'
