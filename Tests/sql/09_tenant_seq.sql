-- Check 09: tenant_seq. Every event of a tenant gets the next number of that tenant (DDL, drops,
-- emit(), drift), rolled-back transactions and savepoints use none, events without a tenant get
-- null, and each tenant counts on its own. Concurrency (commit order, two tenants not waiting
-- for each other) is checked by Tests/sql/10_tenant_seq_concurrency.sh.
\set ON_ERROR_STOP 1

CREATE OR REPLACE FUNCTION public.seqs_after(after_id bigint, tenant text) RETURNS bigint[]
LANGUAGE sql AS $$
    SELECT array_agg((e->>'tenant_seq')::bigint ORDER BY id) FROM public.events_after(after_id) WHERE e->>'tenant_id' = tenant
$$;

SELECT public.last_event_id() AS w \gset
CREATE SCHEMA tenant_9a;                                   -- 1
CREATE TABLE tenant_9a.t (id int PRIMARY KEY);             -- 2
BEGIN;
ALTER TABLE tenant_9a.t ADD COLUMN lost text;
SELECT platform.emit('9a', 'Lost', '{}');
ROLLBACK;
ALTER TABLE tenant_9a.t ADD COLUMN kept text;              -- 3
BEGIN;
CREATE TABLE tenant_9a.u (id int);                         -- 4
SAVEPOINT s;
CREATE TABLE tenant_9a.discarded (id int);
ROLLBACK TO SAVEPOINT s;
SELECT platform.emit('9a', 'OrderPlaced', '{"n": 1}');     -- 5
COMMIT;
CREATE SCHEMA tenant_9b;                                   -- 9b: 1
CREATE TABLE tenant_9b.t (id int);                         -- 9b: 2
CREATE TYPE tenant_9a.mood AS ENUM ('ok');                 -- 6
DROP TABLE tenant_9a.u;                                    -- 7
SELECT public.check_eq(public.seqs_after(:w, '9a'), ARRAY[1, 2, 3, 4, 5, 6, 7]::bigint[],
    'one tenant: consecutive from 1, rollbacks and savepoints use no number');
SELECT public.check_eq(public.seqs_after(:w, '9b'), ARRAY[1, 2]::bigint[], 'another tenant counts on its own');
SELECT public.check_eq((SELECT array_agg(e->'tenant_seq' ORDER BY id) FROM public.events_after(:w) WHERE e->>'tenant_id' = '9a' AND e->>'kind' = 'domain'),
    ARRAY['5'::jsonb], 'emit() is numbered with the DDL');

-- No tenant: tenant_seq is null (present, so consumers need not guess).
SELECT public.last_event_id() AS w \gset
CREATE TABLE public.no_tenant (id int);
SELECT platform.emit(NULL, 'Broadcast', '{}');
SELECT public.check_eq((SELECT array_agg(e->'tenant_seq' ORDER BY id) FROM public.events_after(:w)),
    ARRAY['null'::jsonb, 'null'::jsonb], 'no tenant: tenant_seq null');

-- DROP SCHEMA CASCADE: the table events and the schema event continue the tenant's numbers.
SELECT public.last_event_id() AS w \gset
DROP SCHEMA tenant_9b CASCADE;
SELECT public.check_eq(public.seqs_after(:w, '9b'), ARRAY[3, 4]::bigint[], 'drop schema: numbered in order');

-- Drift events are numbered too.
ALTER EVENT TRIGGER outbox_bridge_capture_ddl DISABLE;
ALTER TABLE tenant_9a.t ADD COLUMN unseen int;
ALTER EVENT TRIGGER outbox_bridge_capture_ddl ENABLE;
SELECT public.last_event_id() AS w \gset
SELECT public.check_eq(platform.reconcile(), 1::bigint, 'one drift event');
SELECT public.check_eq(public.seqs_after(:w, '9a'), ARRAY[8]::bigint[], 'drift: next number');

-- A failed statement inside a transaction that then commits uses no number either.
SELECT public.last_event_id() AS w \gset
BEGIN;
SAVEPOINT s;
SELECT public.check_fails('CREATE TABLE tenant_9a.t (id int)', '42P07', 'duplicate table fails');
ROLLBACK TO SAVEPOINT s;
CREATE TABLE tenant_9a.v (id int);
COMMIT;
SELECT public.check_eq(public.seqs_after(:w, '9a'), ARRAY[9]::bigint[], 'failed statement: no number');

-- Tenants cannot see or change the counters.
GRANT USAGE ON SCHEMA platform TO tenant_alice;
SET ROLE tenant_alice;
SELECT public.check_fails('SELECT * FROM platform.tenant_sequences', '42501', 'tenant: counters unreadable');
SELECT public.check_fails('UPDATE platform.tenant_sequences SET last_seq = 0', '42501', 'tenant: counters read-only');
RESET ROLE;
REVOKE USAGE ON SCHEMA platform FROM tenant_alice;

\echo 'check 09 passed'
