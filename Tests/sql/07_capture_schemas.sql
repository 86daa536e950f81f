-- Check 07: settings.capture_schemas decides which schemas' DDL is published: 'all' (the
-- default), 'tenants', or a list of patterns. Snapshots follow every schema whatever the mode.
\set ON_ERROR_STOP 1

SELECT public.check_eq((SELECT capture_schemas FROM platform.settings), '{all}'::text[], 'default: all');
CREATE SCHEMA tenant_7;
CREATE SCHEMA billing;
CREATE SCHEMA billing_archive;

-- all: public and every other schema too.
SELECT public.last_event_id() AS w \gset
CREATE TABLE public.p_all (id int);
CREATE TABLE tenant_7.t_all (id int);
SELECT public.check_eq((SELECT array_agg(e->>'object_identity' ORDER BY id) FROM public.events_after(:w)),
    ARRAY['public.p_all', 'tenant_7.t_all'], 'all: public and tenant');

-- tenants: only <prefix><id> schemas; the snapshot of the rest is still taken.
UPDATE platform.settings SET capture_schemas = '{tenants}';
SELECT public.last_event_id() AS w \gset
CREATE TABLE public.p_tenants (id int);
ALTER TABLE public.p_all ADD COLUMN v int;
CREATE TABLE tenant_7.t_tenants (id int);
DROP TABLE public.p_tenants;
CREATE SCHEMA not_a_tenant;
CREATE TYPE public.colour AS ENUM ('red');
SELECT public.check_eq((SELECT array_agg(e->>'object_identity' ORDER BY id) FROM public.events_after(:w)),
    ARRAY['tenant_7.t_tenants'], 'tenants: only the tenant schema');
SELECT public.check_eq((SELECT count(*) FROM platform.table_shapes WHERE shape->>'name' = 'p_all' AND shape->'columns'->1->>'name' = 'v'),
    1::bigint, 'tenants: snapshot of public still follows');

-- patterns: * any run, ? one character, everything else literal (the _ too).
UPDATE platform.settings SET capture_schemas = '{billing,tenant_?}';
SELECT public.last_event_id() AS w \gset
CREATE TABLE billing.b (id int);
CREATE TABLE billing_archive.b (id int);
CREATE TABLE tenant_7.t_pattern (id int);
CREATE TABLE public.p_pattern (id int);
SELECT public.check_eq((SELECT array_agg(e->>'object_identity' ORDER BY id) FROM public.events_after(:w)),
    ARRAY['billing.b', 'tenant_7.t_pattern'], 'patterns: billing and tenant_?');
UPDATE platform.settings SET capture_schemas = '{billing*}';
SELECT public.last_event_id() AS w \gset
ALTER TABLE billing_archive.b ADD COLUMN v int;
CREATE SCHEMA "billingXarchive";
SELECT public.check_eq((SELECT array_agg(e->>'command' ORDER BY id) FROM public.events_after(:w)),
    ARRAY['ALTER TABLE', 'CREATE SCHEMA'], 'patterns: billing*');
SELECT public.check_eq((SELECT e->'changes'->'columns_added'->0->>'name' FROM public.events_after(:w) ORDER BY id LIMIT 1),
    'v', 'a schema not captured before still diffs against its real previous shape');
UPDATE platform.settings SET capture_schemas = '{bill%}';
SELECT public.last_event_id() AS w \gset
CREATE TABLE billing.percent (id int);
SELECT public.check_eq((SELECT count(*) FROM public.events_after(:w)), 0::bigint, 'patterns: % is literal');

-- Bad settings are refused by the row's CHECK, never at DDL time.
SELECT public.check_fails($$UPDATE platform.settings SET capture_schemas = '{}'$$, '23514', 'empty list refused');
SELECT public.check_fails($$UPDATE platform.settings SET capture_schemas = '{all,billing}'$$, '23514', 'all mixed with patterns refused');
SELECT public.check_fails($$UPDATE platform.settings SET capture_schemas = '{""}'$$, '23514', 'empty pattern refused');
SELECT public.check_fails($$UPDATE platform.settings SET capture_schemas = NULL$$, '23502', 'NULL refused');
UPDATE platform.settings SET capture_schemas = DEFAULT;

\echo 'check 07 passed'
