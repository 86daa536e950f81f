-- Check 08: DDL the event triggers never saw is found by platform.reconcile(), which emits one
-- kind = drift event per table that differs and then updates the snapshot, so a second call emits
-- nothing. drift() lists the same without emitting. Tenants may call neither.
\set ON_ERROR_STOP 1

CREATE SCHEMA tenant_8;
CREATE TABLE tenant_8.kept (id int PRIMARY KEY);
CREATE TABLE tenant_8.doomed (id int);
SELECT public.check_eq(platform.reconcile(), 0::bigint, 'nothing escaped: no drift');

-- 1. A disabled trigger: ALTER while it is off.
ALTER EVENT TRIGGER outbox_bridge_capture_ddl DISABLE;
ALTER TABLE tenant_8.kept ADD COLUMN missed text;
ALTER EVENT TRIGGER outbox_bridge_capture_ddl ENABLE;
SELECT public.check_eq((SELECT array_agg(drift || ':' || table_name) FROM platform.drift()), ARRAY['altered:kept'], 'drift() lists it');
SELECT public.check_eq((SELECT count(*) FROM platform.drift()), 1::bigint, 'drift() emits nothing');
SELECT public.last_event_id() AS w \gset
SELECT public.check_eq(platform.reconcile(), 1::bigint, 'disabled trigger: one drift event');
SELECT public.check_eq((SELECT jsonb_build_object('kind', e->'kind', 'command', e->'command', 'drift', e->'drift',
                               'identity', e->'object_identity', 'tenant', e->'tenant_id', 'added', e->'changes'->'columns_added'->0->'name',
                               'known', e->'previous_shape_known', 'key', tenant_key)
                          FROM public.events_after(:w)),
    '{"kind": "drift", "command": "DRIFT", "drift": "altered", "identity": "tenant_8.kept", "tenant": "8", "added": "missed",
      "known": true, "key": "8"}'::jsonb, 'disabled trigger: the drift event');
SELECT public.check_eq(platform.reconcile(), 0::bigint, 'disabled trigger: reported once');

-- 2. session_replication_role = replica skips event triggers.
SET session_replication_role = replica;
CREATE TABLE tenant_8.unseen (id int);
ALTER TABLE tenant_8.kept DROP COLUMN missed;
RESET session_replication_role;
SELECT public.last_event_id() AS w \gset
SELECT public.check_eq(platform.reconcile(), 2::bigint, 'replica role: two drift events');
SELECT public.check_eq((SELECT array_agg((e->>'drift') || ':' || (e->>'object_identity') || ':' || (e->>'previous_shape_known') ORDER BY id)
                          FROM public.events_after(:w)),
    ARRAY['altered:tenant_8.kept:true', 'created:tenant_8.unseen:false'], 'replica role: altered and created');
SELECT public.check_eq((SELECT e->'changes' FROM public.events_after(:w) WHERE e->>'drift' = 'created'), '{"compatibility": "additive"}'::jsonb, 'created: changes only labelled additive');
SELECT public.check_eq(platform.reconcile(), 0::bigint, 'replica role: reported once');

-- 3. A table dropped while capture was off.
ALTER EVENT TRIGGER outbox_bridge_capture_drop DISABLE;
DROP TABLE tenant_8.doomed;
ALTER EVENT TRIGGER outbox_bridge_capture_drop ENABLE;
SELECT public.last_event_id() AS w \gset
SELECT public.check_eq(platform.reconcile(), 1::bigint, 'dropped: one drift event');
SELECT public.check_eq((SELECT jsonb_build_object('drift', e->'drift', 'identity', e->'object_identity',
                               'columns', e->'table'->'columns'->0->'name', 'changes', e->'changes')
                          FROM public.events_after(:w)),
    '{"drift": "dropped", "identity": "tenant_8.doomed", "columns": "id", "changes": {"compatibility": "breaking"}}'::jsonb, 'dropped: the last known shape');
SELECT public.check_eq(platform.reconcile(), 0::bigint, 'dropped: reported once');

-- Drift outside the captured schemas only updates the snapshot.
UPDATE platform.settings SET capture_schemas = '{tenants}';
ALTER EVENT TRIGGER outbox_bridge_capture_ddl DISABLE;
CREATE TABLE public.quiet (id int);
ALTER EVENT TRIGGER outbox_bridge_capture_ddl ENABLE;
SELECT public.check_eq(platform.reconcile(), 0::bigint, 'schema not captured: no drift event');
UPDATE platform.settings SET capture_schemas = DEFAULT;
SELECT public.check_eq((SELECT array_agg(drift || ':' || table_name) FROM platform.drift()), ARRAY['created:quiet'],
    'widening the capture announces the table once');
SELECT public.check_eq(platform.reconcile(), 1::bigint, 'announced');
SELECT public.check_eq(platform.reconcile(), 0::bigint, 'announced once');

-- Tenants may not reconcile or read drift.
GRANT USAGE ON SCHEMA platform TO tenant_alice;
SET ROLE tenant_alice;
SELECT public.check_fails('SELECT platform.reconcile()', '42501', 'tenant: reconcile() permission denied');
SELECT public.check_fails('SELECT * FROM platform.drift()', '42501', 'tenant: drift() permission denied');
RESET ROLE;

\echo 'check 08 passed'
