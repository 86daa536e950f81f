-- The floor of an in-transaction capture (issue 14, sql/README.md "The floor of an in-transaction
-- capture"): not a migration, and never installed by outbox-bridge. Added after sql/'s files as the
-- last one, it replaces capture_ddl() with the least a capture that keeps the product's promise
-- can do: read the table's resulting shape (table_shape(), one catalog query) and write it as one
-- outbox row in the DDL's transaction, then notify. No earlier shape, no diff, no tenant number, no
-- snapshot row. scripts/bench-capture.sh runs it as its "baseline" mode beside the real capture:
--
--   d=$(mktemp -d); cp sql/0*.sql "$d"; cp scripts/capture-floor.sql "$d/099_capture_floor.sql"
--   BENCH_CALLGRIND=1 BENCH_BASELINE_SQL_DIR="$d" scripts/bench-capture.sh 25
--
-- It names the outbox schema's objects through the function's search_path, so it needs none of a
-- migration's scaffolding.

\if :{?schema}
\else
\set schema platform
\endif
CREATE OR REPLACE FUNCTION :"schema".capture_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = :"schema", pg_catalog, pg_temp AS $fn$
DECLARE
    v_cmd record;
    v_shape jsonb;
    v_channel text;
    v_inserted boolean := false;
BEGIN
    SELECT s.notify_channel INTO STRICT v_channel FROM settings s;
    FOR v_cmd IN
        SELECT c.objid, c.command_tag FROM pg_catalog.pg_event_trigger_ddl_commands() c
         WHERE c.object_type IN ('table', 'table column')
    LOOP
        v_shape := table_shape(v_cmd.objid);
        CONTINUE WHEN v_shape IS NULL;
        INSERT INTO schema_changes (event_data, tenant_key)
        VALUES (v_shape || pg_catalog.jsonb_build_object(
                    'event_id', pg_catalog.gen_random_uuid(), 'command', v_cmd.command_tag, 'kind', 'ddl'),
                v_shape->>'schema');
        v_inserted := true;
    END LOOP;
    IF v_inserted THEN
        PERFORM pg_catalog.pg_notify(v_channel, '');
    END IF;
END
$fn$;
