-- Check 03: privileges (tenants cannot forge, edit, delete or read outbox rows, call internal
-- functions, change settings or disable capture), the automation loop guard (session_user
-- membership; app.source does not hide DDL; superusers are not automatically "automation"),
-- actor, emit() and its grant. Uses \c to open sessions as different roles (trust auth):
--   tenant_alice (LOGIN), automation_bot (LOGIN, member of outbox_automation),
--   app_emitter (LOGIN, member of outbox_emitter), su_not_automation (LOGIN SUPERUSER).
\set ON_ERROR_STOP 1

-- Catalog-level guarantees: every function is SECURITY DEFINER, has the pinned search_path and no
-- EXECUTE for PUBLIC; no table grants anything to PUBLIC.
SELECT public.check_eq((SELECT string_agg(proname, ', ') FROM pg_proc
    WHERE pronamespace = 'platform'::regnamespace
      AND (NOT prosecdef OR proconfig IS DISTINCT FROM ARRAY['search_path=pg_catalog, pg_temp']
           OR proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(proacl) a WHERE a.grantee = 0))), NULL,
    'functions: security definer, pinned search_path, no PUBLIC execute');
SELECT public.check_eq((SELECT string_agg(relname, ', ') FROM pg_class
    WHERE relnamespace = 'platform'::regnamespace AND relkind IN ('r', 'S')
      AND (relacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(relacl) a WHERE a.grantee = 0))), NULL,
    'tables: no PUBLIC privileges');
SELECT public.check_eq((SELECT string_agg(evtname || ':' || evtenabled::text, ', ' ORDER BY evtname) FROM pg_event_trigger),
    'outbox_bridge_capture_ddl:O, outbox_bridge_capture_drop:O', 'event triggers enabled');

CREATE SCHEMA tenant_9 AUTHORIZATION tenant_alice;
CREATE SCHEMA tenant_10 AUTHORIZATION automation_bot;
GRANT CREATE ON DATABASE :"db" TO automation_bot;
-- An indirect member of the automation role (through a group) is automation too.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'automation_group') THEN CREATE ROLE automation_group NOLOGIN; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'indirect_bot') THEN CREATE ROLE indirect_bot LOGIN; END IF;
END $$;
GRANT outbox_automation TO automation_group;
GRANT automation_group TO indirect_bot;
GRANT USAGE, CREATE ON SCHEMA tenant_10 TO indirect_bot;
SELECT public.last_event_id() AS w \gset

------------------------------------------------------------------------------------------------
\c - tenant_alice
-- Forging, editing, deleting, reading outbox rows; settings; internal functions; event triggers.
SELECT public.check_fails($$INSERT INTO platform.schema_changes (event_data) VALUES ('{"event_id": "x", "command": "DROP", "kind": "ddl"}')$$, '42501', 'tenant: insert outbox');
SELECT public.check_fails($$UPDATE platform.schema_changes SET processed = true$$, '42501', 'tenant: update outbox');
SELECT public.check_fails($$DELETE FROM platform.schema_changes$$, '42501', 'tenant: delete outbox');
SELECT public.check_fails($$TRUNCATE platform.schema_changes$$, '42501', 'tenant: truncate outbox');
SELECT public.check_fails($$SELECT * FROM platform.schema_changes$$, '42501', 'tenant: read outbox');
SELECT public.check_fails($$UPDATE platform.settings SET automation_role = 'tenant_alice'$$, '42501', 'tenant: change settings');
SELECT public.check_fails($$DELETE FROM platform.table_shapes$$, '42501', 'tenant: edit snapshots');
SELECT public.check_fails($$SELECT platform.emit('9', 'Forged', '{}')$$, '42501', 'tenant: emit');
SELECT public.check_fails($$SELECT platform.refresh_table_shapes()$$, '42501', 'tenant: refresh_table_shapes');
SELECT public.check_fails($$SELECT platform.table_shape('pg_class'::regclass)$$, '42501', 'tenant: table_shape');
SELECT public.check_fails($$SELECT platform.is_automation('outbox_automation')$$, '42501', 'tenant: is_automation');
SELECT public.check_fails($$SELECT platform.tenant_of('tenant_1', 'tenant_')$$, '42501', 'tenant: tenant_of');
SELECT public.check_fails($$SELECT platform.shape_changes('{}', '{}')$$, '42501', 'tenant: shape_changes');
SELECT public.check_fails($$SELECT platform.capture_ddl()$$, '42501', 'tenant: capture_ddl');
SELECT public.check_fails($$ALTER EVENT TRIGGER outbox_bridge_capture_ddl DISABLE$$, '42501', 'tenant: disable event trigger');
SELECT public.check_fails($$DROP EVENT TRIGGER outbox_bridge_capture_drop$$, '42501', 'tenant: drop event trigger');
SELECT public.check_fails($$SET session_replication_role = replica$$, '42501', 'tenant: session_replication_role');
SELECT public.check_fails($$SET ROLE outbox_automation$$, '42501', 'tenant: set role automation');
SELECT public.check_fails($$CREATE TABLE platform.sneaky (id int)$$, '42501', 'tenant: create in outbox schema');

-- Tenant DDL is captured, also with app.source set and with a hostile search_path: an operator
-- "=" on text that always raises, found before pg_catalog. The pinned search_path ignores it.
CREATE TABLE tenant_9.mine (id int);
SET app.source = 'schema_automation';
ALTER TABLE tenant_9.mine ADD COLUMN v text;
RESET app.source;
CREATE FUNCTION tenant_9.boom(text, text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN RAISE 'hijacked'; END $$;
CREATE OPERATOR tenant_9.= (LEFTARG = text, RIGHTARG = text, FUNCTION = tenant_9.boom);
SET search_path = tenant_9, pg_catalog, public;
CREATE TABLE tenant_9.hostile_path (id int);
RESET search_path;
DROP TABLE tenant_9.mine;

------------------------------------------------------------------------------------------------
\c - postgres
SELECT public.check_eq((SELECT array_agg((e->>'command') || ' ' || (e->>'object_identity') ORDER BY id) FROM public.events_after(:w)),
    ARRAY['CREATE TABLE tenant_9.mine', 'ALTER TABLE tenant_9.mine', 'CREATE TABLE tenant_9.hostile_path', 'DROP TABLE tenant_9.mine'],
    'tenant DDL captured, app.source does not hide it, hostile search_path harmless');
SELECT public.check((SELECT bool_and(e->>'actor' = 'tenant_alice' AND e->>'tenant_id' = '9') FROM public.events_after(:w)), 'tenant: actor and tenant');
SELECT public.last_event_id() AS w2 \gset

------------------------------------------------------------------------------------------------
\c - automation_bot
-- Loop guard: nothing captured for members of outbox_automation, not even CREATE SCHEMA/DROP.
CREATE SCHEMA tenant_11;
CREATE TABLE tenant_10.synced (id int);
ALTER TABLE tenant_10.synced ADD COLUMN from_automation int;
CREATE TABLE tenant_10.gone (id int);
DROP TABLE tenant_10.gone;
DROP SCHEMA tenant_11;
\c - indirect_bot
CREATE TABLE tenant_10.indirect (id int);
ALTER TABLE tenant_10.indirect ADD COLUMN v int;

------------------------------------------------------------------------------------------------
\c - postgres
SELECT public.check_eq((SELECT count(*) FROM public.events_after(:w2)), 0::bigint, 'loop guard: automation DDL not captured');
-- ... but the snapshot followed it, so the next captured ALTER reports only its own change.
ALTER TABLE tenant_10.synced ADD COLUMN from_superuser int;
SELECT public.check_eq((SELECT jsonb_path_query_array(e, '$.changes.columns_added[*].name') FROM public.events_after(:w2)),
    '["from_superuser"]'::jsonb, 'loop guard: snapshot kept current under automation');
SELECT public.check_eq((SELECT e->>'actor' FROM public.events_after(:w2)), 'postgres', 'superuser captured, actor postgres');
SELECT public.last_event_id() AS w3 \gset

-- A superuser that is not a member of outbox_automation is captured (pg_has_role would say it is).
\c - su_not_automation
CREATE TABLE tenant_10.by_other_superuser (id int);
\c - postgres
SELECT public.check_eq((SELECT e->>'actor' FROM public.events_after(:w3)), 'su_not_automation', 'superuser non-member captured');

-- Superusers with memberships: one that is a member through a group (automation_group is a
-- member of outbox_automation) is automation; one that is a member of an unrelated role only is not.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'su_automation') THEN CREATE ROLE su_automation LOGIN SUPERUSER; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'su_with_groups') THEN CREATE ROLE su_with_groups LOGIN SUPERUSER; END IF;
END $$;
GRANT automation_group TO su_automation;
GRANT outbox_emitter TO su_with_groups;
SELECT public.last_event_id() AS w3b \gset
\c - su_automation
CREATE TABLE tenant_10.by_superuser_member (id int);
\c - su_with_groups
CREATE TABLE tenant_10.by_superuser_with_groups (id int);
\c - postgres
SELECT public.check_eq((SELECT array_agg(e->>'actor' ORDER BY id) FROM public.events_after(:w3b)), ARRAY['su_with_groups'],
    'superuser member through a group is automation; superuser with unrelated memberships is captured');
SELECT public.last_event_id() AS w4 \gset

-- Automation role renamed in settings to a role that does not exist: nobody is automation, and
-- DDL keeps working.
UPDATE platform.settings SET automation_role = 'no_such_role';
\c - automation_bot
CREATE TABLE tenant_10.now_captured (id int);
\c - postgres
SELECT public.check_eq((SELECT e->>'actor' FROM public.events_after(:w4)), 'automation_bot', 'missing automation role: captured');
UPDATE platform.settings SET automation_role = DEFAULT;
-- SET ROLE to a non-member does not escape the guard, nor does SET ROLE fake membership: the
-- guard looks at session_user.
SET ROLE tenant_alice;
CREATE TABLE tenant_9.via_set_role (id int);
RESET ROLE;
SELECT public.check_eq((SELECT e->>'actor' FROM public.events_after(:w4) ORDER BY id DESC LIMIT 1), 'postgres', 'SET ROLE: actor is session_user');
SELECT public.last_event_id() AS w5 \gset

------------------------------------------------------------------------------------------------
-- emit(): members of outbox_emitter only.
\c - app_emitter
SELECT platform.emit('9', 'OrderPlaced', '{"order_id": 17, "total": "9.99"}') AS emitted_id \gset
SELECT platform.emit(NULL, 'SystemNotice', NULL) AS emitted_id2 \gset
SELECT public.check_fails($$SELECT platform.emit('9', '', '{}')$$, '22023', 'emit: empty event_type');
SELECT public.check_fails($$SELECT platform.emit('', 'X', '{}')$$, '22023', 'emit: empty tenant');
SELECT public.check_fails($$INSERT INTO platform.schema_changes (event_data) VALUES ('{}')$$, '42501', 'emitter: no direct insert');
SELECT public.check_fails($$SELECT platform.refresh_table_shapes()$$, '42501', 'emitter: internal functions');
BEGIN;
SELECT platform.emit('9', 'RolledBack', '{}');
ROLLBACK;
\c - postgres
SELECT public.check_eq((SELECT count(*) FROM public.events_after(:w5)), 2::bigint, 'emit: two events, rolled back one gone');
SELECT public.check_eq((SELECT e - 'event_id' - 'occurred_at' - 'transaction_id' - 'database' FROM public.events_after(:w5) WHERE id = :emitted_id),
    '{"version": 1, "kind": "domain", "command": "OrderPlaced", "object_type": null, "object_identity": null,
      "schema_name": null, "tenant_id": "9", "tenant_seq": 7, "actor": "app_emitter", "payload": {"order_id": 17, "total": "9.99"}}'::jsonb,
    'emit: event_data');
SELECT public.check_eq((SELECT tenant_key FROM platform.schema_changes WHERE id = :emitted_id), '9', 'emit: tenant_key');
SELECT public.check_eq((SELECT tenant_key FROM platform.schema_changes WHERE id = :emitted_id2), NULL, 'emit: no tenant, null key');
SELECT public.check_eq((SELECT event_data->'payload' FROM platform.schema_changes WHERE id = :emitted_id2), 'null'::jsonb, 'emit: null payload');

-- The relay role can mark rows but not forge or delete them.
SET ROLE outbox_relay;
UPDATE platform.schema_changes SET processed = true, processed_at = now(), kafka_topic = 't', kafka_partition = 0, kafka_offset = 1
 WHERE id = :emitted_id;
SELECT public.check_fails($$UPDATE platform.schema_changes SET event_data = '{}'$$, '42501', 'relay: cannot rewrite events');
SELECT public.check_fails($$INSERT INTO platform.schema_changes (event_data) VALUES ('{}')$$, '42501', 'relay: cannot insert');
SELECT public.check_fails($$DELETE FROM platform.schema_changes$$, '42501', 'relay: cannot delete');
RESET ROLE;

\echo 'check 03 passed'
