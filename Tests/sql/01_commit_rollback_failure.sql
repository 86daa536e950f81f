-- Check 01: committed DDL leaves exactly its events, rolled-back DDL leaves none, and a failing
-- capture function makes the DDL fail (and roll back).
\set ON_ERROR_STOP 1

-- Committed DDL: exactly one event per captured statement.
SELECT public.last_event_id() AS w0 \gset
CREATE TABLE public.committed_t (id int PRIMARY KEY);
ALTER TABLE public.committed_t ADD COLUMN v text;
SELECT public.check_eq((SELECT count(*) FROM public.events_after(:w0)), 2::bigint, 'commit: two events');
SELECT public.check_eq((SELECT array_agg(e->>'command' ORDER BY id) FROM public.events_after(:w0)),
                       ARRAY['CREATE TABLE', 'ALTER TABLE'], 'commit: commands in order');

-- Rolled-back DDL: no events, no snapshot.
SELECT public.last_event_id() AS w1 \gset
BEGIN;
CREATE TABLE public.rolled_back_t (id int);
ALTER TABLE public.committed_t ADD COLUMN w int;
CREATE SCHEMA tenant_rb;
ROLLBACK;
SELECT public.check_eq((SELECT count(*) FROM platform.schema_changes WHERE id > :w1), 0::bigint, 'rollback: no events');
SELECT public.check_eq((SELECT count(*) FROM platform.table_shapes WHERE shape->>'name' = 'rolled_back_t'), 0::bigint,
                       'rollback: no snapshot');
-- Snapshot of committed_t was rolled back too: a fresh ADD COLUMN w reports only w.
ALTER TABLE public.committed_t ADD COLUMN w int;
SELECT public.check_eq((SELECT jsonb_path_query_array(e, '$.changes.columns_added[*].name') FROM public.events_after(:w1)),
                       '["w"]'::jsonb, 'rollback: snapshot rolled back with the DDL');

-- Savepoint rollback inside a committed transaction: only the surviving statement's event.
SELECT public.last_event_id() AS w2 \gset
BEGIN;
CREATE TABLE public.kept_t (id int);
SAVEPOINT s;
CREATE TABLE public.discarded_t (id int);
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT public.check_eq((SELECT array_agg(e->'table'->>'name' ORDER BY id) FROM public.events_after(:w2)),
                       ARRAY['kept_t'], 'savepoint: only the kept statement');

-- Capture failure => DDL failure. Simulate with a CHECK on the outbox that every new row violates.
ALTER TABLE platform.schema_changes ADD CONSTRAINT test_reject_all CHECK (false) NOT VALID;
SELECT public.check_fails('CREATE TABLE public.must_not_exist (id int)', '23514', 'capture failure fails CREATE TABLE');
SELECT public.check_fails('ALTER TABLE public.committed_t ADD COLUMN must_not_exist int', '23514', 'capture failure fails ALTER TABLE');
SELECT public.check_fails('DROP TABLE public.kept_t', '23514', 'capture failure fails DROP TABLE');
ALTER TABLE platform.schema_changes DROP CONSTRAINT test_reject_all;
SELECT public.check(to_regclass('public.must_not_exist') IS NULL, 'failed CREATE TABLE rolled back');
SELECT public.check(to_regclass('public.kept_t') IS NOT NULL, 'failed DROP TABLE rolled back');
SELECT public.check(NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.committed_t'::regclass
                                AND attname = 'must_not_exist'), 'failed ALTER TABLE rolled back');

-- A missing settings row also fails DDL loudly (STRICT) instead of silently skipping capture.
BEGIN;
DELETE FROM platform.settings;
SELECT public.check_fails('CREATE TABLE public.no_settings (id int)', 'P0002', 'missing settings row fails DDL');
ROLLBACK;

-- Statements the triggers ignore do not create events.
SELECT public.last_event_id() AS w3 \gset
CREATE INDEX ON public.committed_t (v);
CREATE VIEW public.some_view AS SELECT 1 AS one;
CREATE TEMP TABLE temp_t (id int);
ALTER TABLE temp_t ADD COLUMN x int;
DROP TABLE temp_t;
CREATE TABLE platform.own_table (id int);   -- objects in the outbox schema itself are skipped
DROP TABLE platform.own_table;
SELECT public.check_eq((SELECT count(*) FROM public.events_after(:w3)), 0::bigint, 'ignored statements: no events');

\echo 'check 01 passed'
