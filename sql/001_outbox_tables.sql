-- outbox-bridge migration 1: schema, migration ledger, settings, roles, outbox and shape tables.
--
-- Install with:  psql -v ON_ERROR_STOP=1 -v schema=platform -f sql/001_outbox_tables.sql
-- (see sql/README.md for the full procedure and for the rules a programmatic installer follows).
--
-- The target schema comes from the psql variable `schema` (default: platform). Outside function
-- bodies it is used as :"schema" (psql quotes it as an identifier) and :'schema' (quoted literal),
-- so a name with quotes or spaces works and cannot inject SQL. Everything between the
-- `-- >>> migration body` and `-- <<< migration body` markers is the part a programmatic installer
-- runs after it has replaced :"schema" / :'schema' the same way psql would.

\if :{?schema}
\else
\set schema platform
\endif
-- Skip the whole file when its version is already recorded (re-running is a no-op).
SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', :'schema')) IS NOT NULL AS outbox_has_ledger \gset
\if :outbox_has_ledger
SELECT NOT EXISTS (SELECT 1 FROM :"schema".schema_migrations WHERE version = 1) AS outbox_apply \gset
\else
\set outbox_apply true
\endif
\if :outbox_apply
-- >>> migration body
BEGIN;

-- The schema name reaches DO blocks and the installer helper through a transaction-local setting.
SET LOCAL outbox_bridge.install_schema = :'schema';
-- Serialise concurrent installers of any outbox-bridge version in this database.
DO $lock$ BEGIN PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.install')); END $lock$;

DO $validate$
DECLARE
    s text := pg_catalog.current_setting('outbox_bridge.install_schema');
BEGIN
    -- 11 and 12 would accept the install and then fail every captured DDL (no attgenerated on
    -- 11, no built-in gen_random_uuid() before 13). Same check as OutboxInstaller.
    IF pg_catalog.current_setting('server_version_num')::int < 130000 THEN
        RAISE EXCEPTION 'outbox-bridge: PostgreSQL % is not supported: the minimum is 13; nothing was changed',
            pg_catalog.split_part(pg_catalog.current_setting('server_version'), ' ', 1);
    END IF;
    -- Refuse clearly instead of letting PostgreSQL silently truncate or reject later.
    IF s IS NULL OR s = '' THEN
        RAISE EXCEPTION 'outbox-bridge: schema name must not be empty';
    END IF;
    IF pg_catalog.octet_length(s) > 63 THEN
        RAISE EXCEPTION 'outbox-bridge: schema name % is longer than 63 bytes', pg_catalog.quote_ident(s);
    END IF;
    -- Function bodies are dollar-quoted; a "$" in the name could end a quote early.
    IF pg_catalog.strpos(s, '$') > 0 THEN
        RAISE EXCEPTION 'outbox-bridge: schema name % must not contain "$"', pg_catalog.quote_ident(s);
    END IF;
    IF s ~ '^pg_' OR s IN ('information_schema', 'public') THEN
        RAISE EXCEPTION 'outbox-bridge: schema % is reserved or shared; pick a dedicated schema', pg_catalog.quote_ident(s);
    END IF;
    -- Event triggers are per database: one capture install per database. Refuse before creating
    -- anything (002 checks again before it (re)creates the triggers).
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e
                 JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
                 JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                WHERE e.evtname IN ('outbox_bridge_capture_ddl', 'outbox_bridge_capture_drop') AND n.nspname <> s) THEN
        RAISE EXCEPTION 'outbox-bridge: this database already captures into another schema; only one install per database';
    END IF;
END
$validate$;

CREATE SCHEMA IF NOT EXISTS :"schema";
-- Nobody but the owner (the installing superuser) may create objects in here.
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;

CREATE TABLE IF NOT EXISTS :"schema".schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
-- Recorded first: a concurrent installer that raced past the psql-level check blocks here on the
-- primary key and then fails (its transaction rolls back) instead of applying the file twice.
INSERT INTO :"schema".schema_migrations (version, name) VALUES (1, 'outbox_tables');

-- Roles are cluster-wide, so create them only when missing. NOLOGIN: they are groups to grant.
--   outbox_automation  members' DDL is NOT captured (loop guard for schema automation)
--   outbox_emitter     may call <schema>.emit() for domain events
--   outbox_relay       may read and mark outbox rows (the Kafka relay)
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['outbox_automation', 'outbox_emitter', 'outbox_relay'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            -- Roles are shared by every database of the cluster, and the install lock above
            -- is per database: an install into another database may create the role at the
            -- same moment. Whoever loses that race uses the winner's role.
            BEGIN
                EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$roles$;

-- Singleton settings row. A typed row (not key/value) so the trigger reads it with one lookup and
-- bad values are rejected by CHECK constraints instead of breaking every DDL later.
CREATE TABLE IF NOT EXISTS :"schema".settings (
    singleton            boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    -- Schemas named <prefix><id> belong to tenant <id>. Compared literally (no LIKE wildcards).
    tenant_schema_prefix text NOT NULL DEFAULT 'tenant_' CHECK (tenant_schema_prefix <> ''),
    -- Sessions whose session_user is a member (direct or indirect) of this role are not captured.
    -- A role name that does not exist means "nobody is automation"; it never breaks DDL.
    automation_role      name NOT NULL DEFAULT 'outbox_automation',
    -- pg_notify channel used as a wake-up call. LISTEN needs it quoted as an identifier.
    notify_channel       text NOT NULL DEFAULT 'outbox_bridge'
                         CHECK (notify_channel <> '' AND pg_catalog.octet_length(notify_channel) <= 63)
);
INSERT INTO :"schema".settings DEFAULT VALUES ON CONFLICT (singleton) DO NOTHING;

-- The outbox. One row per event; the relay marks rows processed (or dead) instead of deleting
-- them, so the partial index below keeps claiming fast however many processed rows pile up.
CREATE TABLE IF NOT EXISTS :"schema".schema_changes (
    id              bigserial PRIMARY KEY,
    event_data      jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    processed       boolean NOT NULL DEFAULT false,
    processed_at    timestamptz,
    kafka_topic     text,
    kafka_partition int,
    kafka_offset    bigint,
    -- relay bookkeeping
    attempts        int NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz,           -- NULL: eligible now
    dead            boolean NOT NULL DEFAULT false,  -- given up; needs a human (see dead_reason)
    dead_reason     text,
    -- Kafka message key: tenant_id, else the object's schema name (NULL only for a domain event
    -- emitted without a tenant). Denormalised so per-tenant ordering needs no JSON access.
    tenant_key      text,
    CONSTRAINT schema_changes_event_data_shape CHECK (
        pg_catalog.jsonb_typeof(event_data) = 'object'
        AND event_data ? 'event_id' AND event_data ? 'command' AND event_data ? 'kind'),
    CONSTRAINT schema_changes_processed_consistent CHECK (NOT (processed AND dead))
);

-- Pending = neither processed nor dead. Small even with millions of processed rows.
CREATE INDEX IF NOT EXISTS schema_changes_pending_idx
    ON :"schema".schema_changes (id)
    WHERE NOT processed AND NOT dead;

-- Last known shape of every captured table, keyed by relation oid. ALTER TABLE events diff the
-- new shape against this (renames are detected by attnum); DROP events report the stored shape.
CREATE TABLE IF NOT EXISTS :"schema".table_shapes (
    relid      oid PRIMARY KEY,
    shape      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Privileges: nothing for PUBLIC. The relay gets exactly what it needs.
REVOKE ALL ON ALL TABLES IN SCHEMA :"schema" FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA :"schema" FROM PUBLIC;
GRANT USAGE ON SCHEMA :"schema" TO outbox_relay;
GRANT SELECT ON :"schema".schema_changes, :"schema".settings TO outbox_relay;
GRANT UPDATE (processed, processed_at, kafka_topic, kafka_partition, kafka_offset,
              attempts, last_error, next_attempt_at, dead, dead_reason)
    ON :"schema".schema_changes TO outbox_relay;

COMMIT;
-- <<< migration body
\else
\echo outbox-bridge: migration 1 (outbox_tables) already applied, skipping
\endif
