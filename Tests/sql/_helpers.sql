-- Assertion helpers for the capture checks. Loaded into each fresh test database (schema public)
-- by scripts/test-capture.sh before the check file runs. Every check RAISEs on failure, and the
-- runner uses ON_ERROR_STOP, so a check file "passes" exactly when psql exits 0.
CREATE OR REPLACE FUNCTION public.check(ok boolean, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'CHECK FAILED: %', what;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION public.check_eq(actual anyelement, expected anyelement, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF actual IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'CHECK FAILED: %: expected %, got %', what, expected, actual;
    END IF;
END $$;

-- Runs sql and demands it fails with the given SQLSTATE (e.g. 42501 insufficient_privilege).
CREATE OR REPLACE FUNCTION public.check_fails(sql text, sqlstate text, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE sql;
    EXCEPTION WHEN OTHERS THEN
        IF SQLSTATE <> check_fails.sqlstate THEN
            RAISE EXCEPTION 'CHECK FAILED: %: expected SQLSTATE %, got % (%)', what, check_fails.sqlstate, SQLSTATE, SQLERRM;
        END IF;
        RETURN;
    END;
    RAISE EXCEPTION 'CHECK FAILED: %: statement succeeded: %', what, sql;
END $$;

-- Events newer than a watermark, in order.
CREATE OR REPLACE FUNCTION public.events_after(after_id bigint)
RETURNS TABLE (id bigint, e jsonb, tenant_key text)
LANGUAGE sql AS $$
    SELECT c.id, c.event_data, c.tenant_key FROM platform.schema_changes c WHERE c.id > after_id ORDER BY c.id
$$;

CREATE OR REPLACE FUNCTION public.last_event_id() RETURNS bigint
LANGUAGE sql AS $$ SELECT COALESCE(max(id), 0) FROM platform.schema_changes $$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO PUBLIC;
